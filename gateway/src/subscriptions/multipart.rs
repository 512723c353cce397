//! Subscriptions over multipart HTTP, the protocol Apollo Client speaks for subscriptions
//! without a WebSocket: a POST with `Accept: multipart/mixed;subscriptionSpec="1.0"` is
//! answered `multipart/mixed; boundary="graphql"; subscriptionSpec="1.0"`, one part per event
//! holding `{"payload": <the result>}`, an empty `{}` part as a heartbeat at once and every
//! [`HEARTBEAT`] while nothing happens (so proxies keep the connection and the client notices
//! a dead one), and the closing boundary when the subscription ends.
//!
//! Every write ends with the delimiter that closes the part it carries: a multipart parser
//! (Apollo Client's included) hands a part on only once it sees the next delimiter, so a
//! part written without it would wait for the next heartbeat. An error that ends the
//! subscription (the request refused, the subscriber too far behind) is a last part with
//! `{"payload": null, "errors": [...]}`, as the protocol has transport errors travel.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::StreamExt;
use futures_util::stream;

use super::{Delivery, execute_stream};
use crate::forwarded_headers::{ClientAddress, ForwardedHeaders};
use crate::pipeline::{GraphQLRequest, Pipeline, Transport};
use crate::response::GraphQLError;

/// How often an idle subscription sends a heartbeat part (Apollo Router's interval).
pub const HEARTBEAT: Duration = Duration::from_secs(5);

const CONTENT_TYPE: &str = "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"";
/// Opens the body: the first delimiter.
pub(crate) const START: &[u8] = b"\r\n--graphql";
const PART_HEAD: &[u8] = b"\r\ncontent-type: application/json; charset=utf-8\r\n\r\n";
/// Closes a part and opens the next.
const DELIMITER: &[u8] = b"\r\n--graphql";
/// After the last delimiter: the close.
pub(crate) const END: &[u8] = b"--\r\n";

/// Whether the client asked for multipart subscriptions (`multipart/mixed` with a
/// `subscriptionSpec` parameter).
pub fn wants_multipart_subscription(accept: Option<&HeaderValue>) -> bool {
    accept.and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept.split(',').any(|part| {
            let mut parameters = part.split(';');
            parameters
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/mixed"))
                && parameters.any(|parameter| {
                    parameter
                        .split('=')
                        .next()
                        .is_some_and(|name| name.trim().eq_ignore_ascii_case("subscriptionSpec"))
                })
        })
    })
}

enum Part {
    Payload(Arc<str>),
    Fatal(Vec<GraphQLError>),
    Heartbeat,
    End,
}

/// One part holding `body`, closed by the delimiter that opens the next (see the module).
pub(crate) fn part(body: &[u8]) -> Bytes {
    let mut bytes = Vec::with_capacity(PART_HEAD.len() + body.len() + DELIMITER.len());
    bytes.extend_from_slice(PART_HEAD);
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(DELIMITER);
    Bytes::from(bytes)
}

fn fatal(errors: Vec<GraphQLError>) -> Bytes {
    let errors = serde_json::to_string(&errors).unwrap_or_else(|_| "[]".to_owned());
    part(format!(r#"{{"payload":null,"errors":{errors}}}"#).as_bytes())
}

pub async fn respond(
    pipeline: Arc<Pipeline>,
    request: GraphQLRequest,
    forwarded: ForwardedHeaders,
    client: &ClientAddress,
) -> HttpResponse {
    let deliveries =
        match execute_stream(pipeline, request, Transport::Stream, forwarded, client).await {
            Ok(deliveries) => deliveries
                .map(|delivery| match delivery {
                    Delivery::Result(result) => Part::Payload(result),
                    Delivery::FellBehind => Part::Fatal(vec![
                        GraphQLError::new(
                            "Fell behind the live events; resubscribe from the last cursor.",
                        )
                        .with_code("SUBSCRIPTION_FELL_BEHIND"),
                    ]),
                })
                .boxed(),
            Err(errors) => stream::iter([Part::Fatal(errors)]).boxed(),
        };
    let heartbeats = stream::unfold(true, |first| async move {
        if !first {
            tokio::time::sleep(HEARTBEAT).await;
        }
        Some((Part::Heartbeat, false))
    });
    // The heartbeats never end: the stream ends after the deliveries' end (or a fatal part).
    let parts = stream::select(deliveries.chain(stream::iter([Part::End])), heartbeats).scan(
        false,
        |ended, next| {
            if *ended {
                return std::future::ready(None);
            }
            let bytes = match next {
                Part::Payload(result) => {
                    let mut body = Vec::with_capacity(result.len() + 12);
                    body.extend_from_slice(b"{\"payload\":");
                    body.extend_from_slice(result.as_bytes());
                    body.push(b'}');
                    part(&body)
                }
                Part::Heartbeat => part(b"{}"),
                Part::Fatal(errors) => {
                    *ended = true;
                    let mut bytes = fatal(errors).to_vec();
                    bytes.extend_from_slice(END);
                    Bytes::from(bytes)
                }
                Part::End => {
                    *ended = true;
                    Bytes::from_static(END)
                }
            };
            std::future::ready(Some(Ok::<_, std::convert::Infallible>(bytes)))
        },
    );
    let parts = stream::iter([Ok(Bytes::from_static(START))]).chain(parts);
    response(CONTENT_TYPE, parts)
}

/// A streamed multipart answer (this module's subscriptions, `@defer`'s increments): the
/// body's bytes as they come, never cached on the way.
pub(crate) fn response<S>(content_type: &'static str, body: S) -> HttpResponse
where
    S: futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
{
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apollo_clients_accept_header_asks_for_multipart_subscriptions() {
        let accept = |text: &'static str| {
            wants_multipart_subscription(Some(&HeaderValue::from_static(text)))
        };
        assert!(accept(
            "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json"
        ));
        assert!(accept("multipart/mixed; subscriptionSpec=\"1.0\""));
        assert!(!accept(
            "multipart/mixed;deferSpec=20220824,application/json"
        ));
        assert!(!accept("application/json"));
    }
}
