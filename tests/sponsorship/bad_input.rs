//! Every refusal: a clear message, an `extensions.code`, and nothing written (the event log
//! and the sponsor are checked to be unchanged after each).

use serde_json::{Value, json};

use crate::support::*;

struct Fixture {
    ticketing: TicketingServer,
    crm: CrmServer,
    conference: String,
    sponsor: String,
}

async fn fixture() -> Fixture {
    let World {
        ticketing,
        crm,
        conference,
        ..
    } = World::new(10).await;
    let sponsor = crm.create_sponsor("Acme", "Gold", None).await;
    Fixture {
        ticketing,
        crm,
        conference,
        sponsor,
    }
}

const SPONSOR: &str = "query($id: ID!) { sponsor(id: $id) { name level { name } ticketAllowanceOverride contract { status } invoices { id status } ticketAllocation { status ticketsRequested } } }";

impl Fixture {
    async fn refused(
        &self,
        token: &str,
        query: &str,
        variables: Value,
        code: &str,
        message_part: &str,
    ) {
        let events_before = self.crm.event_types().await;
        let sponsor_before = self
            .crm
            .ok(
                Some(&self.crm.reader()),
                SPONSOR,
                json!({ "id": self.sponsor }),
            )
            .await;
        let body = self.crm.gql(Some(token), query, variables).await;
        assert_eq!(error_code(&body), code, "{body:#}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(message_part),
            "message {message:?} should mention {message_part:?}"
        );
        assert_eq!(
            self.crm.event_types().await,
            events_before,
            "an event was written"
        );
        assert_eq!(
            self.crm
                .ok(
                    Some(&self.crm.reader()),
                    SPONSOR,
                    json!({ "id": self.sponsor })
                )
                .await,
            sponsor_before,
            "the sponsor changed"
        );
    }
}

const CREATE: &str =
    "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }";

fn sponsor_input(name: &str, level: &str, email: &str, conference: Option<&str>) -> Value {
    json!({ "input": { "name": name, "level": level, "contactName": "Grace", "contactEmail": email, "conferenceId": conference } })
}

#[tokio::test]
async fn creating_sponsors_with_bad_input() {
    let f = fixture().await;
    let w = f.crm.writer();
    let ok_email = "grace@acme.example.org";
    f.refused(
        &w,
        CREATE,
        sponsor_input("  ", "Gold", ok_email, None),
        "BAD_USER_INPUT",
        "name must not be empty",
    )
    .await;
    f.refused(
        &w,
        CREATE,
        sponsor_input("Acme", "Gold", "grace", None),
        "BAD_USER_INPUT",
        "not a valid e-mail address",
    )
    .await;
    f.refused(
        &w,
        CREATE,
        sponsor_input("Acme", "Platinum", ok_email, None),
        "BAD_USER_INPUT",
        "Gold, Silver, Bronze",
    )
    .await;
    f.refused(
        &w,
        CREATE,
        sponsor_input("Acme", "Gold", ok_email, Some("nope")),
        "BAD_USER_INPUT",
        "not a valid conference id",
    )
    .await;
    // A conference the CRM does not serve registers nothing, whatever else is wrong.
    let (other, other_type) = f.ticketing.conference_with_sponsor_tickets(10).await;
    f.refused(
        &w,
        CREATE,
        sponsor_input("Acme", "Platinum", ok_email, Some(&other)),
        "BAD_USER_INPUT",
        "no sponsorship level",
    )
    .await;
    f.refused(
        &w,
        CREATE,
        sponsor_input("Acme", "Gold", ok_email, Some(&other)),
        "BAD_USER_INPUT",
        "does not serve",
    )
    .await;
    let conferences = f
        .crm
        .ok(
            Some(&f.crm.reader()),
            "{ sponsorConferences { conferenceId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        conferences["sponsorConferences"],
        json!([{ "conferenceId": f.conference }]),
        "a refused sponsor registered its conference"
    );
    // A second conference: now the CRM cannot guess which one is meant.
    f.crm.configure_sponsor_tickets(&other, &other_type).await;
    f.crm.create_sponsor("Other", "Bronze", Some(&other)).await;
    let body = f
        .crm
        .gql(
            Some(&w),
            CREATE,
            sponsor_input("Acme", "Gold", ok_email, None),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("more than one conference")
    );
}

