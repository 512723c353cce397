//! Which client request headers go on to the subgraphs.
//!
//! `Authorization` always does; operators add others (`--propagate-header x-tenant`). The
//! headers are picked once per client request (or WebSocket connection) into a
//! `ForwardedHeaders`, which every subgraph fetch of that request shares by reference count:
//! a request with none of the headers costs no allocation at all, and a fetch never copies a
//! header map.

use std::sync::Arc;

use axum::http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use platform::rate_limit::RateKey;

use crate::error::GatewayError;

/// Headers that describe the connection or the body of the gateway's own request to a
/// subgraph (or its WebSocket handshake). Copying the client's would corrupt that request.
const REFUSED: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "content-type",
    "content-encoding",
    "accept",
    "accept-encoding",
];

/// The configured header names, checked once at startup.
#[derive(Debug, Clone, Default)]
pub struct HeaderPropagation {
    /// Configured names besides `Authorization`, in configuration order so that the same
    /// headers always come out in the same order (they are part of sharing keys).
    names: Vec<HeaderName>,
}

impl HeaderPropagation {
    /// Validates the configured names: each must be a header name, and not one that the
    /// gateway sets itself.
    pub fn new(configured: &[String]) -> Result<Self, GatewayError> {
        let mut names: Vec<HeaderName> = Vec::with_capacity(configured.len());
        for raw in configured {
            let trimmed = raw.trim();
            let name = HeaderName::try_from(trimmed).map_err(|_| {
                GatewayError::PropagatedHeader(format!("'{raw}' is not a valid header name"))
            })?;
            if REFUSED.contains(&name.as_str()) || name.as_str().starts_with("sec-websocket-") {
                return Err(GatewayError::PropagatedHeader(format!(
                    "'{trimmed}' describes the gateway's own request to a subgraph and cannot \
                     be propagated"
                )));
            }
            // Authorization is always forwarded; listing it, or a name twice, changes nothing.
            if name != AUTHORIZATION && !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(HeaderPropagation { names })
    }

    /// The headers of a client's HTTP request (or WebSocket upgrade request) to forward.
    pub fn from_request(&self, headers: &HeaderMap) -> ForwardedHeaders {
        let authorization = headers.get(AUTHORIZATION);
        if self.names.is_empty() {
            // The common case: no list to build, and nothing at all without credentials.
            return match authorization {
                None => ForwardedHeaders::default(),
                Some(value) => ForwardedHeaders::authorization(value.clone()),
            };
        }
        let mut forwarded = Vec::new();
        if let Some(value) = authorization {
            forwarded.push((AUTHORIZATION, value.clone()));
        }
        for name in &self.names {
            for value in headers.get_all(name) {
                forwarded.push((name.clone(), value.clone()));
            }
        }
        ForwardedHeaders::from_vec(forwarded)
    }

    /// The headers of a WebSocket connection once the client sent `connection_init`: browsers
    /// cannot set headers on a WebSocket upgrade, so clients put them in the payload. A payload
    /// key (any case) wins over the upgrade request's header; values that are not valid header
    /// values are ignored. Credentials keep their own rules (`authorization_from_init`).
    pub fn from_init(
        &self,
        payload: Option<&Value>,
        upgrade: &ForwardedHeaders,
    ) -> ForwardedHeaders {
        let object = payload.and_then(Value::as_object);
        let mut forwarded = Vec::new();
        if let Some(value) =
            authorization_from_init(payload).or_else(|| upgrade.get(&AUTHORIZATION).cloned())
        {
            forwarded.push((AUTHORIZATION, value));
        }
        for name in &self.names {
            let from_payload = object.and_then(|object| {
                object
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name.as_str()))
                    .and_then(|(_, value)| HeaderValue::from_str(value.as_str()?).ok())
            });
            match from_payload {
                Some(value) => forwarded.push((name.clone(), value)),
                None => forwarded.extend(
                    upgrade
                        .iter()
                        .filter(|(n, _)| *n == name)
                        .map(|(n, v)| (n.clone(), v.clone())),
                ),
            }
        }
        ForwardedHeaders::from_vec(forwarded)
    }
}

/// The headers one client request sends on to subgraphs. Cheap to clone; equal (and hashing
/// alike) exactly when the same headers with the same values would be sent, which is what
/// keys that share subgraph answers between clients need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ForwardedHeaders(Option<Arc<[(HeaderName, HeaderValue)]>>);

impl ForwardedHeaders {
    fn from_vec(headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        if headers.is_empty() {
            ForwardedHeaders(None)
        } else {
            ForwardedHeaders(Some(headers.into()))
        }
    }

