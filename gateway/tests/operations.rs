//! What operators and load balancers poll: `/ready` and `/metrics`, on a real gateway.

mod support;

use std::time::Duration;

use gateway::Config;
use serde_json::{Value, json};
use support::streaming::start_subgraphs;

/// The value of the series whose line starts with `series ` (name and labels exactly).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

async fn metrics(http: &reqwest::Client, gateway: std::net::SocketAddr) -> String {
    let response = http
        .get(format!("http://{gateway}/metrics"))
        .send()
        .await
        .expect("metrics request");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("metrics body")
}

#[tokio::test]
async fn ready_when_serving() {
    let stack = support::start().await;
    let response = stack
        .http
        .get(format!("http://{}/ready", stack.gateway))
        .send()
        .await
        .expect("ready request");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body, json!({ "status": "ready" }));
}

#[tokio::test]
async fn metrics_count_requests_and_subgraph_fetches() {
    let stack = support::start().await;
    let ok = r#"gateway_requests_total{outcome="ok"}"#;
    let rejected = r#"gateway_requests_total{outcome="rejected"}"#;
    let products = r#"gateway_subgraph_fetches_total{subgraph="products",outcome="ok"}"#;
    let inventory = r#"gateway_subgraph_fetches_total{subgraph="inventory",outcome="ok"}"#;
    let before = metrics(&stack.http, stack.gateway).await;
    assert_eq!(sample(&before, ok), 0.0);
    assert_eq!(sample(&before, products), 0.0);

    let body = stack
        .query("{ topProducts(first: 3) { upc name inStock } }")
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, body) = stack.post("{ nope }", Value::Null).await;
    assert!(body.get("errors").is_some(), "{body}");

    let after = metrics(&stack.http, stack.gateway).await;
    assert_eq!(sample(&after, ok), 1.0);
    assert_eq!(sample(&after, rejected), 1.0);
    // A root fetch to products, an entity fetch to inventory.
    assert_eq!(sample(&after, products), 1.0);
    assert_eq!(sample(&after, inventory), 1.0);
    assert_eq!(
        sample(&after, "gateway_request_duration_seconds_count"),
        2.0
    );
    assert_eq!(
        sample(
            &after,
            r#"gateway_subgraph_fetch_duration_seconds_count{subgraph="products"}"#
        ),
        1.0
    );
    assert_eq!(sample(&after, "gateway_subscriptions_active"), 0.0);
}

#[tokio::test]
async fn metrics_show_failed_fetches_and_partial_answers() {
    let stack = support::start_with(support::Options {
        accounts_url: Some(support::dead_url().await),
        ..support::Options::default()
    })
    .await;
    let body = stack
        .query("{ topProducts(first: 1) { name } me { name } }")
        .await;
    assert!(body.get("errors").is_some(), "{body}");
    let text = metrics(&stack.http, stack.gateway).await;
    assert_eq!(
        sample(&text, r#"gateway_requests_total{outcome="errors"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"gateway_subgraph_fetches_total{subgraph="accounts",outcome="failed"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"gateway_subgraph_fetches_total{subgraph="products",outcome="ok"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn metrics_show_active_subscriptions() {
    let subgraphs = start_subgraphs().await;
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("tickets".into(), subgraphs.tickets_server.url.clone()),
        ("crm".into(), subgraphs.crm.url.clone()),
    ];
    let gateway = support::spawn_gateway(config).await;
    let http = reqwest::Client::new();

    let subscription = http
        .post(format!("http://{gateway}/graphql"))
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "subscription { purchaseMade { seq } }" }))
        .send()
        .await
        .expect("SSE request");
    assert_eq!(subscription.status().as_u16(), 200);
    let active = |text: &str| sample(text, "gateway_subscriptions_active");
    assert_eq!(active(&metrics(&http, gateway).await), 1.0);
    // A stream is a subscription, not a request.
    let text = metrics(&http, gateway).await;
    assert_eq!(sample(&text, "gateway_request_duration_seconds_count"), 0.0);

    // The client going away ends the subscription.
    drop(subscription);
    for _ in 0..500 {
        if active(&metrics(&http, gateway).await) == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(active(&metrics(&http, gateway).await), 0.0);
}
