//! `@defer` over HTTP: a query with active deferred fragments, from a client that accepts
//! `multipart/mixed` (Apollo Client sends `Accept: multipart/mixed;deferSpec=20220824,
//! application/json`), is answered `multipart/mixed; boundary="graphql"` with the format's
//! parameter, one part per payload of `pipeline::defer`. Any other request, or a
//! client that does not accept multipart, gets the whole result as one JSON response: `@defer`
//! only allows the server to send later what it could send now.
//!
//! The execution runs in a task of its own and hands payloads over through a small channel
//! that the response body reads; when the client goes away the body, and with it the
//! receiver, is dropped and the task stops at its next step. Queries only: nothing is left
//! half-done by stopping.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderValue;
use axum::response::Response as HttpResponse;
use futures_util::StreamExt;
use futures_util::stream;
use tokio::sync::mpsc;

use crate::forwarded_headers::ForwardedHeaders;
use crate::pipeline::defer::Format;
use crate::pipeline::{Pipeline, Prepared};
use crate::subscriptions::multipart::{self, END, START, part};

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Defer20220824 => "multipart/mixed; boundary=\"graphql\"; deferSpec=20220824",
        Format::GraphQL17Alpha9 => "multipart/mixed; boundary=\"graphql\"; incrementalSpec=v0.2",
    }
}

/// Payloads computed ahead of the client reading them.
const PAYLOADS_AHEAD: usize = 2;

/// The incremental delivery format the client accepts, if any: `multipart/mixed` with
/// `deferSpec=20220824` (Apollo Client's default) or with no spec at all (urql's `Accept`),
/// or with `incrementalSpec=v0.2` (graphql-js 17's format, Apollo Client's
/// `GraphQL17Alpha9Handler`); the first listed wins. The subscription protocol's
/// `subscriptionSpec` is not one.
pub fn accepted_format(accept: Option<&HeaderValue>) -> Option<Format> {
    let accept = accept.and_then(|v| v.to_str().ok())?;
    accept.split(',').find_map(|part| {
        let mut parameters = part.split(';');
        let media = parameters.next()?.trim();
        if !media.eq_ignore_ascii_case("multipart/mixed") {
            return None;
        }
        let mut format = Some(Format::Defer20220824);
        for parameter in parameters {
            let mut pair = parameter.splitn(2, '=');
            let name = pair.next().unwrap_or("").trim();
            let value = pair.next().unwrap_or("").trim().trim_matches('"');
            if name.eq_ignore_ascii_case("subscriptionSpec") {
                return None;
            }
            if name.eq_ignore_ascii_case("deferSpec") {
                format = format.filter(|_| value == "20220824");
            }
            if name.eq_ignore_ascii_case("incrementalSpec") {
                format = (value == "v0.2").then_some(Format::GraphQL17Alpha9);
            }
        }
        format
    })
}

/// Streams a prepared query's payloads as multipart parts.
pub fn respond(
    pipeline: Arc<Pipeline>,
    prepared: Prepared,
    forwarded: ForwardedHeaders,
    format: Format,
) -> HttpResponse {
    let (sender, receiver) = mpsc::channel::<Vec<u8>>(PAYLOADS_AHEAD);
    tokio::spawn(async move {
        tokio::select! {
            () = sender.closed() => {}
            () = pipeline.execute_deferred(&prepared, &forwarded, format, &sender) => {}
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
    multipart::response(content_type(format), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apollo_clients_and_urqls_accept_headers_choose_the_format() {
        let format = |text: &'static str| accepted_format(Some(&HeaderValue::from_static(text)));
        assert_eq!(
            format("multipart/mixed;deferSpec=20220824,application/json"),
            Some(Format::Defer20220824)
        );
        assert_eq!(
            format("multipart/mixed;incrementalSpec=v0.2,application/json"),
            Some(Format::GraphQL17Alpha9)
        );
        assert_eq!(
            format(
                "application/graphql-response+json, application/json, text/event-stream, \
                 multipart/mixed"
            ),
            Some(Format::Defer20220824)
        );
        assert_eq!(
            format("multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json"),
            None
        );
        assert_eq!(format("multipart/mixed;deferSpec=20990101"), None);
        assert_eq!(format("application/json"), None);
    }
}
