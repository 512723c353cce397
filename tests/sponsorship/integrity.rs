//! Data the CRM must not believe (issue 12): sponsors and invoices for conferences it does not
//! serve, invoices in another currency than the conference's, codes that are not currencies,
//! dates nobody means, e-mail addresses and names that are not what they look like, and
//! numbers that do not fit their types. Each is refused with `BAD_USER_INPUT` (or `NOT_FOUND`,
//! or `TICKETING_UNAVAILABLE` when ticketing cannot be asked), a message that says what is
//! wrong, and nothing written: every table the CRM writes is counted before and after.

use serde_json::{Value, json};

use crate::support::*;

/// Sends `query` and checks the refusal: `code`, a message containing `says`, and the
/// database exactly as before. Returns the response.
async fn refused(
    crm: &CrmServer,
    token: &str,
    query: &str,
    variables: Value,
    code: &str,
    says: &str,
) -> Value {
    let before = footprint(&crm.database_url).await;
    let body = crm.gql(Some(token), query, variables.clone()).await;
    assert_eq!(error_code(&body), code, "{variables}: {body:#}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(says),
        "{variables}: message {message:?} should mention {says:?}"
    );
    assert_eq!(
        footprint(&crm.database_url).await,
        before,
        "{variables}: something was written"
    );
    body
}

const CREATE: &str =
    "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id contactEmail } }";
const ISSUE: &str = "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id amount { amount currency } dueOn } }";
const CONFIGURE: &str = "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId currency sponsorTicketTypeId } }";
const RULE: &str = "mutation($input: SetEarlySigningRuleInput!) { setEarlySigningRule(input: $input) { conferenceId } }";

fn sponsor_input(conference: Option<&str>, name: &str, contact: &str, email: &str) -> Value {
    json!({ "input": {
        "name": name, "level": "Gold", "conferenceId": conference,
        "contactName": contact, "contactEmail": email
    } })
}

fn invoice_input(sponsor: &str, amount: Value, currency: &str, due_on: &str) -> Value {
    json!({ "input": {
        "sponsorId": sponsor, "amount": { "amount": amount, "currency": currency }, "dueOn": due_on
    } })
}

/// Finding: the CRM registered any conference id it was given (a sponsor's `conferenceId`, an
/// early-signing rule) and took any ticket type as the sponsors'. Now a conference is served
/// only once an admin registers it and ticketing confirms it and its restricted ticket type.
#[tokio::test]
async fn sponsors_and_rules_only_for_conferences_the_crm_serves() {
    let w = World::new(10).await;
    let (crm, admin, writer) = (&w.crm, w.crm.admin(), w.crm.writer());
    let email = "grace@acme.example.org";
    let (unregistered, unregistered_type) = w.ticketing.conference_with_sponsor_tickets(10).await;
    for conference in [unregistered.clone(), uuid::Uuid::new_v4().to_string()] {
        refused(
            crm,
            &writer,
            CREATE,
            sponsor_input(Some(&conference), "Acme", "Grace", email),
            "BAD_USER_INPUT",
            "does not serve",
        )
        .await;
        refused(
            crm,
            &admin,
            RULE,
            json!({ "input": { "conferenceId": conference, "signedBefore": day_from_today(30), "extraTickets": 1 } }),
            "BAD_USER_INPUT",
            "does not serve",
        )
        .await;
    }

    // Registering asks ticketing: the conference must exist there, the ticket type must be
    // one of its restricted ones.
    refused(
        crm,
        &admin,
        CONFIGURE,
        json!({ "input": { "conferenceId": uuid::Uuid::new_v4().to_string(), "ticketTypeId": unregistered_type } }),
        "NOT_FOUND",
        "ticketing has no conference",
    )
    .await;
    refused(
        crm,
        &admin,
        CONFIGURE,
        json!({ "input": { "conferenceId": unregistered, "ticketTypeId": w.ticket_type } }),
        "BAD_USER_INPUT",
        "is not a ticket type of conference",
    )
    .await;
    refused(
        crm,
        &admin,
        CONFIGURE,
        json!({ "input": { "conferenceId": unregistered, "ticketTypeId": uuid::Uuid::new_v4().to_string() } }),
        "BAD_USER_INPUT",
        "is not a ticket type of conference",
    )
    .await;
    let public = w
        .ticketing
        .ticket_type(&unregistered, "EUR", 10, "PUBLIC")
        .await;
    refused(
        crm,
        &admin,
        CONFIGURE,
        json!({ "input": { "conferenceId": unregistered, "ticketTypeId": public } }),
        "BAD_USER_INPUT",
        "RESTRICTED",
    )
    .await;

    // Registered properly, it is served, with the currency ticketing sells it in.
    let data = crm
        .ok(
            Some(&admin),
            CONFIGURE,
            json!({ "input": { "conferenceId": unregistered, "ticketTypeId": unregistered_type } }),
        )
        .await;
    assert_eq!(data["configureSponsorTickets"]["currency"], "EUR");
    crm.ok(
        Some(&writer),
        CREATE,
        sponsor_input(Some(&unregistered), "Acme", "Grace", email),
    )
    .await;

    // A CRM that cannot ask ticketing registers nothing.
    let alone = CrmServer::spawn(None).await;
    refused(
        &alone,
        &alone.admin(),
        CONFIGURE,
        json!({ "input": { "conferenceId": w.conference, "ticketTypeId": w.ticket_type } }),
        "TICKETING_UNAVAILABLE",
        "without a ticketing URL",
    )
    .await;
    refused(
        &alone,
        &alone.writer(),
        CREATE,
        sponsor_input(None, "Acme", "Grace", email),
        "BAD_USER_INPUT",
        "serves no conference",
    )
    .await;
}

