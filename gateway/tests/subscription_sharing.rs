//! Identical subscriptions share one upstream subscription and one enrichment per event;
//! different credentials never share; late subscribers with a cursor get an exact replay and
//! then the live events; a client that cannot keep up is cut off without holding the others
//! back. Upstream subscriptions are counted where they arrive, at a real subgraph.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use gateway::Config;
use serde_json::{Value, json};
use support::streaming::{Streaming, purchase, start_subgraphs};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SUBSCRIPTION: &str =
    "subscription($after: Int) { purchaseMade(after: $after) { id seq sponsor { name } } }";
/// Without the enrichment: small events, many of them per test.
const PLAIN: &str = "subscription($after: Int) { purchaseMade(after: $after) { id seq } }";
/// Large events (16 KiB), which fill a slow client's socket buffers after a few dozen.
const LARGE: &str =
    "subscription($after: Int) { purchaseMade(after: $after) { id seq padding(bytes: 16384) } }";
const WAIT: Duration = Duration::from_secs(10);

/// The test subgraph's events resume after a sequence number: `seq` is their cursor.
fn config(subgraphs: &Streaming) -> Config {
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("tickets".into(), subgraphs.tickets_server.url.clone()),
        ("crm".into(), subgraphs.crm.url.clone()),
    ];
    config.subscription_cursor_field = "seq".into();
    config
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn request(gateway: SocketAddr) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("ws://{gateway}/graphql")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    request
}

async fn init(socket: &mut Socket, token: Option<&str>) {
    let payload = match token {
        Some(token) => json!({ "Authorization": format!("Bearer {token}") }),
        None => json!({}),
    };
    send(
        socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    assert_eq!(receive(socket).await["type"], "connection_ack");
}

/// A client that subscribed to `query` with `variables`, as operation "s".
async fn subscriber(gateway: SocketAddr, token: Option<&str>, query: &str, after: Value) -> Socket {
    let (mut socket, _) = tokio_tungstenite::connect_async(request(gateway))
        .await
        .expect("connect");
    init(&mut socket, token).await;
    subscribe(&mut socket, query, after).await;
    socket
}

async fn subscribe(socket: &mut Socket, query: &str, after: Value) {
    send(
        socket,
        json!({ "type": "subscribe", "id": "s",
                "payload": { "query": query, "variables": { "after": after } } }),
    )
    .await;
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send");
}

async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a message");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => {}
        }
    }
}

