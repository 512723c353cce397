//! GraphQL over HTTP and WebSocket for a service's schema, with the caller's [`Principal`]
//! put into the request data. One place decides how a bearer token is read, so every
//! service treats a bad token the same way: refused with `UNAUTHENTICATED`, never demoted
//! to anonymous.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_graphql::connection::{Connection, Edge};
use async_graphql::http::GraphiQLSource;
use async_graphql::{
    BatchResponse, Data, ErrorExtensionValues, Executor, InputValueError, InputValueResult,
    OutputType, Scalar, ScalarType, ServerError, Value,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use futures_util::{Stream, StreamExt};

use crate::auth::{AuthError, JwtKeys, Principal};
use crate::client_address::{ClientAddress, TrustedProxies};
use crate::cursor::Cursor;
use crate::edge::MediaType;
use crate::event_log::{EventKind, EventStorage, LoggedEvent};
use crate::feed::EventFeed;
use crate::operation_limits::DocumentLimits;
use crate::page::Page;
use crate::rate_limit::{MutationLimiter, RateKey, Refusal};

/// A GraphQL error with a machine-readable `extensions.code`.
pub fn coded_error(code: &str, message: impl Into<String>) -> async_graphql::Error {
    let mut error = async_graphql::Error::new(message);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    error.extensions = Some(extensions);
    error
}

/// What one HTTP request (or WebSocket) to a service may bring and take. The refusals at
/// the door are decided before any GraphQL work and answer with a status and an
/// `extensions.code`; the limits on the document itself are enforced by the schema's
/// [`OperationLimits`](crate::operation_limits::OperationLimits) extension, and `document`
/// here only keeps the transport from parsing a document that extension will refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The largest request body read, in bytes: a larger one is cut off after this many bytes
    /// (`413`, `PAYLOAD_TOO_LARGE`), never read in full.
    pub max_body_bytes: usize,
    /// The most operations in one batched POST (a JSON array); more is `400`,
    /// `BATCH_LIMIT_EXCEEDED`, with none of them executed. `1` refuses batches.
    pub max_batch: usize,
    /// The same limits on tokens, directives and aliases the schema enforces: a document
    /// over them is not parsed by the transport (to tell a mutation apart) either.
    pub document: DocumentLimits,
    /// The longest a query or mutation (a whole batch) may run; `None`: no deadline. Past it
    /// the execution is dropped and the answer is `504`, `TIMEOUT` (over a WebSocket, an
    /// error with `TIMEOUT`). Dropping is safe: no resolver owns a write transaction; every
    /// write runs to completion on a task of its own (`database::run_to_completion`) and
    /// commits or rolls back whole whether or not anyone still waits for it.
    pub request_timeout: Option<Duration>,
    /// How long a WebSocket may stay open without `connection_init`; then it is closed with
    /// `4408` (graphql-transport-ws: "Connection initialisation timeout").
    pub connection_init_timeout: Duration,
    /// The most operations (subscriptions, queries, mutations) running at once on one
    /// WebSocket; one more gets an error with `TOO_MANY_OPERATIONS` and starts nothing.
    /// `0`: no limit.
    pub max_operations_per_socket: usize,
    /// Client timeouts and the bound on connections, before any request is read
    /// (`crate::edge`).
    pub edge: crate::edge::EdgeLimits,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            // The gateway's default too: a mutation with a few hundred purchase lines is a
            // few tens of kilobytes.
            max_body_bytes: crate::edge::DEFAULT_MAX_BODY_BYTES,
            // Apollo Client's BatchHttpLink sends at most 10 by default.
            max_batch: 10,
            document: DocumentLimits::default(),
            // The dashboard's heaviest read answers in tens of milliseconds; a request still
            // running after 10 s is stuck or an attack, and its client has likely given up.
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            // graphql-ws clients send `connection_init` at once; the gateway's own default.
            connection_init_timeout: Duration::from_secs(10),
            // The gateway's default (`--max-operations-per-socket`); the dashboard opens two
            // subscriptions per socket.
            max_operations_per_socket: 50,
            edge: crate::edge::EdgeLimits::default(),
        }
    }
}

