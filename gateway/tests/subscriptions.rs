//! Subscriptions through the gateway: over WebSocket (both protocols) and SSE, each event
//! enriched with a field from another subgraph, credentials forwarded to the upstream
//! subscription and to every entity fetch, and an upstream drop reported to the client.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway::Config;
use serde_json::{Value, json};
use support::streaming::{Streaming, purchase, start_subgraphs};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SUBSCRIPTION: &str =
    "subscription($after: Int) { purchaseMade(after: $after) { id seq sponsor { name } } }";
const WAIT: Duration = Duration::from_secs(10);

async fn start() -> (Streaming, SocketAddr) {
    let subgraphs = start_subgraphs().await;
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("tickets".into(), subgraphs.tickets_server.url.clone()),
        ("crm".into(), subgraphs.crm.url.clone()),
    ];
    let gateway = support::spawn_gateway(config).await;
    (subgraphs, gateway)
}

/// Waits until the tickets subgraph has `count` live subscribers, so a published event cannot
/// race the upstream subscription.
async fn wait_for_subscribers(subgraphs: &Streaming, count: usize) {
    for _ in 0..500 {
        if subgraphs.tickets.subscribers() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gateway never subscribed upstream");
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(gateway: SocketAddr, protocol: &str, header: Option<&str>) -> Socket {
    let mut request = format!("ws://{gateway}/graphql")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(protocol).expect("protocol"),
    );
    if let Some(value) = header {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(value).expect("header"),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connect");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol)
    );
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
}

/// The next protocol message, skipping keep-alives; `None` when the socket closed.
async fn receive(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")?
            .ok()?;
        match message {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("JSON message");
                if value["type"] != "ka" {
                    return Some(value);
                }
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn event(seq: i32, sponsor: &str) -> Value {
    json!({ "data": { "purchaseMade": {
        "id": format!("p{seq}"), "seq": seq, "sponsor": { "name": sponsor }
    }}})
}

fn assert_credentials(subgraphs: &Streaming, expected: &str) {
    let init = subgraphs
        .tickets
        .init_credentials
        .lock()
        .expect("lock")
        .clone();
    assert_eq!(
        init,
        vec![Some(expected.to_string())],
        "connection_init payload"
    );
    let upgrade = subgraphs
        .tickets
        .upgrade_credentials
        .lock()
        .expect("lock")
        .clone();
    assert_eq!(upgrade, vec![Some(expected.to_string())], "upgrade header");
    let entity_requests = subgraphs.crm.entity_requests();
    assert!(!entity_requests.is_empty());
    assert!(
        entity_requests
            .iter()
            .all(|r| r.authorization.as_deref() == Some(expected)),
        "{entity_requests:?}"
    );
}

#[tokio::test]
async fn graphql_transport_ws_events_are_enriched_and_carry_credentials() {
    let (subgraphs, gateway) = start().await;
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer ws-token" } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "connection_ack" }))
    );
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "a", "payload": { "query": SUBSCRIPTION } }),
    )
    .await;
    wait_for_subscribers(&subgraphs, 1).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    subgraphs.tickets.publish(purchase(2, "s2"));
    for (seq, name) in [(1, "Acme"), (2, "Globex")] {
        assert_eq!(
            receive(&mut socket).await,
            Some(json!({ "type": "next", "id": "a", "payload": event(seq, name) }))
        );
    }
    assert_credentials(&subgraphs, "Bearer ws-token");

    // Ping is answered; `complete` from the client ends the upstream subscription too.
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(receive(&mut socket).await, Some(json!({ "type": "pong" })));
    send(&mut socket, json!({ "type": "complete", "id": "a" })).await;
    for _ in 0..500 {
        if subgraphs.tickets.subscribers() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(subgraphs.tickets.subscribers(), 0, "upstream not stopped");
}

#[tokio::test]
async fn legacy_graphql_ws_protocol() {
    let (subgraphs, gateway) = start().await;
    let mut socket = connect(gateway, "graphql-ws", None).await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "authToken": "legacy-token" } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "connection_ack" }))
    );
    send(
        &mut socket,
        json!({ "type": "start", "id": "1", "payload": { "query": SUBSCRIPTION } }),
    )
    .await;
    wait_for_subscribers(&subgraphs, 1).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "data", "id": "1", "payload": event(1, "Acme") }))
    );
    assert_credentials(&subgraphs, "Bearer legacy-token");
    send(&mut socket, json!({ "type": "stop", "id": "1" })).await;
    send(&mut socket, json!({ "type": "connection_terminate" })).await;
    assert_eq!(receive(&mut socket).await, None);
}

