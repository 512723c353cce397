//! Hostile documents are refused by the gateway before validation or planning, each with one
//! error and its code, and the gateway answers a normal request right after.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gateway::Config;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const NORMAL: &str = "{ topProducts { upc name } }";

async fn refused(stack: &support::Stack, query: &str, code: &str) {
    let started = Instant::now();
    let (status, body) = stack.post(query, json!({})).await;
    let elapsed = started.elapsed();
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "one error object: {body:#}");
    assert_eq!(errors[0]["extensions"]["code"], code, "{body:#}");
    assert!(body.get("data").is_none(), "nothing executed: {body:#}");
    assert!(status == 200 || (400..500).contains(&status), "{status}");
    // Generous for a debug build on a busy machine; the point is it is not parsed whole.
    assert!(elapsed < Duration::from_secs(2), "{code} took {elapsed:?}");
    let (status, body) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200, "{body:#}");
    assert!(body.get("errors").is_none(), "{body:#}");
}

#[tokio::test]
async fn a_huge_document_stops_at_the_token_limit() {
    let stack = support::start().await;
    let query = format!("{{ {} }}", "topProducts { upc } ".repeat(25_000));
    refused(&stack, &query, "TOKEN_LIMIT_EXCEEDED").await;
}

#[tokio::test]
async fn thousands_of_unknown_directives_are_one_error() {
    let stack = support::start().await;
    // Written without spaces, so that the document stays under the token limit.
    let query = format!("{{ topProducts {} {{ upc }} }}", "@nope".repeat(5_000));
    refused(&stack, &query, "DIRECTIVE_LIMIT_EXCEEDED").await;
}

#[tokio::test]
async fn too_many_root_fields_are_refused() {
    let stack = support::start().await;
    // Aliases stay under their own limit (64): 30 root fields hit the root-field limit (20).
    let fields: Vec<String> = (0..30)
        .map(|i| format!("p{i}: topProducts {{ upc }}"))
        .collect();
    let query = format!("{{ {} }}", fields.join(" "));
    refused(&stack, &query, "ROOT_FIELD_LIMIT_EXCEEDED").await;
}

#[tokio::test]
async fn a_syntax_error_is_one_parse_error() {
    let stack = support::start().await;
    refused(&stack, "{ topProducts { upc ", "GRAPHQL_PARSE_FAILED").await;
}

#[tokio::test]
async fn a_websocket_that_never_initialises_is_closed() {
    let stack = support::start_with(support::Options {
        configure: |config: &mut Config| config.websocket_init_timeout_secs = 1,
        ..support::Options::default()
    })
    .await;
    let mut request = format!("ws://{}/graphql", stack.gateway)
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let started = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed in time");
    assert_eq!(closed, Some(4408));
    assert!(started.elapsed() >= Duration::from_millis(900));
    let (status, _): (u16, Value) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_websockets() {
    let stack = support::start_with(support::Options {
        configure: |config: &mut Config| config.max_sockets_per_address = 2,
        ..support::Options::default()
    })
    .await;
    let connect = || {
        let mut request = format!("ws://{}/graphql", stack.gateway)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        tokio_tungstenite::connect_async(request)
    };
    let first = connect().await.expect("first");
    let _second = connect().await.expect("second");
    match connect().await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("a JSON body");
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "TOO_MANY_CONNECTIONS"
            );
        }
        other => panic!("a third socket from one address: {:?}", other.map(|_| ())),
    }
    // Closing one makes room again.
    let (mut first, _) = first;
    first.close(None).await.ok();
    drop(first);
    let mut reopened = None;
    for _ in 0..100 {
        if let Ok(socket) = connect().await {
            reopened = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "room again after a socket closed");
}

async fn quick_edge() -> support::Stack {
    support::start_with(support::Options {
        configure: |config: &mut Config| {
            config.header_read_timeout_secs = 1;
            config.body_read_timeout_secs = 1;
        },
        ..support::Options::default()
    })
    .await
}

/// Reads until the server closes the connection; what it sent meanwhile.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection is still open after 5 s"),
        }
    }
}

