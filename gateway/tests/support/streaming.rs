//! Two subgraphs for subscription tests, in the shape of the product: `tickets` owns
//! `Subscription.purchaseMade` (a replayable event log plus a live broadcast) and references
//! sponsors; `crm` owns `Sponsor.name`. Both record the credentials they receive, and the
//! tickets subgraph can drop every open WebSocket to simulate an upstream failure.

use std::sync::{Arc, Mutex};

use async_graphql::futures_util::{Stream, StreamExt, stream};
use async_graphql::{Context, Data, EmptyMutation, ID, Object, Schema, SimpleObject, Subscription};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use super::{Recorded, SubgraphServer};

#[derive(SimpleObject, Clone)]
#[graphql(unresolvable = "id")]
pub struct Sponsor {
    pub id: ID,
}

#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Purchase {
    pub id: ID,
    pub seq: i32,
    pub sponsor: Sponsor,
}

#[async_graphql::ComplexObject]
impl Purchase {
    /// Filler of the requested size: large events fill a slow client's buffers quickly.
    async fn padding(&self, bytes: usize) -> String {
        "x".repeat(bytes.min(1 << 20))
    }
}

pub fn purchase(seq: i32, sponsor: &str) -> Purchase {
    Purchase {
        id: ID::from(format!("p{seq}")),
        seq,
        sponsor: Sponsor {
            id: ID::from(sponsor),
        },
    }
}

