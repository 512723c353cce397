//! The gateway as a `graphql-transport-ws` client of the subgraph that owns a subscription's
//! root field.
//!
//! Hand-written over tokio-tungstenite rather than a client crate: the gateway needs one
//! operation per socket and three behaviours (credentials in both the upgrade request and
//! `connection_init`, ping/pong, telling a normal `complete` from a dropped connection), which
//! is less code than adapting a general client. One socket per client subscription keeps
//! credentials from ever being shared between clients.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::forwarded_headers::ForwardedHeaders;
use crate::subgraph_client::SubgraphResponse;

const PROTOCOL: &str = "graphql-transport-ws";
/// The only operation on the socket.
const OPERATION_ID: &str = "1";

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no WebSocket URL for the subgraph")]
    NoUrl,
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no connection_ack within {0:?}")]
    Timeout(Duration),
    #[error("the subgraph closed the connection during the handshake{0}")]
    Refused(String),
}

/// What the subgraph sent next.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// One execution result of the subscription.
    Next(SubgraphResponse),
    /// The subgraph rejected the operation (`error` message); no events follow.
    Error(Vec<Value>),
    /// The subgraph ended the subscription normally.
    Complete,
    /// The connection ended without `complete`: the client must resubscribe.
    Dropped(String),
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct UpstreamSubscription {
    /// Taken by `Drop` to say goodbye on a task of its own.
    socket: Option<Socket>,
    /// The subgraph ended the operation (or the connection); nothing to say on drop.
    finished: bool,
}

impl UpstreamSubscription {
    /// Connects, initialises with the client's credentials and subscribes; everything up to the
    /// `subscribe` message must finish within `timeout`.
    pub async fn start(
        url: &str,
        forwarded: &ForwardedHeaders,
        operation: &str,
        variables: Map<String, Value>,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        tokio::time::timeout(
            timeout,
            Self::handshake(url, forwarded, operation, variables),
        )
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))?
    }

    async fn handshake(
        url: &str,
        forwarded: &ForwardedHeaders,
        operation: &str,
        variables: Map<String, Value>,
    ) -> Result<Self, UpstreamError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        request
            .headers_mut()
            .insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(PROTOCOL));
        for (name, value) in forwarded.iter() {
            request.headers_mut().append(name.clone(), value.clone());
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;

        // Servers read credentials from either place; async-graphql's `on_connection_init`
        // only sees the payload, so every forwarded header is sent there as well as in the
        // upgrade request: `Authorization` under that key, as clients send it, the others
        // under their (lower-case) header names.
        let mut payload = Map::new();
        for (name, value) in forwarded.iter() {
            let Ok(value) = value.to_str() else {
                continue;
            };
            let key = if *name == AUTHORIZATION {
                "Authorization"
            } else {
                name.as_str()
            };
            // A repeated header keeps its first value: a payload key holds one.
            payload
                .entry(key)
                .or_insert_with(|| Value::String(value.to_string()));
        }
        send(
            &mut socket,
            json!({ "type": "connection_init", "payload": payload }),
        )
        .await
        .map_err(UpstreamError::Connect)?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Incoming>(&text) {
                    Ok(message) if message.kind == "connection_ack" => break,
                    Ok(message) if message.kind == "ping" => {
                        send(&mut socket, json!({ "type": "pong" }))
                            .await
                            .map_err(UpstreamError::Connect)?;
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(frame))) => {
                    let reason = frame
                        .map(|f| format!(": {} {}", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    return Err(UpstreamError::Refused(reason));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
                None => return Err(UpstreamError::Refused(String::new())),
            }
        }
        send(
            &mut socket,
            json!({
                "type": "subscribe",
                "id": OPERATION_ID,
                "payload": { "query": operation, "variables": variables },
            }),
        )
        .await
        .map_err(UpstreamError::Connect)?;
        Ok(UpstreamSubscription {
            socket: Some(socket),
            finished: false,
        })
    }

    /// Waits for the next event. After anything but `Next` the subscription is over.
    pub async fn next(&mut self) -> UpstreamEvent {
        let event = self.read().await;
        if !matches!(event, UpstreamEvent::Next(_)) {
            self.finished = true;
        }
        event
    }

    async fn read(&mut self) -> UpstreamEvent {
        let Some(socket) = self.socket.as_mut() else {
            return UpstreamEvent::Dropped("connection closed".into());
        };
        loop {
            let message = match socket.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return UpstreamEvent::Dropped(e.to_string()),
                None => return UpstreamEvent::Dropped("connection closed".into()),
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    let reason = frame
                        .map(|f| format!("closed with {} {}", u16::from(f.code), f.reason))
                        .unwrap_or_else(|| "closed".into());
                    return UpstreamEvent::Dropped(reason);
                }
                // tungstenite answers pings itself; binary frames are not part of the protocol.
                _ => continue,
            };
            let Ok(incoming) = serde_json::from_str::<Incoming>(&text) else {
                continue;
            };
            if incoming.id.as_deref().is_some_and(|id| id != OPERATION_ID) {
                continue;
            }
            match incoming.kind.as_str() {
                "next" => {
                    let payload = incoming.payload.unwrap_or(Value::Null);
                    match SubgraphResponse::from_value(payload) {
                        Ok(response) => return UpstreamEvent::Next(response),
                        Err(e) => {
                            return UpstreamEvent::Dropped(format!("invalid next payload: {e}"));
                        }
                    }
                }
                "error" => {
                    let errors = match incoming.payload {
                        Some(Value::Array(errors)) => errors,
                        Some(other) => vec![other],
                        None => Vec::new(),
                    };
                    return UpstreamEvent::Error(errors);
                }
                "complete" => return UpstreamEvent::Complete,
                "ping" => {
                    if let Err(e) = send(socket, json!({ "type": "pong" })).await {
                        return UpstreamEvent::Dropped(e);
                    }
                }
                _ => {}
            }
        }
    }
}

impl Drop for UpstreamSubscription {
    /// The client went away (unsubscribed or disconnected) while the subgraph still streams:
    /// tell it with `complete` and a normal close so it stops producing at once, instead of
    /// noticing a dead TCP connection at its next write. Best effort, off the caller's path.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let (Some(mut socket), Ok(runtime)) =
            (self.socket.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            let _ = send(
                &mut socket,
                json!({ "type": "complete", "id": OPERATION_ID }),
            )
            .await;
            let _ = socket.close(None).await;
        });
    }
}

async fn send(socket: &mut Socket, message: Value) -> Result<(), String> {
    socket
        .send(Message::text(message.to_string()))
        .await
        .map_err(|e| e.to_string())
}

/// The WebSocket URL of a subgraph served over HTTP: same host and path, `ws`/`wss` scheme.
pub fn websocket_url(http_url: &str) -> Option<String> {
    if let Some(rest) = http_url.strip_prefix("http://") {
        Some(format!("ws://{rest}"))
    } else if let Some(rest) = http_url.strip_prefix("https://") {
        Some(format!("wss://{rest}"))
    } else if http_url.starts_with("ws://") || http_url.starts_with("wss://") {
        Some(http_url.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::websocket_url;

    #[test]
    fn websocket_urls_follow_the_http_scheme() {
        assert_eq!(
            websocket_url("http://127.0.0.1:4001/graphql").as_deref(),
            Some("ws://127.0.0.1:4001/graphql")
        );
        assert_eq!(
            websocket_url("https://a.example/graphql").as_deref(),
            Some("wss://a.example/graphql")
        );
        assert_eq!(websocket_url("unix:/tmp/socket"), None);
    }
}
