//! Streaming transports: subscriptions (and any other operation) over WebSocket (`ws`, both
//! `graphql-transport-ws` and the legacy `graphql-ws`) and over SSE (`sse`, graphql-sse's
//! distinct connections mode).
//!
//! A subscription is planned like a query. Its first fetch, the root field on the owning
//! subgraph, becomes an upstream `graphql-transport-ws` subscription (`upstream`); every event
//! the subgraph pushes is fed into the ordinary executor as that fetch's answer, so the rest of
//! the plan (entity fetches to other subgraphs) runs per event and the client receives fully
//! shaped responses. The client's forwarded headers (credentials and the configured ones) go
//! with the upstream subscription and with every entity fetch.

pub mod sse;
pub mod upstream;
pub mod ws;

use std::sync::Arc;

use apollo_compiler::ast::OperationType;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use reqwest::header::HeaderValue;
use serde_json::{Map, Value};

use crate::forwarded_headers::ForwardedHeaders;
use crate::metrics::ActiveSubscription;
use crate::pipeline::execute::root_error;
use crate::pipeline::{GraphQLRequest, Outcome, Pipeline, Prepared, Transport};
use crate::response::{GraphQLError, Response};
use upstream::{UpstreamEvent, UpstreamSubscription};

/// The responses of one operation: one for queries and mutations, one per event for
/// subscriptions. The stream ending means `complete`.
pub type ResponseStream = BoxStream<'static, Response>;

/// Starts an operation on a streaming transport. `Err` carries request errors (validation,
/// or the subgraph refusing the subscription): the transport reports them as a failed
/// operation instead of as a result.
pub async fn execute_stream(
    pipeline: Arc<Pipeline>,
    request: GraphQLRequest,
    transport: Transport,
    forwarded: ForwardedHeaders,
) -> Result<ResponseStream, Vec<GraphQLError>> {
    let prepared = match pipeline.prepare(request, transport) {
        Ok(prepared) => prepared,
        Err(Outcome::Executed(response) | Outcome::Rejected(response))
        | Err(Outcome::MethodNotAllowed(response)) => return Err(response.errors),
    };
    if prepared.operation_type() != OperationType::Subscription {
        let response = pipeline.execute(&prepared, &forwarded, None).await;
        return Ok(stream::once(async move { response }).boxed());
    }

    let Some(root) = prepared.plan.fetches.first() else {
        return Err(vec![
            GraphQLError::new("The subscription selects no subgraph field.")
                .with_code("BAD_REQUEST"),
        ]);
    };
    let subgraph = root.subgraph;
    let client = pipeline.client();
    let service = client.name(subgraph).to_string();
    let failed = |message: String| {
        vec![
            GraphQLError::new(format!(
                "Cannot subscribe to subgraph '{service}': {message}"
            ))
            .with_code("SUBSCRIPTION_UPSTREAM_FAILED")
            .with_extension("service", Value::String(service.clone())),
        ]
    };
    let Some(url) = client.websocket_url(subgraph) else {
        return Err(failed(upstream::UpstreamError::NoUrl.to_string()));
    };
    let mut variables = Map::new();
    for name in &root.variables {
        if let Some(value) = prepared.variables.get(name.as_str()) {
            variables.insert(name.to_string(), value.clone());
        }
    }
    let timeout = client.timeout(subgraph).unwrap_or_default();
    let upstream =
        UpstreamSubscription::start(url, &forwarded, &root.operation, variables, timeout)
            .await
            .map_err(|e| failed(e.to_string()))?;

    let active = pipeline.metrics().subscription_opened();
    let state = EventLoop {
        _active: active,
        pipeline,
        prepared,
        forwarded,
        upstream,
        service,
        done: false,
    };
    Ok(stream::unfold(state, EventLoop::next).boxed())
}

/// State of a running subscription between two events.
struct EventLoop {
    /// Counts the subscription as active for exactly as long as it runs: the state is dropped
    /// when the stream ends or the client goes away.
    _active: ActiveSubscription,
    pipeline: Arc<Pipeline>,
    prepared: Prepared,
    forwarded: ForwardedHeaders,
    upstream: UpstreamSubscription,
    service: String,
    /// A final error was sent; the stream ends next.
    done: bool,
}

impl EventLoop {
    async fn next(mut self) -> Option<(Response, Self)> {
        if self.done {
            return None;
        }
        let response = match self.upstream.next().await {
            UpstreamEvent::Next(event) => {
                self.pipeline
                    .execute(&self.prepared, &self.forwarded, Some(event))
                    .await
            }
            UpstreamEvent::Complete => return None,
            UpstreamEvent::Error(errors) => {
                self.done = true;
                Response::request_error(
                    errors
                        .into_iter()
                        .map(|e| root_error(e, &self.service))
                        .collect(),
                )
            }
            UpstreamEvent::Dropped(reason) => {
                self.done = true;
                tracing::warn!(service = %self.service, %reason, "upstream subscription dropped");
                Response::request_error(vec![
                    GraphQLError::new(format!(
                        "The subscription to subgraph '{}' ended unexpectedly ({reason}); \
                         subscribe again to continue.",
                        self.service
                    ))
                    .with_code("SUBSCRIPTION_UPSTREAM_CLOSED")
                    .with_extension("service", Value::String(self.service.clone())),
                ])
            }
        };
        Some((response, self))
    }
}

/// Credentials from a `connection_init` payload, as an `Authorization` value. Clients put them
/// under different names; a bare token (`authToken`, `token`) is sent as a bearer token.
pub fn authorization_from_init(payload: Option<&Value>) -> Option<HeaderValue> {
    let payload = payload?.as_object()?;
    let header = ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(*key)?.as_str());
    if let Some(value) = header {
        return HeaderValue::from_str(value).ok();
    }
    let token = ["authToken", "token"]
        .iter()
        .find_map(|key| payload.get(*key)?.as_str())?;
    let value = if token.contains(' ') {
        token.to_string()
    } else {
        format!("Bearer {token}")
    };
    HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::authorization_from_init;
    use serde_json::json;

    #[test]
    fn init_payload_credentials() {
        let auth = |v| authorization_from_init(Some(&v)).map(|h| h.to_str().unwrap().to_string());
        assert_eq!(
            auth(json!({ "Authorization": "Bearer a" })).as_deref(),
            Some("Bearer a")
        );
        assert_eq!(
            auth(json!({ "authorization": "Basic b" })).as_deref(),
            Some("Basic b")
        );
        assert_eq!(
            auth(json!({ "authToken": "t" })).as_deref(),
            Some("Bearer t")
        );
        assert_eq!(
            auth(json!({ "token": "Bearer x" })).as_deref(),
            Some("Bearer x")
        );
        assert_eq!(auth(json!({ "other": 1 })), None);
        assert_eq!(auth(json!("nope")), None);
        // Header values cannot carry newlines: such a payload is ignored, not forwarded.
        assert_eq!(auth(json!({ "Authorization": "a\nb" })), None);
    }
}