#[derive(Clone)]
pub struct Tickets {
    pub log: Arc<Mutex<Vec<Purchase>>>,
    pub live: broadcast::Sender<Purchase>,
    /// Sending on it drops every open WebSocket without a close frame.
    pub kill: broadcast::Sender<()>,
    /// Credentials seen in `connection_init` payloads and WebSocket upgrade headers.
    pub init_credentials: Arc<Mutex<Vec<Option<String>>>>,
    pub upgrade_credentials: Arc<Mutex<Vec<Option<String>>>>,
    /// Every header of each WebSocket upgrade request, and each `connection_init` payload.
    pub upgrade_headers: Arc<Mutex<Vec<HeaderMap>>>,
    pub init_payloads: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Tickets {
    /// Appends to the log and pushes to live subscribers.
    pub fn publish(&self, purchase: Purchase) {
        if let Ok(mut log) = self.log.lock() {
            log.push(purchase.clone());
        }
        let _ = self.live.send(purchase);
    }

    pub fn subscribers(&self) -> usize {
        self.live.receiver_count()
    }
}

pub struct TicketsQuery;

#[Object(name = "Query")]
impl TicketsQuery {
    async fn purchases(&self, ctx: &Context<'_>) -> Vec<Purchase> {
        let tickets = ctx.data_unchecked::<Tickets>();
        tickets.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    #[graphql(entity)]
    async fn find_purchase_by_id(&self, ctx: &Context<'_>, id: ID) -> Option<Purchase> {
        let tickets = ctx.data_unchecked::<Tickets>();
        let log = tickets.log.lock().ok()?;
        log.iter().find(|p| p.id == id).cloned()
    }
}

pub struct TicketsSubscription;

#[Subscription(name = "Subscription")]
impl TicketsSubscription {
    /// Purchases after `after` (a sequence number): the log first, then live ones, so a client
    /// that lost its connection resumes where it stopped.
    async fn purchase_made(
        &self,
        ctx: &Context<'_>,
        after: Option<i32>,
    ) -> impl Stream<Item = Purchase> + use<> {
        let tickets = ctx.data_unchecked::<Tickets>().clone();
        let after = after.unwrap_or(0);
        // Subscribe before reading the log so nothing published in between is lost.
        let live = tickets.live.subscribe();
        let replay: Vec<Purchase> = tickets
            .log
            .lock()
            .map(|l| l.iter().filter(|p| p.seq > after).cloned().collect())
            .unwrap_or_default();
        let last = replay.last().map(|p| p.seq).unwrap_or(after);
        let live = stream::unfold(live, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(p) => return Some((p, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |p| std::future::ready(p.seq > last));
        stream::iter(replay).chain(live)
    }
}

pub type TicketsSchema = Schema<TicketsQuery, EmptyMutation, TicketsSubscription>;

#[derive(SimpleObject, Clone)]
#[graphql(name = "Sponsor")]
pub struct CrmSponsor {
    pub id: ID,
    pub name: String,
}

pub struct CrmQuery;

#[Object(name = "Query")]
impl CrmQuery {
    async fn sponsors(&self) -> Vec<CrmSponsor> {
        vec![sponsor("s1")]
    }

    #[graphql(entity)]
    async fn find_sponsor_by_id(&self, id: ID) -> CrmSponsor {
        sponsor(&id)
    }
}

fn sponsor(id: &str) -> CrmSponsor {
    CrmSponsor {
        id: ID::from(id),
        name: match id {
            "s1" => "Acme".into(),
            "s2" => "Globex".into(),
            other => format!("Sponsor {other}"),
        },
    }
}

pub type CrmSchema = Schema<CrmQuery, EmptyMutation, async_graphql::EmptySubscription>;

#[derive(Clone)]
struct TicketsServer {
    schema: TicketsSchema,
    tickets: Tickets,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

async fn tickets_http(
    State(server): State<TicketsServer>,
    headers: HeaderMap,
    request: async_graphql_axum::GraphQLRequest,
) -> async_graphql_axum::GraphQLResponse {
    let request = request.into_inner();
    if let Ok(mut requests) = server.requests.lock() {
        requests.push(Recorded {
            query: request.query.clone(),
            variables: serde_json::to_value(&request.variables).unwrap_or_default(),
            authorization: header(&headers),
            headers: headers.clone(),
        });
    }
    server.schema.execute(request).await.into()
}

fn header(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn tickets_ws(
    State(server): State<TicketsServer>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    if let Ok(mut seen) = server.tickets.upgrade_credentials.lock() {
        seen.push(header(&headers));
    }
    if let Ok(mut seen) = server.tickets.upgrade_headers.lock() {
        seen.push(headers.clone());
    }
    let mut kill = server.tickets.kill.subscribe();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let seen = server.tickets.init_credentials.clone();
            let payloads = server.tickets.init_payloads.clone();
            let serve = GraphQLWebSocket::new(socket, server.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    if let Ok(mut payloads) = payloads.lock() {
                        payloads.push(payload.clone());
                    }
                    let credential = payload
                        .get("Authorization")
                        .and_then(|v| v.as_str())
                        .map(str::to_string);
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(credential);
                    }
                    Ok(Data::default())
                })
                .serve();
            // Dropping the connection future drops the socket: the gateway sees the TCP
            // connection end with no close frame, as when a subgraph process dies.
            tokio::select! {
                () = serve => {}
                _ = kill.recv() => {}
            }
        })
}

pub struct Streaming {
    pub tickets: Tickets,
    pub tickets_server: SubgraphServer,
    pub crm: SubgraphServer,
}

pub async fn start_subgraphs() -> Streaming {
    let (live, _) = broadcast::channel(256);
    let (kill, _) = broadcast::channel(4);
    let tickets = Tickets {
        log: Arc::default(),
        live,
        kill,
        init_credentials: Arc::default(),
        upgrade_credentials: Arc::default(),
        upgrade_headers: Arc::default(),
        init_payloads: Arc::default(),
    };
    let schema = Schema::build(TicketsQuery, EmptyMutation, TicketsSubscription)
        .data(tickets.clone())
        .enable_federation()
        .enable_subscription_in_federation()
        .finish();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/graphql", post(tickets_http).get(tickets_ws))
        .with_state(TicketsServer {
            schema,
            tickets: tickets.clone(),
            requests: requests.clone(),
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    let tickets_server = SubgraphServer {
        url: format!("http://{addr}/graphql"),
        requests,
    };

    let crm_schema: CrmSchema =
        Schema::build(CrmQuery, EmptyMutation, async_graphql::EmptySubscription)
            .enable_federation()
            .finish();
    let crm = super::serve_subgraph(crm_schema, None).await;
    Streaming {
        tickets,
        tickets_server,
        crm,
    }
}
