//! Every refusal: a clear message, an `extensions.code`, and nothing written (the event log
//! and the stock are checked to be unchanged after each).

use serde_json::{Value, json};

use crate::support::*;

struct Fixture {
    app: TestApp,
    conference: String,
    standard: String,
}

async fn fixture() -> Fixture {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 10_000, 5, "PUBLIC")
        .await;
    Fixture {
        app,
        conference,
        standard,
    }
}

impl Fixture {
    /// Runs a refused request and checks the code, the message and that nothing changed.
    async fn refused(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
        message_part: &str,
    ) {
        let events_before = self.app.event_types().await.len();
        let stock_before = self.app.ticket_type(&self.standard).await;
        let body = self.app.gql(token, query, variables).await;
        assert_eq!(error_code(&body), code, "{body:#}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(message_part),
            "message {message:?} should mention {message_part:?}"
        );
        assert_eq!(
            self.app.event_types().await.len(),
            events_before,
            "an event was written"
        );
        assert_eq!(
            self.app.ticket_type(&self.standard).await,
            stock_before,
            "stock changed"
        );
    }
}

fn line(ticket_type: &str, quantity: i64) -> Value {
    json!({
        "purchaser": { "name": "Ada", "email": "ada@example.org" },
        "lines": [{ "ticketTypeId": ticket_type, "quantity": quantity }]
    })
}

#[tokio::test]
async fn purchase_inputs_that_cannot_be_honoured() {
    let f = fixture().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    f.refused(
        None,
        BUY,
        json!({ "input": line(&unknown, 1) }),
        "NOT_FOUND",
        "does not exist",
    )
    .await;
    f.refused(
        None,
        BUY,
        json!({ "input": line("not-a-uuid", 1) }),
        "BAD_USER_INPUT",
        "not a valid",
    )
    .await;
    f.refused(
        None,
        BUY,
        json!({ "input": line(&f.standard, 0) }),
        "BAD_USER_INPUT",
        "quantity",
    )
    .await;
    f.refused(
        None,
        BUY,
        json!({ "input": line(&f.standard, -3) }),
        "BAD_USER_INPUT",
        "quantity",
    )
    .await;
    f.refused(
        None,
        BUY,
        json!({ "input": line(&f.standard, 6) }),
        "SOLD_OUT",
        "left",
    )
    .await;

    let mut bad_email = line(&f.standard, 1);
    bad_email["purchaser"]["email"] = json!("ada-at-example.org");
    f.refused(
        None,
        BUY,
        json!({ "input": bad_email }),
        "BAD_USER_INPUT",
        "e-mail",
    )
    .await;

    let mut long_name = line(&f.standard, 1);
    long_name["purchaser"]["name"] = json!("x".repeat(10_000));
    f.refused(
        None,
        BUY,
        json!({ "input": long_name }),
        "BAD_USER_INPUT",
        "at most",
    )
    .await;

    let mut no_lines = line(&f.standard, 1);
    no_lines["lines"] = json!([]);
    f.refused(
        None,
        BUY,
        json!({ "input": no_lines }),
        "BAD_USER_INPUT",
        "at least one line",
    )
    .await;

    let mut long_reference = line(&f.standard, 1);
    long_reference["externalReference"] = json!("r".repeat(500));
    f.refused(
        None,
        BUY,
        json!({ "input": long_reference }),
        "BAD_USER_INPUT",
        "externalReference",
    )
    .await;

    let long_key = "k".repeat(300);
    f.refused(
        None,
        BUY,
        json!({ "input": line(&f.standard, 1), "key": long_key }),
        "BAD_USER_INPUT",
        "idempotencyKey",
    )
    .await;
}

#[tokio::test]
async fn purchases_mixing_currencies_or_outside_the_sale_window_are_refused() {
    let f = fixture().await;
    let admin = f.app.admin();
    // A ticket type priced in another currency than its conference's.
    f.refused(
        Some(&admin),
        "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"USD\", price: { amount: 100, currency: \"USD\" }, capacity: 5 }) { id } }",
        json!({ "c": f.conference }),
        "BAD_USER_INPUT",
        "currency",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"Bad\", price: { amount: 100, currency: \"euro\" }, capacity: 5 }) { id } }",
        json!({ "c": f.conference }),
        "BAD_USER_INPUT",
        "ISO 4217",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation($id: ID!) { updateTicketType(id: $id, input: { price: { amount: 100, currency: \"GBP\" } }) { id } }",
        json!({ "id": f.standard }),
        "BAD_USER_INPUT",
        "currency",
    )
    .await;

    // Sales open tomorrow.
    let closed = f
        .app
        .ok(
            Some(&admin),
            "mutation($c: ID!, $start: DateTime!) { createTicketType(input: { conferenceId: $c, name: \"Later\", price: { amount: 100, currency: \"EUR\" }, capacity: 5, saleStartsAt: $start }) { id } }",
            json!({ "c": f.conference, "start": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339() }),
        )
        .await["createTicketType"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    f.refused(
        None,
        BUY,
        json!({ "input": line(&closed, 1) }),
        "SALE_CLOSED",
        "not on sale",
    )
    .await;
}

#[tokio::test]
async fn admin_inputs_that_make_no_sense() {
    let f = fixture().await;
    let admin = f.app.admin();
    // Capacity below what is already sold.
    f.app
        .ok(None, BUY, json!({ "input": line(&f.standard, 3) }))
        .await;
    f.refused(
        Some(&admin),
        "mutation($id: ID!) { updateTicketType(id: $id, input: { capacity: 2 }) { id } }",
        json!({ "id": f.standard }),
        "BAD_USER_INPUT",
        "already sold",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation($id: ID!) { updateTicketType(id: $id, input: { capacity: 10 }) { id } }",
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
        "NOT_FOUND",
        "does not exist",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation { createConference(input: { name: \"Backwards\", currency: \"EUR\", startsOn: \"2027-05-03\", endsOn: \"2027-05-01\" }) { id } }",
        json!({}),
        "BAD_USER_INPUT",
        "endsOn",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"Neg\", price: { amount: -1, currency: \"EUR\" }, capacity: 5 }) { id } }",
        json!({ "c": f.conference }),
        "BAD_USER_INPUT",
        "amount",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"Neg\", price: { amount: 1, currency: \"EUR\" }, capacity: -5 }) { id } }",
        json!({ "c": f.conference }),
        "BAD_USER_INPUT",
        "capacity",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation { confirmTicketPurchasePayment(id: \"0190c3a0-0000-7000-8000-000000000000\") { id } }",
        json!({}),
        "NOT_FOUND",
        "does not exist",
    )
    .await;
    f.refused(
        Some(&admin),
        "mutation { assignTicket(ticketId: \"0190c3a0-0000-7000-8000-000000000000\", attendee: { name: \"A\", email: \"a@example.org\" }) { id } }",
        json!({}),
        "NOT_FOUND",
        "does not exist",
    )
    .await;
    f.refused(
        None,
        "{ ticketEvents(first: 5) { edges { cursor } } }",
        json!({}),
        "UNAUTHENTICATED",
        "events:read",
    )
    .await;
    f.refused(
        Some(&admin),
        "{ ticketEvents(after: \"bogus\") { edges { cursor } } }",
        json!({}),
        "BAD_USER_INPUT",
        "cursor",
    )
    .await;
}