/// Rows an earlier version of the CRM wrote: a conference it registered without asking
/// ticketing (no currency), with a sponsor. Not served until an admin registers it: no new
/// sponsor, no invoice; afterwards both work again.
#[tokio::test]
async fn a_conference_recorded_without_ticketing_is_not_served_until_registered() {
    let w = World::new(10).await;
    let crm = &w.crm;
    let (legacy, legacy_type) = w.ticketing.conference_with_sponsor_tickets(10).await;
    let sponsor = uuid::Uuid::new_v4().to_string();
    write_legacy_rows(&crm.database_url, &legacy, &sponsor).await;

    let conferences = crm
        .ok(
            Some(&crm.reader()),
            "{ sponsorConferences { conferenceId currency } }",
            json!({}),
        )
        .await;
    assert!(
        conferences["sponsorConferences"]
            .as_array()
            .expect("conferences")
            .contains(&json!({ "conferenceId": legacy, "currency": null })),
        "{conferences:#}"
    );
    refused(
        crm,
        &crm.writer(),
        ISSUE,
        invoice_input(&sponsor, json!(100_000), "EUR", &due_on()),
        "BAD_USER_INPUT",
        "does not serve",
    )
    .await;
    refused(
        crm,
        &crm.writer(),
        CREATE,
        sponsor_input(Some(&legacy), "Acme", "Grace", "grace@acme.example.org"),
        "BAD_USER_INPUT",
        "does not serve",
    )
    .await;

    crm.configure_sponsor_tickets(&legacy, &legacy_type).await;
    crm.issue_invoice(&sponsor, 100_000).await;
    crm.create_sponsor("Acme", "Gold", Some(&legacy)).await;
}

/// Writes a value as a SQL literal of one dialect.
type SqlLiteral = fn(&str) -> String;

