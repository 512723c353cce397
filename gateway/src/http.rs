//! The HTTP surface: GraphQL over HTTP (POST and GET on `/graphql`), the streaming transports
//! on the same route (WebSocket upgrade, `Accept: text/event-stream`), `/health`, `/ready` and
//! `/metrics`.
//!
//! Content negotiation follows the GraphQL-over-HTTP spec: a client that accepts
//! `application/graphql-response+json` gets that media type and HTTP 4xx for requests rejected
//! before execution; a legacy `application/json` client always gets 200 for GraphQL errors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::get;
use axum::{Extension, Router};

use apollo_compiler::ast::OperationType;
use futures_util::FutureExt;

use platform::edge::MediaType;

use crate::forwarded_headers::ClientAddress;
use crate::incremental;
use crate::metrics::RequestOutcome;
use crate::pipeline::defer::Format;
use crate::pipeline::{GraphQLRequest, Outcome, Pipeline, Transport};
use crate::response::{GraphQLError, Response};
use crate::shared_requests::{ClientRequestKey, SharedClientRequests, SharedResponse};
use crate::subscriptions::{multipart, sse, ws};

/// GraphiQL for a gateway that serves no web dir (the standalone binary): its scripts come from
/// a public CDN, so this page needs internet. With a web dir, [`BundledGraphiQL`] is served.
const GRAPHIQL: &str = include_str!("graphiql.html");
const JSON: &str = "application/json";

pub fn router(pipeline: Arc<Pipeline>, readiness: Readiness) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(graphql_get)
                .post(graphql_post)
                .route_layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&pipeline),
                    refuse_invalid_tokens,
                )),
        )
        .route("/health", get(health))
        .route("/ready", get(ready).with_state(readiness))
        .route("/metrics", get(metrics))
        .with_state(pipeline)
}

/// Whether the gateway takes new work. A router exists only once the supergraph is loaded, so
/// the gateway is ready from its first answer until graceful shutdown begins; then `/ready`
/// turns 503 so that load balancers send new requests elsewhere while the last ones finish.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

async fn ready(State(readiness): State<Readiness>) -> HttpResponse {
    if readiness.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, JSON)],
            r#"{"status":"shutting down"}"#,
        )
            .into_response()
    } else {
        ([(header::CONTENT_TYPE, JSON)], r#"{"status":"ready"}"#).into_response()
    }
}

/// `GET /metrics` in the Prometheus text format.
async fn metrics(State(pipeline): State<Arc<Pipeline>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        pipeline.metrics().render(),
    )
}

/// The response to a GraphQL request and how it went, for the metrics. Only requests answered
/// with one response carry an outcome: streams are counted as subscriptions, and the IDE page
/// is no request at all.
struct Answer {
    http: HttpResponse,
    outcome: Option<RequestOutcome>,
}

/// A refusal before any GraphQL work, as a GraphQL error with its code (what the services
/// answer for the same refusals).
fn refused(status: StatusCode, code: &str, message: &str) -> Answer {
    Answer::rejected((
        status,
        [(header::CONTENT_TYPE, JSON)],
        Response::request_error(vec![GraphQLError::new(message).with_code(code)]).to_json_string(),
    ))
}

impl Answer {
    fn rejected(http: impl IntoResponse) -> Self {
        Answer {
            http: http.into_response(),
            outcome: Some(RequestOutcome::Rejected),
        }
    }

    fn untracked(http: impl IntoResponse) -> Self {
        Answer {
            http: http.into_response(),
            outcome: None,
        }
    }

    fn record(self, pipeline: &Pipeline, started: Instant) -> HttpResponse {
        if let Some(outcome) = self.outcome {
            pipeline.metrics().request(outcome, started.elapsed());
        }
        self.http
    }
}

fn executed(response: &Response) -> RequestOutcome {
    if response.errors.is_empty() {
        RequestOutcome::Ok
    } else {
        RequestOutcome::Errors
    }
}

/// Serves a built frontend from `dir`. Unknown paths get `index.html` (with status 200) so
/// client-side routes survive a reload.
pub fn static_files(
    dir: &std::path::Path,
) -> tower_http::services::ServeDir<tower_http::services::ServeFile> {
    tower_http::services::ServeDir::new(dir)
        .fallback(tower_http::services::ServeFile::new(dir.join("index.html")))
}