/// The `seq` of the next event this client receives.
async fn next_seq(socket: &mut Socket) -> i64 {
    let message = receive(socket).await;
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["purchaseMade"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("an event: {message}"))
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The gateway's own count of an unlabelled series.
async fn metric(gateway: SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{gateway}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
}

#[tokio::test]
async fn identical_subscriptions_share_one_upstream_and_one_enrichment_per_event() {
    let subgraphs = start_subgraphs().await;
    let gateway = support::spawn_gateway(config(&subgraphs)).await;

    let mut viewers = Vec::new();
    for _ in 0..20 {
        viewers.push(subscriber(gateway, Some("organiser"), SUBSCRIPTION, Value::Null).await);
    }
    wait_until("the group subscribed upstream", || {
        subgraphs.tickets.subscribers() >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(subgraphs.tickets.subscribers(), 1, "one upstream for all");
    assert_eq!(
        metric(gateway, "gateway_subscription_upstreams_active").await,
        1.0
    );
    assert_eq!(metric(gateway, "gateway_subscriptions_active").await, 20.0);

    for seq in 1..=5 {
        subgraphs.tickets.publish(purchase(seq, "s1"));
    }
    for viewer in &mut viewers {
        for seq in 1..=5 {
            let message = receive(viewer).await;
            assert_eq!(
                message["payload"]["data"]["purchaseMade"],
                json!({ "id": format!("p{seq}"), "seq": seq, "sponsor": { "name": "Acme" } }),
                "{message}"
            );
        }
    }
    assert_eq!(
        subgraphs.crm.entity_requests().len(),
        5,
        "one enrichment per event, not one per viewer"
    );

    // Everyone leaves: the group stops, and its upstream subscription with it.
    for mut viewer in viewers {
        viewer.close(None).await.ok();
    }
    wait_until("the upstream subscription ended", || {
        subgraphs.tickets.subscribers() == 0
    })
    .await;
}

#[tokio::test]
async fn different_credentials_never_share() {
    let subgraphs = start_subgraphs().await;
    let gateway = support::spawn_gateway(config(&subgraphs)).await;

    let mut alice = Vec::new();
    let mut bob = Vec::new();
    for _ in 0..3 {
        alice.push(subscriber(gateway, Some("alice"), SUBSCRIPTION, Value::Null).await);
        bob.push(subscriber(gateway, Some("bob"), SUBSCRIPTION, Value::Null).await);
    }
    let mut anonymous = subscriber(gateway, None, SUBSCRIPTION, Value::Null).await;
    wait_until("three groups subscribed upstream", || {
        subgraphs.tickets.subscribers() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        subgraphs.tickets.subscribers(),
        3,
        "one upstream per credential"
    );
    let mut credentials = subgraphs
        .tickets
        .init_credentials
        .lock()
        .expect("lock")
        .clone();
    credentials.sort();
    assert_eq!(
        credentials,
        [
            None,
            Some("Bearer alice".to_string()),
            Some("Bearer bob".to_string())
        ]
    );

    subgraphs.tickets.publish(purchase(1, "s1"));
    for viewer in alice.iter_mut().chain(bob.iter_mut()) {
        assert_eq!(next_seq(viewer).await, 1);
    }
    assert_eq!(next_seq(&mut anonymous).await, 1);
    // Each group enriched the event with its own credential.
    let mut enrichments: Vec<Option<String>> = subgraphs
        .crm
        .entity_requests()
        .into_iter()
        .map(|r| r.authorization)
        .collect();
    enrichments.sort();
    assert_eq!(
        enrichments,
        [
            None,
            Some("Bearer alice".to_string()),
            Some("Bearer bob".to_string())
        ]
    );
}

#[tokio::test]
async fn a_late_subscriber_gets_an_exact_replay_then_the_live_events() {
    let subgraphs = start_subgraphs().await;
    let mut config = config(&subgraphs);
    config.subscription_buffer = 4;
    let gateway = support::spawn_gateway(config).await;
    for seq in 1..=3 {
        subgraphs.tickets.publish(purchase(seq, "s1"));
    }

    // The first subscriber starts the group at its cursor: the log's replay, then live.
    let mut first = subscriber(gateway, Some("organiser"), PLAIN, json!(0)).await;
    for seq in 1..=3 {
        assert_eq!(next_seq(&mut first).await, seq);
    }
    for seq in 4..=5 {
        subgraphs.tickets.publish(purchase(seq, "s1"));
        assert_eq!(next_seq(&mut first).await, i64::from(seq));
    }

    // Its cursor is among the group's recent events: served from them, no new upstream.
    let mut second = subscriber(gateway, Some("organiser"), PLAIN, json!(3)).await;
    for seq in 4..=5 {
        assert_eq!(next_seq(&mut second).await, seq);
    }
    assert_eq!(subgraphs.tickets.subscribers(), 1);

    // Older than anything the group keeps (it keeps 4 events: 2..5): it catches up on its
    // own upstream subscription, then joins the group and lets that one go.
    let mut third = subscriber(gateway, Some("organiser"), PLAIN, json!(0)).await;
    for seq in 1..=5 {
        assert_eq!(next_seq(&mut third).await, seq);
    }
    for seq in 6..=12 {
        subgraphs.tickets.publish(purchase(seq, "s1"));
    }
    for viewer in [&mut first, &mut second, &mut third] {
        for seq in 6..=12 {
            assert_eq!(next_seq(viewer).await, seq);
        }
    }
    wait_until("the catch-up subscription was let go", || {
        subgraphs.tickets.subscribers() == 1
    })
    .await;
    subgraphs.tickets.publish(purchase(13, "s1"));
    for viewer in [&mut first, &mut second, &mut third] {
        assert_eq!(next_seq(viewer).await, 13, "each event once, in order");
    }
}

/// Publishes `count` events, a chunk at a time, each chunk once `received` says the fast
/// client has them all: the test subgraph's own buffer never overflows.
async fn publish_paced(subgraphs: &Streaming, received: &AtomicUsize, count: i32) {
    // Fewer than the subscription buffer: the fast client can never fall behind by more.
    let chunk = 20;
    let mut seq = 0;
    while seq < count {
        for _ in 0..chunk.min(count - seq) {
            seq += 1;
            subgraphs.tickets.publish(purchase(seq, "s1"));
        }
        let target = usize::try_from(seq).expect("positive");
        for _ in 0..1000 {
            if received.load(Ordering::SeqCst) >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            received.load(Ordering::SeqCst) >= target,
            "the fast client was held back at {} of {target}",
            received.load(Ordering::SeqCst)
        );
    }
}

/// A fast reader in the background: counts `total` events, checking their order.
fn fast_reader(mut socket: Socket, total: i32) -> Arc<AtomicUsize> {
    let received = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&received);
    tokio::spawn(async move {
        for _ in 0..total {
            let seq = next_seq(&mut socket).await;
            let previous = count.fetch_add(1, Ordering::SeqCst);
            assert_eq!(usize::try_from(seq).ok(), Some(previous + 1), "in order");
        }
        // Stays connected until the test ends.
        std::future::pending::<()>().await;
        drop(socket);
    });
    received
}

/// A client whose receive buffer is tiny, so the gateway feels it not reading at once.
async fn slow_socket(gateway: SocketAddr) -> Socket {
    let tcp = TcpSocket::new_v4().expect("socket");
    tcp.set_recv_buffer_size(4096).expect("buffer size");
    let stream = tcp.connect(gateway).await.expect("connect");
    let (mut socket, _) =
        tokio_tungstenite::client_async(request(gateway), MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
    init(&mut socket, Some("organiser")).await;
    subscribe(&mut socket, LARGE, Value::Null).await;
    socket
}

#[tokio::test]
async fn a_slow_client_is_told_to_resubscribe_without_holding_back_a_fast_one() {
    let subgraphs = start_subgraphs().await;
    let mut config = config(&subgraphs);
    config.subscription_buffer = 32;
    let gateway = support::spawn_gateway(config).await;

    let total = 1000;
    let fast = subscriber(gateway, Some("organiser"), LARGE, Value::Null).await;
    let mut slow = slow_socket(gateway).await;
    wait_until("one shared upstream", || {
        subgraphs.tickets.subscribers() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let received = fast_reader(fast, total);

    // The slow client reads, but one message every 20 milliseconds.
    let slow_reader = tokio::spawn(async move {
        let mut events = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            match tokio::time::timeout(WAIT, slow.next()).await {
                Ok(Some(Ok(Message::Text(_)))) => events += 1,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return (events, frame.map(|f| u16::from(f.code)));
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("no close frame: {other:?}"),
            }
        }
    });
    publish_paced(&subgraphs, &received, total).await;
    let (events, code) = tokio::time::timeout(Duration::from_secs(60), slow_reader)
        .await
        .expect("the slow client is told in time")
        .expect("reader");
    assert_eq!(code, Some(1013), "Try Again Later: resubscribe");
    assert!(
        events < usize::try_from(total).expect("positive"),
        "{events}"
    );
    assert!(metric(gateway, "gateway_subscribers_cut_off_total").await >= 1.0);
    assert_eq!(
        received.load(Ordering::SeqCst),
        usize::try_from(total).expect("positive")
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_without_holding_back_a_fast_one() {
    let subgraphs = start_subgraphs().await;
    let mut config = config(&subgraphs);
    config.subscription_buffer = 32;
    config.websocket_send_timeout_secs = 1;
    let gateway = support::spawn_gateway(config).await;

    let total = 1000;
    let fast = subscriber(gateway, Some("organiser"), LARGE, Value::Null).await;
    let mut stalled = slow_socket(gateway).await;
    wait_until("one shared upstream", || {
        subgraphs.tickets.subscribers() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let received = fast_reader(fast, total);

    publish_paced(&subgraphs, &received, total).await;
    // Its writes wait past the send timeout: the connection is dropped, its subscription
    // with it.
    for _ in 0..500 {
        if metric(gateway, "gateway_subscriptions_active").await == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(gateway, "gateway_subscriptions_active").await, 1.0);
    assert!(metric(gateway, "gateway_subscribers_cut_off_total").await >= 1.0);

    // What the kernel had buffered arrives, then the connection ends.
    let mut events = 0;
    loop {
        match tokio::time::timeout(WAIT, stalled.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => events += 1,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => break,
            Err(_) => panic!("the stalled client's connection is still open"),
        }
    }
    assert!(events < total, "{events}");
}
