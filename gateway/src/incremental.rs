//! `@defer` over HTTP: a query with active deferred fragments, from a client that accepts
//! `multipart/mixed` (Apollo Client sends `Accept: multipart/mixed;deferSpec=20220824,
//! application/json`), is answered `multipart/mixed; boundary="graphql";
//! deferSpec=20220824`, one part per payload of `pipeline::defer`. Any other request, or a
//! client that does not accept multipart, gets the whole result as one JSON response: `@defer`
//! only allows the server to send later what it could send now.
//!
//! The execution runs in a task of its own and hands payloads over through a small channel
//! that the response body reads; when the client goes away the body, and with it the
//! receiver, is dropped and the task stops at its next step. Queries only: nothing is left
//! half-done by stopping.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::StreamExt;
use futures_util::stream;
use tokio::sync::mpsc;

use crate::forwarded_headers::ForwardedHeaders;
use crate::pipeline::{Pipeline, Prepared};
use crate::subscriptions::multipart::{END, START, part};

const CONTENT_TYPE: &str = "multipart/mixed; boundary=\"graphql\"; deferSpec=20220824";

/// Payloads computed ahead of the client reading them.
const PAYLOADS_AHEAD: usize = 2;

/// Whether the client accepts incremental delivery: `multipart/mixed` with the `deferSpec`
/// Apollo Client names, or with no spec at all (urql's `Accept`); not the subscription
/// protocol's `subscriptionSpec`.
pub fn accepts_incremental(accept: Option<&HeaderValue>) -> bool {
    accept.and_then(|v| v.to_str().ok()).is_some_and(|accept| {
        accept.split(',').any(|part| {
            let mut parameters = part.split(';');
            let multipart = parameters
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("multipart/mixed"));
            multipart
                && parameters.all(|parameter| {
                    let mut pair = parameter.splitn(2, '=');
                    let name = pair.next().unwrap_or("").trim();
                    let value = pair.next().unwrap_or("").trim().trim_matches('"');
                    !name.eq_ignore_ascii_case("subscriptionSpec")
                        && (!name.eq_ignore_ascii_case("deferSpec") || value == "20220824")
                })
        })
    })
}

/// Streams a prepared query's payloads as multipart parts.
pub fn respond(
    pipeline: Arc<Pipeline>,
    prepared: Prepared,
    forwarded: ForwardedHeaders,
) -> HttpResponse {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(PAYLOADS_AHEAD);
    tokio::spawn(async move {
        tokio::select! {
            () = sender.closed() => {}
            () = pipeline.execute_deferred(&prepared, &forwarded, &sender) => {}
        }
    });
    let payloads = stream::unfold(receiver, |mut receiver| async move {
        let payload = receiver.recv().await?;
        Some((part(&payload), receiver))
    });
    let body = stream::iter([Bytes::from_static(START)])
        .chain(payloads)
        .chain(stream::iter([Bytes::from_static(END)]))
        .map(Ok::<_, std::convert::Infallible>);
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
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
    fn apollo_clients_and_urqls_accept_headers_ask_for_incremental_delivery() {
        let accepts =
            |text: &'static str| accepts_incremental(Some(&HeaderValue::from_static(text)));
        assert!(accepts(
            "multipart/mixed;deferSpec=20220824,application/json"
        ));
        assert!(accepts(
            "application/graphql-response+json, application/json, text/event-stream, multipart/mixed"
        ));
        assert!(!accepts(
            "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json"
        ));
        assert!(!accepts("multipart/mixed;deferSpec=20990101"));
        assert!(!accepts("application/json"));
    }
}