/// What the browser must enforce for the served frontend, whose admin token sits in the
/// page's storage: only the page's own scripts, styles and connections (an injected script
/// could neither load nor send the token elsewhere), never framed by another site
/// (clickjacking), no content-type guessing, no referrer leaving the page.
pub const FRONTEND_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The GraphiQL page's policy, for that page only: the frontend's with two additions it cannot
/// work without. Its editor (Monaco) and menus add `<style>` elements as they run
/// (`style-src 'unsafe-inline'`), and GraphiQL's stylesheet carries its fonts as `data:` URLs.
/// Scripts stay the page's own files, and connections, images and fonts stay on this origin (or
/// inline), so an injected style could not send anything elsewhere.
pub const GRAPHIQL_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub async fn frontend_headers<B>(mut response: axum::http::Response<B>) -> axum::http::Response<B> {
    page_headers(response.headers_mut(), FRONTEND_CONTENT_SECURITY_POLICY);
    response
}

fn page_headers(headers: &mut HeaderMap, policy: &'static str) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// GraphiQL as web/'s build bundles it, `graphiql/index.html` in the web dir with its files
/// under `/graphiql/assets/`: what a browser opening `/graphql` gets when the gateway serves a
/// web dir (an extension on the router). It loads nothing from elsewhere, so it works offline.
#[derive(Debug, Clone)]
pub struct BundledGraphiQL(Arc<std::path::Path>);

impl BundledGraphiQL {
    pub fn in_web_dir(dir: &std::path::Path) -> Self {
        Self(dir.join("graphiql/index.html").into())
    }
}

/// The IDE for a browser: the bundled page, read afresh so that it always names the files of
/// the build being served, or the CDN page when there is none.
async fn graphiql(bundled: Option<&BundledGraphiQL>) -> HttpResponse {
    if let Some(BundledGraphiQL(page)) = bundled {
        let path = Arc::clone(page);
        let read = tokio::task::spawn_blocking(move || std::fs::read(&path)).await;
        match read.map_err(std::io::Error::other).and_then(|read| read) {
            Ok(html) => {
                let mut response = axum::response::Html(html).into_response();
                page_headers(response.headers_mut(), GRAPHIQL_CONTENT_SECURITY_POLICY);
                return response;
            }
            Err(error) => tracing::warn!(
                page = %page.display(),
                %error,
                "no bundled GraphiQL in the web dir (build web/ again); serving the CDN page"
            ),
        }
    }
    axum::response::Html(GRAPHIQL).into_response()
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JSON)], r#"{"status":"ok"}"#)
}

/// Picks the response media type from `Accept`; `None` means nothing acceptable (406).
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    MediaType::negotiate(headers)
}

fn body(media: MediaType, status: StatusCode, response: Response) -> HttpResponse {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media.as_str()),
        )],
        response.into_json(),
    )
        .into_response()
}

fn bad_request(media: MediaType, message: String) -> Answer {
    let response =
        Response::request_error(vec![GraphQLError::new(message).with_code("BAD_REQUEST")]);
    Answer::rejected(body(media, StatusCode::BAD_REQUEST, response))
}

