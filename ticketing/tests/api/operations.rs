//! What operators rely on: `/health`, `/ready` (database and bus reachable), `/metrics`,
//! and a graceful shutdown that ends subscriptions cleanly.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn health_and_readiness_report_the_database_and_the_bus() {
    let app = TestApp::spawn().await;
    let (status, body) = get(&app.http_url("/health")).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = get(&app.http_url("/ready")).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["bus"], "ok");
}

/// NATS unreachable: not ready, yet purchases go on; the outbox keeps the events.
#[tokio::test]
async fn with_the_bus_unreachable_the_service_is_not_ready_but_still_sells() {
    let (database_url, _dir) = fresh_database_url("ticketing").await;
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let bus = platform::jetstream::event_bus(
        Some(&format!("nats://127.0.0.1:{port}")),
        ticketing::events::SUBJECT_PREFIX,
    )
    .await
    .expect("connecting in the background is not an error");
    let app = TestApp::spawn_on_bus(&database_url, bus).await;
    let (status, body) = get(&app.http_url("/ready")).await;
    assert_eq!(status, 503, "{body}");
    let body: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["checks"]["database"], "ok");
    assert_ne!(body["checks"]["bus"], "ok");

    let conference = app.create_conference().await;
    let standard = app
        .create_ticket_type(&conference, "Standard", 1_000, 10, "PUBLIC")
        .await;
    app.ok(None, BUY, json!({ "input": purchase_input(&standard, 1) }))
        .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (_, metrics) = get(&app.http_url("/metrics")).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("outbox_lag_events{service=\"ticketing\"}")),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_count_requests_errors_and_latencies() {
    let app = TestApp::spawn().await;
    app.create_conference().await;
    let refused = app
        .gql(None, "{ ticketPurchase(id: \"nope\") { id } }", json!({}))
        .await;
    assert!(refused.get("errors").is_some());
    let (status, metrics) = get(&app.http_url("/metrics")).await;
    assert_eq!(status, 200);
    for expected in [
        "http_requests_total{service=\"ticketing\",path=\"/graphql\",method=\"POST\",status=\"200\"}",
        "http_request_duration_seconds_bucket{service=\"ticketing\",path=\"/graphql\",method=\"POST\"",
        "request_errors_total{service=\"ticketing\",kind=\"graphql\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
}

/// On SIGTERM (here: the shutdown future) open subscriptions end with `complete`, so a client
/// knows to resume elsewhere with its cursor, and the server stops.
#[tokio::test]
async fn graceful_shutdown_completes_open_subscriptions() {
    let app = TestApp::spawn().await;
    let init =
        json!({ "Authorization": format!("Bearer {}", app.token("dashboard", &["events:read"])) });
    let mut sub = WsSubscription::open(
        &app.ws_url(),
        "graphql-transport-ws",
        init,
        "subscription { ticketEvents { __typename } }",
        json!({}),
    )
    .await
    .expect("subscribed");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shutting_down = tokio::spawn(app.shut_down());
    let end = sub
        .next_payload(Duration::from_secs(10))
        .await
        .expect_err("the subscription ends");
    assert!(end.contains("\"complete\""), "{end}");
    tokio::time::timeout(Duration::from_secs(10), shutting_down)
        .await
        .expect("the server stops in time")
        .expect("no panic");
}