/// The default execution deadline of a query or mutation.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The error of an operation that ran past its deadline.
fn timeout_error(timeout: Duration) -> ServerError {
    let mut error = ServerError::new(
        format!(
            "the operation did not finish within {} ms and was stopped",
            timeout.as_millis()
        ),
        None,
    );
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "TIMEOUT");
    error.extensions = Some(extensions);
    error
}

/// How requests are told apart by client: the address behind trusted proxies, and the
/// mutation rate limit per client.
#[derive(Debug, Clone, Default)]
pub struct ClientLimits {
    /// `None`: mutations are not rate limited.
    pub mutations: Option<Arc<MutationLimiter>>,
    pub trusted_proxies: TrustedProxies,
}

#[derive(Clone)]
struct Endpoint<E> {
    service: &'static str,
    executor: E,
    keys: Arc<JwtKeys>,
    limits: RequestLimits,
    clients: ClientLimits,
}

/// The peer of the connection, when the server was started with connection info.
type Peer = Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>;

fn peer_address(peer: &Peer) -> Option<std::net::SocketAddr> {
    peer.as_ref().map(|axum::Extension(info)| info.0)
}

/// `/graphql`: POST and GET queries, GraphiQL for a browser, and WebSocket subscriptions
/// (`graphql-transport-ws` and the legacy `graphql-ws`) on the same path.
/// `service` labels the error metrics. Each request's [`Principal`] and, when the server
/// was started with connection info, its [`ClientAddress`] go into the request data.
pub fn graphql_router<E>(
    service: &'static str,
    executor: E,
    keys: Arc<JwtKeys>,
    limits: RequestLimits,
    clients: ClientLimits,
) -> Router
where
    E: Executor + Clone,
{
    Router::new()
        .route("/graphql", get(get_graphql::<E>).post(post_graphql::<E>))
        .with_state(Endpoint {
            service,
            executor,
            keys,
            limits,
            clients,
        })
}

/// A request refused before execution, as a GraphQL response with `extensions.code`.
fn refused(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut server_error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    server_error.extensions = Some(extensions);
    let mut response =
        GraphQLResponse::from(async_graphql::Response::from_errors(vec![server_error]))
            .into_response();
    *response.status_mut() = status;
    response
}

/// 429 with `Retry-After` (when waiting helps) and `extensions.code` `RATE_LIMITED`.
fn rate_limited(service: &'static str, refusal: &Refusal) -> Response {
    crate::telemetry::rate_limited(service);
    let mut response = refused(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        refusal.message(),
    );
    if let Some(secs) = refusal.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// How many of the operations are mutations. The documents are parsed here, once: the
/// executor uses the parsed document (`Request::parsed_query`), so counting costs no second
/// parse. A document that does not parse counts as no mutation; execution reports why.
fn count_mutations<'a>(
    requests: impl Iterator<Item = &'a mut async_graphql::Request>,
    limits: &DocumentLimits,
) -> u32 {
    requests
        .map(|request| u32::from(is_mutation(request, limits)))
        .sum()
}

/// POST bodies must say they are JSON. A browser sends `text/plain`, form and multipart
/// bodies from any web page to any site without asking first (no CORS preflight), with the
/// visitor's cookies and credentials: accepting them would let any page buy or cancel in the
/// visitor's name (cross-site request forgery).
fn is_json_post(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "application/graphql-response+json"
}