fn respond(media: MediaType, outcome: Outcome) -> Answer {
    match outcome {
        Outcome::Executed(response) => {
            let outcome = Some(executed(&response));
            Answer {
                http: body(media, StatusCode::OK, response),
                outcome,
            }
        }
        Outcome::Rejected(response) => {
            let status = match media {
                MediaType::GraphQLResponseJson => StatusCode::BAD_REQUEST,
                MediaType::Json => StatusCode::OK,
            };
            Answer::rejected(body(media, status, response))
        }
        Outcome::MethodNotAllowed(response) => {
            let mut http = body(media, StatusCode::METHOD_NOT_ALLOWED, response);
            http.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            Answer::rejected(http)
        }
        Outcome::PersistedQueryNotFound(response) => {
            Answer::rejected(body(media, StatusCode::OK, response))
        }
        Outcome::RateLimited {
            response,
            retry_after_secs,
        } => {
            let mut http = body(media, StatusCode::TOO_MANY_REQUESTS, response);
            if let Some(secs) = retry_after_secs {
                http.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            Answer::rejected(http)
        }
    }
}

/// Every request on `/graphql` (POST, GET, SSE, the WebSocket upgrade) with a bearer token the
/// gateway can verify and finds invalid gets 401 `UNAUTHENTICATED`, before any other work.
async fn refuse_invalid_tokens(
    State(pipeline): State<Arc<Pipeline>>,
    request: Request,
    next: axum::middleware::Next,
) -> HttpResponse {
    let Err(error) = pipeline
        .bearer_tokens()
        .check(request.headers().get(header::AUTHORIZATION))
    else {
        return next.run(request).await;
    };
    let media = negotiate(request.headers()).unwrap_or(MediaType::Json);
    let response = Response::request_error(vec![
        GraphQLError::new(error.to_string()).with_code("UNAUTHENTICATED"),
    ]);
    let mut http = body(media, StatusCode::UNAUTHORIZED, response);
    http.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    http
}

async fn graphql_post(
    State(pipeline): State<Arc<Pipeline>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> HttpResponse {
    let started = Instant::now();
    let client = pipeline.client_address(&headers, peer.map(|Extension(ConnectInfo(a))| a.ip()));
    post(&pipeline, headers, &client, body)
        .await
        .record(&pipeline, started)
}

async fn post(
    pipeline: &Arc<Pipeline>,
    headers: HeaderMap,
    client: &ClientAddress,
    body: Body,
) -> Answer {
    let event_stream = sse::wants_event_stream(headers.get(header::ACCEPT));
    let multipart = multipart::wants_multipart_subscription(headers.get(header::ACCEPT));
    let incremental = incremental::accepted_format(headers.get(header::ACCEPT));
    let media = negotiate(&headers);
    let Some(media) =
        media.or((event_stream || multipart || incremental.is_some()).then_some(MediaType::Json))
    else {
        return Answer::rejected(StatusCode::NOT_ACCEPTABLE);
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if content_type.as_deref() != Some(JSON) {
        return refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "POST requests must use Content-Type: application/json.",
        );
    }
    // Read only once the headers are acceptable, and never past `--max-body-bytes`: a body
    // declared larger is refused unread.
    let bytes =
        match platform::edge::read_body(&headers, body, pipeline.limits().max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(refusal) => {
                let (status, code) = refusal.status_and_code();
                let mut answer = refused(status, code, &refusal.to_string());
                // Whatever the client still sends is not read: the connection cannot be reused.
                answer
                    .http
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return answer;
            }
        };
    // A client listing JSON beside a streaming type (urql lists them all) gets a stream for
    // subscriptions only: a query or mutation is answered as JSON.
    let (event_stream, multipart) = if (event_stream || multipart)
        && negotiate(&headers).is_some()
        && !is_batch(&bytes)
        && !is_subscription(pipeline, &bytes)
    {
        (false, false)
    } else {
        (event_stream, multipart)
    };
    if is_batch(&bytes) {
        if event_stream || multipart {
            return bad_request(
                media,
                "A batch cannot be answered as an event stream; send one operation.".to_owned(),
            );
        }
        return batch(pipeline, &headers, client, media, &bytes).await;
    }
    if let Some(format) = incremental
        && !event_stream
        && !multipart
        && may_defer(&bytes)
    {
        let request: GraphQLRequest = match serde_json::from_slice(&bytes) {
            Ok(request) => request,
            Err(e) => return bad_request(media, format!("Invalid JSON body: {e}")),
        };
        return deferred_post(pipeline, &headers, client, media, format, request).await;
    }
    if multipart && !event_stream {
        let request: GraphQLRequest = match serde_json::from_slice(&bytes) {
            Ok(request) => request,
            Err(e) => return bad_request(media, format!("Invalid JSON body: {e}")),
        };
        let forwarded = pipeline.forwarded_headers(&headers);
        let pipeline = Arc::clone(pipeline);
        return Answer::untracked(multipart::respond(pipeline, request, forwarded, client).await);
    }
    if !event_stream && let Some(shared) = pipeline.shared_client_requests() {
        return shared_post(pipeline, shared, &headers, client, media, bytes).await;
    }
    let request: GraphQLRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => return bad_request(media, format!("Invalid JSON body: {e}")),
    };
    let forwarded = pipeline.forwarded_headers(&headers);
    if event_stream {
        let pipeline = Arc::clone(pipeline);
        return Answer::untracked(
            sse::respond(pipeline, request, Transport::Stream, forwarded, client).await,
        );
    }
    let outcome = pipeline
        .handle(request, Transport::Post, &forwarded, client)
        .await;
    respond(media, outcome)
}

/// Whether a body may hold a query with `@defer`: its text says so, or it sends no text (a
/// persisted query, whose document is known only once resolved). Anything else takes the
/// ordinary path, where identical queries in flight are shared.
fn may_defer(bytes: &[u8]) -> bool {
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    has(b"@defer") || !has(b"\"query\"")
}

/// A POST from a client that accepts incremental delivery: a query with active `@defer`
/// fragments is answered in parts as its data arrives; anything else as usual, in one
/// response.
async fn deferred_post(
    pipeline: &Arc<Pipeline>,
    headers: &HeaderMap,
    client: &ClientAddress,
    media: MediaType,
    format: Format,
    request: GraphQLRequest,
) -> Answer {
    let prepared = match pipeline.prepare(request, Transport::Post) {
        Ok(prepared) => prepared,
        Err(outcome) => return respond(media, outcome),
    };
    let forwarded = pipeline.forwarded_headers(headers);
    if prepared.normalized.deferred.is_some() {
        return Answer::untracked(incremental::respond(
            Arc::clone(pipeline),
            prepared,
            forwarded,
            format,
        ));
    }
    let outcome = pipeline
        .handle_prepared(&prepared, &forwarded, client)
        .await;
    respond(media, outcome)
}

/// Whether a request body runs a subscription (a body that does not parse is not one: the
/// JSON path reports why).
fn is_subscription(pipeline: &Pipeline, bytes: &[u8]) -> bool {
    serde_json::from_slice::<GraphQLRequest>(bytes)
        .is_ok_and(|request| pipeline.operation_type(&request) == Some(OperationType::Subscription))
}

/// Whether a body is a batch: a JSON array (of operations), as Apollo Client's
/// `BatchHttpLink` sends.
fn is_batch(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[')
}

/// A batch: at most `--max-batch` operations, run concurrently, answered in order as one
/// JSON array, each with its own errors. Each operation passes every check a single one
/// does (its cost, and a mutation the client's rate limit); a batch over the cap runs
/// nothing. The answer is 200 unless the batch itself is refused: per-operation refusals are
/// in their own entries.
async fn batch(
    pipeline: &Arc<Pipeline>,
    headers: &HeaderMap,
    client: &ClientAddress,
    media: MediaType,
    bytes: &[u8],
) -> Answer {
    let requests: Vec<GraphQLRequest> = match serde_json::from_slice(bytes) {
        Ok(requests) => requests,
        Err(e) => return bad_request(media, format!("Invalid JSON body: {e}")),
    };
    let max = pipeline.limits().max_batch;
    if requests.is_empty() || requests.len() > max {
        return refused(
            StatusCode::BAD_REQUEST,
            "BATCH_LIMIT_EXCEEDED",
            &format!(
                "A batch holds 1 to {max} operations; this one has {}.",
                requests.len()
            ),
        );
    }
    let forwarded = pipeline.forwarded_headers(headers);
    let outcomes = futures_util::future::join_all(
        requests
            .into_iter()
            .map(|request| pipeline.handle(request, Transport::Post, &forwarded, client)),
    )
    .await;
    let mut outcome = RequestOutcome::Ok;
    let mut body = Vec::with_capacity(256);
    body.push(b'[');
    for (index, answer) in outcomes.into_iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        let response = match answer {
            Outcome::Executed(response) => {
                if executed(&response) == RequestOutcome::Errors {
                    outcome = RequestOutcome::Errors;
                }
                response
            }
            refused => {
                outcome = RequestOutcome::Errors;
                Response::request_error(refused.into_errors())
            }
        };
        body.extend_from_slice(&response.into_json());
    }
    body.push(b']');
    Answer {
        http: (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.as_str()),
            )],
            body,
        )
            .into_response(),
        outcome: Some(outcome),
    }
}

