//! HTTP transport to subgraphs: one pooled client, per-subgraph URL and timeout, and sharing
//! of identical in-flight requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserializer;
use serde::de::{MapAccess, Visitor};

use crate::forwarded_headers::ForwardedHeaders;
use crate::in_flight::InFlight;
use crate::json::{self, Json, Seed};
use crate::metrics::{FetchOutcome, Metrics};
use crate::subscriptions::upstream::websocket_url;
use crate::supergraph::{SubgraphId, Supergraph};

#[derive(Debug, Clone)]
struct Endpoint {
    name: String,
    /// Parsed once: reqwest would otherwise parse the URL text on every request. A URL that
    /// does not parse stays text, and every request to it fails with reqwest's own error.
    url: Result<reqwest::Url, String>,
    /// Where subscriptions go: configured, or the HTTP URL with a `ws`/`wss` scheme.
    websocket_url: Option<String>,
    timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SubgraphClient {
    http: reqwest::Client,
    endpoints: Arc<Vec<Endpoint>>,
    /// Identical requests in flight at the same moment, sent once; `None` when switched off.
    in_flight: Option<Arc<InFlight<FetchKey, RawAnswer>>>,
    metrics: Arc<Metrics>,
}

/// What makes two subgraph requests interchangeable: same subgraph, same forwarded headers
/// (credentials, tenant, ...: a subgraph may answer differently to each), same body byte for
/// byte.
#[derive(PartialEq, Eq, Hash)]
struct FetchKey {
    subgraph: SubgraphId,
    headers: ForwardedHeaders,
    body: Bytes,
}

/// A subgraph's raw answer: status and body, cheap to clone for every sharer.
type RawAnswer = Result<(u16, Bytes), FetchError>;

/// The parts of a subgraph's GraphQL response the gateway uses. `data` keeps its strings as
/// slices of the answer's bytes (see [`Json`]); errors are few and stay plain JSON values.
#[derive(Debug, Default)]
pub struct SubgraphResponse {
    pub data: Option<Json>,
    pub errors: Vec<serde_json::Value>,
}

impl SubgraphResponse {
    /// Parses a response body.
    pub fn parse(body: &Bytes) -> Result<Self, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let response = deserializer.deserialize_map(ResponseVisitor { origin: body })?;
        deserializer.end()?;
        Ok(response)
    }

    /// Takes a response already parsed as JSON (a subscription event's payload).
    pub fn from_value(value: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(mut map) = value else {
            return Err("a response must be an object".into());
        };
        let data = match map.remove("data") {
            None | Some(serde_json::Value::Null) => None,
            Some(data) => Some(Json::from(data)),
        };
        let errors = match map.remove("errors") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(errors)) => errors,
            Some(_) => return Err("`errors` must be a list".into()),
        };
        Ok(SubgraphResponse { data, errors })
    }
}

struct ResponseVisitor<'b> {
    origin: &'b Bytes,
}

impl<'de> Visitor<'de> for ResponseVisitor<'_> {
    type Value = SubgraphResponse;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a GraphQL response object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SubgraphResponse, A::Error> {
        let mut response = SubgraphResponse::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "data" => {
                    response.data = match map.next_value_seed(Seed {
                        origin: self.origin,
                    })? {
                        Json::Null => None,
                        data => Some(data),
                    }
                }
                "errors" => {
                    response.errors = map
                        .next_value::<Option<Vec<serde_json::Value>>>()?
                        .unwrap_or_default()
                }
                _ => json::skip(&mut map)?,
            }
        }
        Ok(response)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("subgraph answered HTTP {0} without a GraphQL response")]
    Status(u16),
    #[error("invalid GraphQL response: {0}")]
    InvalidResponse(String),
}

