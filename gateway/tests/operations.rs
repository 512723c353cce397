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

/// The `gateway` binary as an orchestrator runs it: SIGTERM stops new connections at once and
/// ends the process within the grace period, even with a request stuck on a slow subgraph.
#[tokio::test]
async fn sigterm_stops_the_binary_within_its_grace_period() {
    use std::time::Instant;
    let inventory = support::serve_subgraph(
        support::subgraphs::inventory(),
        Some(Duration::from_secs(60)),
    )
    .await;
    let accounts = support::serve_subgraph(support::subgraphs::accounts(), None).await;
    let products = support::serve_subgraph(support::subgraphs::products_schema(), None).await;
    let reviews = support::serve_subgraph(support::subgraphs::reviews_schema(), None).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gateway"));
    command
        .arg("--supergraph")
        .arg(support::fixture("supergraph.graphql"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--shutdown-grace-secs", "2"])
        .env("RUST_LOG", "warn");
    for (name, server) in [
        ("accounts", &accounts),
        ("products", &products),
        ("inventory", &inventory),
        ("reviews", &reviews),
    ] {
        command
            .arg("--override-subgraph-url")
            .arg(format!("{name}={}", server.url));
    }
    let mut gateway = KillOnDrop(command.spawn().expect("the gateway binary starts"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while !http
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(started.elapsed() < Duration::from_secs(30), "never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stuck = tokio::spawn(
        http.post(format!("{base}/graphql"))
            .json(&json!({ "query": "{ topProducts(first: 1) { name inStock } }" }))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stuck.is_finished(), "the query should wait on inventory");

    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &gateway.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let exit = loop {
        if let Some(status) = gateway.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(8),
            "the gateway did not stop within its 2 s grace period (plus margin)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "exit status {exit}");
    // The stuck request had its grace period to finish, and no more.
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(1_500) && took < Duration::from_secs(5),
        "stopping took {took:?} with a 2 s grace period"
    );
    stuck.abort();
}

/// The child process is killed if the test fails before it exits on its own.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