/// What an earlier CRM left in its database: a conference row without a currency and a
/// sponsor of it, in either dialect's encoding of ids and times.
async fn write_legacy_rows(database_url: &str, conference: &str, sponsor: &str) {
    let now = "2026-01-01T00:00:00+00:00";
    let (id, time): (SqlLiteral, SqlLiteral) = if database_url.starts_with("sqlite:") {
        (
            |uuid| format!("X'{}'", uuid.replace('-', "")),
            |t| format!("'{t}'"),
        )
    } else {
        (
            |uuid| format!("'{uuid}'::uuid"),
            |t| format!("'{t}'::timestamptz"),
        )
    };
    let statements = [
        format!(
            "INSERT INTO sponsor_conferences (conference_id, updated_at) VALUES ({}, {})",
            id(conference),
            time(now)
        ),
        format!(
            "INSERT INTO sponsors (id, conference_id, company, contact_name, contact_email, level_name, contract_status, allocation_status, created_at, updated_at) \
             VALUES ({}, {}, 'Legacy Ltd', 'Ada', 'ada@legacy.example.org', 'Gold', 'DRAFT', 'NOT_DUE', {}, {})",
            id(sponsor),
            id(conference),
            time(now),
            time(now)
        ),
    ];
    if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url)
            .await
            .expect("open SQLite");
        for sql in &statements {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(database_url)
            .await
            .expect("open PostgreSQL");
        for sql in &statements {
            sqlx::query(sql).execute(&pool).await.expect(sql);
        }
        pool.close().await;
    }
}

/// Findings: invoices took any three capital letters (`XXX`, `XTS`, gold) and any currency,
/// whatever the conference sells in.
#[tokio::test]
async fn invoices_only_in_the_currency_of_the_conference() {
    let w = World::new(10).await;
    let (crm, writer, admin) = (&w.crm, w.crm.writer(), w.crm.admin());
    let euro_sponsor = crm.create_sponsor("Acme", "Gold", None).await;
    refused(
        crm,
        &writer,
        ISSUE,
        invoice_input(&euro_sponsor, json!(100_000), "USD", &due_on()),
        "BAD_USER_INPUT",
        "sells in EUR",
    )
    .await;

    let (swiss, swiss_type) = w.ticketing.conference_in("CHF", 10).await;
    crm.configure_sponsor_tickets(&swiss, &swiss_type).await;
    let swiss_sponsor = crm
        .create_sponsor("Helvetia AG", "Gold", Some(&swiss))
        .await;
    refused(
        crm,
        &writer,
        ISSUE,
        invoice_input(&swiss_sponsor, json!(100_000), "EUR", &due_on()),
        "BAD_USER_INPUT",
        "invoiced in CHF, not EUR",
    )
    .await;
    let data = crm
        .ok(
            Some(&writer),
            ISSUE,
            invoice_input(&swiss_sponsor, json!(100_000), "CHF", &due_on()),
        )
        .await;
    assert_eq!(data["issueInvoice"]["amount"]["currency"], "CHF");

    // ISO 4217 codes that are not money anybody pays with, and codes that are not ISO's.
    for (code, says) in [
        ("XXX", "not a currency"),
        ("XTS", "not a currency"),
        ("XAU", "not a currency"),
        ("XPT", "not a currency"),
        ("XDR", "not a currency"),
        ("XSU", "not a currency"),
        ("USN", "not a currency"),
        ("HRK", "replaced by EUR"),
        ("ABC", "not an ISO 4217 currency"),
        ("eur", "three capital letters"),
        ("EURO", "three capital letters"),
    ] {
        refused(
            crm,
            &writer,
            ISSUE,
            invoice_input(&euro_sponsor, json!(100_000), code, &due_on()),
            "BAD_USER_INPUT",
            says,
        )
        .await;
        refused(
            crm,
            &admin,
            "mutation($input: UpdateSponsorshipLevelInput!) { updateSponsorshipLevel(name: \"Gold\", input: $input) { name } }",
            json!({ "input": { "price": { "amount": 100, "currency": code } } }),
            "BAD_USER_INPUT",
            says,
        )
        .await;
    }
}