#[tokio::test]
async fn contract_steps_out_of_order_or_on_unknown_sponsors() {
    let f = fixture().await;
    let w = f.crm.writer();
    let unknown = uuid::Uuid::new_v4().to_string();
    let send = "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }";
    let sign = "mutation($s: ID!, $on: Date) { signContract(sponsorId: $s, signedOn: $on) { id } }";
    let cancel = "mutation($s: ID!) { cancelContract(sponsorId: $s) { id } }";
    f.refused(
        &w,
        send,
        json!({ "s": "x" }),
        "BAD_USER_INPUT",
        "not a valid sponsor id",
    )
    .await;
    f.refused(
        &w,
        send,
        json!({ "s": unknown }),
        "NOT_FOUND",
        "does not exist",
    )
    .await;
    f.refused(
        &w,
        sign,
        json!({ "s": f.sponsor }),
        "INVALID_STATE",
        "send it before",
    )
    .await;
    f.crm.ok(Some(&w), send, json!({ "s": f.sponsor })).await;
    f.refused(
        &w,
        sign,
        json!({ "s": f.sponsor, "on": "2999-01-01" }),
        "BAD_USER_INPUT",
        "in the future",
    )
    .await;
    f.crm.ok(Some(&w), sign, json!({ "s": f.sponsor })).await;
    f.refused(
        &w,
        cancel,
        json!({ "s": f.sponsor }),
        "INVALID_STATE",
        "SIGNED contract cannot be cancelled",
    )
    .await;
}

#[tokio::test]
async fn invoices_with_bad_amounts_or_in_the_wrong_state() {
    let f = fixture().await;
    let w = f.crm.writer();
    let issue = "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }";
    let input = |sponsor: &str, amount: i64, currency: &str| json!({ "input": { "sponsorId": sponsor, "amount": { "amount": amount, "currency": currency }, "dueOn": due_on() } });
    f.refused(
        &w,
        issue,
        input(&f.sponsor, -5, "EUR"),
        "BAD_USER_INPUT",
        "amount must be between",
    )
    .await;
    f.refused(
        &w,
        issue,
        input(&f.sponsor, 0, "EUR"),
        "BAD_USER_INPUT",
        "above zero",
    )
    .await;
    f.refused(
        &w,
        issue,
        input(&f.sponsor, 100, "eur"),
        "BAD_USER_INPUT",
        "ISO 4217",
    )
    .await;
    f.refused(
        &w,
        issue,
        input(&uuid::Uuid::new_v4().to_string(), 100, "EUR"),
        "NOT_FOUND",
        "does not exist",
    )
    .await;

    let pay = "mutation($id: ID!) { markInvoicePaid(id: $id) { id } }";
    let void = "mutation($id: ID!) { voidInvoice(id: $id) { id } }";
    f.refused(
        &w,
        pay,
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
        "NOT_FOUND",
        "invoice",
    )
    .await;
    let voided = f.crm.issue_invoice(&f.sponsor, 100).await;
    f.crm.ok(Some(&w), void, json!({ "id": voided })).await;
    f.refused(
        &w,
        pay,
        json!({ "id": voided }),
        "INVALID_STATE",
        "VOID and cannot be paid",
    )
    .await;
    let paid = f.crm.issue_invoice(&f.sponsor, 100).await;
    f.crm.pay(&paid).await;
    f.refused(
        &w,
        void,
        json!({ "id": paid }),
        "INVALID_STATE",
        "PAID and cannot be voided",
    )
    .await;

    let other = f.crm.create_sponsor("Gone", "Gold", None).await;
    f.crm
        .ok(
            Some(&w),
            "mutation($s: ID!) { cancelContract(sponsorId: $s) { id } }",
            json!({ "s": other }),
        )
        .await;
    f.refused(
        &w,
        issue,
        input(&other, 100, "EUR"),
        "INVALID_STATE",
        "CANCELLED contract",
    )
    .await;
}

