//! Identical client queries in flight at the same moment, executed once: what the answer
//! they share holds and what makes two requests the same. Kept apart from the HTTP handlers
//! and the pipeline, which both use it.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use platform::edge::MediaType;

use crate::forwarded_headers::ForwardedHeaders;
use crate::in_flight::InFlight;
use crate::metrics::RequestOutcome;

/// The table of shared requests.
pub type SharedClientRequests = InFlight<ClientRequestKey, SharedResponse>;

/// What identical client requests share: the serialised answer, and how it went.
#[derive(Clone)]
pub struct SharedResponse {
    pub(crate) status: StatusCode,
    pub(crate) media: MediaType,
    pub(crate) body: Bytes,
    pub(crate) outcome: RequestOutcome,
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
    pub(crate) media: MediaType,
    pub(crate) forwarded: ForwardedHeaders,
    pub(crate) body: Bytes,
}