/// Finding: any `Date` was believed: a contract signed in year 1 earned every early-signing
/// bonus, an invoice due in 9999 is never overdue.
#[tokio::test]
async fn dates_outside_a_plausible_window_are_refused() {
    let w = World::new(10).await;
    let (crm, writer, admin) = (&w.crm, w.crm.writer(), w.crm.admin());
    let sponsor = crm.create_sponsor("Acme", "Gold", None).await;
    for due in [
        "0001-01-01".to_owned(),
        "1900-01-01".to_owned(),
        day_from_today(-400),
        day_from_today(6 * 366),
        "9999-12-31".to_owned(),
    ] {
        refused(
            crm,
            &writer,
            ISSUE,
            invoice_input(&sponsor, json!(100_000), "EUR", &due),
            "BAD_USER_INPUT",
            "dueOn",
        )
        .await;
    }
    for due in [day_from_today(-300), day_from_today(4 * 365)] {
        crm.ok(
            Some(&writer),
            ISSUE,
            invoice_input(&sponsor, json!(100_000), "EUR", &due),
        )
        .await;
    }

    let sign = "mutation($s: ID!, $on: Date) { signContract(sponsorId: $s, signedOn: $on) { id } }";
    crm.ok(
        Some(&writer),
        "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }",
        json!({ "s": sponsor }),
    )
    .await;
    for (on, says) in [
        ("0001-01-01".to_owned(), "not a plausible date"),
        (day_from_today(-6 * 366), "not a plausible date"),
        (day_from_today(1), "in the future"),
    ] {
        refused(
            crm,
            &writer,
            sign,
            json!({ "s": sponsor, "on": on }),
            "BAD_USER_INPUT",
            says,
        )
        .await;
    }
    crm.ok(
        Some(&writer),
        sign,
        json!({ "s": sponsor, "on": day_from_today(-700) }),
    )
    .await;

    for before in [
        "1970-01-01".to_owned(),
        day_from_today(6 * 366),
        "9999-01-01".to_owned(),
    ] {
        refused(
            crm,
            &admin,
            RULE,
            json!({ "input": { "conferenceId": w.conference, "signedBefore": before, "extraTickets": 1 } }),
            "BAD_USER_INPUT",
            "signedBefore",
        )
        .await;
    }
}

/// Findings: e-mail addresses were checked by a hand-written rule (display names, quoted
/// local parts and address literals got in), and names and addresses could carry
/// bidirectional overrides and zero-width characters that make them display as something
/// else.
#[tokio::test]
async fn contact_details_and_names_must_be_what_they_look_like() {
    let w = World::new(10).await;
    let (crm, writer) = (&w.crm, w.crm.writer());
    let conference = Some(w.conference.as_str());
    for email in [
        "grace",
        "grace@localhost",
        "Grace Hopper <grace@acme.example.org>",
        "\"grace\"@acme.example.org",
        "grace@[192.0.2.1]",
        "grace@acme..example.org",
        "grace@acme.example.org\u{202E}",
        "\u{202E}gro.elpmaxe.emca@ecarg",
        "gr\u{200B}ace@acme.example.org",
        "grace@acme.exa\u{FEFF}mple.org",
        "grace\u{2066}@acme.example.org",
    ] {
        refused(
            crm,
            &writer,
            CREATE,
            sponsor_input(conference, "Acme", "Grace", email),
            "BAD_USER_INPUT",
            "contactEmail",
        )
        .await;
    }
    let invisible = [
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{200B}', '\u{200C}', '\u{200D}',
        '\u{2060}', '\u{FEFF}', '\u{0007}', '\u{001B}',
    ];
    for c in invisible {
        let sly = format!("Ac{c}me");
        refused(
            crm,
            &writer,
            CREATE,
            sponsor_input(conference, &sly, "Grace", "grace@acme.example.org"),
            "BAD_USER_INPUT",
            "name must not contain",
        )
        .await;
        refused(
            crm,
            &writer,
            CREATE,
            sponsor_input(
                conference,
                "Acme",
                &format!("Gra{c}ce"),
                "grace@acme.example.org",
            ),
            "BAD_USER_INPUT",
            "contactName must not contain",
        )
        .await;
    }
    let sponsor = crm.create_sponsor("Acme", "Gold", conference).await;
    refused(
        crm,
        &writer,
        "mutation($s: ID!, $l: String!) { changeSponsorLevel(sponsorId: $s, level: $l) { id } }",
        json!({ "s": sponsor, "l": "Sil\u{200B}ver" }),
        "BAD_USER_INPUT",
        "level must not contain",
    )
    .await;
    // What people really write gets in.
    let data = crm
        .ok(
            Some(&writer),
            CREATE,
            sponsor_input(
                conference,
                "Société Générale",
                "José Ñúñez",
                "jose.nunez+sponsoring@societe.example.org",
            ),
        )
        .await;
    assert_eq!(
        data["createSponsor"]["contactEmail"],
        "jose.nunez+sponsoring@societe.example.org"
    );
}

