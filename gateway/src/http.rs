//! The HTTP surface: GraphQL over HTTP (POST and GET on `/graphql`), the streaming transports
//! on the same route (WebSocket upgrade, `Accept: text/event-stream`) and `/health`.
//!
//! Content negotiation follows the GraphQL-over-HTTP spec: a client that accepts
//! `application/graphql-response+json` gets that media type and HTTP 4xx for requests rejected
//! before execution; a legacy `application/json` client always gets 200 for GraphQL errors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::get;

use apollo_compiler::ast::OperationType;
use futures_util::FutureExt;

use crate::forwarded_headers::ForwardedHeaders;
use crate::in_flight::InFlight;
use crate::pipeline::{GraphQLRequest, Outcome, Pipeline, Transport};
use crate::response::{GraphQLError, Response};
use crate::subscriptions::{sse, ws};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const GRAPHIQL: &str = include_str!("graphiql.html");
const JSON: &str = "application/json";

pub fn router(pipeline: Arc<Pipeline>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(pipeline)
}

/// Serves a built frontend from `dir`. Unknown paths get `index.html` (with status 200) so
/// client-side routes survive a reload.
pub fn static_files(
    dir: &std::path::Path,
) -> tower_http::services::ServeDir<tower_http::services::ServeFile> {
    tower_http::services::ServeDir::new(dir)
        .fallback(tower_http::services::ServeFile::new(dir.join("index.html")))
}

async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JSON)], r#"{"status":"ok"}"#)
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MediaType {
    GraphQLResponseJson,
    Json,
}

impl MediaType {
    fn as_str(self) -> &'static str {
        match self {
            MediaType::GraphQLResponseJson => GRAPHQL_RESPONSE_JSON,
            MediaType::Json => JSON,
        }
    }
}

/// Picks the response media type from `Accept`; `None` means nothing acceptable (406).
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        // The spec lets servers treat a missing Accept as application/json.
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
            GRAPHQL_RESPONSE_JSON => return Some(MediaType::GraphQLResponseJson),
            JSON | "application/*" | "*/*" => json = true,
            _ => {}
        }
    }
    json.then_some(MediaType::Json)
}

fn body(media: MediaType, status: StatusCode, response: &Response) -> HttpResponse {
    match serde_json::to_vec(response) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.as_str()),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("cannot serialise response: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn bad_request(media: MediaType, message: String) -> HttpResponse {
    let response =
        Response::request_error(vec![GraphQLError::new(message).with_code("BAD_REQUEST")]);
    body(media, StatusCode::BAD_REQUEST, &response)
}

fn respond(media: MediaType, outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Executed(response) => body(media, StatusCode::OK, &response),
        Outcome::Rejected(response) => {
            let status = match media {
                MediaType::GraphQLResponseJson => StatusCode::BAD_REQUEST,
                MediaType::Json => StatusCode::OK,
            };
            body(media, status, &response)
        }
        Outcome::MethodNotAllowed(response) => {
            let mut http = body(media, StatusCode::METHOD_NOT_ALLOWED, &response);
            http.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            http
        }
    }
}

async fn graphql_post(
    State(pipeline): State<Arc<Pipeline>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> HttpResponse {
    let event_stream = sse::wants_event_stream(headers.get(header::ACCEPT));
    let media = negotiate(&headers);
    let Some(media) = media.or(event_stream.then_some(MediaType::Json)) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
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
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST requests must use Content-Type: application/json",
        )
            .into_response();
    }
    if !event_stream && let Some(shared) = pipeline.shared_client_requests() {
        return shared_post(&pipeline, shared, &headers, media, bytes).await;
    }
    let request: GraphQLRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => return bad_request(media, format!("Invalid JSON body: {e}")),
    };
    let forwarded = pipeline.forwarded_headers(&headers);
    if event_stream {
        return sse::respond(pipeline, request, Transport::Stream, forwarded).await;
    }
    let outcome = pipeline.handle(request, Transport::Post, &forwarded).await;
    respond(media, outcome)
}

/// What identical client requests share: the serialised answer.
#[derive(Clone)]
pub struct SharedResponse {
    status: StatusCode,
    media: MediaType,
    body: Bytes,
}

impl IntoResponse for SharedResponse {
    fn into_response(self) -> HttpResponse {
        (
            self.status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.media.as_str()),
            )],
            self.body,
        )
            .into_response()
    }
}

/// What makes two client requests interchangeable: the same body byte for byte, the same
/// headers forwarded to subgraphs (credentials and the configured ones: the answer may depend
/// on them) and the same response media type.
#[derive(PartialEq, Eq, Hash)]
pub struct ClientRequestKey {
    media: MediaType,
    forwarded: ForwardedHeaders,
    body: Bytes,
}

/// A POST whose query may be answered together with identical ones in flight. Only queries
/// are shared; anything rejected, and mutations, run on their own.
async fn shared_post(
    pipeline: &Arc<Pipeline>,
    shared: &InFlight<ClientRequestKey, SharedResponse>,
    headers: &HeaderMap,
    media: MediaType,
    bytes: Bytes,
) -> HttpResponse {
    let key = ClientRequestKey {
        media,
        forwarded: pipeline.forwarded_headers(headers),
        body: bytes,
    };
    // Only queries are ever entered, so an identical body in flight is a query too.
    if let Some(answer) = shared.join(&key) {
        return answer.await.into_response();
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
        let response = pipeline.execute(&prepared, &key.forwarded, None).await;
        return respond(media, Outcome::Executed(response));
    }
    let pipeline = Arc::clone(pipeline);
    let forwarded = key.forwarded.clone();
    shared
        .run(key, move || {
            async move {
                let response = pipeline.execute(&prepared, &forwarded, None).await;
                match serde_json::to_vec(&response) {
                    Ok(bytes) => SharedResponse {
                        status: StatusCode::OK,
                        media,
                        body: Bytes::from(bytes),
                    },
                    Err(e) => {
                        tracing::error!("cannot serialise response: {e}");
                        SharedResponse {
                            status: StatusCode::INTERNAL_SERVER_ERROR,
                            media,
                            body: Bytes::new(),
                        }
                    }
                }
            }
            .boxed()
        })
        .await
        .into_response()
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

async fn graphql_get(State(pipeline): State<Arc<Pipeline>>, request: Request) -> HttpResponse {
    let (mut parts, _) = request.into_parts();
    if parts.headers.contains_key(header::UPGRADE) {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &pipeline).await {
            Ok(upgrade) => ws::upgrade(pipeline, upgrade, &parts.headers),
            Err(rejection) => rejection.into_response(),
        };
    }
    let headers = parts.headers;
    let params: HashMap<String, String> = match Query::try_from_uri(&parts.uri) {
        Ok(Query(params)) => params,
        Err(rejection) => return rejection.into_response(),
    };
    // A browser opening the endpoint gets an IDE; API clients always send a query.
    if !params.contains_key("query") && wants_html(&headers) {
        return axum::response::Html(GRAPHIQL).into_response();
    }
    let event_stream = sse::wants_event_stream(headers.get(header::ACCEPT));
    let media = negotiate(&headers);
    let Some(media) = media.or(event_stream.then_some(MediaType::Json)) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
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
        operation_name: params.get("operationName").cloned(),
        variables,
        extensions,
    };
    let forwarded = pipeline.forwarded_headers(&headers);
    if event_stream {
        return sse::respond(pipeline, request, Transport::StreamGet, forwarded).await;
    }
    let outcome = pipeline.handle(request, Transport::Get, &forwarded).await;
    respond(media, outcome)
}
