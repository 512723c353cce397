//! The findings of the authorization audit (issue 12), each reproduced as the attack that
//! worked and now shows the refusal, with nothing written: the event log, the stock and the
//! object attacked are checked after every refused call.

use serde_json::{Value, json};
use ticketing::domain::{Access, ClientKey, DomainError};
use ticketing::store::StoreError;

use crate::support::*;

const READ_PURCHASE: &str = "query($id: ID!, $token: String) {
  ticketPurchase(id: $id, accessToken: $token) { id status purchaser { name email } tickets { id attendee { name } } }
}";
const CANCEL: &str = "mutation($id: ID!, $token: String) {
  cancelTicketPurchase(id: $id, accessToken: $token) { id status }
}";
const ASSIGN: &str = "mutation($t: ID!, $token: String, $a: PersonInput!) {
  assignTicket(ticketId: $t, accessToken: $token, attendee: $a) { id attendee { name } }
}";
const CONFIRM: &str = "mutation($id: ID!) { confirmTicketPurchasePayment(id: $id) { id status } }";

fn mallory() -> Value {
    json!({ "name": "Mallory", "email": "mallory@example.org" })
}

struct Shop {
    app: TestApp,
    conference: String,
    standard: String,
}

async fn shop() -> Shop {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 10_000, 100, "PUBLIC")
        .await;
    Shop {
        app,
        conference,
        standard,
    }
}

/// What a refused call must leave untouched.
#[derive(Debug, PartialEq)]
struct State {
    events: usize,
    stock: Value,
    purchase: Option<Value>,
}

impl Shop {
    async fn buy(&self, token: Option<&str>) -> Value {
        self.app
            .ok(
                token,
                BUY,
                json!({ "input": purchase_input(&self.standard, 1) }),
            )
            .await["createTicketPurchase"]
            .clone()
    }

    async fn state(&self, purchase: Option<&str>) -> State {
        let purchase = match purchase {
            Some(id) => Some(
                self.app
                    .ok(Some(&self.app.admin()), READ_PURCHASE, json!({ "id": id }))
                    .await["ticketPurchase"]
                    .clone(),
            ),
            None => None,
        };
        State {
            events: self.app.event_types().await.len(),
            stock: self.app.ticket_type(&self.standard).await,
            purchase,
        }
    }

