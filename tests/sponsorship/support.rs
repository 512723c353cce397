//! Test support: each test gets its own CRM and, where it books tickets, its own ticketing
//! server, on ephemeral ports with their own databases (temporary SQLite files, or fresh
//! PostgreSQL databases when `TEST_DATABASE_URL` is set). Both verify tokens with one shared
//! secret, as in production. Servers can be stopped and started again on the same port and
//! database to simulate crashes and outages. With `NATS_URL` set both relay their events to
//! NATS JetStream and the CRM consumes ticketing's stream; otherwise they use in-process buses.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use platform::{EventBus, JwtKeys};
use serde_json::{Value, json};

pub use testkit::{WsSubscription, error_code, fresh_database_url};

pub const SECRET: &[u8] = b"crm-test-secret";
pub const WAIT: Duration = Duration::from_secs(15);

pub fn keys() -> Arc<JwtKeys> {
    Arc::new(JwtKeys::from_secret(SECRET))
}

pub fn token(subject: &str, scopes: &[&str]) -> String {
    keys()
        .mint(subject, scopes, Duration::from_secs(3600))
        .expect("mint")
}

/// The CRM's service token for ticketing: only what issuing and reading its own needs.
pub fn crm_service_token() -> String {
    token("crm", &["tickets:issue-complimentary"])
}

