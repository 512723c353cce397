use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const EVENTS: &str = "subscription($after: String) {
  ticketEvents(after: $after) {
    __typename cursor occurredAt
    ... on TicketPurchaseCreated { purchase { id status purchaser { name } } }
  }
}";

const WAIT: Duration = Duration::from_secs(10);

async fn buy(app: &TestApp, ticket_type: &str, name: &str) -> String {
    let input = json!({
        "purchaser": { "name": name, "email": "someone@example.org" },
        "lines": [{ "ticketTypeId": ticket_type, "quantity": 1 }]
    });
    app.ok(None, BUY, json!({ "input": input })).await["createTicketPurchase"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn event(payload: &Value) -> &Value {
    &payload["data"]["ticketEvents"]
}

#[tokio::test]
async fn a_subscriber_that_reconnects_with_its_last_cursor_misses_nothing_and_sees_nothing_twice() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 1_000, 100, "PUBLIC")
        .await;
    let init =
        json!({ "Authorization": format!("Bearer {}", app.token("dashboard", &["events:read"])) });

    // Live from now: the two purchases made while connected.
    let mut first = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        init.clone(),
        EVENTS,
        json!({}),
    )
    .await
    .expect("subscribed");
    // Give the subscription a moment to be registered before the first commit.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = buy(&app, &standard, "A").await;
    let b = buy(&app, &standard, "B").await;
    let e1 = first.next_payload(WAIT).await.expect("first event");
    let e2 = first.next_payload(WAIT).await.expect("second event");
    assert_eq!(event(&e1)["purchase"]["id"], a);
    assert_eq!(event(&e2)["purchase"]["id"], b);
    let last_cursor = event(&e2)["cursor"].as_str().unwrap().to_owned();
    first.close().await;

    // Offline: three more purchases.
    let mut missed = Vec::new();
    for name in ["C", "D", "E"] {
        missed.push(buy(&app, &standard, name).await);
    }

    // Back with the last cursor: exactly the missed ones, in order, then live again.
    let mut second = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        init,
        EVENTS,
        json!({ "after": last_cursor }),
    )
    .await
    .expect("resubscribed");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let payload = second.next_payload(WAIT).await.expect("replayed event");
        assert_eq!(event(&payload)["__typename"], "TicketPurchaseCreated");
        seen.push(
            event(&payload)["purchase"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen, missed);
    let f = buy(&app, &standard, "F").await;
    let live = second.next_payload(WAIT).await.expect("live event");
    assert_eq!(event(&live)["purchase"]["id"], f);
    // Nothing else: no duplicate of anything already delivered.
    assert!(
        second
            .next_payload(Duration::from_millis(700))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_replay_longer_than_one_page_arrives_complete_and_in_order() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 1_000, 1_000, "PUBLIC")
        .await;
    for i in 0..30 {
        buy(&app, &standard, &format!("P{i}")).await;
    }
    let token = app.token("auditor", &["events:read"]);
    let mut sub = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        json!({ "Authorization": format!("Bearer {token}") }),
        EVENTS,
        json!({ "after": platform::Cursor::encode_position("ticket-event", 0) }),
    )
    .await
    .expect("subscribed");
    let mut types = Vec::new();
    let mut previous = String::new();
    for _ in 0..32 {
        let payload = sub.next_payload(WAIT).await.expect("event");
        let cursor = event(&payload)["cursor"].as_str().unwrap().to_owned();
        assert_ne!(cursor, previous);
        previous = cursor;
        types.push(event(&payload)["__typename"].as_str().unwrap().to_owned());
    }
    assert_eq!(types[0], "ConferenceCreated");
    assert_eq!(types[1], "TicketTypeCreated");
    assert!(types[2..].iter().all(|t| t == "TicketPurchaseCreated"));
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_and_header_tokens_work_too() {
    let app = TestApp::spawn().await;
    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 1_000, 10, "PUBLIC")
        .await;
    let token = app.token("old-client", &["events:read"]);
    let mut sub = WsSubscription::open(
        &app.ws_url(),
        "graphql-ws",
        json!({ "authToken": token }),
        EVENTS,
        json!({}),
    )
    .await
    .expect("subscribed over graphql-ws");
    assert!(sub.is_legacy());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = buy(&app, &standard, "Legacy").await;
    let payload = sub.next_payload(WAIT).await.expect("event");
    assert_eq!(event(&payload)["purchase"]["id"], id);
}

#[tokio::test]
async fn subscribing_needs_the_events_read_scope() {
    let app = TestApp::spawn().await;
    let token = app.token("shop", &["tickets:read"]);
    let mut sub = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        json!({ "Authorization": format!("Bearer {token}") }),
        EVENTS,
        json!({}),
    )
    .await
    .expect("connection accepted");
    let refusal = sub.next_payload(WAIT).await.expect("an error payload");
    assert_eq!(
        refusal["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refusal:#}"
    );
    assert!(refusal["data"].is_null());

    let refused = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        json!({ "Authorization": "Bearer not-a-token" }),
        EVENTS,
        json!({}),
    )
    .await;
    assert!(refused.is_err(), "a bad token must not be accepted");
}
