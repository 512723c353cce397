//! Configured client headers (`--propagate-header`) reach the subgraphs: on root fetches, on
//! entity fetches, on each subscription event's entity fetches and on the upstream
//! subscription's WebSocket; headers nobody configured stay at the gateway; and clients whose
//! forwarded headers differ never share an answer.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Context, EmptyMutation, EmptySubscription, Executor, ID, Object, Schema};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use futures_util::{SinkExt, StreamExt};
use gateway::Config;
use serde_json::{Value, json};
use support::streaming::{purchase, start_subgraphs};
use support::{Recorded, SubgraphServer};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const QUERY: &str = "{ products { id tenantAtRoot authorizationAtRoot otherAtRoot \
                     tenantAtEntity authorizationAtEntity otherAtEntity } }";
const WAIT: Duration = Duration::from_secs(10);

/// The headers a subgraph received, handed to its resolvers so that they can echo them.
#[derive(Clone, Default)]
struct Received {
    tenant: Option<String>,
    authorization: Option<String>,
    other: Option<String>,
}

fn received<'a>(ctx: &'a Context<'_>) -> Option<&'a Received> {
    ctx.data_opt::<Received>()
}

/// Owns `Query.products`: its fields echo what the root fetch carried.
struct Product {
    id: ID,
}

#[Object]
impl Product {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn tenant_at_root(&self, ctx: &Context<'_>) -> Option<String> {
        received(ctx)?.tenant.clone()
    }

    async fn authorization_at_root(&self, ctx: &Context<'_>) -> Option<String> {
        received(ctx)?.authorization.clone()
    }

    async fn other_at_root(&self, ctx: &Context<'_>) -> Option<String> {
        received(ctx)?.other.clone()
    }
}

struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn products(&self) -> Vec<Product> {
        ["1", "2"]
            .into_iter()
            .map(|id| Product { id: ID::from(id) })
            .collect()
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id }
    }
}

/// Adds fields to `Product` that only an entity fetch can reach; they echo what it carried.
struct ReviewedProduct {
    id: ID,
}

#[Object(name = "Product")]
impl ReviewedProduct {
    async fn id(&self) -> &ID {
        &self.id
    }

    async fn tenant_at_entity(&self, ctx: &Context<'_>) -> Option<String> {
        received(ctx)?.tenant.clone()
    }

    async fn authorization_at_entity(&self, ctx: &Context<'_>) -> Option<String> {
        received(ctx)?.authorization.clone()
    }

    async fn other_at_entity(&self, ctx: &Context<'_>) -> Option<String> {
        received(ctx)?.other.clone()
    }
}

struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    async fn review_count(&self) -> i32 {
        0
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> ReviewedProduct {
        ReviewedProduct { id }
    }
}

#[derive(Clone)]
struct EchoState<E> {
    executor: E,
    requests: Arc<Mutex<Vec<Recorded>>>,
    delay: Duration,
}

async fn echo<E: Executor>(
    State(state): State<EchoState<E>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request = request.into_inner();
    if let Ok(mut requests) = state.requests.lock() {
        requests.push(Recorded {
            query: request.query.clone(),
            variables: Value::Null,
            authorization: text("authorization"),
            headers: headers.clone(),
        });
    }
    tokio::time::sleep(state.delay).await;
    let request = request.data(Received {
        tenant: text("x-tenant"),
        authorization: text("authorization"),
        other: text("x-other"),
    });
    state.executor.execute(request).await.into()
}