/// Counts a response with errors: GraphQL sends them with HTTP 200.
fn count_errors(service: &'static str, response: &BatchResponse) {
    if !response.is_ok() {
        crate::telemetry::graphql_errored(service);
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn unauthenticated(error: &AuthError) -> Response {
    let mut server_error = ServerError::new(error.to_string(), None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "UNAUTHENTICATED");
    server_error.extensions = Some(extensions);
    let body = async_graphql::Response::from_errors(vec![server_error]);
    let mut response = GraphQLResponse::from(body).into_response();
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn post_graphql<E: Executor>(
    State(endpoint): State<Endpoint<E>>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !is_json_post(&headers) {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST requests must use Content-Type: application/json",
        );
    }
    let Some(media) = MediaType::negotiate(&headers) else {
        return not_acceptable();
    };
    // Read only once the content type is accepted, and never past the limit.
    let body = match crate::edge::read_body(&headers, body, endpoint.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(refusal) => {
            let (status, code) = refusal.status_and_code();
            let mut response = refused(status, code, refusal.to_string());
            // Whatever the client still sends is not read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    let principal = match endpoint.keys.principal_from_authorization(bearer(&headers)) {
        Ok(p) => p,
        Err(e) => return unauthenticated(&e),
    };
    let mut request: async_graphql::BatchRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("the body is not a GraphQL request: {e}"),
            );
        }
    };
    if let async_graphql::BatchRequest::Batch(operations) = &request
        && operations.len() > endpoint.limits.max_batch
    {
        return refused(
            StatusCode::BAD_REQUEST,
            "BATCH_LIMIT_EXCEEDED",
            format!(
                "a batch may hold at most {} operations, this one has {}",
                endpoint.limits.max_batch,
                operations.len()
            ),
        );
    }
    let address = endpoint
        .clients
        .trusted_proxies
        .client_address(peer_address(&peer), &headers)
        .map(ClientAddress::new);
    if let Some(limiter) = &endpoint.clients.mutations {
        let mutations = count_mutations(request.iter_mut(), &endpoint.limits.document);
        if let Err(refusal) = limiter.check(&RateKey::of(&principal, address), mutations) {
            return rate_limited(endpoint.service, &refusal);
        }
    }
    let mut request = request.data(principal);
    if let Some(address) = address {
        request = request.data(address);
    }
    let Some(response) = within_deadline(
        endpoint.limits.request_timeout,
        endpoint.executor.execute_batch(request),
    )
    .await
    else {
        return timed_out(&endpoint);
    };
    count_errors(endpoint.service, &response);
    respond(media, response)
}

/// Runs `execution` to its end or its deadline, whichever comes first; `None` when the
/// deadline passed and the execution was dropped (see [`RequestLimits::request_timeout`]
/// for why dropping is safe).
async fn within_deadline<T>(
    deadline: Option<Duration>,
    execution: impl std::future::Future<Output = T>,
) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout(deadline, execution).await.ok(),
        None => Some(execution.await),
    }
}

/// 504 with `extensions.code` `TIMEOUT`.
fn timed_out<E>(endpoint: &Endpoint<E>) -> Response {
    crate::telemetry::graphql_errored(endpoint.service);
    let timeout = endpoint.limits.request_timeout.unwrap_or_default();
    tracing::warn!(
        service = endpoint.service,
        timeout_ms = timeout.as_millis() as u64,
        "a request ran past its deadline and was stopped"
    );
    refused(
        StatusCode::GATEWAY_TIMEOUT,
        "TIMEOUT",
        timeout_error(timeout).message,
    )
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

async fn get_graphql<E: Executor>(
    State(endpoint): State<Endpoint<E>>,
    peer: Peer,
    request: Request,
) -> Response {
    let (mut parts, _) = request.into_parts();
    let address = endpoint
        .clients
        .trusted_proxies
        .client_address(peer_address(&peer), &parts.headers)
        .map(ClientAddress::new);
    if is_websocket_upgrade(&parts.headers) {
        return upgrade_websocket(endpoint, &mut parts, address).await;
    }
    let query = parts.uri.query().unwrap_or_default();
    if query.is_empty() && wants_html(&parts.headers) {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .finish(),
        )
        .into_response();
    }
    let Some(media) = MediaType::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let principal = match endpoint
        .keys
        .principal_from_authorization(bearer(&parts.headers))
    {
        Ok(p) => p,
        Err(e) => return unauthenticated(&e),
    };
    let mut request = match async_graphql::http::parse_query_string(query) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("invalid GraphQL request: {e}"),
            )
                .into_response();
        }
    };
    // GraphQL over HTTP: GET must never change state.
    if is_mutation(&mut request, &endpoint.limits.document) {
        let mut response = (
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let mut request = request.data(principal);
    if let Some(address) = address {
        request = request.data(address);
    }
    let Some(response) = within_deadline(
        endpoint.limits.request_timeout,
        endpoint.executor.execute(request),
    )
    .await
    else {
        return timed_out(&endpoint);
    };
    let response: BatchResponse = response.into();
    count_errors(endpoint.service, &response);
    respond(media, response)
}

/// 406: the client accepts neither GraphQL response media type.
fn not_acceptable() -> Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, MediaType::JSON)],
        format!(
            r#"{{"errors":[{{"message":"Accept {} or {}","extensions":{{"code":"NOT_ACCEPTABLE"}}}}]}}"#,
            MediaType::GRAPHQL_RESPONSE_JSON,
            MediaType::JSON
        ),
    )
        .into_response()
}