#[tokio::test]
async fn levels_overrides_configuration_and_retries_with_bad_input() {
    let f = fixture().await;
    let a = f.crm.admin();
    let change =
        "mutation($s: ID!, $l: String!) { changeSponsorLevel(sponsorId: $s, level: $l) { id } }";
    f.refused(
        &a,
        change,
        json!({ "s": f.sponsor, "l": "Diamond" }),
        "BAD_USER_INPUT",
        "no sponsorship level",
    )
    .await;
    f.refused(
        &a,
        change,
        json!({ "s": uuid::Uuid::new_v4().to_string(), "l": "Gold" }),
        "NOT_FOUND",
        "sponsor",
    )
    .await;

    let update = "mutation($n: String!, $input: UpdateSponsorshipLevelInput!) { updateSponsorshipLevel(name: $n, input: $input) { name } }";
    f.refused(
        &a,
        update,
        json!({ "n": "Diamond", "input": { "ticketAllowance": 3 } }),
        "NOT_FOUND",
        "no sponsorship level",
    )
    .await;
    f.refused(
        &a,
        update,
        json!({ "n": "Gold", "input": { "ticketAllowance": -1 } }),
        "BAD_USER_INPUT",
        "ticketAllowance must be between",
    )
    .await;
    f.refused(
        &a,
        update,
        json!({ "n": "Gold", "input": { "price": { "amount": 10, "currency": "EURO" } } }),
        "BAD_USER_INPUT",
        "ISO 4217",
    )
    .await;

    let set_override = "mutation($s: ID!, $t: Int) { setTicketAllowanceOverride(sponsorId: $s, tickets: $t) { id } }";
    f.refused(
        &a,
        set_override,
        json!({ "s": f.sponsor, "t": -2 }),
        "BAD_USER_INPUT",
        "tickets must be between",
    )
    .await;
    f.refused(
        &a,
        set_override,
        json!({ "s": uuid::Uuid::new_v4().to_string(), "t": 2 }),
        "NOT_FOUND",
        "sponsor",
    )
    .await;

    let configure = "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }";
    f.refused(
        &a,
        configure,
        json!({ "input": { "conferenceId": f.conference, "ticketTypeId": "x" } }),
        "BAD_USER_INPUT",
        "ticket type id",
    )
    .await;
    let rule = "mutation($input: SetEarlySigningRuleInput!) { setEarlySigningRule(input: $input) { conferenceId } }";
    f.refused(&a, rule, json!({ "input": { "conferenceId": f.conference, "signedBefore": day_from_today(30), "extraTickets": -1 } }), "BAD_USER_INPUT", "extraTickets").await;

    let retry = "mutation($s: ID!) { retryTicketAllocation(sponsorId: $s) { id } }";
    f.refused(
        &a,
        retry,
        json!({ "s": f.sponsor }),
        "INVALID_STATE",
        "NOT_DUE",
    )
    .await;
    f.refused(
        &a,
        retry,
        json!({ "s": uuid::Uuid::new_v4().to_string() }),
        "NOT_FOUND",
        "sponsor",
    )
    .await;
}

#[tokio::test]
async fn paging_and_cursors_out_of_range() {
    let f = fixture().await;
    let r = f.crm.reader();
    let body = f
        .crm
        .gql(
            Some(&r),
            "{ sponsors(first: 1000) { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = f
        .crm
        .gql(
            Some(&r),
            "{ sponsors(after: \"garbage\") { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = f
        .crm
        .gql(
            Some(&r),
            "{ sponsorEvents(after: \"garbage\") { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    let body = f
        .crm
        .gql(
            Some(&r),
            "query($id: ID!) { sponsor(id: $id) { id } }",
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}
