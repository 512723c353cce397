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
//!
//! Identical subscriptions (same operation, variables and forwarded headers) share one
//! upstream subscription and one execution per event (`shared`); a subscription that cannot
//! be shared, or every subscription when sharing is off, runs alone.

pub mod multipart;
pub mod shared;
pub mod sse;
pub mod upstream;
pub mod ws;

use std::sync::Arc;

use apollo_compiler::ast::OperationType;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use serde_json::{Map, Value};

use crate::forwarded_headers::{ClientAddress, ForwardedHeaders};
use crate::metrics::{ActiveSubscription, ActiveUpstream};
use crate::pipeline::execute::root_error;
use crate::pipeline::{GraphQLRequest, Pipeline, Prepared, Transport};
use crate::response::{GraphQLError, Response};
use upstream::{UpstreamEvent, UpstreamSubscription};

/// What a streaming operation hands its transport next.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// One result, already serialised: subscribers of a shared subscription all get the very
    /// same text, so it is written once per event rather than once per subscriber.
    Result(Arc<str>),
    /// The subscriber fell further behind the live events than its buffer allows and is cut
    /// off; it resubscribes with the cursor of the last event it received.
    FellBehind,
}

impl Delivery {
    pub fn of(response: &Response) -> Self {
        Delivery::Result(response.to_json_string().into())
    }
}

/// The deliveries of one operation: one for queries and mutations, one per event for
/// subscriptions. The stream ending means `complete`.
pub type ResponseStream = BoxStream<'static, Delivery>;

/// Starts an operation on a streaming transport. `Err` carries request errors (validation,
/// or the subgraph refusing the subscription): the transport reports them as a failed
/// operation instead of as a result.
pub async fn execute_stream(
    pipeline: Arc<Pipeline>,
    request: GraphQLRequest,
    transport: Transport,
    forwarded: ForwardedHeaders,
    client: &ClientAddress,
) -> Result<ResponseStream, Vec<GraphQLError>> {
    let prepared = match pipeline.prepare(request, transport) {
        Ok(prepared) => prepared,
        Err(refused) => return Err(refused.into_errors()),
    };
    if prepared.operation_type() != OperationType::Subscription {
        let forwarded = match prepared.operation_type() {
            OperationType::Mutation => {
                if let Err(refused) = pipeline.admit_mutation(client) {
                    return Err(refused.into_errors());
                }
                forwarded.with_client(client)
            }
            _ => forwarded,
        };
        let response = pipeline.execute(&prepared, &forwarded, None).await;
        return Ok(stream::once(async move { Delivery::of(&response) }).boxed());
    }
    let active = pipeline.metrics().subscription_opened();
    if let Some(groups) = pipeline.subscription_groups().cloned() {
        return groups
            .subscribe(pipeline, prepared, forwarded, active)
            .await;
    }
    subscribe_alone(pipeline, prepared, forwarded, active).await
}

/// A subscription with an upstream subscription of its own.
async fn subscribe_alone(
    pipeline: Arc<Pipeline>,
    prepared: Prepared,
    forwarded: ForwardedHeaders,
    active: ActiveSubscription,
) -> Result<ResponseStream, Vec<GraphQLError>> {
    let upstream = OpenUpstream::start(&pipeline, &prepared, &forwarded).await?;
    let events = EventLoop::new(pipeline, prepared, forwarded, upstream);
    Ok(
        stream::unfold((events, active), |(mut events, active)| async move {
            let response = events.next().await?;
            Some((Delivery::of(&response), (events, active)))
        })
        .boxed(),
    )
}

/// An upstream subscription to the subgraph that owns the operation's root field, counted
/// in the metrics while it is open.
pub(crate) struct OpenUpstream {
    subscription: UpstreamSubscription,
    service: String,
    _open: ActiveUpstream,
}

impl OpenUpstream {
    /// Subscribes to the plan's root fetch with the request's variables and credentials.
    pub(crate) async fn start(
        pipeline: &Pipeline,
        prepared: &Prepared,
        forwarded: &ForwardedHeaders,
    ) -> Result<Self, Vec<GraphQLError>> {
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
        let subscription =
            UpstreamSubscription::start(url, forwarded, &root.operation, variables, timeout)
                .await
                .map_err(|e| failed(e.to_string()))?;
        Ok(OpenUpstream {
            subscription,
            _open: pipeline.metrics().upstream_opened(),
            service,
        })
    }
}

/// Runs a subscription's events through the rest of its plan, one at a time.
pub(crate) struct EventLoop {
    pipeline: Arc<Pipeline>,
    prepared: Prepared,
    forwarded: ForwardedHeaders,
    upstream: OpenUpstream,
    /// A final error was sent; the stream ends next.
    done: bool,
}

impl EventLoop {
    pub(crate) fn new(
        pipeline: Arc<Pipeline>,
        prepared: Prepared,
        forwarded: ForwardedHeaders,
        upstream: OpenUpstream,
    ) -> Self {
        EventLoop {
            pipeline,
            prepared,
            forwarded,
            upstream,
            done: false,
        }
    }

    /// A final error was returned: nothing follows.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The next shaped result: an event enriched by the plan's other fetches, or a final
    /// error; `None` once the subscription is over.
    pub(crate) async fn next(&mut self) -> Option<Response> {
        if self.done {
            return None;
        }
        let service = &self.upstream.service;
        let response = match self.upstream.subscription.next().await {
            UpstreamEvent::Next(event) => {
                self.pipeline
                    .execute(&self.prepared, &self.forwarded, Some(event))
                    .await
            }
            UpstreamEvent::Complete => return None,
            UpstreamEvent::Error(errors) => {
                self.done = true;
                Response::request_error(
                    errors.into_iter().map(|e| root_error(e, service)).collect(),
                )
            }
            UpstreamEvent::Dropped(reason) => {
                self.done = true;
                tracing::warn!(%service, %reason, "upstream subscription dropped");
                Response::request_error(vec![
                    GraphQLError::new(format!(
                        "The subscription to subgraph '{service}' ended unexpectedly ({reason}); \
                         subscribe again to continue."
                    ))
                    .with_code("SUBSCRIPTION_UPSTREAM_CLOSED")
                    .with_extension("service", Value::String(service.clone())),
                ])
            }
        };
        Some(response)
    }
}