/// Answers in the negotiated media type (GraphQL over HTTP). Under
/// `application/graphql-response+json`, a request that never executed (a document that does
/// not parse or validate, variables that do not coerce, a limit refusing it) is a 400 without
/// `data`; under `application/json` every answer is a 200, as legacy clients expect.
fn respond(media: MediaType, response: BatchResponse) -> Response {
    let (status, body) = match &response {
        BatchResponse::Single(single)
            if media == MediaType::GraphQLResponseJson && never_executed(single) =>
        {
            let body = serde_json::to_value(single).map(|mut value| {
                if let Some(object) = value.as_object_mut() {
                    object.remove("data");
                }
                value
            });
            (
                StatusCode::BAD_REQUEST,
                body.and_then(|v| serde_json::to_vec(&v)),
            )
        }
        _ => (StatusCode::OK, serde_json::to_vec(&response)),
    };
    let Ok(body) = body else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot serialise the response",
        )
            .into_response();
    };
    let mut http = (status, [(header::CONTENT_TYPE, media.as_str())], body).into_response();
    // Caching headers the schema set (async-graphql's `cache_control`), as its own responder.
    if let BatchResponse::Single(single) = &response
        && let Some(value) = single.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        http.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    for (name, value) in response.http_headers_iter() {
        http.headers_mut().append(name, value);
    }
    http
}

/// A response without data whose errors name no field: the operation never ran. (A field
/// error that nulls the whole result has a path.)
fn never_executed(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// Whether the operation the request runs is a mutation. Parses the document into the
/// request, where execution finds it, unless its text is over the document limits: then
/// execution refuses it before parsing, and it counts as no mutation.
fn is_mutation(request: &mut async_graphql::Request, limits: &DocumentLimits) -> bool {
    use async_graphql::parser::types::OperationType;
    operation_types(request, limits).contains(&OperationType::Mutation)
}

/// The types of the operations the request may run (the named one, or all of them).
fn operation_types(
    request: &mut async_graphql::Request,
    limits: &DocumentLimits,
) -> Vec<async_graphql::parser::types::OperationType> {
    if crate::operation_limits::check_text(&request.query, limits).is_err() {
        return Vec::new();
    }
    let wanted = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return Vec::new();
    };
    document
        .operations
        .iter()
        .filter(|(name, _)| match (&wanted, name) {
            (Some(wanted), Some(name)) => wanted.as_str() == name.as_str(),
            _ => true,
        })
        .map(|(_, op)| op.node.ty)
        .collect()
}

