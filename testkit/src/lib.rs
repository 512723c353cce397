//! What every service's tests need and nothing domain-specific: a database of its own for
//! each server under test, and a GraphQL-over-WebSocket client that speaks both protocols.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A database URL for one server under test. With `TEST_DATABASE_URL` set, a new PostgreSQL
/// database named after `service` is created on that server; if the server cannot be reached
/// the test fails, it never falls back to SQLite quietly. Otherwise a SQLite file in a
/// temporary directory, which lives as long as the returned guard.
pub async fn fresh_database_url(service: &str) -> (String, Option<tempfile::TempDir>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server_url) if !server_url.is_empty() => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server_url)
                .await
                .unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL={server_url} is set but unreachable: {e}")
                });
            let name = format!("{service}_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
            (database_url_on(&server_url, &name), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!(
                "sqlite://{}",
                dir.path().join(format!("{service}.db")).display()
            );
            (url, Some(dir))
        }
    }
}

/// The URL of database `name` on the server `server_url` points at.
pub fn database_url_on(server_url: &str, name: &str) -> String {
    let (scheme, rest) = server_url
        .split_once("://")
        .expect("a database URL needs a scheme, e.g. postgres://postgres@127.0.0.1:5432");
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let query = rest
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {body:#}"))
        .to_owned()
}

/// A GraphQL subscription over WebSocket, speaking `graphql-transport-ws` or the legacy
/// `graphql-ws` protocol.
pub struct WsSubscription {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    legacy: bool,
}

impl WsSubscription {
    pub async fn open(
        url: &str,
        protocol: &str,
        init_payload: Value,
        query: &str,
        variables: Value,
    ) -> Result<Self, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.parse().map_err(|_| "bad protocol".to_owned())?,
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let legacy = protocol == "graphql-ws";
        let send = |v: Value| Message::Text(v.to_string().into());
        socket
            .send(send(
                json!({ "type": "connection_init", "payload": init_payload }),
            ))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .map_err(|_| "no connection_ack".to_owned())?
                .ok_or("socket closed before ack")?
                .map_err(|e| e.to_string())?;
            match message {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    match v["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ka") => continue,
                        _ => return Err(format!("unexpected before ack: {v}")),
                    }
                }
                Message::Close(frame) => return Err(format!("closed: {frame:?}")),
                _ => continue,
            }
        }
        let start = if legacy { "start" } else { "subscribe" };
        socket
            .send(send(json!({
                "id": "1", "type": start,
                "payload": { "query": query, "variables": variables }
            })))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { socket, legacy })
    }

    /// The next `next`/`data` payload, or an error message for anything else (`error`,
    /// `complete`, a close) or a timeout.
    pub async fn next_payload(&mut self, timeout: Duration) -> Result<Value, String> {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .map_err(|_| "timed out waiting for an event".to_owned())?
                .ok_or("socket closed")?
                .map_err(|e| e.to_string())?;
            let Message::Text(text) = message else {
                if let Message::Close(frame) = message {
                    return Err(format!("closed: {frame:?}"));
                }
                continue;
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            match v["type"].as_str() {
                Some("next") | Some("data") => return Ok(v["payload"].clone()),
                Some("ka") | Some("ping") | Some("pong") => continue,
                _ => return Err(format!("{v}")),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}
