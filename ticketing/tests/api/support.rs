//! Test support: each test gets its own ticketing server on an ephemeral port and its own
//! database (a temporary SQLite file, or a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set), and talks to it over real HTTP and WebSocket.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use platform::{InProcessBus, JwtKeys};
use serde_json::{Value, json};
use ticketing::{Settings, Ticketing};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const ADMIN: &[&str] = &["tickets:admin", "events:read"];

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub keys: Arc<JwtKeys>,
    pub client: reqwest::Client,
    pub bus: InProcessBus,
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

/// A database URL for one test. With `TEST_DATABASE_URL` set, a new PostgreSQL database is
/// created on that server; if the server cannot be reached the test fails, it never falls
/// back to SQLite quietly.
pub async fn fresh_database_url() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(server_url) if !server_url.is_empty() => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&server_url)
                .await
                .unwrap_or_else(|e| {
                    panic!("TEST_DATABASE_URL={server_url} is set but unreachable: {e}")
                });
            let name = format!("ticketing_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let (scheme, rest) = server_url.split_once("://").expect(
                "TEST_DATABASE_URL needs a scheme, e.g. postgres://postgres@127.0.0.1:5432",
            );
            let authority = rest.split(['/', '?']).next().unwrap_or(rest);
            let query = rest
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            (format!("{scheme}://{authority}/{name}{query}"), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("ticketing.db").display());
            (url, Some(dir))
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let (database_url, dir) = fresh_database_url().await;
        let mut settings = Settings {
            database_url: database_url.clone(),
            poll_interval: Duration::from_millis(200),
            ..Settings::default()
        };
        adjust(&mut settings);
        Self::start(settings, dir).await
    }

    /// A second server on the same database (a restart, or another instance).
    pub async fn spawn_on(database_url: &str) -> Self {
        let settings = Settings {
            database_url: database_url.to_owned(),
            poll_interval: Duration::from_millis(200),
            ..Settings::default()
        };
        Self::start(settings, None).await
    }

    async fn start(settings: Settings, dir: Option<tempfile::TempDir>) -> Self {
        let keys = Arc::new(JwtKeys::from_secret(b"test-secret"));
        let bus = InProcessBus::default();
        let database_url = settings.database_url.clone();
        let service = Ticketing::start(settings, Arc::clone(&keys), Arc::new(bus.clone()))
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
            bus,
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
    id status complimentary externalReference ticketCount
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

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {body:#}"))
        .to_owned()
}

/// A GraphQL subscription over WebSocket, speaking either `graphql-transport-ws` or the
/// legacy `graphql-ws` protocol.
pub struct WsSubscription {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    legacy: bool,
}

impl WsSubscription {
    pub async fn open(
        url: &str,
        protocol: &str,
        init_payload: Value,
        query: &str,
        variables: Value,
    ) -> Result<Self, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.parse().map_err(|_| "bad protocol".to_owned())?,
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        let legacy = protocol == "graphql-ws";
        let send = |v: Value| Message::Text(v.to_string().into());
        socket
            .send(send(
                json!({ "type": "connection_init", "payload": init_payload }),
            ))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .map_err(|_| "no connection_ack".to_owned())?
                .ok_or("socket closed before ack")?
                .map_err(|e| e.to_string())?;
            match message {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    match v["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ka") => continue,
                        _ => return Err(format!("unexpected before ack: {v}")),
                    }
                }
                Message::Close(frame) => return Err(format!("closed: {frame:?}")),
                _ => continue,
            }
        }
        let start = if legacy { "start" } else { "subscribe" };
        socket
            .send(send(json!({
                "id": "1", "type": start,
                "payload": { "query": query, "variables": variables }
            })))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { socket, legacy })
    }

    /// The next `next`/`data` payload, or an error message for `error`, `complete`, close
    /// or a timeout.
    pub async fn next_payload(&mut self, timeout: Duration) -> Result<Value, String> {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .map_err(|_| "timed out waiting for an event".to_owned())?
                .ok_or("socket closed")?
                .map_err(|e| e.to_string())?;
            let Message::Text(text) = message else {
                if let Message::Close(frame) = message {
                    return Err(format!("closed: {frame:?}"));
                }
                continue;
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            match v["type"].as_str() {
                Some("next") | Some("data") => return Ok(v["payload"].clone()),
                Some("ka") | Some("ping") | Some("pong") => continue,
                _ => return Err(format!("{v}")),
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }

    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}