    /// Sends a request that must be refused with `code` and change nothing about `purchase`.
    async fn refused(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        code: &str,
        purchase: Option<&str>,
    ) -> Value {
        let before = self.state(purchase).await;
        let body = self.app.gql(token, query, variables).await;
        assert_eq!(error_code(&body), code, "{body:#}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "a refusal says why: {body:#}"
        );
        assert_eq!(
            self.state(purchase).await,
            before,
            "a refused call wrote: {body:#}"
        );
        body
    }
}

/// Finding 1: a token holding only `tickets:read` cancelled another client's unpaid purchase
/// and renamed the attendee of another client's ticket. Reading is not owning.
#[tokio::test]
async fn a_read_only_token_changes_nothing_it_does_not_own() {
    let s = shop().await;
    let owner = s.app.token("web-shop", &[]);
    let bought = s.buy(Some(&owner)).await;
    let id = bought["id"].as_str().unwrap().to_owned();
    let ticket = bought["tickets"][0]["id"].as_str().unwrap().to_owned();

    let reader = s.app.token("support-desk", &["tickets:read"]);
    // It may read the purchase: so it is told FORBIDDEN rather than NOT_FOUND.
    s.app
        .ok(Some(&reader), READ_PURCHASE, json!({ "id": id }))
        .await;
    let cancel = s
        .refused(
            Some(&reader),
            CANCEL,
            json!({ "id": id }),
            "FORBIDDEN",
            Some(&id),
        )
        .await;
    assert!(
        cancel["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("tickets:admin"),
        "{cancel:#}"
    );
    s.refused(
        Some(&reader),
        ASSIGN,
        json!({ "t": ticket, "a": mallory() }),
        "FORBIDDEN",
        Some(&id),
    )
    .await;

    // Other tokens that may not read it learn nothing, not even that it exists.
    for scopes in [
        vec!["events:read"],
        vec!["tickets:issue-complimentary"],
        vec![],
    ] {
        let other = s.app.token("someone-else", &scopes);
        s.refused(
            Some(&other),
            CANCEL,
            json!({ "id": id }),
            "NOT_FOUND",
            Some(&id),
        )
        .await;
        s.refused(
            Some(&other),
            ASSIGN,
            json!({ "t": ticket, "a": mallory() }),
            "NOT_FOUND",
            Some(&id),
        )
        .await;
    }

    // The reader is an owner of what it buys itself, and may cancel that while unpaid.
    let own = s.buy(Some(&reader)).await;
    let cancelled = s
        .app
        .ok(Some(&reader), CANCEL, json!({ "id": own["id"] }))
        .await;
    assert_eq!(cancelled["cancelTicketPurchase"]["status"], "CANCELLED");
    // And the owner of the first purchase still may.
    let assigned = s
        .app
        .ok(
            Some(&owner),
            ASSIGN,
            json!({ "t": ticket, "a": { "name": "Grace Hopper", "email": "grace@example.org" } }),
        )
        .await;
    assert_eq!(assigned["assignTicket"]["attendee"]["name"], "Grace Hopper");
}

/// Finding 2: an anonymous buyer who sent another buyer's `externalReference` was told the
/// other purchase's id, and with that id alone read the purchaser's name and e-mail and
/// cancelled the purchase. Now a purchase without a token has a real credential, the
/// access token, and the id alone opens nothing.
#[tokio::test]
async fn an_anonymous_purchase_opens_only_with_its_access_token() {
    let s = shop().await;

    // The leak's entry point: anonymous buyers may not set a reference at all.
    let mut with_reference = purchase_input(&s.standard, 1);
    with_reference["externalReference"] = json!("order-1");
    let body = s
        .refused(
            None,
            BUY,
            json!({ "input": with_reference }),
            "BAD_USER_INPUT",
            None,
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("externalReference")
    );

    let alice = s.buy(None).await;
    let id = alice["id"].as_str().unwrap().to_owned();
    let ticket = alice["tickets"][0]["id"].as_str().unwrap().to_owned();
    let alice_token = alice["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned();
    assert!(alice_token.len() >= 64, "unguessable: {alice_token}");
    let mallory_token = s.buy(None).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // The id alone: no credential at all.
    for (query, variables) in [
        (READ_PURCHASE, json!({ "id": id })),
        (CANCEL, json!({ "id": id })),
        (ASSIGN, json!({ "t": ticket, "a": mallory() })),
        (
            "query($id: ID!) { ticket(id: $id) { id attendee { name } } }",
            json!({ "id": ticket }),
        ),
    ] {
        s.refused(None, query, variables, "UNAUTHENTICATED", Some(&id))
            .await;
    }
    // The id with another purchase's token: as if it did not exist.
    for (query, variables) in [
        (READ_PURCHASE, json!({ "id": id, "token": mallory_token })),
        (CANCEL, json!({ "id": id, "token": mallory_token })),
        (
            ASSIGN,
            json!({ "t": ticket, "token": mallory_token, "a": mallory() }),
        ),
        (
            "query($id: ID!, $token: String) { ticket(id: $id, accessToken: $token) { id } }",
            json!({ "id": ticket, "token": mallory_token }),
        ),
    ] {
        let body = s
            .refused(None, query, variables, "NOT_FOUND", Some(&id))
            .await;
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .ends_with("does not exist"),
            "{body:#}"
        );
    }
    // A forged token (Alice's id with a made-up signature) is no token.
    let (signed, last) = alice_token.split_at(alice_token.len() - 1);
    let forged = format!("{signed}{}", if last == "A" { "B" } else { "A" });
    s.refused(
        None,
        CANCEL,
        json!({ "id": id, "token": forged }),
        "UNAUTHENTICATED",
        Some(&id),
    )
    .await;
    // Nor does a bearer token without scopes open it.
    let client = s.app.token("curious-client", &[]);
    s.refused(
        Some(&client),
        READ_PURCHASE,
        json!({ "id": id }),
        "NOT_FOUND",
        Some(&id),
    )
    .await;
    s.refused(
        Some(&client),
        CANCEL,
        json!({ "id": id }),
        "NOT_FOUND",
        Some(&id),
    )
    .await;

    // Alice's token opens her purchase, with her details; the token is never shown again.
    let read = s
        .app
        .ok(
            None,
            "query($id: ID!, $token: String) { ticketPurchase(id: $id, accessToken: $token) { purchaser { email } accessToken } }",
            json!({ "id": id, "token": alice_token }),
        )
        .await;
    assert_eq!(
        read["ticketPurchase"]["purchaser"]["email"],
        "ada@example.org"
    );
    assert!(read["ticketPurchase"]["accessToken"].is_null());

    // It survives a restart: nothing is stored, the token is derived from the id.
    let database_url = s.app.database_url.clone();
    let dir = s.app.stop().await;
    let restarted = TestApp::spawn_on(&database_url).await;
    let cancelled = restarted
        .ok(None, CANCEL, json!({ "id": id, "token": alice_token }))
        .await;
    assert_eq!(cancelled["cancelTicketPurchase"]["status"], "CANCELLED");
    drop(dir);
}

/// Finding 2, idempotency: anonymous buyers share one key space. Another buyer's request
/// under the same key is simply a new purchase: neither an error that confirms the key is
/// taken nor the first buyer's purchase.
#[tokio::test]
async fn anonymous_idempotency_keys_neither_collide_nor_reveal() {
    let s = shop().await;
    let key = "checkout-7f3a";
    let first = s
        .app
        .ok(
            None,
            BUY,
            json!({ "input": purchase_input(&s.standard, 1), "key": key }),
        )
        .await["createTicketPurchase"]
        .clone();
    // The same buyer retrying gets the same purchase and the same access token.
    let retry = s
        .app
        .ok(
            None,
            BUY,
            json!({ "input": purchase_input(&s.standard, 1), "key": key }),
        )
        .await["createTicketPurchase"]
        .clone();
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(retry["accessToken"], first["accessToken"]);

    // Another buyer, another request, the same key.
    let mut other = purchase_input(&s.standard, 2);
    other["purchaser"] = json!({ "name": "Mallory", "email": "mallory@example.org" });
    let body = s
        .app
        .gql(None, BUY, json!({ "input": other, "key": key }))
        .await;
    assert!(body.get("errors").is_none(), "{body:#}");
    let second = &body["data"]["createTicketPurchase"];
    assert_ne!(second["id"], first["id"]);
    assert_ne!(second["accessToken"], first["accessToken"]);
    assert!(!body.to_string().contains(first["id"].as_str().unwrap()));
    assert_eq!(s.app.ticket_type(&s.standard).await["sold"], 3);
}

/// Finding 3: the API checked "not paid" and then the store cancelled whatever was pending
/// or paid, so a payment confirmed in between was cancelled anyway. The rule is now part of
/// the update: the store itself refuses to cancel a paid purchase for its buyer.
#[tokio::test]
async fn a_paid_purchase_is_never_cancelled_by_its_buyer() {
    let s = shop().await;
    let owner = s.app.token("web-shop", &[]);
    let admin = s.app.admin();
    let id = s.buy(Some(&owner)).await["id"].as_str().unwrap().to_owned();
    s.app.ok(Some(&admin), CONFIRM, json!({ "id": id })).await;
    s.refused(
        Some(&owner),
        CANCEL,
        json!({ "id": id }),
        "FORBIDDEN",
        Some(&id),
    )
    .await;

    // The store, asked directly as the API would for the owner: the statement refuses.
    let store = ticketing::store::connect(&s.app.database_url, 2, platform::CommitSignal::new())
        .await
        .expect("store");
    let refused = store
        .cancel_purchase(
            id.parse().unwrap(),
            Access::OwnedBy(ClientKey::for_subject(Some("web-shop"))),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::Domain(DomainError::Forbidden(_)))),
        "{refused:?}"
    );
    let state = s.state(Some(&id)).await;
    assert_eq!(state.purchase.unwrap()["status"], "PAID");
}

