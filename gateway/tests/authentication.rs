//! What a client without valid credentials gets from the gateway itself: with the services'
//! secret configured, an invalid bearer token is a 401 `UNAUTHENTICATED` on every transport,
//! never an anonymous request; with introspection off, nothing about the schema leaks
//! (`_service`, `_entities`, "Did you mean" suggestions).

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use platform::JwtKeys;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const SECRET: &str = "gateway-test-secret";
const INTROSPECTION: &str = "{ __schema { queryType { name } } }";

fn with_secret(config: &mut gateway::Config) {
    config.jwt_secret = Some(SECRET.into());
}

fn without_introspection(config: &mut gateway::Config) {
    config.jwt_secret = Some(SECRET.into());
    config.introspection = false;
}

async fn post(
    stack: &support::Stack,
    authorization: Option<&str>,
    query: &str,
) -> (u16, Option<String>, Value) {
    let mut request = stack
        .http
        .post(stack.url())
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": query }));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, challenge, response.json().await.expect("JSON body"))
}

fn token(keys: &JwtKeys, ttl_secs: i64) -> String {
    keys.mint_expiring_at(
        "admin",
        &["tickets:admin"],
        chrono::Utc::now() + chrono::Duration::seconds(ttl_secs),
    )
    .expect("mint")
}

#[tokio::test]
async fn invalid_tokens_are_refused_before_anything_is_answered() {
    let stack = support::start_with(support::Options {
        configure: with_secret,
        ..Default::default()
    })
    .await;
    let keys = JwtKeys::from_secret(SECRET.as_bytes());
    let forged = format!(
        "Bearer {}",
        token(&JwtKeys::from_secret(b"someone else's secret"), 600)
    );
    let expired = format!("Bearer {}", token(&keys, -3600));
    for (what, authorization) in [
        ("forged", forged.as_str()),
        ("expired", expired.as_str()),
        ("garbage", "Bearer not-a-token"),
        ("not bearer", "Basic YWRtaW46YWRtaW4="),
    ] {
        for query in [INTROSPECTION, "{ topProducts(first: 1) { name } }"] {
            let (status, challenge, body) = post(&stack, Some(authorization), query).await;
            assert_eq!(status, 401, "{what}: {body}");
            assert_eq!(
                body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
                "{what}"
            );
            assert!(body.get("data").is_none(), "{what}: {body}");
            assert_eq!(
                challenge.as_deref(),
                Some("Bearer error=\"invalid_token\""),
                "{what}"
            );
        }
    }
    assert!(
        stack.accounts.requests().is_empty() && stack.products.requests().is_empty(),
        "a refused request reached a subgraph"
    );

    // GET and an SSE subscription are refused the same way.
    let get = stack
        .http
        .get(format!("{}?query={{__typename}}", stack.url()))
        .header("authorization", &forged)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status().as_u16(), 401);
    let sse = stack
        .http
        .post(stack.url())
        .header("accept", "text/event-stream")
        .header("authorization", &forged)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .expect("SSE");
    assert_eq!(sse.status().as_u16(), 401);

    // Valid and absent tokens pass.
    let valid = format!("Bearer {}", token(&keys, 600));
    let (status, _, body) = post(&stack, Some(&valid), INTROSPECTION).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post(&stack, None, INTROSPECTION).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_websocket_with_an_invalid_token_is_closed() {
    let stack = support::start_with(support::Options {
        configure: with_secret,
        ..Default::default()
    })
    .await;
    let url = stack.url().replace("http://", "ws://");
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    socket
        .send(Message::Text(
            json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } })
                .to_string()
                .into(),
        ))
        .await
        .expect("send");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(Some(frame))) => return Some(u16::from(frame.code)),
                Ok(Message::Text(text)) => assert!(!text.contains("connection_ack"), "{text}"),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("closed in time");
    assert_eq!(closed, Some(4403));

    // An upgrade request carrying an invalid token is refused outright.
    let mut request = stack
        .url()
        .replace("http://", "ws://")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    request
        .headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer forged"));
    assert!(tokio_tungstenite::connect_async(request).await.is_err());
}

#[tokio::test]
async fn without_introspection_the_schema_does_not_leak() {
    let stack = support::start_with(support::Options {
        configure: without_introspection,
        ..Default::default()
    })
    .await;
    for query in [
        INTROSPECTION,
        "{ __type(name: \"Query\") { name } }",
        "{ _service { sdl } }",
        "{ _entities(representations: []) { __typename } }",
    ] {
        let (status, _, body) = post(&stack, None, query).await;
        assert!(
            body.get("data").is_none() || body["data"].is_null(),
            "{query}: {body}"
        );
        assert!(status >= 400, "{query}: {status} {body}");
        assert!(!body.to_string().contains("sdl\":\""), "{query}: {body}");
    }
    // A near miss names no field of the schema.
    let (_, _, body) = post(&stack, None, "{ topProduct { name } }").await;
    let text = body.to_string();
    assert!(body["errors"].is_array(), "{body}");
    assert!(!text.contains("Did you mean"), "{text}");
    assert!(!text.contains("topProducts"), "{text}");
    assert!(stack.accounts.requests().is_empty() && stack.products.requests().is_empty());
}