async fn upgrade_websocket<E: Executor>(
    endpoint: Endpoint<E>,
    parts: &mut axum::http::request::Parts,
    address: Option<ClientAddress>,
) -> Response {
    let protocol = match GraphQLProtocol::from_request_parts(parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    // A token on the upgrade request is the fallback; one in `connection_init` wins, since
    // browsers cannot set headers on a WebSocket.
    let header_principal = endpoint
        .keys
        .principal_from_authorization(bearer(&parts.headers));
    let keys = Arc::clone(&endpoint.keys);
    // Mutations sent over the socket draw from the same bucket as over HTTP: the client is
    // known once `connection_init` has named it.
    let client = Arc::new(std::sync::OnceLock::new());
    let executor = SocketExecutor {
        inner: endpoint.executor.clone(),
        service: endpoint.service,
        limiter: endpoint.clients.mutations.clone(),
        client: Arc::clone(&client),
        address,
        limits: endpoint.limits,
        running: Arc::new(AtomicUsize::new(0)),
    };
    let init_timeout = endpoint.limits.connection_init_timeout;
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            use futures_util::SinkExt;
            // The socket's writer is shared so that, when `connection_init` does not come in
            // time, the close frame can be sent after the protocol handler is dropped.
            let (sink, stream) = socket.split();
            let sink = Arc::new(tokio::sync::Mutex::new(sink));
            let writer = futures_util::sink::unfold(
                Arc::clone(&sink),
                |sink, message: axum::extract::ws::Message| async move {
                    sink.lock().await.send(message).await?;
                    Ok::<_, axum::Error>(sink)
                },
            );
            let (initialised, init) = tokio::sync::oneshot::channel::<()>();
            let serve =
                GraphQLWebSocket::new_with_pair(Box::pin(writer), stream, executor, protocol)
                    .on_connection_init(move |payload| async move {
                        let _ = initialised.send(());
                        let principal = match token_in_payload(&payload) {
                            Some(value) => keys.principal_from_authorization(Some(&value)),
                            None => header_principal,
                        }
                        .map_err(|e| coded_error("UNAUTHENTICATED", e.to_string()))?;
                        let _ = client.set(RateKey::of(&principal, address));
                        let mut data = Data::default();
                        data.insert(principal);
                        if let Some(address) = address {
                            data.insert(address);
                        }
                        Ok(data)
                    })
                    .serve();
            // Boxed, not pinned on the stack: dropping it must drop the handler (and any
            // write it holds the socket's writer for) before the close frame is sent.
            let mut serve = Box::pin(serve);
            tokio::select! {
                () = &mut serve => return,
                waited = tokio::time::timeout(init_timeout, init) => {
                    // `connection_init` came (or the handler is finishing without one).
                    if waited.is_ok() {
                        serve.await;
                        return;
                    }
                }
            }
            // A socket that never initialises holds a connection and a task for nothing.
            drop(serve);
            let mut sink = sink.lock().await;
            let _ = sink
                .send(axum::extract::ws::Message::Close(Some(
                    axum::extract::ws::CloseFrame {
                        code: 4408,
                        reason: "Connection initialisation timeout".into(),
                    },
                )))
                .await;
            let _ = sink.close().await;
        })
}

/// The service's executor as a WebSocket runs it: a mutation over the socket is counted
/// against the client's bucket like one over HTTP, and refused with `RATE_LIMITED` (and
/// `extensions.retryAfter` in seconds) as the operation's only result; at most
/// `max_operations_per_socket` operations run at once (`TOO_MANY_OPERATIONS` beyond); a query
/// or mutation has the same deadline as over HTTP (`TIMEOUT`).
#[derive(Clone)]
struct SocketExecutor<E> {
    inner: E,
    service: &'static str,
    limiter: Option<Arc<MutationLimiter>>,
    /// Set by `connection_init`.
    client: Arc<std::sync::OnceLock<RateKey>>,
    address: Option<ClientAddress>,
    limits: RequestLimits,
    /// The operations running on this socket.
    running: Arc<AtomicUsize>,
}

/// One operation's only answer: an error with `code` (and more extensions).
fn error_stream(
    message: String,
    code: &str,
    more: impl FnOnce(&mut ErrorExtensionValues),
) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code);
    more(&mut extensions);
    error.extensions = Some(extensions);
    let response = async_graphql::Response::from_errors(vec![error]);
    futures_util::stream::once(async move { response }).boxed()
}