/// Finding 3, the race itself: payments and buyers' cancellations of the same purchases at
/// once. Whichever comes first wins; a paid purchase is never cancelled by its buyer, a
/// cancelled one never paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payment_and_cancellation_racing_never_both_win() {
    let s = shop().await;
    let admin = s.app.admin();
    let owner = s.app.token("web-shop", &[]);
    let mut purchases = Vec::new();
    for i in 0..30 {
        // Half by a client with a token, half anonymous with an access token.
        let anonymous = i % 2 == 0;
        let bought = s.buy((!anonymous).then_some(owner.as_str())).await;
        purchases.push((
            bought["id"].as_str().unwrap().to_owned(),
            bought["accessToken"].as_str().map(str::to_owned),
        ));
    }
    let races = purchases.iter().map(|(id, token)| {
        let (app, admin, owner) = (&s.app, &admin, &owner);
        async move {
            let pay = app.gql(Some(admin), CONFIRM, json!({ "id": id }));
            let cancel = async {
                match token {
                    Some(token) => {
                        app.gql(None, CANCEL, json!({ "id": id, "token": token }))
                            .await
                    }
                    None => app.gql(Some(owner), CANCEL, json!({ "id": id })).await,
                }
            };
            let (paid, cancelled) = futures_util::future::join(pay, cancel).await;
            (id.clone(), paid, cancelled)
        }
    });
    for (id, paid, cancelled) in futures_util::future::join_all(races).await {
        let status = s.state(Some(&id)).await.purchase.unwrap()["status"].clone();
        match (paid.get("errors"), cancelled.get("errors")) {
            (None, Some(_)) => {
                assert_eq!(error_code(&cancelled), "FORBIDDEN", "{cancelled:#}");
                assert_eq!(status, "PAID");
            }
            (Some(_), None) => {
                assert_eq!(error_code(&paid), "INVALID_STATE", "{paid:#}");
                assert_eq!(status, "CANCELLED");
            }
            _ => panic!("both or neither won for {id}: {paid:#} {cancelled:#}"),
        }
    }
    // The log agrees: no purchase was both paid and cancelled.
    let log = s
        .app
        .ok(
            Some(&admin),
            "{ ticketEvents(first: 100) { edges { node { __typename ... on TicketPurchasePaid { purchase { id } } ... on TicketPurchaseCancelled { purchase { id } } } } } }",
            json!({}),
        )
        .await;
    let ids = |typename: &str| -> std::collections::HashSet<String> {
        log["ticketEvents"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["__typename"] == typename)
            .map(|e| e["node"]["purchase"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(ids("TicketPurchasePaid").is_disjoint(&ids("TicketPurchaseCancelled")));
    assert_eq!(
        ids("TicketPurchasePaid").len() + ids("TicketPurchaseCancelled").len(),
        purchases.len()
    );
}

/// An `events:read` dashboard sees purchases in the log, not who made them.
#[tokio::test]
async fn an_events_only_dashboard_sees_no_contact_details() {
    let s = shop().await;
    let bought = s.buy(None).await;
    let query = "{ ticketEvents(first: 100) { edges { node { ... on TicketPurchaseCreated { purchase { id purchaser { email } tickets { attendee { email } } } } } } } }";
    let dashboard = s.app.token("dashboard", &["events:read"]);
    let seen = s.app.ok(Some(&dashboard), query, json!({})).await;
    let purchase = seen["ticketEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["purchase"])
        .find(|p| p["id"] == bought["id"])
        .expect("the purchase event")
        .clone();
    assert!(purchase["purchaser"].is_null(), "{purchase:#}");
    // With tickets:read as well, it does.
    let support = s.app.token("support", &["events:read", "tickets:read"]);
    let seen = s.app.ok(Some(&support), query, json!({})).await;
    assert!(seen.to_string().contains("ada@example.org"));
}

/// Finding 4: currencies that are not currencies, conferences in 1900, sale windows in the
/// past, e-mail addresses with markup and invisible characters.
#[tokio::test]
async fn implausible_data_is_refused() {
    let s = shop().await;
    let admin = s.app.admin();
    let conference = |currency: &str, starts: &str, ends: &str| json!({ "input": { "name": "Conf", "currency": currency, "startsOn": starts, "endsOn": ends } });
    let create_conference =
        "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }";
    for currency in ["ZZZ", "XYZ", "XXX", "XTS", "XAU", "eur"] {
        s.refused(
            Some(&admin),
            create_conference,
            conference(currency, "2027-05-01", "2027-05-02"),
            "BAD_USER_INPUT",
            None,
        )
        .await;
    }
    for (starts, ends) in [
        ("1900-01-01", "1900-01-02"),
        ("2045-01-01", "2045-01-02"),
        ("2027-05-01", "2028-05-01"),
    ] {
        s.refused(
            Some(&admin),
            create_conference,
            conference("EUR", starts, ends),
            "BAD_USER_INPUT",
            None,
        )
        .await;
    }
    s.app
        .ok(
            Some(&admin),
            create_conference,
            conference("JPY", "2027-05-01", "2027-05-02"),
        )
        .await;

    let create_type =
        "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }";
    let ticket_type = |currency: &str, starts: Option<String>, ends: Option<String>| {
        json!({ "input": {
            "conferenceId": s.conference, "name": "T",
            "price": { "amount": 100, "currency": currency }, "capacity": 5,
            "saleStartsAt": starts, "saleEndsAt": ends
        } })
    };
    s.refused(
        Some(&admin),
        create_type,
        ticket_type("XYZ", None, None),
        "BAD_USER_INPUT",
        None,
    )
    .await;
    let days = |n: i64| Some((chrono::Utc::now() + chrono::Duration::days(n)).to_rfc3339());
    let body = s
        .refused(
            Some(&admin),
            create_type,
            ticket_type("EUR", days(-30), days(-1)),
            "BAD_USER_INPUT",
            None,
        )
        .await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("saleEndsAt")
    );
    s.refused(
        Some(&admin),
        create_type,
        ticket_type("EUR", days(3), days(2)),
        "BAD_USER_INPUT",
        None,
    )
    .await;
    s.refused(
        Some(&admin),
        "mutation($id: ID!, $end: DateTime) { updateTicketType(id: $id, input: { saleEndsAt: $end }) { id } }",
        json!({ "id": s.standard, "end": days(-1) }),
        "BAD_USER_INPUT",
        None,
    )
    .await;

    let with_purchaser = |name: &str, email: &str| {
        let mut input = purchase_input(&s.standard, 1);
        input["purchaser"] = json!({ "name": name, "email": email });
        json!({ "input": input })
    };
    for email in [
        "<script>alert(1)</script>@example.org",
        "\"<script>\"@example.org",
        "ada\u{202E}gro.elpmaxe@example.org",
        "ada@exam\u{200B}ple.org",
        "\u{FEFF}ada@example.org",
        "ada@example.org\u{2066}",
        "Ada <ada@example.org>",
    ] {
        let body = s
            .refused(
                None,
                BUY,
                with_purchaser("Ada", email),
                "BAD_USER_INPUT",
                None,
            )
            .await;
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("purchaser.email")
        );
    }
    for name in ["Ada\u{202E}ecalevoL", "Ada\u{200D}", "Ada\u{2060}Lovelace"] {
        s.refused(
            None,
            BUY,
            with_purchaser(name, "ada@example.org"),
            "BAD_USER_INPUT",
            None,
        )
        .await;
    }
    let id = s.buy(Some(&admin)).await["tickets"][0]["id"].clone();
    s.refused(
        Some(&admin),
        ASSIGN,
        json!({ "t": id, "a": { "name": "Grace", "email": "grace\u{200B}@example.org" } }),
        "BAD_USER_INPUT",
        None,
    )
    .await;
}

/// Finding 4, numbers: a total over 2^31 - 1 went out as a GraphQL `Int`, and `Int`
/// arguments over 2^31 - 1 that the spec (and the gateway) refuse were accepted.
#[tokio::test]
async fn amounts_are_minor_units_and_every_other_int_is_32_bits() {
    let s = shop().await;
    let admin = s.app.admin();
    let dear = s
        .app
        .create_ticket_type(&s.conference, "Patron", 1_000_000_000, 10, "PUBLIC")
        .await;
    let bought = s
        .app
        .ok(None, BUY, json!({ "input": purchase_input(&dear, 3) }))
        .await;
    assert_eq!(
        bought["createTicketPurchase"]["total"]["amount"],
        json!(3_000_000_000_i64),
        "sent exactly, as MinorUnits"
    );
    let money = s
        .app
        .ok(
            None,
            "{ __type(name: \"Money\") { fields { name type { ofType { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        money["__type"]["fields"][0]["type"]["ofType"]["name"],
        "MinorUnits"
    );

    let create_type =
        "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }";
    let with = |amount: Value, capacity: Value| {
        json!({ "input": {
            "conferenceId": s.conference, "name": "T",
            "price": { "amount": amount, "currency": "EUR" }, "capacity": capacity
        } })
    };
    for (amount, capacity, says) in [
        (json!(100), json!(3_000_000_000_i64), "Int"),
        (json!(100), json!(2_147_483_648_i64), "Int"),
        (json!(19.99), json!(5), "whole number"),
        (json!(9_007_199_254_740_992_i64), json!(5), "2^53"),
        (json!(-9_007_199_254_740_992_i64), json!(5), "2^53"),
        (json!(1e300), json!(5), "2^53"),
        (json!("100"), json!(5), "MinorUnits"),
    ] {
        let body = s
            .refused(
                Some(&admin),
                create_type,
                with(amount, capacity),
                "BAD_USER_INPUT",
                None,
            )
            .await;
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(says),
            "{message:?} should mention {says:?}"
        );
    }
    // Written into the query rather than sent as variables: the same.
    s.refused(
        Some(&admin),
        "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"T\", price: { amount: 100, currency: \"EUR\" }, capacity: 3000000000 }) { id } }",
        json!({ "c": s.conference }),
        "BAD_USER_INPUT",
        None,
    )
    .await;
    s.refused(
        Some(&admin),
        "mutation($id: ID!, $c: Int) { updateTicketType(id: $id, input: { capacity: $c }) { id } }",
        json!({ "id": s.standard, "c": 3_000_000_000_i64 }),
        "BAD_USER_INPUT",
        None,
    )
    .await;
    s.refused(
        None,
        BUY,
        json!({ "input": purchase_input(&s.standard, 3_000_000_000) }),
        "BAD_USER_INPUT",
        None,
    )
    .await;
    s.refused(
        Some(&admin),
        "query($n: Int) { conferences(first: $n) { edges { cursor } } }",
        json!({ "n": 3_000_000_000_i64 }),
        "BAD_USER_INPUT",
        None,
    )
    .await;
    // A whole number written as 1999.0 is a whole number.
    s.app
        .ok(Some(&admin), create_type, with(json!(1999.0), json!(5)))
        .await;
}