/// Findings: money went out and came in as a 32-bit `Int` (amounts above 21,474,836.47 could
/// not be invoiced), and `Int` arguments took values beyond 32 bits. Money is now ticketing's
/// `MinorUnits`; every other `Int` is 32 bits, refused with `BAD_USER_INPUT` above.
#[tokio::test]
async fn money_is_minor_units_and_every_other_int_is_32_bits() {
    let w = World::new(10).await;
    let (crm, writer, admin) = (&w.crm, w.crm.writer(), w.crm.admin());
    let sponsor = crm.create_sponsor("Acme", "Gold", None).await;
    let types = crm
        .ok(
            None,
            "{ money: __type(name: \"Money\") { fields { name type { ofType { name } } } }
               input: __type(name: \"MoneyInput\") { inputFields { name type { ofType { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        types["money"]["fields"][0]["type"]["ofType"]["name"],
        "MinorUnits"
    );
    assert_eq!(
        types["input"]["inputFields"][0]["type"]["ofType"]["name"],
        "MinorUnits"
    );

    let max_exact = (1_i64 << 53) - 1;
    for (amount, says) in [
        (json!(19.99), "whole number"),
        (json!("100"), "MinorUnits"),
        (json!(max_exact + 1), "2^53"),
        (json!(-(max_exact + 1)), "2^53"),
        (json!(1e300), "2^53"),
        (json!(-5), "amount must be between"),
    ] {
        refused(
            crm,
            &writer,
            ISSUE,
            invoice_input(&sponsor, amount, "EUR", &due_on()),
            "BAD_USER_INPUT",
            says,
        )
        .await;
    }
    // The largest amount a JavaScript client keeps exact goes in and comes back exactly; a
    // whole number written as 1999.0 is a whole number.
    let data = crm
        .ok(
            Some(&writer),
            ISSUE,
            invoice_input(&sponsor, json!(max_exact), "EUR", &due_on()),
        )
        .await;
    assert_eq!(data["issueInvoice"]["amount"]["amount"], json!(max_exact));
    let data = crm
        .ok(
            Some(&writer),
            ISSUE,
            invoice_input(&sponsor, json!(1999.0), "EUR", &due_on()),
        )
        .await;
    assert_eq!(data["issueInvoice"]["amount"]["amount"], json!(1999));

    let too_big = json!(2_147_483_648_i64);
    let int_arguments = [
        (
            admin.clone(),
            "mutation($n: Int) { updateSponsorshipLevel(name: \"Gold\", input: { ticketAllowance: $n }) { name } }",
            json!({ "n": too_big }),
        ),
        (
            admin.clone(),
            "mutation($s: ID!, $n: Int) { setTicketAllowanceOverride(sponsorId: $s, tickets: $n) { id } }",
            json!({ "s": sponsor, "n": too_big }),
        ),
        (
            admin.clone(),
            "mutation($c: ID!, $n: Int!) { setEarlySigningRule(input: { conferenceId: $c, signedBefore: null, extraTickets: $n }) { conferenceId } }",
            json!({ "c": w.conference, "n": too_big }),
        ),
        (
            writer.clone(),
            "query($n: Int) { sponsors(first: $n) { nodes { id } } }",
            json!({ "n": too_big }),
        ),
        (
            writer.clone(),
            "query($n: Int) { sponsorEvents(first: $n) { nodes { __typename } } }",
            json!({ "n": 3_000_000_000_i64 }),
        ),
        // Written into the query rather than sent as variables: the same.
        (
            admin.clone(),
            "mutation($s: ID!) { setTicketAllowanceOverride(sponsorId: $s, tickets: 3000000000) { id } }",
            json!({ "s": sponsor }),
        ),
        (
            admin.clone(),
            "mutation { updateSponsorshipLevel(name: \"Gold\", input: { ticketAllowance: 2147483648 }) { name } }",
            json!({}),
        ),
    ];
    for (token, query, variables) in int_arguments {
        refused(crm, &token, query, variables, "BAD_USER_INPUT", "Int").await;
    }
}