/// Counts an operation as running on its socket until dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<E: Executor> Executor for SocketExecutor<E> {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        self.inner.execute(request).await
    }

    fn execute_stream(
        &self,
        mut request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        use async_graphql::parser::types::OperationType;
        let max = self.limits.max_operations_per_socket;
        let running = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        let guard = Running(Arc::clone(&self.running));
        if max > 0 && running > max {
            return error_stream(
                format!("at most {max} operations may run at once on one WebSocket"),
                "TOO_MANY_OPERATIONS",
                |extensions| extensions.set("limit", max as u64),
            );
        }
        let types = operation_types(&mut request, &self.limits.document);
        if let Some(limiter) = &self.limiter
            && types.contains(&OperationType::Mutation)
        {
            let key = self
                .client
                .get()
                .cloned()
                .unwrap_or_else(|| RateKey::of(&Principal::anonymous(), self.address));
            if let Err(refusal) = limiter.check(&key, 1) {
                crate::telemetry::rate_limited(self.service);
                let retry_after = refusal.retry_after_secs();
                return error_stream(refusal.message(), "RATE_LIMITED", |extensions| {
                    if let Some(secs) = retry_after {
                        extensions.set("retryAfter", secs);
                    }
                });
            }
        }
        let stream = self.inner.execute_stream(request, session_data);
        let deadline = self
            .limits
            .request_timeout
            .filter(|_| !types.contains(&OperationType::Subscription));
        match deadline {
            // A query or mutation answers once, within the deadline.
            Some(deadline) => {
                let answer = async move {
                    let mut stream = stream;
                    let answer = tokio::time::timeout(deadline, stream.next()).await;
                    drop(guard);
                    match answer {
                        Ok(answer) => answer,
                        Err(_) => Some(async_graphql::Response::from_errors(vec![timeout_error(
                            deadline,
                        )])),
                    }
                };
                futures_util::stream::once(answer)
                    .filter_map(futures_util::future::ready)
                    .boxed()
            }
            None => stream
                .map(move |response| {
                    let _running = &guard;
                    response
                })
                .boxed(),
        }
    }
}

/// Accepts `{"Authorization": "Bearer …"}` in any letter case, or `{"token": "…"}`.
fn token_in_payload(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    for (key, value) in object {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            return Some(text.to_owned());
        }
        if key.eq_ignore_ascii_case("token") || key.eq_ignore_ascii_case("authToken") {
            return Some(format!("Bearer {text}"));
        }
    }
    None
}

/// The principal a resolver runs as; anonymous when the transport put none in.
pub fn principal<'a>(ctx: &'a async_graphql::Context<'_>) -> std::borrow::Cow<'a, Principal> {
    match ctx.data_opt::<Principal>() {
        Some(p) => std::borrow::Cow::Borrowed(p),
        None => std::borrow::Cow::Owned(Principal::anonymous()),
    }
}

/// A calendar date, `YYYY-MM-DD`: a transport primitive every service's schema spells the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom(format!("{s:?} is not a YYYY-MM-DD date"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// An amount of money as the services' APIs carry it: whole minor units, at most 2^53 - 1
/// either way. One definition for both services, so the gateway composes their `Money` types
/// into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorUnits(pub i64);

impl MinorUnits {
    /// 2^53 - 1: the largest integer a JavaScript number holds exactly.
    pub const MAX: i64 = (1 << 53) - 1;
}