impl SubgraphClient {
    pub fn new(
        supergraph: &Supergraph,
        default_timeout: Duration,
        timeouts: &[(String, Duration)],
        websocket_urls: &[(String, String)],
        share_identical_requests: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            // A subgraph answers where it is configured; following redirects would re-send
            // operations (mutations included) to wherever a 3xx points, and costs a policy
            // check on every request.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()?;
        let endpoints = supergraph
            .subgraphs
            .iter()
            .map(|s| Endpoint {
                name: s.name.clone(),
                url: reqwest::Url::parse(&s.url).map_err(|_| s.url.clone()),
                websocket_url: websocket_urls
                    .iter()
                    .find(|(name, _)| name == &s.name)
                    .map(|(_, url)| url.clone())
                    .or_else(|| websocket_url(&s.url)),
                timeout: timeouts
                    .iter()
                    .find(|(name, _)| name == &s.name)
                    .map(|(_, t)| *t)
                    .unwrap_or(default_timeout),
            })
            .collect();
        Ok(SubgraphClient {
            http,
            endpoints: Arc::new(endpoints),
            in_flight: share_identical_requests.then(Arc::default),
            metrics,
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn name(&self, subgraph: SubgraphId) -> &str {
        self.endpoints
            .get(subgraph)
            .map(|e| e.name.as_str())
            .unwrap_or("unknown")
    }

    pub fn websocket_url(&self, subgraph: SubgraphId) -> Option<&str> {
        self.endpoints
            .get(subgraph)
            .and_then(|e| e.websocket_url.as_deref())
    }

    pub fn timeout(&self, subgraph: SubgraphId) -> Option<Duration> {
        self.endpoints.get(subgraph).map(|e| e.timeout)
    }

    /// Sends a GraphQL request to a subgraph. With `shareable` (operations without side
    /// effects) an identical request already in flight is joined instead of sent again.
    pub async fn fetch(
        &self,
        subgraph: SubgraphId,
        body: Vec<u8>,
        forwarded: &ForwardedHeaders,
        shareable: bool,
    ) -> Result<SubgraphResponse, FetchError> {
        let started = Instant::now();
        let result = self.round_trip(subgraph, body, forwarded, shareable).await;
        let outcome = match &result {
            Ok(response) if response.errors.is_empty() => FetchOutcome::Ok,
            Ok(_) => FetchOutcome::Errors,
            Err(_) => FetchOutcome::Failed,
        };
        self.metrics
            .subgraph_fetch(subgraph, outcome, started.elapsed());
        result
    }

    async fn round_trip(
        &self,
        subgraph: SubgraphId,
        body: Vec<u8>,
        forwarded: &ForwardedHeaders,
        shareable: bool,
    ) -> Result<SubgraphResponse, FetchError> {
        let endpoint = self
            .endpoints
            .get(subgraph)
            .ok_or_else(|| FetchError::Transport("unknown subgraph".into()))?;
        let (status, bytes) = match (&self.in_flight, shareable) {
            (Some(in_flight), true) => {
                let key = FetchKey {
                    subgraph,
                    headers: forwarded.clone(),
                    body: Bytes::from(body),
                };
                let (http, url, timeout) =
                    (self.http.clone(), endpoint.url.clone(), endpoint.timeout);
                let (body, headers) = (key.body.clone(), key.headers.clone());
                in_flight
                    .run(key, move || send(http, url, timeout, body, headers).boxed())
                    .await?
            }
            _ => {
                send(
                    self.http.clone(),
                    endpoint.url.clone(),
                    endpoint.timeout,
                    Bytes::from(body),
                    forwarded.clone(),
                )
                .await?
            }
        };
        // A graphql-response+json server may answer 4xx/5xx with a GraphQL body: keep its errors.
        match SubgraphResponse::parse(&bytes) {
            Ok(parsed) if parsed.data.is_some() || !parsed.errors.is_empty() => Ok(parsed),
            Ok(_) if (200..300).contains(&status) => Err(FetchError::InvalidResponse(
                "neither data nor errors".into(),
            )),
            Err(e) if (200..300).contains(&status) => {
                Err(FetchError::InvalidResponse(e.to_string()))
            }
            _ => Err(FetchError::Status(status)),
        }
    }
}

/// One HTTP round trip; owns everything so that it can be shared between callers.
async fn send(
    http: reqwest::Client,
    url: Result<reqwest::Url, String>,
    timeout: Duration,
    body: Bytes,
    forwarded: ForwardedHeaders,
) -> RawAnswer {
    let request = match url {
        Ok(url) => http.post(url),
        Err(text) => http.post(text),
    };
    let mut request = request
        .timeout(timeout)
        .header(CONTENT_TYPE, "application/json")
        .header(
            ACCEPT,
            "application/graphql-response+json, application/json",
        )
        .body(body);
    for (name, value) in forwarded.iter() {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(|e| classify(e, timeout))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| classify(e, timeout))?;
    Ok((status, bytes))
}

fn classify(error: reqwest::Error, timeout: Duration) -> FetchError {
    if error.is_timeout() {
        FetchError::Timeout(timeout)
    } else {
        // Walk the source chain: reqwest's top-level message alone ("error sending request")
        // does not tell an operator that the connection was refused.
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        FetchError::Transport(message)
    }
}