/// A POST whose query may be answered together with identical ones in flight. Only queries
/// are shared; anything rejected, and mutations, run on their own.
async fn shared_post(
    pipeline: &Arc<Pipeline>,
    shared: &SharedClientRequests,
    headers: &HeaderMap,
    client: &ClientAddress,
    media: MediaType,
    bytes: Bytes,
) -> Answer {
    let key = ClientRequestKey {
        media,
        forwarded: pipeline.forwarded_headers(headers),
        body: bytes,
    };
    // Only queries are ever entered, so an identical body in flight is a query too.
    if let Some(answer) = shared.join(&key) {
        return answer.await.into();
    }
    let request: GraphQLRequest = match serde_json::from_slice(&key.body) {
        Ok(request) => request,
        Err(e) => return bad_request(media, format!("Invalid JSON body: {e}")),
    };
    let prepared = match pipeline.prepare(request, Transport::Post) {
        Ok(prepared) => prepared,
        Err(outcome) => return respond(media, outcome),
    };
    if prepared.operation_type() != OperationType::Query {
        let forwarded = key.forwarded.with_client(client);
        let response = pipeline.execute(&prepared, &forwarded, None).await;
        return respond(media, Outcome::Executed(response));
    }
    let pipeline = Arc::clone(pipeline);
    let forwarded = key.forwarded.clone();
    shared
        .run(key, move || {
            async move {
                let response = pipeline.execute(&prepared, &forwarded, None).await;
                let outcome = executed(&response);
                SharedResponse {
                    status: StatusCode::OK,
                    media,
                    body: Bytes::from(response.into_json()),
                    outcome,
                }
            }
            .boxed()
        })
        .await
        .into()
}