/// A whole amount of money in the currency's minor units, e.g. cents; a JSON number from
/// -(2^53-1) to 2^53-1 so JavaScript clients keep it exact.
#[Scalar(name = "MinorUnits")]
impl ScalarType for MinorUnits {
    fn parse(value: Value) -> InputValueResult<Self> {
        const MAX: i64 = MinorUnits::MAX;
        let Value::Number(number) = &value else {
            return Err(InputValueError::custom(format!(
                "an amount must be a JSON number of minor units (e.g. 1999 for 19.99), got {value}"
            )));
        };
        let whole = match number.as_i64() {
            Some(amount) => Some(amount),
            // 1999.0 is the same number as 1999 to a JavaScript client.
            None => number
                .as_f64()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX as f64)
                .map(|f| f as i64),
        };
        match whole {
            Some(amount) if (-MAX..=MAX).contains(&amount) => Ok(Self(amount)),
            None if !number.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Err(InputValueError::custom(format!(
                    "an amount must be a whole number of minor units (cents, not euros), got {number}"
                )))
            }
            _ => Err(InputValueError::custom(format!(
                "an amount must be between -{MAX} and {MAX} minor units (2^53 - 1), got {number}"
            ))),
        }
    }

    fn is_valid(value: &Value) -> bool {
        // Checked in `parse`, which says what is wrong.
        matches!(value, Value::Number(_))
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// Gives the errors async-graphql raises itself an `extensions.code`, as the gateway does
/// for the same errors: a value that does not fit its type (an `Int` over 2^31 - 1, a
/// fraction where `MinorUnits` are expected), in the query or in the variables, is
/// `BAD_USER_INPUT`; other validation failures `GRAPHQL_VALIDATION_FAILED`; unparsable
/// documents `GRAPHQL_PARSE_FAILED`. Errors that already carry a code keep it.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

fn has_code(error: &async_graphql::ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

fn set_code(error: &mut async_graphql::ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

/// The code of an input value that does not fit its type, by the messages async-graphql
/// words them with (argument validation and input coercion).
fn is_bad_input_value(error: &async_graphql::ServerError) -> bool {
    error.message.starts_with("Invalid value for argument")
        || error.message.starts_with("Failed to parse")
}

fn code_execution_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        if !has_code(error) && is_bad_input_value(error) {
            set_code(error, "BAD_USER_INPUT");
        }
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: async_graphql::extensions::NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<async_graphql::parser::types::ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut error| {
            if !has_code(&error) {
                set_code(&mut error, "GRAPHQL_PARSE_FAILED");
            }
            error
        })
    }

    async fn validation(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for error in &mut errors {
                if !has_code(error) {
                    let code = if is_bad_input_value(error) {
                        "BAD_USER_INPUT"
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    };
                    set_code(error, code);
                }
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        let mut response = next.run(ctx, operation_name).await;
        code_execution_errors(&mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures_util::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures_util::stream::BoxStream<'s, async_graphql::Response> {
        use futures_util::StreamExt;
        next.run(ctx, stream)
            .map(|mut response| {
                code_execution_errors(&mut response);
                response
            })
            .boxed()
    }
}

/// `first` as a page size: `default` when left out, refused outside `0..=max`.
pub fn page_size(first: Option<i32>, default: i32, max: i32) -> async_graphql::Result<i64> {
    match first.unwrap_or(default) {
        n if (0..=max).contains(&n) => Ok(i64::from(n)),
        n => Err(coded_error(
            "BAD_USER_INPUT",
            format!("first must be between 0 and {max}, got {n}"),
        )),
    }
}

/// What a cursor of `E`'s log is called in messages: its kind with the dash as a space.
fn event_cursor_name<K: EventKind>() -> String {
    K::CURSOR_KIND.replace('-', " ")
}

/// The log position an `after` cursor of `K`'s log names; `None` when there is no cursor.
pub fn event_position<K: EventKind>(after: Option<&str>) -> async_graphql::Result<Option<i64>> {
    after
        .map(|c| {
            Cursor::decode_position(K::CURSOR_KIND, c).ok_or_else(|| {
                coded_error(
                    "BAD_USER_INPUT",
                    format!("{c:?} is not a {} cursor", event_cursor_name::<K>()),
                )
            })
        })
        .transpose()
}

/// A page of an event log as a connection: `first` events after `position`, oldest first,
/// each as the service's GraphQL event type `N`.
pub async fn event_page<S, N>(
    storage: &S,
    position: i64,
    first: i64,
) -> Result<Connection<String, N>, S::Error>
where
    S: EventStorage + ?Sized,
    N: From<Arc<LoggedEvent<S::Kind>>> + OutputType,
{
    let events = if first == 0 {
        Vec::new()
    } else {
        storage.events_after(position, first + 1).await?
    };
    let page = Page::from_lookahead(events, first);
    let mut connection = Connection::new(position > 0, page.has_next_page);
    connection.edges.extend(page.items.into_iter().map(|e| {
        let event = Arc::new(e);
        Edge::new(event.cursor(), N::from(event))
    }));
    Ok(connection)
}

/// The feed from `after` on as a subscription stream of the service's GraphQL event type.
/// A feed failure ends the stream with an error that tells the client how to resume.
pub fn event_stream<K, N>(
    feed: &Arc<EventFeed<LoggedEvent<K>>>,
    after: i64,
) -> impl Stream<Item = async_graphql::Result<N>> + Send + use<K, N>
where
    K: EventKind,
    N: From<Arc<LoggedEvent<K>>> + Send,
{
    feed.subscribe(after).map(|item| {
        item.map(N::from).map_err(|e| {
            tracing::warn!(error = %e, "{} feed failed", event_cursor_name::<K>());
            coded_error(
                "INTERNAL_SERVER_ERROR",
                "the event log is unavailable; resubscribe with your last cursor",
            )
        })
    })
}