/// The day `days` from today (negative: ago), as the API's `Date`: fixed dates would drift out
/// of the windows the CRM accepts as the calendar moves on.
pub fn day_from_today(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// A due date every invoice in the tests can use.
pub fn due_on() -> String {
    day_from_today(90)
}

/// A server task and the means to stop it, as a crash would: the task is aborted, open
/// connections are cut, background work stops with the service.
struct Running {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    async fn spawn<S, F>(addr: SocketAddr, service: S, serve: F) -> Self
    where
        S: Send + 'static,
        F: FnOnce(
                S,
                tokio::net::TcpListener,
                tokio::sync::oneshot::Receiver<()>,
            ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
            + Send
            + 'static,
    {
        let listener = bind(addr).await;
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(service, listener, rx));
        Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds, retrying briefly: a port just given up may take a moment to be free again.
async fn bind(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..50 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("cannot bind {addr}");
}

pub struct Http {
    pub client: reqwest::Client,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::new(),
        }
    }

    pub async fn gql(
        &self,
        url: &str,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Value {
        let mut request = self
            .client
            .post(url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        response.json().await.expect("JSON response")
    }
}

/// A real ticketing server (the crate is a dev-dependency only, to run it here).
pub struct TicketingServer {
    running: Running,
    pub database_url: String,
    /// The audience it demands, if any; its admin tokens name it.
    audience: Option<String>,
    http: Http,
    _dir: Option<tempfile::TempDir>,
}

impl TicketingServer {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Ticketing with its settings adjusted (its defaults otherwise, limits included).
    pub async fn spawn_with(adjust: impl FnOnce(&mut ticketing::Settings)) -> Self {
        let (database_url, dir) = fresh_database_url("ticketing").await;
        let mut server = Self::start_with(
            "127.0.0.1:0".parse().expect("addr"),
            &database_url,
            None,
            None,
            adjust,
        )
        .await;
        server._dir = dir;
        server
    }

    /// Ticketing on a given address and database: a restart after an outage.
    pub async fn start_on(addr: SocketAddr, database_url: &str) -> Self {
        Self::start_on_nats(addr, database_url, None).await
    }

    /// Ticketing relaying to the NATS at `nats_url` (else the shared one, if any).
    pub async fn start_on_nats(
        addr: SocketAddr,
        database_url: &str,
        nats_url: Option<String>,
    ) -> Self {
        Self::start_for_audience(addr, database_url, nats_url, None).await
    }

    /// Ticketing that accepts only tokens naming `audience` in `aud` (its `--jwt-audience`).
    pub async fn start_for_audience(
        addr: SocketAddr,
        database_url: &str,
        nats_url: Option<String>,
        audience: Option<&str>,
    ) -> Self {
        Self::start_with(addr, database_url, nats_url, audience, |_| {}).await
    }

    async fn start_with(
        addr: SocketAddr,
        database_url: &str,
        nats_url: Option<String>,
        audience: Option<&str>,
        adjust: impl FnOnce(&mut ticketing::Settings),
    ) -> Self {
        let keys = Arc::new(JwtKeys::from_secret(SECRET).with_audience(audience));
        let mut settings = ticketing::Settings {
            database_url: database_url.to_owned(),
            poll_interval: Duration::from_millis(200),
            ..ticketing::Settings::default()
        };
        adjust(&mut settings);
        let bus = bus_for(ticketing::events::SUBJECT_PREFIX, nats_url).await;
        let service = ticketing::Ticketing::start(settings, keys, bus)
            .await
            .expect("ticketing starts");
        let running = Running::spawn(addr, service, |service, listener, rx| {
            Box::pin(async move {
                let _ = service
                    .serve(listener, async {
                        let _ = rx.await;
                    })
                    .await;
            })
        })
        .await;
        Self {
            running,
            database_url: database_url.to_owned(),
            audience: audience.map(str::to_owned),
            http: Http::new(),
            _dir: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.running.addr)
    }

    /// Stops the server, keeping its database (and the temp dir holding it).
    pub async fn stop(mut self) -> StoppedTicketing {
        self.running.stop().await;
        StoppedTicketing {
            addr: self.running.addr,
            database_url: self.database_url.clone(),
            dir: self._dir.take(),
        }
    }

    pub fn admin(&self) -> String {
        let audiences: Vec<&str> = self.audience.as_deref().into_iter().collect();
        keys()
            .mint_for_audiences(
                "ticketing-admin",
                &["tickets:admin", "events:read"],
                Duration::from_secs(3600),
                &audiences,
            )
            .expect("mint")
    }

    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        let body = self
            .http
            .gql(&self.url(), Some(&self.admin()), query, variables)
            .await;
        assert!(
            body.get("errors").is_none(),
            "unexpected ticketing errors: {body:#}"
        );
        body["data"].clone()
    }

    /// A conference in EUR and its restricted sponsor ticket type; returns both ids.
    pub async fn conference_with_sponsor_tickets(&self, capacity: i64) -> (String, String) {
        self.conference_in("EUR", capacity).await
    }

    /// A conference selling in `currency` and its restricted sponsor ticket type.
    pub async fn conference_in(&self, currency: &str, capacity: i64) -> (String, String) {
        let data = self
            .ok(
                "mutation($input: CreateConferenceInput!) { createConference(input: $input) { id } }",
                json!({ "input": { "name": "RustConf", "currency": currency, "startsOn": "2027-05-01", "endsOn": "2027-05-03" } }),
            )
            .await;
        let conference = data["createConference"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let ticket_type = self
            .ticket_type(&conference, currency, capacity, "RESTRICTED")
            .await;
        (conference, ticket_type)
    }

    /// Another ticket type of `conference`, `PUBLIC` or `RESTRICTED`.
    pub async fn ticket_type(
        &self,
        conference: &str,
        currency: &str,
        capacity: i64,
        visibility: &str,
    ) -> String {
        let data = self
            .ok(
                "mutation($input: CreateTicketTypeInput!) { createTicketType(input: $input) { id } }",
                json!({ "input": {
                    "conferenceId": conference, "name": format!("Sponsor {visibility}"),
                    "price": { "amount": 0, "currency": currency },
                    "capacity": capacity, "visibility": visibility
                } }),
            )
            .await;
        data["createTicketType"]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn set_capacity(&self, ticket_type: &str, capacity: i64) {
        self.ok(
            "mutation($id: ID!, $input: UpdateTicketTypeInput!) { updateTicketType(id: $id, input: $input) { id } }",
            json!({ "id": ticket_type, "input": { "capacity": capacity } }),
        )
        .await;
    }

    /// Every purchase of the conference, as ticketing's admin sees them.
    pub async fn purchases(&self, conference: &str) -> Vec<Value> {
        let data = self
            .ok(
                "query($c: ID!) { ticketPurchases(first: 100, conferenceId: $c) { nodes { id status complimentary ticketCount externalReference purchaser { name email } } } }",
                json!({ "c": conference }),
            )
            .await;
        data["ticketPurchases"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn tickets_issued(&self, conference: &str) -> i64 {
        self.purchases(conference)
            .await
            .iter()
            .filter_map(|p| p["ticketCount"].as_i64())
            .sum()
    }
}

pub struct StoppedTicketing {
    pub addr: SocketAddr,
    pub database_url: String,
    dir: Option<tempfile::TempDir>,
}

impl StoppedTicketing {
    /// Back on the same port and database.
    pub async fn restart(self) -> TicketingServer {
        let mut server = TicketingServer::start_on(self.addr, &self.database_url).await;
        server._dir = self.dir;
        server
    }
}

/// JetStream when `NATS_URL` is set, else an in-process bus.
pub async fn bus_for(subject_prefix: &str, nats_url: Option<String>) -> Arc<dyn EventBus> {
    let url = match nats_url {
        Some(url) => Some(url),
        None => testkit::nats::shared_nats_url().await,
    };
    platform::jetstream::event_bus(url.as_deref(), subject_prefix)
        .await
        .expect("event bus")
}

/// Settings that make retries quick enough for tests.
pub fn crm_settings(database_url: &str, ticketing_url: Option<String>) -> crm::Settings {
    crm::Settings {
        database_url: database_url.to_owned(),
        poll_interval: Duration::from_millis(200),
        ticketing_url,
        ticketing_token: Some(crm_service_token()),
        ticketing_timeout: Duration::from_secs(2),
        allocation: crm::allocation::AllocationSettings {
            lease: Duration::from_secs(5),
            retry_base: Duration::from_millis(50),
            retry_max: Duration::from_millis(400),
            poll_interval: Duration::from_millis(200),
            batch: 16,
        },
        // Tests share one NATS: each CRM (its database) gets its own durable consumer of
        // ticketing's events, shared by its instances, forgotten soon after the test.
        ticketing_events_consumer: format!("crm-test-{}", database_digest(database_url)),
        ticketing_events_consumer_ttl: Some(Duration::from_secs(120)),
        // Tests onboard dozens of sponsors within a second as one client: the CRM's rate
        // limit is off here, and on in the tests of it (`hostile.rs`). Ticketing keeps its
        // defaults, which the CRM's bookings must never hit.
        rate_limits: platform::rate_limit::RateLimits::OFF,
        ..crm::Settings::default()
    }
}

fn database_digest(database_url: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    database_url.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

pub struct CrmServer {
    running: Running,
    pub database_url: String,
    pub ticketing_url: Option<String>,
    http: Http,
    _dir: Option<tempfile::TempDir>,
}

impl CrmServer {
    /// A CRM that books through `ticketing_url` (or books nothing without one).
    pub async fn spawn(ticketing_url: Option<String>) -> Self {
        Self::spawn_with(ticketing_url, |_| {}).await
    }

    pub async fn spawn_with(
        ticketing_url: Option<String>,
        adjust: impl FnOnce(&mut crm::Settings),
    ) -> Self {
        let (database_url, dir) = fresh_database_url("crm").await;
        let mut settings = crm_settings(&database_url, ticketing_url);
        adjust(&mut settings);
        let mut server = Self::start(settings).await;
        server._dir = dir;
        server
    }

    pub async fn start(settings: crm::Settings) -> Self {
        Self::start_with_keys(settings, keys()).await
    }

    /// A CRM verifying tokens with `keys`, e.g. keys that demand an audience.
    pub async fn start_with_keys(mut settings: crm::Settings, keys: Arc<JwtKeys>) -> Self {
        if settings.nats_url.is_none() {
            settings.nats_url = testkit::nats::shared_nats_url().await;
        }
        let bus = bus_for(crm::events::SUBJECT_PREFIX, settings.nats_url.clone()).await;
        let database_url = settings.database_url.clone();
        let ticketing_url = settings.ticketing_url.clone();
        let service = crm::Crm::start(settings, keys, bus)
            .await
            .expect("the CRM starts");
        let running = Running::spawn(
            "127.0.0.1:0".parse().expect("addr"),
            service,
            |service, listener, rx| {
                Box::pin(async move {
                    let _ = service
                        .serve(listener, async {
                            let _ = rx.await;
                        })
                        .await;
                })
            },
        )
        .await;
        Self {
            running,
            database_url,
            ticketing_url,
            http: Http::new(),
            _dir: None,
        }
    }

    /// Kills the CRM (its background work dies with it) and starts a new one on the same
    /// database, as after a crash.
    pub async fn restart(mut self) -> Self {
        self.running.stop().await;
        let settings = crm_settings(&self.database_url, self.ticketing_url.clone());
        let dir = self._dir.take();
        drop(self);
        let mut server = Self::start(settings).await;
        server._dir = dir;
        server
    }

    /// The same CRM (its database) started again without a ticketing URL: it keeps serving
    /// the conferences registered, queues bookings and books none.
    pub async fn without_ticketing(mut self) -> Self {
        self.running.stop().await;
        let settings = crm_settings(&self.database_url, None);
        let dir = self._dir.take();
        drop(self);
        let mut server = Self::start(settings).await;
        server._dir = dir;
        server
    }

    /// Kills the CRM; the returned value keeps its database for [`Self::start`].
    pub async fn kill(mut self) -> (String, Option<String>, Option<tempfile::TempDir>) {
        self.running.stop().await;
        (
            self.database_url.clone(),
            self.ticketing_url.clone(),
            self._dir.take(),
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.running.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.running.addr)
    }

    /// `http://ADDR<path>`, e.g. `/ready`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    pub fn admin(&self) -> String {
        token("crm-admin", &["crm:admin"])
    }

    pub fn writer(&self) -> String {
        token("sales", &["crm:write"])
    }

    pub fn reader(&self) -> String {
        token("dashboard", &["crm:read"])
    }

    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.http.gql(&self.url(), token, query, variables).await
    }

    /// Fails the test on any error; returns `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    pub async fn configure_sponsor_tickets(&self, conference: &str, ticket_type: &str) {
        self.ok(
            Some(&self.admin()),
            "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }",
            json!({ "input": { "conferenceId": conference, "ticketTypeId": ticket_type } }),
        )
        .await;
    }

    pub async fn create_sponsor(
        &self,
        name: &str,
        level: &str,
        conference: Option<&str>,
    ) -> String {
        let data = self
            .ok(
                Some(&self.writer()),
                "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }",
                json!({ "input": {
                    "name": name, "level": level, "conferenceId": conference,
                    "contactName": "Grace Hopper", "contactEmail": "grace@acme.example.org"
                } }),
            )
            .await;
        data["createSponsor"]["id"].as_str().expect("id").to_owned()
    }

    pub async fn sign(&self, sponsor: &str, signed_on: Option<&str>) {
        let w = self.writer();
        self.ok(
            Some(&w),
            "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }",
            json!({ "s": sponsor }),
        )
        .await;
        self.ok(
            Some(&w),
            "mutation($s: ID!, $on: Date) { signContract(sponsorId: $s, signedOn: $on) { id } }",
            json!({ "s": sponsor, "on": signed_on }),
        )
        .await;
    }

    pub async fn issue_invoice(&self, sponsor: &str, amount: i64) -> String {
        let data = self
            .ok(
                Some(&self.writer()),
                "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id status } }",
                json!({ "input": { "sponsorId": sponsor, "amount": { "amount": amount, "currency": "EUR" }, "dueOn": due_on() } }),
            )
            .await;
        data["issueInvoice"]["id"].as_str().expect("id").to_owned()
    }

    pub async fn pay(&self, invoice: &str) {
        self.ok(
            Some(&self.writer()),
            "mutation($id: ID!) { markInvoicePaid(id: $id) { status } }",
            json!({ "id": invoice }),
        )
        .await;
    }

    /// Signs, issues two invoices and pays both: the last payment onboards the sponsor.
    pub async fn onboard(&self, sponsor: &str) {
        self.sign(sponsor, None).await;
        let first = self.issue_invoice(sponsor, 500_000).await;
        let second = self.issue_invoice(sponsor, 500_000).await;
        self.pay(&first).await;
        self.pay(&second).await;
    }

    pub async fn allocation(&self, sponsor: &str) -> Value {
        let data = self
            .ok(
                Some(&self.reader()),
                "query($id: ID!) { sponsor(id: $id) { onboarded ticketAllocation {
                    status ticketsAllowed ticketsBooked ticketsRequested excessTickets needsReview cancelledPurchaseIds attempts reason purchaseIds
                    requests { seq quantity status attempts externalReference reason purchaseCancelledAt purchase { id } }
                } } }",
                json!({ "id": sponsor }),
            )
            .await;
        data["sponsor"]["ticketAllocation"].clone()
    }

    /// Polls the allocation until `done` holds, or fails with the last state seen.
    pub async fn wait_for_allocation(&self, sponsor: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let allocation = self.allocation(sponsor).await;
            if done(&allocation) {
                return allocation;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("allocation never reached the expected state; last seen {allocation:#}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_until_booked(&self, sponsor: &str) -> Value {
        self.wait_for_allocation(sponsor, |a| a["status"] == "BOOKED")
            .await
    }

    /// Event type names in the log, oldest first.
    pub async fn event_types(&self) -> Vec<String> {
        let data = self
            .ok(
                Some(&self.reader()),
                "{ sponsorEvents(first: 100) { edges { node { __typename } } } }",
                json!({}),
            )
            .await;
        data["sponsorEvents"]["edges"]
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

/// A ticketing server, a CRM booking through it, and a conference with a restricted sponsor
/// ticket type configured in the CRM.
pub struct World {
    pub ticketing: TicketingServer,
    pub crm: CrmServer,
    pub conference: String,
    pub ticket_type: String,
}

impl World {
    pub async fn new(capacity: i64) -> Self {
        Self::on_nats(capacity, None).await
    }

    /// Both services on the NATS at `nats_url` (else the shared one, if any).
    pub async fn on_nats(capacity: i64, nats_url: Option<String>) -> Self {
        let (database_url, dir) = fresh_database_url("ticketing").await;
        let mut ticketing = TicketingServer::start_on_nats(
            "127.0.0.1:0".parse().expect("addr"),
            &database_url,
            nats_url.clone(),
        )
        .await;
        ticketing._dir = dir;
        let (conference, ticket_type) = ticketing.conference_with_sponsor_tickets(capacity).await;
        let crm = CrmServer::spawn_with(Some(ticketing.url()), |s| s.nats_url = nats_url).await;
        crm.configure_sponsor_tickets(&conference, &ticket_type)
            .await;
        Self {
            ticketing,
            crm,
            conference,
            ticket_type,
        }
    }
}

/// What the CRM's database holds, as counts over every table a write touches (and every
/// write logs an event): the same before and after a refused request means nothing was
/// written.
pub async fn footprint(database_url: &str) -> Vec<(&'static str, i64)> {
    const COUNTS: [&str; 8] = [
        "SELECT COUNT(*) FROM sponsor_events",
        "SELECT COUNT(*) FROM sponsors",
        "SELECT COUNT(*) FROM invoices",
        "SELECT COUNT(*) FROM sponsor_conferences",
        "SELECT COUNT(*) FROM sponsor_conferences WHERE currency IS NOT NULL",
        "SELECT COUNT(*) FROM ticket_allocation_requests",
        "SELECT COUNT(*) FROM sponsorship_levels",
        "SELECT CAST(COALESCE(SUM(ticket_allowance + price_amount), 0) AS BIGINT) FROM sponsorship_levels",
    ];
    let db = testkit::TestDatabase::open(database_url).await;
    let mut counts = Vec::with_capacity(COUNTS.len());
    for sql in COUNTS {
        counts.push((sql, db.count(sql).await));
    }
    db.close().await;
    counts
}
