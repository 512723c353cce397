//! Test harness: real subgraphs and a real gateway on ephemeral ports, talked to over HTTP.

#![allow(dead_code)]

pub mod streaming;
pub mod subgraphs;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Executor;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use gateway::Config;
use serde_json::Value;
use tokio::net::TcpListener;

/// One request a subgraph received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub query: String,
    pub variables: Value,
    pub authorization: Option<String>,
    /// Every header of the request, for tests of header forwarding.
    pub headers: HeaderMap,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
pub struct SubgraphServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl SubgraphServer {
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn entity_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.query.contains("_entities"))
            .collect()
    }
}

#[derive(Clone)]
struct SubgraphState<E> {
    executor: E,
    requests: Arc<Mutex<Vec<Recorded>>>,
    delay: Option<Duration>,
}

async fn handle<E: Executor>(
    State(state): State<SubgraphState<E>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let request = request.into_inner();
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(Recorded {
            query: request.query.clone(),
            variables: serde_json::to_value(&request.variables).unwrap_or(Value::Null),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            headers: headers.clone(),
        });
    }
    if let Some(delay) = state.delay {
        tokio::time::sleep(delay).await;
    }
    state.executor.execute(request).await.into()
}

pub async fn serve_subgraph<E: Executor>(executor: E, delay: Option<Duration>) -> SubgraphServer {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/graphql", post(handle::<E>))
        .with_state(SubgraphState {
            executor,
            requests: requests.clone(),
            delay,
        });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind subgraph");
    let addr = listener.local_addr().expect("subgraph address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    SubgraphServer {
        url: format!("http://{addr}/graphql"),
        requests,
    }
}

/// A URL where nothing listens: bind a port, then release it.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}/graphql")
}

pub struct Stack {
    pub accounts: SubgraphServer,
    pub products: SubgraphServer,
    pub inventory: SubgraphServer,
    pub reviews: SubgraphServer,
    pub gateway: SocketAddr,
    pub http: reqwest::Client,
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub struct Options {
    pub accounts_url: Option<String>,
    pub inventory_delay: Option<Duration>,
    pub configure: fn(&mut Config),
    /// Compose from the subgraphs' `_service { sdl }` instead of using the fixture.
    pub compose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            accounts_url: None,
            inventory_delay: None,
            configure: |_| {},
            compose: false,
        }
    }
}

pub async fn start() -> Stack {
    start_with(Options::default()).await
}

/// Starts a gateway with `config` on an ephemeral port and waits until it answers.
pub async fn spawn_gateway(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let gateway = listener.local_addr().expect("gateway address");
    tokio::spawn(async move {
        if let Err(e) = gateway::run(listener, config, std::future::pending()).await {
            panic!("gateway failed: {e}");
        }
    });
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("http://{gateway}/health"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway
}

pub async fn start_with(options: Options) -> Stack {
    let accounts = serve_subgraph(subgraphs::accounts(), None).await;
    let products = serve_subgraph(subgraphs::products_schema(), None).await;
    let inventory = serve_subgraph(subgraphs::inventory(), options.inventory_delay).await;
    let reviews = serve_subgraph(subgraphs::reviews_schema(), None).await;

    let mut config = Config::with_supergraph(fixture("supergraph.graphql"));
    config.subgraph_urls = vec![
        (
            "accounts".into(),
            options.accounts_url.unwrap_or_else(|| accounts.url.clone()),
        ),
        ("products".into(), products.url.clone()),
        ("inventory".into(), inventory.url.clone()),
        ("reviews".into(), reviews.url.clone()),
    ];
    if options.compose {
        config.supergraph = None;
        config.subgraphs = std::mem::take(&mut config.subgraph_urls);
    }
    (options.configure)(&mut config);
    let gateway = spawn_gateway(config).await;
    let http = reqwest::Client::new();
    Stack {
        accounts,
        products,
        inventory,
        reviews,
        gateway,
        http,
    }
}

impl Stack {
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.gateway)
    }

    /// POSTs an operation and returns the status and the JSON body.
    pub async fn post(&self, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url())
            .json(&serde_json::json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("gateway request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// POSTs a whole request body (a batch, a persisted query, a document id) with `accept`,
    /// and returns the status and the JSON body.
    pub async fn post_body(&self, body: &Value, accept: &str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url())
            .header("accept", accept)
            .json(body)
            .send()
            .await
            .expect("gateway request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    pub async fn query(&self, query: &str) -> Value {
        self.post(query, Value::Null).await.1
    }
}