#[tokio::test]
async fn upgrade_header_credentials_are_used_without_init_payload() {
    let (subgraphs, gateway) = start().await;
    let mut socket = connect(gateway, "graphql-transport-ws", Some("Bearer header-token")).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.map(|m| m["type"].clone()),
        Some(json!("connection_ack"))
    );
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "a", "payload": { "query": SUBSCRIPTION } }),
    )
    .await;
    wait_for_subscribers(&subgraphs, 1).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "next", "id": "a", "payload": event(1, "Acme") }))
    );
    assert_credentials(&subgraphs, "Bearer header-token");
}

#[tokio::test]
async fn upstream_drop_errors_and_the_client_resumes_from_its_cursor() {
    let (subgraphs, gateway) = start().await;
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    receive(&mut socket).await;
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "a", "payload": { "query": SUBSCRIPTION } }),
    )
    .await;
    wait_for_subscribers(&subgraphs, 1).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "next", "id": "a", "payload": event(1, "Acme") }))
    );

    // The subgraph's connection dies; purchase 2 happens while nobody listens.
    subgraphs.tickets.kill.send(()).expect("kill");
    let error = receive(&mut socket).await.expect("an error event");
    assert_eq!(error["type"], "next");
    assert_eq!(
        error["payload"]["errors"][0]["extensions"]["code"], "SUBSCRIPTION_UPSTREAM_CLOSED",
        "{error}"
    );
    assert_eq!(
        error["payload"]["errors"][0]["extensions"]["service"],
        "tickets"
    );
    assert!(error["payload"].get("data").is_none());
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "complete", "id": "a" }))
    );
    subgraphs.tickets.publish(purchase(2, "s2"));

    // The same id may be used again once completed; the cursor replays what was missed.
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "a",
                "payload": { "query": SUBSCRIPTION, "variables": { "after": 1 } } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "next", "id": "a", "payload": event(2, "Globex") }))
    );
}

#[tokio::test]
async fn graphql_transport_ws_protocol_rules() {
    let (_subgraphs, gateway) = start().await;

    // Subscribing before connection_init: 4401.
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "a", "payload": { "query": "{ sponsors { name } }" } }),
    )
    .await;
    assert_eq!(close_code(&mut socket).await, Some(4401));

    // A second connection_init: 4429; a malformed message: 4400.
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    receive(&mut socket).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(close_code(&mut socket).await, Some(4429));
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    receive(&mut socket).await;
    socket.send(Message::text("not json")).await.expect("send");
    assert_eq!(close_code(&mut socket).await, Some(4400));

    // Queries work over the socket too; validation errors arrive as `error`.
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    receive(&mut socket).await;
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "q", "payload": { "query": "{ sponsors { name } }" } }),
    )
    .await;
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "next", "id": "q",
                     "payload": { "data": { "sponsors": [{ "name": "Acme" }] } } }))
    );
    assert_eq!(
        receive(&mut socket).await,
        Some(json!({ "type": "complete", "id": "q" }))
    );
    send(
        &mut socket,
        json!({ "type": "subscribe", "id": "bad", "payload": { "query": "subscription { nope }" } }),
    )
    .await;
    let error = receive(&mut socket).await.expect("error");
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "bad");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
}

/// Reads SSE events (`event`, `data`) until `count` arrived or the stream ended.
async fn sse_events(response: &mut reqwest::Response, count: usize) -> Vec<(String, String)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .expect("an SSE chunk in time")
            .expect("SSE body");
        let Some(chunk) = chunk else { break };
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            // Comments (keep-alives) have neither.
            if !name.is_empty() {
                events.push((name, data));
            }
        }
    }
    events
}

#[tokio::test]
async fn sse_events_are_enriched_and_carry_credentials() {
    let (subgraphs, gateway) = start().await;
    let mut response = reqwest::Client::new()
        .post(format!("http://{gateway}/graphql"))
        .header("accept", "text/event-stream")
        .header("authorization", "Bearer sse-token")
        .json(&json!({ "query": SUBSCRIPTION }))
        .send()
        .await
        .expect("SSE request");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
    );
    wait_for_subscribers(&subgraphs, 1).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    let events = sse_events(&mut response, 1).await;
    assert_eq!(events[0].0, "next");
    let data: Value = serde_json::from_str(&events[0].1).expect("JSON data");
    assert_eq!(data, event(1, "Acme"));
    assert_eq!(
        subgraphs
            .tickets
            .upgrade_credentials
            .lock()
            .expect("lock")
            .clone(),
        vec![Some("Bearer sse-token".to_string())]
    );
    assert!(
        subgraphs
            .crm
            .entity_requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer sse-token"))
    );

    // Upstream drop: an error event, then complete, then the stream ends.
    subgraphs.tickets.kill.send(()).expect("kill");
    let events = sse_events(&mut response, 3).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "next");
    let data: Value = serde_json::from_str(&events[0].1).expect("JSON data");
    assert_eq!(
        data["errors"][0]["extensions"]["code"],
        "SUBSCRIPTION_UPSTREAM_CLOSED"
    );
    assert_eq!(events[1].0, "complete");
}

