//! GraphQL over Server-Sent Events, graphql-sse's "distinct connections mode": one operation per
//! HTTP request (POST body or GET parameters, `Accept: text/event-stream`), each result a `next`
//! event, the end a `complete` event.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::StreamExt;
use futures_util::stream;
use reqwest::header::HeaderValue;

use super::execute_stream;
use crate::forwarded_headers::ForwardedHeaders;
use crate::pipeline::{GraphQLRequest, Pipeline, Transport};
use crate::response::Response;

/// Whether the client asked for an event stream.
pub fn wants_event_stream(accept: Option<&HeaderValue>) -> bool {
    accept.and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept.split(',').any(|part| {
            part.split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
        })
    })
}

/// Proxies and load balancers close idle connections; a comment now and then keeps a quiet
/// subscription open (graphql-sse's own server uses 12 s).
const KEEP_ALIVE: Duration = Duration::from_secs(12);

pub async fn respond(
    pipeline: Arc<Pipeline>,
    request: GraphQLRequest,
    transport: Transport,
    forwarded: ForwardedHeaders,
) -> HttpResponse {
    // Request errors travel in the stream too (`next` with errors, then `complete`), as
    // graphql-sse does: an EventSource-style client cannot read an error response body.
    let responses = match execute_stream(pipeline, request, transport, forwarded).await {
        Ok(responses) => responses,
        Err(errors) => stream::once(async move { Response::request_error(errors) }).boxed(),
    };
    let events = responses
        .map(|response| {
            let data = response.to_json_string();
            Ok::<_, Infallible>(Event::default().event("next").data(data))
        })
        .chain(stream::once(async {
            Ok(Event::default().event("complete").data(""))
        }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