async fn serve_echo<E: Executor>(executor: E, delay: Duration) -> SubgraphServer {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/graphql", post(echo::<E>))
        .with_state(EchoState {
            executor,
            requests: requests.clone(),
            delay,
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    SubgraphServer {
        url: format!("http://{addr}/graphql"),
        requests,
    }
}

struct Echoes {
    products: SubgraphServer,
    reviews: SubgraphServer,
    gateway: String,
}

/// Both subgraphs and a gateway composed from them; `delay` slows every subgraph answer so
/// that concurrent requests are in flight together.
async fn start(delay: Duration, configure: impl FnOnce(&mut Config)) -> Echoes {
    let products = serve_echo(
        Schema::build(ProductsQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
        delay,
    )
    .await;
    let reviews = serve_echo(
        Schema::build(ReviewsQuery, EmptyMutation, EmptySubscription)
            .enable_federation()
            .finish(),
        delay,
    )
    .await;
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("products".into(), products.url.clone()),
        ("reviews".into(), reviews.url.clone()),
    ];
    configure(&mut config);
    let gateway = support::spawn_gateway(config).await;
    Echoes {
        products,
        reviews,
        gateway: format!("http://{gateway}/graphql"),
    }
}

fn tenant(config: &mut Config) {
    // Any case, as an operator might write it.
    config.propagate_headers = vec!["X-Tenant".into()];
}

async fn post_query(gateway: &str, headers: &[(&str, &str)]) -> Value {
    let mut request = reqwest::Client::new()
        .post(gateway)
        .json(&json!({ "query": QUERY }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("gateway request");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("JSON body");
    assert!(body.get("errors").is_none(), "{body}");
    body
}

/// The value every product reports for `field`; they must agree.
fn echoed(body: &Value, field: &str) -> Value {
    let products = body["data"]["products"].as_array().expect("products");
    assert_eq!(products.len(), 2, "{body}");
    let first = products[0][field].clone();
    assert!(products.iter().all(|p| p[field] == first), "{body}");
    first
}

#[tokio::test]
async fn a_configured_header_reaches_root_and_entity_fetches_and_others_do_not() {
    let echoes = start(Duration::ZERO, tenant).await;
    let headers = [
        ("x-tenant", "acme"),
        ("authorization", "Bearer t"),
        ("x-other", "stays"),
    ];
    let body = post_query(&echoes.gateway, &headers).await;
    assert_eq!(echoed(&body, "tenantAtRoot"), "acme");
    assert_eq!(echoed(&body, "tenantAtEntity"), "acme");
    assert_eq!(echoed(&body, "authorizationAtRoot"), "Bearer t");
    assert_eq!(echoed(&body, "authorizationAtEntity"), "Bearer t");
    assert_eq!(echoed(&body, "otherAtRoot"), Value::Null);
    assert_eq!(echoed(&body, "otherAtEntity"), Value::Null);
    assert!(!echoes.reviews.entity_requests().is_empty());

    // GET takes the same path.
    let response = reqwest::Client::new()
        .get(&echoes.gateway)
        .query(&[("query", QUERY)])
        .header("X-TENANT", "by-get")
        .send()
        .await
        .expect("GET request");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(echoed(&body, "tenantAtRoot"), "by-get");
    assert_eq!(echoed(&body, "tenantAtEntity"), "by-get");
    assert_eq!(echoed(&body, "authorizationAtEntity"), Value::Null);
}

#[tokio::test]
async fn without_configuration_only_authorization_is_forwarded() {
    let echoes = start(Duration::ZERO, |_| {}).await;
    let body = post_query(
        &echoes.gateway,
        &[("x-tenant", "acme"), ("authorization", "Bearer t")],
    )
    .await;
    assert_eq!(echoed(&body, "tenantAtRoot"), Value::Null);
    assert_eq!(echoed(&body, "tenantAtEntity"), Value::Null);
    assert_eq!(echoed(&body, "authorizationAtRoot"), "Bearer t");
    assert_eq!(echoed(&body, "authorizationAtEntity"), "Bearer t");
    let sent = echoes.products.requests();
    assert!(
        sent.iter().all(|r| r.header("x-tenant").is_none()),
        "{sent:?}"
    );
}

/// Four identical queries at once from tenants a, b, a, b; each must get its own tenant's
/// answer.
async fn concurrent_tenants(echoes: &Echoes) {
    let tenants = ["a", "b", "a", "b"];
    let answers = futures_util::future::join_all(
        tenants
            .iter()
            .map(|t| async move { post_query(&echoes.gateway, &[("x-tenant", t)]).await }),
    )
    .await;
    for (tenant, body) in tenants.iter().zip(&answers) {
        assert_eq!(echoed(body, "tenantAtRoot"), *tenant, "{body}");
        assert_eq!(echoed(body, "tenantAtEntity"), *tenant, "{body}");
    }
}

fn tenants_seen(requests: Vec<Recorded>) -> Vec<String> {
    let mut seen: Vec<String> = requests
        .iter()
        .filter_map(|r| r.header("x-tenant").map(str::to_string))
        .collect();
    seen.sort();
    seen
}

#[tokio::test]
async fn subgraph_requests_differing_in_a_forwarded_header_are_not_shared() {
    let echoes = start(Duration::from_millis(300), tenant).await;
    concurrent_tenants(&echoes).await;
    // Identical requests were shared (sharing is on by default), but never across tenants.
    assert_eq!(tenants_seen(echoes.products.requests()), ["a", "b"]);
    assert_eq!(tenants_seen(echoes.reviews.entity_requests()), ["a", "b"]);
}

#[tokio::test]
async fn client_requests_differing_in_a_forwarded_header_are_not_shared() {
    let echoes = start(Duration::from_millis(300), |config| {
        tenant(config);
        config.dedupe_client_requests = true;
        // Only the client-level sharing is under test here.
        config.dedupe_subgraph_requests = false;
    })
    .await;
    concurrent_tenants(&echoes).await;
    assert_eq!(tenants_seen(echoes.products.requests()), ["a", "b"]);
    assert_eq!(tenants_seen(echoes.reviews.entity_requests()), ["a", "b"]);
}

#[tokio::test]
async fn an_invalid_header_name_stops_startup_with_a_clear_error() {
    let mut config = Config::with_supergraph("unused");
    config.propagate_headers = vec!["x-tenant".into(), "bad header".into()];
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let error = gateway::run(listener, config, std::future::pending())
        .await
        .expect_err("refused");
    assert!(matches!(error, gateway::GatewayError::PropagatedHeader(_)));
    assert!(error.to_string().contains("'bad header'"), "{error}");
}

const SUBSCRIPTION: &str = "subscription { purchaseMade { seq sponsor { name } } }";

async fn start_streaming() -> (support::streaming::Streaming, std::net::SocketAddr) {
    let subgraphs = start_subgraphs().await;
    let mut config = Config::with_supergraph("unused");
    config.supergraph = None;
    config.subgraphs = vec![
        ("tickets".into(), subgraphs.tickets_server.url.clone()),
        ("crm".into(), subgraphs.crm.url.clone()),
    ];
    tenant(&mut config);
    let gateway = support::spawn_gateway(config).await;
    (subgraphs, gateway)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message, as JSON.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("open socket")
            .expect("message");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON message");
        }
    }
}

async fn wait_for_subscribers(subgraphs: &support::streaming::Streaming) {
    for _ in 0..500 {
        if subgraphs.tickets.subscribers() >= 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gateway never subscribed upstream");
}

/// The headers the upstream subscription's upgrade request and `connection_init` carried.
fn upstream_tenant(subgraphs: &support::streaming::Streaming) -> (Vec<String>, Vec<Value>) {
    let upgrades = subgraphs
        .tickets
        .upgrade_headers
        .lock()
        .expect("lock")
        .iter()
        .map(|h| {
            h.get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    let inits = subgraphs
        .tickets
        .init_payloads
        .lock()
        .expect("lock")
        .iter()
        .map(|p| p["x-tenant"].clone())
        .collect();
    (upgrades, inits)
}

#[tokio::test]
async fn each_subscription_event_carries_the_header_from_the_init_payload() {
    let (subgraphs, gateway) = start_streaming().await;
    let mut request = format!("ws://{gateway}/graphql")
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    headers.insert("x-tenant", HeaderValue::from_static("from-upgrade"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connect");
    // Browsers cannot set WebSocket headers; the payload's key (any case) wins.
    let init = json!({ "type": "connection_init", "payload": { "X-Tenant": "from-init" } });
    socket
        .send(Message::text(init.to_string()))
        .await
        .expect("send");
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    let subscribe = json!({ "type": "subscribe", "id": "a", "payload": { "query": SUBSCRIPTION } });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .expect("send");
    wait_for_subscribers(&subgraphs).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    subgraphs.tickets.publish(purchase(2, "s2"));
    for (seq, name) in [(1, "Acme"), (2, "Globex")] {
        let message = receive(&mut socket).await;
        assert_eq!(
            message["payload"]["data"]["purchaseMade"],
            json!({ "seq": seq, "sponsor": { "name": name } }),
            "{message}"
        );
    }
    let entity_requests = subgraphs.crm.entity_requests();
    assert_eq!(entity_requests.len(), 2, "one entity fetch per event");
    assert_eq!(tenants_seen(entity_requests), ["from-init", "from-init"]);
    assert_eq!(
        upstream_tenant(&subgraphs),
        (vec!["from-init".to_string()], vec![json!("from-init")])
    );
}

#[tokio::test]
async fn sse_subscription_events_carry_the_header() {
    let (subgraphs, gateway) = start_streaming().await;
    let mut response = reqwest::Client::new()
        .post(format!("http://{gateway}/graphql"))
        .header("accept", "text/event-stream")
        .header("x-tenant", "by-sse")
        .header("x-other", "stays")
        .json(&json!({ "query": SUBSCRIPTION }))
        .send()
        .await
        .expect("SSE request");
    assert_eq!(response.status().as_u16(), 200);
    wait_for_subscribers(&subgraphs).await;
    subgraphs.tickets.publish(purchase(1, "s1"));
    // Read until the first event has arrived whole.
    let mut text = String::new();
    while !text.contains("\n\n") || !text.contains("event: next") {
        let chunk = tokio::time::timeout(WAIT, response.chunk())
            .await
            .expect("an event in time")
            .expect("stream")
            .expect("open stream");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("Acme"), "{text}");
    let entity_requests = subgraphs.crm.entity_requests();
    assert_eq!(tenants_seen(entity_requests.clone()), ["by-sse"]);
    assert!(
        entity_requests
            .iter()
            .all(|r| r.header("x-other").is_none())
    );
    assert_eq!(
        upstream_tenant(&subgraphs),
        (vec!["by-sse".to_string()], vec![json!("by-sse")])
    );
}

/// Per-client limits in the services (mutation rate, unpaid seats) must count the client, not
/// the gateway: mutations carry the client's address chain in `X-Forwarded-For`, ending with
/// the address that connected to the gateway. Queries do not, so that identical requests from
/// different clients still share subgraph fetches.
#[tokio::test]
async fn mutations_name_the_client_address_queries_do_not() {
    let stack = support::start().await;
    let response = stack
        .http
        .post(stack.url())
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({
            "query": "mutation { addReview(upc: \"1\", body: \"Great\") { body } }"
        }))
        .send()
        .await
        .expect("mutation");
    assert!(response.status().is_success());
    stack.query("{ topProducts { upc } }").await;

    let requests = stack.reviews.requests();
    let mutation = requests
        .iter()
        .find(|r| r.query.contains("addReview"))
        .expect("the mutation reached the reviews subgraph");
    assert_eq!(
        mutation.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1"),
        "the chain it came with, then the gateway's peer"
    );
    let queries: Vec<_> = stack
        .products
        .requests()
        .into_iter()
        .chain(
            requests
                .into_iter()
                .filter(|r| !r.query.contains("addReview")),
        )
        .collect();
    assert!(!queries.is_empty());
    assert!(
        queries
            .iter()
            .all(|r| r.header("x-forwarded-for").is_none())
    );
}