    /// Only `Authorization`, as a client without any other forwarded header would send it.
    pub fn authorization(value: HeaderValue) -> Self {
        let headers: Arc<[(HeaderName, HeaderValue)]> = Arc::new([(AUTHORIZATION, value)]);
        ForwardedHeaders(Some(headers))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().flat_map(|h| h.iter()).map(|(n, v)| (n, v))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// These headers with `X-Forwarded-For` naming the client's address chain (instead of
    /// any propagated value), for a mutation.
    pub fn with_client(&self, client: &ClientAddress) -> ForwardedHeaders {
        let Some(chain) = &client.chain else {
            return self.clone();
        };
        let mut headers: Vec<(HeaderName, HeaderValue)> = self
            .iter()
            .filter(|(name, _)| **name != X_FORWARDED_FOR)
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        headers.push((X_FORWARDED_FOR, chain.clone()));
        ForwardedHeaders::from_vec(headers)
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Where a request came from: the `X-Forwarded-For` chain it arrived with, plus the address
/// that connected to the gateway. Mutations carry it to the subgraphs, whose per-client limits
/// (mutation rate, unpaid seats) then count the client, not the gateway, when they trust the
/// gateway as a proxy. Queries and subscriptions do not: what identical requests share
/// (in-flight subgraph fetches, shared subscriptions) must not differ by client.
///
/// It also carries whose bucket the request's mutations draw from at the gateway's own rate
/// limit (see [`crate::pipeline::Pipeline::client_address`]).
#[derive(Debug, Clone)]
pub struct ClientAddress {
    chain: Option<HeaderValue>,
    rate_key: RateKey,
}

impl Default for ClientAddress {
    fn default() -> Self {
        Self {
            chain: None,
            rate_key: RateKey::Unknown,
        }
    }
}

impl ClientAddress {
    pub fn new(headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> Self {
        let Some(peer) = peer else {
            return Self::default();
        };
        let mut chain: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let peer = peer.to_string();
        chain.push(&peer);
        Self {
            chain: HeaderValue::from_str(&chain.join(", ")).ok(),
            rate_key: RateKey::Unknown,
        }
    }

    pub fn with_rate_key(mut self, rate_key: RateKey) -> Self {
        self.rate_key = rate_key;
        self
    }

    pub fn rate_key(&self) -> &RateKey {
        &self.rate_key
    }
}

/// Credentials from a `connection_init` payload, as an `Authorization` value. Clients put them
/// under different names; a bare token (`authToken`, `token`) is sent as a bearer token.
pub fn authorization_from_init(payload: Option<&Value>) -> Option<HeaderValue> {
    let payload = payload?.as_object()?;
    // Apollo Client set-ups often nest it as they would HTTP headers:
    // `connectionParams: { headers: { Authorization } }`.
    let nested = payload.get("headers").and_then(Value::as_object);
    let header = ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(*key).or_else(|| nested?.get(*key))?.as_str());
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
    use super::*;
    use serde_json::json;

    fn propagation(names: &[&str]) -> HeaderPropagation {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        HeaderPropagation::new(&names).expect("valid names")
    }

    fn request(headers: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn pairs(forwarded: &ForwardedHeaders) -> Vec<(String, String)> {
        forwarded
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect()
    }

    #[test]
    fn names_are_validated_at_startup() {
        let error = |name: &str| HeaderPropagation::new(&[name.to_string()]).err();
        assert!(matches!(
            error("bad header"),
            Some(GatewayError::PropagatedHeader(_))
        ));
        assert!(matches!(error(""), Some(GatewayError::PropagatedHeader(_))));
        assert!(matches!(
            error("Content-Length"),
            Some(GatewayError::PropagatedHeader(_))
        ));
        assert!(matches!(
            error("sec-websocket-key"),
            Some(GatewayError::PropagatedHeader(_))
        ));
        assert!(error(" X-Tenant ").is_none());
    }

    #[test]
    fn only_authorization_and_configured_headers_are_forwarded() {
        let headers = request(&[
            ("authorization", "Bearer a"),
            ("x-tenant", "t1"),
            ("x-other", "o"),
        ]);
        assert_eq!(
            pairs(&propagation(&["X-Tenant", "authorization", "x-tenant"]).from_request(&headers)),
            [
                ("authorization".into(), "Bearer a".into()),
                ("x-tenant".into(), "t1".into())
            ]
        );
        assert_eq!(
            pairs(&propagation(&[]).from_request(&headers)),
            [("authorization".into(), "Bearer a".into())]
        );
        assert!(
            propagation(&["x-tenant"])
                .from_request(&HeaderMap::new())
                .is_empty()
        );
    }

    #[test]
    fn different_values_make_different_keys() {
        let propagation = propagation(&["x-tenant"]);
        let a = propagation.from_request(&request(&[("x-tenant", "a")]));
        let b = propagation.from_request(&request(&[("x-tenant", "b")]));
        assert_ne!(a, b);
        assert_eq!(a, propagation.from_request(&request(&[("x-tenant", "a")])));
    }

    #[test]
    fn init_payload_wins_over_the_upgrade_request() {
        let propagation = propagation(&["x-tenant", "x-region"]);
        let upgrade = propagation.from_request(&request(&[
            ("authorization", "Bearer upgrade"),
            ("x-tenant", "from-upgrade"),
            ("x-region", "eu"),
        ]));
        let payload = json!({ "X-Tenant": "from-init", "x-region": 7 });
        assert_eq!(
            pairs(&propagation.from_init(Some(&payload), &upgrade)),
            [
                ("authorization".into(), "Bearer upgrade".into()),
                ("x-tenant".into(), "from-init".into()),
                // Not a string: the upgrade request's value stands.
                ("x-region".into(), "eu".into()),
            ]
        );
        let payload = json!({ "authToken": "t" });
        assert_eq!(
            pairs(&propagation.from_init(Some(&payload), &ForwardedHeaders::default())),
            [("authorization".into(), "Bearer t".into())]
        );
    }

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
            auth(json!({ "headers": { "Authorization": "Bearer h" } })).as_deref(),
            Some("Bearer h")
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
