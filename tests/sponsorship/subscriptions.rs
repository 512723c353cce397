//! `sponsorEvents`: the same replay guarantee as ticketing's events.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const EVENTS: &str = "subscription($after: String) {
  sponsorEvents(after: $after) {
    __typename cursor
    ... on SponsorCreated { sponsor { id name } }
  }
}";

fn event(payload: &Value) -> &Value {
    &payload["data"]["sponsorEvents"]
}

#[tokio::test]
async fn a_subscriber_that_reconnects_with_its_last_cursor_misses_nothing_and_sees_nothing_twice() {
    let w = World::new(10).await;
    let crm = &w.crm;
    let init = json!({ "Authorization": format!("Bearer {}", crm.reader()) });

    let mut first = WsSubscription::open(
        &crm.ws_url(),
        "graphql-transport-ws",
        init.clone(),
        EVENTS,
        json!({}),
    )
    .await
    .expect("subscribed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = crm.create_sponsor("A", "Gold", None).await;
    let e1 = first.next_payload(WAIT).await.expect("live event");
    assert_eq!(event(&e1)["sponsor"]["id"], a.as_str());
    let cursor = event(&e1)["cursor"].as_str().expect("cursor").to_owned();
    first.close().await;

    let mut missed = Vec::new();
    for name in ["B", "C", "D"] {
        missed.push(crm.create_sponsor(name, "Bronze", None).await);
    }
    let mut second = WsSubscription::open(
        &crm.ws_url(),
        "graphql-ws",
        init,
        EVENTS,
        json!({ "after": cursor }),
    )
    .await
    .expect("resubscribed");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let payload = second.next_payload(WAIT).await.expect("replayed event");
        seen.push(
            event(&payload)["sponsor"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(seen, missed);
    let e = crm.create_sponsor("E", "Silver", None).await;
    let live = second.next_payload(WAIT).await.expect("live again");
    assert_eq!(event(&live)["sponsor"]["id"], e.as_str());
    assert!(
        second
            .next_payload(Duration::from_millis(700))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_event_log_pages_and_subscribing_needs_crm_read() {
    let w = World::new(10).await;
    let crm = &w.crm;
    crm.create_sponsor("A", "Gold", None).await;
    let page = crm
        .ok(Some(&crm.reader()), "{ sponsorEvents(first: 1) { pageInfo { hasNextPage endCursor } nodes { __typename } } }", json!({}))
        .await;
    assert_eq!(
        page["sponsorEvents"]["nodes"],
        json!([{ "__typename": "SponsorConferenceConfigured" }])
    );
    let cursor = page["sponsorEvents"]["pageInfo"]["endCursor"].clone();
    let rest = crm
        .ok(
            Some(&crm.reader()),
            "query($a: String) { sponsorEvents(after: $a) { nodes { __typename } } }",
            json!({ "a": cursor }),
        )
        .await;
    assert_eq!(
        rest["sponsorEvents"]["nodes"],
        json!([{ "__typename": "SponsorCreated" }])
    );

    let mut sub = WsSubscription::open(
        &crm.ws_url(),
        "graphql-transport-ws",
        json!({ "Authorization": format!("Bearer {}", token("shop", &["tickets:read"])) }),
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
}
