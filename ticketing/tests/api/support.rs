//! Test support: each test gets its own ticketing server on an ephemeral port and its own
//! database (a temporary SQLite file, or a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set), and talks to it over real HTTP and WebSocket. Its outbox is
//! relayed to NATS JetStream when `NATS_URL` is set, else to an in-process bus.

use std::sync::Arc;
use std::time::Duration;

use platform::{EventBus, InProcessBus, JwtKeys};
use serde_json::{Value, json};
use ticketing::{Settings, Ticketing};

pub use testkit::{WsSubscription, error_code, fresh_database_url};

pub const ADMIN: &[&str] = &["tickets:admin", "events:read"];

/// Shared by every server a test starts, so an access token survives a restart and works on
/// another instance, as it does in a deployment.
pub const PURCHASE_TOKEN_SECRET: &[u8] = b"test purchase token secret, 32+ bytes long";

/// The settings every test server starts from. Tests send hundreds of mutations from one
/// address within a second (200 buyers at once, the policy matrix): the per-client rate limit
/// and the per-buyer cap on unpaid seats are off, and the tests of those limits
/// (`hostile.rs`) turn them back on with their defaults.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        database_url: database_url.to_owned(),
        poll_interval: Duration::from_millis(200),
        purchase_token_secret: Some(PURCHASE_TOKEN_SECRET.to_vec()),
        rate_limits: platform::rate_limit::RateLimits::OFF,
        purchase_limits: ticketing::domain::PurchaseLimits {
            max_unpaid_seats_per_buyer: 0,
            ..ticketing::domain::PurchaseLimits::default()
        },
        ..Settings::default()
    }
}

/// Turns the per-client limits back on, with their defaults.
pub fn default_limits(settings: &mut Settings) {
    settings.rate_limits = platform::rate_limit::RateLimits::default();
    settings.purchase_limits = ticketing::domain::PurchaseLimits::default();
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub keys: Arc<JwtKeys>,
    pub client: reqwest::Client,
    /// The in-process bus, when events are not relayed to NATS.
    pub bus: Option<InProcessBus>,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let (database_url, dir) = fresh_database_url("ticketing").await;
        let mut settings = test_settings(&database_url);
        adjust(&mut settings);
        Self::start(settings, dir).await
    }

    /// A second server on the same database (a restart, or another instance).
    pub async fn spawn_on(database_url: &str) -> Self {
        Self::spawn_on_with(database_url, |_| {}).await
    }

    pub async fn spawn_on_with(database_url: &str, adjust: impl FnOnce(&mut Settings)) -> Self {
        let mut settings = test_settings(database_url);
        adjust(&mut settings);
        Self::start(settings, None).await
    }

    async fn start(settings: Settings, dir: Option<tempfile::TempDir>) -> Self {
        match testkit::nats::shared_nats_url().await {
            Some(url) => {
                let bus =
                    platform::jetstream::event_bus(Some(&url), ticketing::events::SUBJECT_PREFIX)
                        .await
                        .expect("JetStream bus");
                Self::start_with_bus(settings, dir, bus, None).await
            }
            None => {
                let bus = InProcessBus::default();
                Self::start_with_bus(settings, dir, Arc::new(bus.clone()), Some(bus)).await
            }
        }
    }

    /// A server on `database_url` relaying to the given bus (e.g. a test's own NATS).
    pub async fn spawn_on_bus(database_url: &str, bus: Arc<dyn EventBus>) -> Self {
        let settings = test_settings(database_url);
        Self::start_with_bus(settings, None, bus, None).await
    }

    async fn start_with_bus(
        settings: Settings,
        dir: Option<tempfile::TempDir>,
        bus: Arc<dyn EventBus>,
        in_process: Option<InProcessBus>,
    ) -> Self {
        let keys = Arc::new(JwtKeys::from_secret(b"test-secret"));
        let database_url = settings.database_url.clone();
        let service = Ticketing::start(settings, Arc::clone(&keys), bus)
            .await
            .expect("ticketing starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = service
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            keys,
            client: reqwest::Client::new(),
            bus: in_process,
            database_url,
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
        }
    }

    /// Stops the server (open WebSockets are cut) and keeps the database.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        self._dir.take()
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// `http://ADDR/<path>`, e.g. `/ready`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops serving as on SIGTERM (in-flight requests finish, subscriptions are ended) and
    /// waits until the server has stopped.
    pub async fn shut_down(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    pub fn token(&self, subject: &str, scopes: &[&str]) -> String {
        self.keys
            .mint(subject, scopes, Duration::from_secs(3600))
            .expect("mint")
    }

    pub fn admin(&self) -> String {
        self.token("admin", ADMIN)
    }

    /// Posts a GraphQL request; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(self.url())
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        response.json().await.expect("JSON response")
    }

    /// Like [`gql`] but fails the test on any error; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    pub async fn create_conference(&self) -> String {
        let data = self
            .ok(
                Some(&self.admin()),
                "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }",
                json!({ "input": { "name": "RustConf", "currency": "EUR", "startsOn": "2027-05-01", "endsOn": "2027-05-03" } }),
            )
            .await;
        data["createConference"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn create_ticket_type(
        &self,
        conference_id: &str,
        name: &str,
        price: i64,
        capacity: i64,
        visibility: &str,
    ) -> String {
        let data = self
            .ok(
                Some(&self.admin()),
                "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }",
                json!({ "input": {
                    "conferenceId": conference_id, "name": name,
                    "price": { "amount": price, "currency": "EUR" },
                    "capacity": capacity, "visibility": visibility
                } }),
            )
            .await;
        data["createTicketType"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn ticket_type(&self, id: &str) -> Value {
        self.ok(
            Some(&self.admin()),
            "query($id: ID!) { ticketType(id: $id) { id capacity sold remaining } }",
            json!({ "id": id }),
        )
        .await["ticketType"]
            .clone()
    }

    /// Event types in the log, oldest first.
    pub async fn event_types(&self) -> Vec<String> {
        let data = self
            .ok(
                Some(&self.admin()),
                "{ ticketEvents(first: 100) { edges { node { __typename } } } }",
                json!({}),
            )
            .await;
        data["ticketEvents"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| {
                e["node"]["__typename"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

pub const BUY: &str = "mutation($input: CreateTicketPurchaseInput!, $key: String) {
  createTicketPurchase(input: $input, idempotencyKey: $key) {
    id status complimentary externalReference ticketCount accessToken
    total { amount currency }
    lines { quantity unitPrice { amount currency } ticketType { id } }
    tickets { id attendee { name } }
  }
}";

pub fn purchase_input(ticket_type_id: &str, quantity: i64) -> Value {
    json!({
        "purchaser": { "name": "Ada Lovelace", "email": "ada@example.org" },
        "lines": [{ "ticketTypeId": ticket_type_id, "quantity": quantity }]
    })
}