#[tokio::test]
async fn sse_queries_and_errors_and_plain_post_subscriptions() {
    let (_subgraphs, gateway) = start().await;
    let http = reqwest::Client::new();
    let url = format!("http://{gateway}/graphql");

    let mut response = http
        .get(&url)
        .query(&[("query", "{ sponsors { name } }")])
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("SSE GET");
    let events = sse_events(&mut response, 3).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        serde_json::from_str::<Value>(&events[0].1).expect("JSON"),
        json!({ "data": { "sponsors": [{ "name": "Acme" }] } })
    );
    assert_eq!(events[1].0, "complete");

    let mut response = http
        .post(&url)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "subscription { nope }" }))
        .send()
        .await
        .expect("SSE POST");
    let events = sse_events(&mut response, 3).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let data: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(
        data["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    // Without a streaming transport a subscription is refused with a clear message.
    let body: Value = http
        .post(&url)
        .json(&json!({ "query": SUBSCRIPTION }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "OPERATION_NOT_SUPPORTED"
    );
}

#[tokio::test]
async fn sse_over_get_refuses_mutations() {
    // GET stays free of side effects on the streaming transport too.
    let stack = support::start().await;
    let mut response = stack
        .http
        .get(stack.url())
        .query(&[(
            "query",
            r#"mutation { addReview(upc: "1", body: "x") { body } }"#,
        )])
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("SSE GET");
    let events = sse_events(&mut response, 3).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let data: Value = serde_json::from_str(&events[0].1).expect("JSON");
    assert_eq!(
        data["errors"][0]["extensions"]["code"],
        "METHOD_NOT_ALLOWED"
    );
    assert!(stack.reviews.requests().is_empty());
}

/// One client socket cannot make the gateway open hundreds of upstream subscriptions: past
/// `--max-operations-per-socket`, a `subscribe` is answered with an `error` and starts nothing;
/// once one completes, the next is accepted.
#[tokio::test]
async fn a_socket_runs_at_most_its_share_of_operations() {
    let subgraphs = start_subgraphs().await;
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("tickets".into(), subgraphs.tickets_server.url.clone()),
        ("crm".into(), subgraphs.crm.url.clone()),
    ];
    config.max_operations_per_socket = 2;
    // Identical subscriptions would share one upstream: each its own shows the cap.
    config.dedupe_subscriptions = false;
    let gateway = support::spawn_gateway(config).await;
    let mut socket = connect(gateway, "graphql-transport-ws", None).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(
        receive(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    for id in ["1", "2", "3", "4"] {
        send(
            &mut socket,
            json!({ "id": id, "type": "subscribe", "payload": { "query": SUBSCRIPTION } }),
        )
        .await;
    }
    for id in ["3", "4"] {
        let refused = receive(&mut socket).await.expect("an error");
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["id"], id, "{refused}");
        assert_eq!(
            refused["payload"][0]["extensions"]["code"],
            "TOO_MANY_OPERATIONS"
        );
    }
    wait_for_subscribers(&subgraphs, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        subgraphs.tickets.subscribers(),
        2,
        "only two reached the subgraph"
    );

    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(
        &mut socket,
        json!({ "id": "5", "type": "subscribe", "payload": { "query": SUBSCRIPTION } }),
    )
    .await;
    subgraphs.tickets.publish(purchase(1, "Acme"));
    let event = receive(&mut socket).await.expect("an event");
    assert_eq!(event["type"], "next", "{event}");
}

/// Reads multipart parts (`--graphql` delimiters) until `count` JSON parts have arrived or
/// the close; returns the parts' JSON bodies and whether the stream closed. A part counts only
/// once the delimiter after it has arrived, as Apollo Client's parser reads them. What is
/// read but not yet a whole part stays in `buffer` for the next call.
async fn multipart_parts(
    response: &mut reqwest::Response,
    buffer: &mut String,
    count: usize,
) -> (Vec<Value>, bool) {
    const DELIMITER: &str = "\r\n--graphql";
    let mut parts = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        // The text before the first delimiter is the preamble (empty); each part sits
        // between two delimiters; `--` after a delimiter is the close.
        while let Some(start) = buffer.find(DELIMITER) {
            let after = &buffer[start + DELIMITER.len()..];
            if after.starts_with("--") {
                return (parts, true);
            }
            let Some(next) = after.find(DELIMITER) else {
                break;
            };
            let part = &after[..next];
            if let Some(body) = part.split("\r\n\r\n").nth(1) {
                parts.push(serde_json::from_str(body).expect("JSON part"));
            }
            buffer.drain(..start + DELIMITER.len() + next);
        }
        if parts.len() >= count {
            return (parts, false);
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("a part within the wait")
            .expect("body chunk");
        let Some(chunk) = chunk else {
            return (parts, false);
        };
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
    }
}

/// Apollo Client's subscriptions over HTTP: `multipart/mixed;subscriptionSpec=1.0`, each
/// event a part `{"payload": …}`, the end a closing boundary.
#[tokio::test]
async fn multipart_http_subscriptions_deliver_enriched_events() {
    let (subgraphs, gateway) = start().await;
    let mut response = reqwest::Client::new()
        .post(format!("http://{gateway}/graphql"))
        .header(
            "accept",
            "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json",
        )
        .json(&json!({ "query": SUBSCRIPTION }))
        .send()
        .await
        .expect("multipart request");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("multipart/mixed") && content_type.contains("subscriptionSpec"),
        "{content_type}"
    );
    wait_for_subscribers(&subgraphs, 1).await;
    let mut buffer = String::new();
    // A heartbeat comes at once; events come as they happen, each part closed by the
    // delimiter after it (not held until the next heartbeat, 5 s later).
    let (parts, _) = multipart_parts(&mut response, &mut buffer, 1).await;
    assert_eq!(parts, vec![json!({})]);
    let published = std::time::Instant::now();
    subgraphs.tickets.publish(purchase(1, "s1"));
    subgraphs.tickets.publish(purchase(2, "s2"));
    let (parts, _) = multipart_parts(&mut response, &mut buffer, 2).await;
    assert!(
        published.elapsed() < Duration::from_secs(3),
        "events waited for a heartbeat: {:?}",
        published.elapsed()
    );
    let payloads: Vec<&Value> = parts
        .iter()
        .filter(|part| part.get("payload").is_some())
        .collect();
    assert_eq!(payloads.len(), 2, "{parts:?}");
    assert_eq!(payloads[0]["payload"], event(1, "Acme"));

    // The upstream goes away: its error, then the closing boundary.
    subgraphs.tickets.kill.send(()).expect("kill");
    let (parts, closed) = multipart_parts(&mut response, &mut buffer, 10).await;
    assert!(closed, "{parts:?}");
    assert!(
        parts
            .iter()
            .any(|part| part["payload"]["errors"][0]["extensions"]["code"]
                == "SUBSCRIPTION_UPSTREAM_CLOSED"),
        "{parts:?}"
    );
}

/// A client listing JSON beside the streaming types (urql lists them all) gets JSON for a
/// query, and a stream only for a subscription.
#[tokio::test]
async fn queries_are_answered_as_json_when_json_is_acceptable_too() {
    let (_subgraphs, gateway) = start().await;
    let accept = "application/graphql-response+json, application/graphql+json, \
                  application/json, text/event-stream, multipart/mixed";
    let response = reqwest::Client::new()
        .post(format!("http://{gateway}/graphql"))
        .header("accept", accept)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("query");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/graphql-response+json")
    );
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["__typename"], "Query");
    let response = reqwest::Client::new()
        .get(format!("http://{gateway}/graphql"))
        .query(&[("query", "{ __typename }")])
        .header("accept", accept)
        .send()
        .await
        .expect("GET query");
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/graphql-response+json"))
    );
}

/// A subscription sent by its persisted hash alone is streamed like one sent with its text
/// (the transport is chosen after the hash is looked up).
#[tokio::test]
async fn a_persisted_subscription_by_hash_alone_is_streamed() {
    use sha2::Digest;
    let (_subgraphs, gateway) = start().await;
    let hash = hex::encode(sha2::Sha256::digest(SUBSCRIPTION.as_bytes()));
    let extensions = json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } });
    let accept = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";
    let http = reqwest::Client::new();
    let first = http
        .post(format!("http://{gateway}/graphql"))
        .header("accept", accept)
        .json(&json!({ "query": SUBSCRIPTION, "extensions": extensions }))
        .send()
        .await
        .expect("first subscription");
    drop(first);
    let again = http
        .post(format!("http://{gateway}/graphql"))
        .header("accept", accept)
        .json(&json!({ "extensions": extensions }))
        .send()
        .await
        .expect("hash-only subscription");
    assert_eq!(again.status().as_u16(), 200);
    assert!(
        again
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/mixed")),
        "{:?}",
        again.headers()
    );
}
