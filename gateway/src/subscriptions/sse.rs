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

use super::{Delivery, execute_stream};
use crate::forwarded_headers::{ClientAddress, ForwardedHeaders};
use crate::pipeline::{GraphQLRequest, Pipeline, Transport};
use crate::response::{GraphQLError, Response};

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
    client: &ClientAddress,
) -> HttpResponse {
    // Request errors travel in the stream too (`next` with errors, then `complete`), as
    // graphql-sse does: an EventSource-style client cannot read an error response body.
    let deliveries = match execute_stream(pipeline, request, transport, forwarded, client).await {
        Ok(deliveries) => deliveries,
        Err(errors) => {
            stream::once(async move { Delivery::of(&Response::request_error(errors)) }).boxed()
        }
    };
    // A subscriber that fell behind gets an error it can act on (resubscribe from its last
    // cursor), then the stream ends.
    let events = deliveries
        .scan(false, |cut_off, delivery| {
            if *cut_off {
                return std::future::ready(None);
            }
            let result = match delivery {
                Delivery::Result(result) => result,
                Delivery::FellBehind => {
                    *cut_off = true;
                    Arc::from(
                        Response::request_error(vec![
                            GraphQLError::new(
                                "Fell behind the live events; resubscribe from the last cursor.",
                            )
                            .with_code("SUBSCRIPTION_FELL_BEHIND"),
                        ])
                        .to_json_string(),
                    )
                }
            };
            std::future::ready(Some(Ok::<_, Infallible>(
                Event::default().event("next").data(&*result),
            )))
        })
        .chain(stream::once(async {
            Ok(Event::default().event("complete").data(""))
        }));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