impl From<SharedResponse> for Answer {
    fn from(shared: SharedResponse) -> Self {
        Answer {
            outcome: Some(shared.outcome),
            http: shared.into_response(),
        }
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

async fn graphql_get(State(pipeline): State<Arc<Pipeline>>, request: Request) -> HttpResponse {
    let started = Instant::now();
    get_request(&pipeline, request)
        .await
        .record(&pipeline, started)
}

async fn get_request(pipeline: &Arc<Pipeline>, request: Request) -> Answer {
    let (mut parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return Answer::untracked(
            match WebSocketUpgrade::from_request_parts(&mut parts, pipeline).await {
                Ok(upgrade) => {
                    let peer = parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|ConnectInfo(address)| address.ip());
                    let client = pipeline.client_address(&parts.headers, peer);
                    // Refused before the upgrade: a refusal costs one small response.
                    let socket = match peer.map(|ip| pipeline.open_sockets().open(ip)) {
                        Some(Err(limit)) => {
                            return Answer::rejected((
                                StatusCode::TOO_MANY_REQUESTS,
                                [(header::CONTENT_TYPE, JSON)],
                                Response::request_error(vec![
                                    GraphQLError::new(format!(
                                        "This address already holds {limit} WebSocket \
                                         connections, the most one address may."
                                    ))
                                    .with_code("TOO_MANY_CONNECTIONS"),
                                ])
                                .to_json_string(),
                            ));
                        }
                        Some(Ok(socket)) => Some(socket),
                        None => None,
                    };
                    ws::upgrade(
                        Arc::clone(pipeline),
                        upgrade,
                        &parts.headers,
                        client,
                        socket,
                    )
                }
                Err(rejection) => rejection.into_response(),
            },
        );
    }
    let headers = parts.headers;
    let params: HashMap<String, String> = match Query::try_from_uri(&parts.uri) {
        Ok(Query(params)) => params,
        Err(rejection) => return Answer::rejected(rejection),
    };
    // A browser opening the endpoint gets an IDE; API clients always send a query.
    if !params.contains_key("query") && wants_html(&headers) {
        return Answer::untracked(graphiql(parts.extensions.get::<BundledGraphiQL>()).await);
    }
    let event_stream = sse::wants_event_stream(headers.get(header::ACCEPT));
    let media = negotiate(&headers);
    let Some(media) = media.or(event_stream.then_some(MediaType::Json)) else {
        return Answer::rejected(StatusCode::NOT_ACCEPTABLE);
    };
    let parse_json = |name: &str| -> Result<Option<serde_json::Value>, String> {
        match params.get(name) {
            None => Ok(None),
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| format!("Invalid JSON in `{name}`: {e}")),
        }
    };
    let variables = match parse_json("variables") {
        Ok(v) => v,
        Err(message) => return bad_request(media, message),
    };
    let extensions = match parse_json("extensions") {
        Ok(v) => v,
        Err(message) => return bad_request(media, message),
    };
    let request = GraphQLRequest {
        query: params.get("query").cloned(),
        document_id: params.get("documentId").cloned(),
        operation_name: params.get("operationName").cloned(),
        variables,
        extensions,
    };
    let forwarded = pipeline.forwarded_headers(&headers);
    // As over POST: with JSON acceptable too, only a subscription is streamed.
    let event_stream = event_stream
        && (negotiate(&headers).is_none()
            || pipeline.operation_type(&request) == Some(OperationType::Subscription));
    if event_stream {
        let pipeline = Arc::clone(pipeline);
        return Answer::untracked(
            sse::respond(
                pipeline,
                request,
                Transport::StreamGet,
                forwarded,
                &ClientAddress::default(),
            )
            .await,
        );
    }
    // Mutations never travel over GET: no client address to pass on.
    let outcome = pipeline
        .handle(
            request,
            Transport::Get,
            &forwarded,
            &ClientAddress::default(),
        )
        .await;
    respond(media, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_until_shutdown_begins() {
        let readiness = Readiness::default();
        let status = ready(State(readiness.clone())).await.status();
        assert_eq!(status, StatusCode::OK);
        readiness.start_draining();
        let status = ready(State(readiness)).await.status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