#[tokio::test]
async fn slow_headers_slow_bodies_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let stack = quick_edge().await;

    // Headers that never finish.
    let mut slow = tokio::net::TcpStream::connect(stack.gateway)
        .await
        .expect("tcp");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: gateway\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    until_closed(&mut slow).await;
    assert!(started.elapsed() < Duration::from_secs(3));

    // A body that stops coming: the request fails instead of waiting.
    let mut trickle = tokio::net::TcpStream::connect(stack.gateway)
        .await
        .expect("tcp");
    trickle
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .expect("write");
    let answer = until_closed(&mut trickle).await;
    assert!(
        answer.is_empty() || !answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );

    // A kept-alive connection that goes quiet after its request.
    let mut idle = tokio::net::TcpStream::connect(stack.gateway)
        .await
        .expect("tcp");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .expect("write");
    let answer = until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let (status, body) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200, "{body:#}");
}

#[tokio::test]
async fn connections_past_the_limit_wait_for_a_free_one() {
    let stack = support::start_with(support::Options {
        configure: |config: &mut Config| {
            config.max_connections = 1;
            config.header_read_timeout_secs = 1;
        },
        ..support::Options::default()
    })
    .await;
    // Holds the only connection until its header timeout ends it.
    let _held = tokio::net::TcpStream::connect(stack.gateway)
        .await
        .expect("tcp");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let (status, _) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "served before the held connection was let go: {:?}",
        started.elapsed()
    );
}

/// Refusals before any GraphQL work carry a code too, as at the services.
#[tokio::test]
async fn oversize_bodies_and_cross_site_content_types_are_refused_with_a_code() {
    let stack = support::start().await;
    let url = format!("http://{}/graphql", stack.gateway);
    let response = stack
        .http
        .post(&url)
        .header("content-type", "text/plain")
        .body("{\"query\":\"mutation { addReview(upc: \\\"1\\\", body: \\\"x\\\") { body } }\"}")
        .send()
        .await
        .expect("text/plain");
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "UNSUPPORTED_MEDIA_TYPE"
    );

    let huge = format!(
        "{{\"query\":\"{{ topProducts {{ upc }} }}\",\"x\":\"{}\"}}",
        "a".repeat(3 << 20)
    );
    let response = stack
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    // The gateway may close while the client still uploads; when the answer arrives, it is
    // a coded 413.
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
    }
    let (status, _) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200);
}

/// A body declared larger than `--max-body-bytes` is answered before it is sent: the gateway
/// reads none of it, so a refusal costs the same whatever the client means to upload.
#[tokio::test]
async fn a_body_declared_too_large_is_refused_unread() {
    use tokio::io::AsyncWriteExt;
    let stack = support::start().await;
    let mut stream = tokio::net::TcpStream::connect(stack.gateway)
        .await
        .expect("tcp");
    // Headers only: the 100 MB body never comes.
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
              Content-Length: 100000000\r\n\r\n",
        )
        .await
        .expect("write");
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PAYLOAD_TOO_LARGE"), "{answer}");
    let (status, _) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200);
}

/// Mutations past a client's burst get 429 with `Retry-After` from the gateway itself (no
/// subgraph request); other clients and queries are untouched.
#[tokio::test]
async fn mutations_past_a_clients_burst_get_429_with_retry_after() {
    let stack = support::start_with(support::Options {
        configure: |config: &mut Config| {
            config.mutation_rate_per_minute = 6;
            config.mutation_burst = 2;
            config.trusted_proxies =
                vec![platform::client_address::ProxyRange::parse("127.0.0.1").expect("range")];
        },
        ..support::Options::default()
    })
    .await;
    let mutation = json!({
        "query": "mutation { addReview(upc: \"1\", body: \"fine\") { body } }"
    });
    let send = |from: &'static str| {
        stack
            .http
            .post(stack.url())
            .header("x-forwarded-for", from)
            .json(&mutation)
            .send()
    };
    for _ in 0..2 {
        let response = send("203.0.113.7").await.expect("mutation");
        assert_eq!(response.status(), 200);
    }
    let reviews_before = stack.reviews.requests().len();
    let response = send("203.0.113.7").await.expect("mutation");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(body.get("data").is_none(), "{body:#}");
    assert_eq!(
        stack.reviews.requests().len(),
        reviews_before,
        "no subgraph request"
    );

    // Another client behind the same proxy, and queries from the limited one, go through.
    let response = send("203.0.113.8").await.expect("mutation");
    assert_eq!(response.status(), 200);
    let (status, body) = stack.post(NORMAL, json!({})).await;
    assert_eq!(status, 200, "{body:#}");
}
