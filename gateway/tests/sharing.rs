//! Identical work in flight at the same moment is done once: subgraph requests (on by
//! default) and, when switched on, whole client queries. Different credentials never share.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Options, Stack, start_with};

const QUERY: &str = "{ topProducts(first: 3) { upc name inStock } }";

/// `clients` identical queries at once, each with `authorization`; all must succeed.
async fn concurrent_queries(stack: &Stack, authorizations: &[&str]) {
    let requests = authorizations.iter().map(|authorization| {
        stack
            .http
            .post(stack.url())
            .header("authorization", *authorization)
            .json(&json!({ "query": QUERY }))
            .send()
    });
    for response in futures_util::future::join_all(requests).await {
        let body: Value = response.expect("response").json().await.expect("json body");
        assert!(body.get("errors").is_none(), "{body}");
        assert_eq!(body["data"]["topProducts"][2]["inStock"], false, "{body}");
        assert_eq!(body["data"]["topProducts"][0]["inStock"], true, "{body}");
    }
}

fn slow_inventory(configure: fn(&mut gateway::Config)) -> Options {
    Options {
        // Long enough that every client's entity fetch is in flight at once.
        inventory_delay: Some(Duration::from_millis(400)),
        configure,
        ..Options::default()
    }
}

#[tokio::test]
async fn identical_subgraph_requests_in_flight_are_sent_once() {
    let stack = start_with(slow_inventory(|_| {})).await;
    concurrent_queries(&stack, &["Bearer a"; 10]).await;
    let sent = stack.inventory.entity_requests();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].authorization.as_deref(), Some("Bearer a"));
}

#[tokio::test]
async fn subgraph_requests_with_other_credentials_are_not_shared() {
    let stack = start_with(slow_inventory(|_| {})).await;
    concurrent_queries(&stack, &["Bearer a", "Bearer b", "Bearer a", "Bearer b"]).await;
    let mut seen: Vec<String> = stack
        .inventory
        .entity_requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect();
    seen.sort();
    assert_eq!(seen, ["Bearer a", "Bearer b"]);
}

#[tokio::test]
async fn subgraph_request_sharing_can_be_switched_off() {
    let stack = start_with(slow_inventory(|config| {
        config.dedupe_subgraph_requests = false;
    }))
    .await;
    concurrent_queries(&stack, &["Bearer a"; 5]).await;
    assert_eq!(stack.inventory.entity_requests().len(), 5);
}

#[tokio::test]
async fn identical_client_queries_in_flight_execute_once_when_switched_on() {
    let stack = start_with(slow_inventory(|config| {
        config.dedupe_client_requests = true;
        // Only the client-level sharing is under test here.
        config.dedupe_subgraph_requests = false;
    }))
    .await;
    concurrent_queries(&stack, &["Bearer a", "Bearer a", "Bearer a", "Bearer b"]).await;
    // One execution per distinct credential: one root fetch and one entity fetch each.
    assert_eq!(stack.products.requests().len(), 2);
    assert_eq!(stack.inventory.entity_requests().len(), 2);

    // Once answered, the same query runs again: sharing is not caching.
    concurrent_queries(&stack, &["Bearer a"]).await;
    assert_eq!(stack.inventory.entity_requests().len(), 3);
}

#[tokio::test]
async fn client_query_sharing_is_off_by_default() {
    let stack = start_with(slow_inventory(|config| {
        config.dedupe_subgraph_requests = false;
    }))
    .await;
    concurrent_queries(&stack, &["Bearer a"; 3]).await;
    assert_eq!(stack.products.requests().len(), 3);
}
