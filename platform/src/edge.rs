//! The edge all three servers share: how connections are accepted and how long a client may
//! take, before any request reaches a router.
//!
//! `axum::serve` sets no timer, so a client that sends its headers one byte a minute, trickles
//! a body, or opens a connection and says nothing holds it for ever; and it accepts without
//! bound. Here every connection is served by hyper's HTTP/1.1 server with
//! - a header read timeout: the request head must arrive within it, counted from the moment the
//!   connection is ready for one, so it is also how long a kept-alive connection may sit idle;
//! - a body read timeout between two chunks of a request body;
//! - at most `max_connections` connections being served at once; further ones wait in the
//!   listen backlog until one closes (a WebSocket leaves the count once upgraded: the
//!   gateway bounds those per address).
//!
//! Each request carries `ConnectInfo<SocketAddr>` (per-client limits count the peer), and
//! `TCP_NODELAY` is set where the server asks for it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long clients may take and how many connections are served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Time to send a request's head, from when the connection is ready for one.
    pub header_read_timeout: Duration,
    /// Time between two chunks of a request body.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Send small writes at once (`TCP_NODELAY`) instead of letting Nagle's algorithm wait
    /// for the previous segment's acknowledgement.
    pub tcp_nodelay: bool,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 8192,
            tcp_nodelay: true,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// connection finish its request in flight and returns once all have closed (the caller bounds
/// that with its shutdown grace).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped when shutdown begins: every connection sees it and closes gracefully.
    let (stop, stopping) = watch::channel(());
    // Each connection holds a receiver; all dropped means all connections closed.
    let (open, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if limits.tcp_nodelay
            && let Err(error) = stream.set_nodelay(true)
        {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = router
            .clone()
            .map_request(move |request: hyper::Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let header_read_timeout = limits.header_read_timeout;
        let mut stopping = stopping.clone();
        let open = open.subscribe();
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection = http
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                served = connection.as_mut() => log_end(served, peer),
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    log_end(connection.await, peer);
                }
            }
            drop(open);
            drop(slot);
        });
    }
    drop(stop);
    drop(listener);
    open.closed().await;
    Ok(())
}

fn log_end(served: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(error) = served {
        // Timeouts, resets and malformed requests end here: the client's doing.
        tracing::debug!(%error, %peer, "connection ended");
    }
}

/// The largest request body the three servers read by default. Reading costs about 1 ms
/// of CPU per megabyte on this project's 2-core reference machine (the kernel's receive path
/// and one pass of the JSON decoder), and a hostile body just under the limit is read in
/// full before it can be refused: 512 KiB keeps such a refusal near half a millisecond. It
/// is ample for every request these servers see: the dashboard's largest documents are a
/// few kilobytes, a document at the gateway's token limit about 100 KB, and the gateway's
/// largest entity fetch (its cost limit allows a few thousand representations) well under it.
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 * 1024;

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyRefusal {
    /// Declared or found to be over the limit: answer 413.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The client paused longer than the body read timeout between two chunks: answer 408.
    #[error("the request body did not arrive in time")]
    TimedOut,
    /// The client stopped sending or sent a malformed body: answer 400.
    #[error("the request body could not be read: {0}")]
    Unreadable(String),
}

/// Reads a request body of at most `limit` bytes. A body whose `Content-Length` is over the
/// limit is refused before a byte of it is read (the connection then closes unread, so the
/// refusal costs nothing whatever the client uploads); one without a length, or lying about
/// it, is cut off as soon as it passes the limit.
pub async fn read_body(
    headers: &axum::http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, BodyRefusal> {
    use http_body_util::BodyExt;

    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyRefusal::TooLarge { limit });
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            Err(BodyRefusal::TooLarge { limit })
        }
        Err(error) if timed_out(error.as_ref()) => Err(BodyRefusal::TimedOut),
        Err(error) => Err(BodyRefusal::Unreadable(error.to_string())),
    }
}

impl BodyRefusal {
    /// The HTTP status and `extensions.code` a refusal is answered with.
    pub fn status_and_code(&self) -> (axum::http::StatusCode, &'static str) {
        use axum::http::StatusCode;
        match self {
            Self::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::TimedOut => (StatusCode::REQUEST_TIMEOUT, "REQUEST_TIMEOUT"),
            Self::Unreadable(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        }
    }
}

/// Whether a body error is, somewhere down its chain, the body read timeout's (axum wraps it).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// The response media types of GraphQL over HTTP.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MediaType {
    /// `application/graphql-response+json`: requests refused before execution get a 4xx
    /// status and no `data`.
    GraphQLResponseJson,
    /// `application/json`, the legacy type: every GraphQL answer is a 200.
    Json,
}

impl MediaType {
    pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
    pub const JSON: &str = "application/json";

    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphQLResponseJson => Self::GRAPHQL_RESPONSE_JSON,
            MediaType::Json => Self::JSON,
        }
    }

    /// Picks the response media type from `Accept` (GraphQL over HTTP: the new type when the
    /// client lists it, JSON for `application/json`, `application/*`, `*/*` or no `Accept`);
    /// `None` when the client accepts neither (406).
    pub fn negotiate(headers: &axum::http::HeaderMap) -> Option<MediaType> {
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
        else {
            return Some(MediaType::Json);
        };
        let mut json = false;
        for part in accept.split(',') {
            let media = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            match media.as_str() {
                Self::GRAPHQL_RESPONSE_JSON => return Some(MediaType::GraphQLResponseJson),
                Self::JSON | "application/*" | "*/*" => json = true,
                _ => {}
            }
        }
        json.then_some(MediaType::Json)
    }
}
