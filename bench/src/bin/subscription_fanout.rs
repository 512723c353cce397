//! Live dashboards through the gateway: many WebSocket subscribers following ticketing's events,
//! each event enriched with its purchase's sponsor from the CRM, while purchases arrive at a
//! steady rate.
//!
//! By default it starts the release `conftools up --no-web` itself (everything in one process,
//! a fresh temporary data directory, free ports) and mints its tokens with `conftools token`;
//! with `--gateway-url` (and `--data-dir` for the tokens) it uses a system that is already
//! running instead. The run:
//!
//! 1. sets up a conference and a public ticket type through the gateway;
//! 2. *baseline*: `--events` purchases of one seat at `--rate` per second through the gateway,
//!    spread over `--buyers` buyer tokens (anonymous with `--buyers 0`), with no subscriber
//!    (skipped with `--baseline false`);
//! 3. reads the head of ticketing's event log once, as the dashboard does before subscribing;
//! 4. opens `--subscribers` graphql-transport-ws connections over `--tokens` distinct tokens
//!    (subjects `dashboard-0`, `dashboard-1`, ...; the gateway groups subscribers by their
//!    exact credentials, so distinct tokens are distinct groups), each subscribing with the
//!    dashboard's own document (`TicketEventsSubscription` of `web/src/operations.ts`) after
//!    that cursor, and waits until the gateway counts them all as active;
//! 5. the same purchases again, while everybody listens; then reads the log after the head:
//!    every subscriber must have received exactly those events, each once, in log order.
//!
//! It reports deliveries, latency from each event's `occurredAt` to its arrival, purchase
//! latency with and without subscribers, CPU seconds and peak RSS of the system's process
//! (`/proc/<pid>`), the sockets that process holds to ticketing (the gateway's upstream
//! subscriptions, over the count before subscribing), ticketing's active subscriptions, and the
//! CRM fetches per event (the gateway's `gateway_subgraph_fetches_total{subgraph="crm"}`, which
//! also counts requests that joined an identical one in flight, and the CRM's own
//! `http_requests_total{service="crm",path="/graphql"}`, the requests that reached it).
//! `GATEWAY_*` variables in the environment reach the gateway of `conftools up`.
//!
//! Usage: `cargo build --release --bin conftools && cargo build --release -p bench --bin
//! subscription-fanout && ./target/release/subscription-fanout --help`

use bench::{free_addr, mib, quoted, tail};
use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bench::websocket_frames::{FrameReader, ServerMessage, client_frame};
use clap::{ArgAction, Parser};
use futures_util::{SinkExt, StreamExt};
use memchr::memmem;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser, Debug)]
struct Args {
    /// Live subscribers (one WebSocket and one subscription each).
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Distinct tokens the subscribers are spread over, round robin: the groups a gateway
    /// sharing upstream subscriptions should need.
    #[arg(long, default_value_t = 1)]
    tokens: usize,
    /// Purchases made while the subscribers listen (and in the baseline).
    #[arg(long, default_value_t = 150)]
    events: usize,
    /// Purchases per second.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// First make the same purchases with no subscriber, to compare purchase latency.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    baseline: bool,
    /// Buyers the purchases are spread over, round robin, each with a token of its own
    /// (subjects `buyer-0`, `buyer-1`, ...): per-client limits (mutations per minute, unpaid
    /// seats) then apply to each buyer, not to the whole run. 0 buys without a token, as the
    /// dashboard's public form does, every purchase then coming from this machine's address.
    #[arg(long, default_value_t = 10)]
    buyers: usize,
    /// Subscribe without `after` (start at the next event) instead of after the log's head.
    #[arg(long)]
    no_cursor: bool,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,
    /// After the last purchase, how long deliveries may stall before the run ends.
    #[arg(long, default_value_t = 15)]
    drain_secs: u64,
    /// The release launcher that `conftools up` and `conftools token` run from.
    #[arg(long, default_value = "target/release/conftools")]
    conftools_bin: PathBuf,
    /// Ports for `conftools up` (default: free ones).
    #[arg(long)]
    gateway_addr: Option<SocketAddr>,
    #[arg(long)]
    ticketing_addr: Option<SocketAddr>,
    #[arg(long)]
    crm_addr: Option<SocketAddr>,
    /// Use this running gateway (e.g. `http://127.0.0.1:4000`) instead of starting one.
    #[arg(long)]
    gateway_url: Option<String>,
    /// With `--gateway-url`: the running system's data directory, for `conftools token`.
    #[arg(long, requires = "gateway_url")]
    data_dir: Option<PathBuf>,
    /// With `--gateway-url`: ticketing's URL, for its port (upstream sockets) and `/metrics`.
    #[arg(long, requires = "gateway_url")]
    ticketing_url: Option<String>,
    /// With `--gateway-url`: the CRM's URL, for its `/metrics`.
    #[arg(long, requires = "gateway_url")]
    crm_url: Option<String>,
    /// With `--gateway-url`: the process to measure (CPU, RSS, its sockets to ticketing).
    #[arg(long, requires = "gateway_url")]
    pid: Option<u32>,
}

/// The dashboard's subscription, as `web/src/operations.ts` sends it
/// (`TicketEventsSubscription` with the fragments `TicketEventFields` and `FeedPurchase`).
const SUBSCRIPTION: &str = r#"subscription TicketEvents($after: String) {
  ticketEvents(after: $after) { ...TicketEventFields }
}

fragment TicketEventFields on TicketEvent {
  __typename id cursor occurredAt
  ... on TicketPurchaseCreated { purchase { ...FeedPurchase } }
  ... on TicketPurchasePaid { purchase { ...FeedPurchase } }
  ... on TicketPurchaseCancelled { purchase { ...FeedPurchase } }
  ... on TicketPurchaseExpired { purchase { ...FeedPurchase } }
  ... on TicketAssigned {
    ticket { id attendee { name } ticketType { name } purchase { id sponsor { id name } } }
  }
  ... on TicketTypeCreated { ticketType { id name capacity } }
  ... on TicketTypeUpdated { ticketType { id name capacity } }
  ... on TicketTypeSoldOut { ticketType { id name capacity } }
  ... on TicketTypeAvailableAgain { ticketType { id name remaining } }
  ... on ConferenceCreated { conference { id name } }
}

fragment FeedPurchase on TicketPurchase {
  id status complimentary ticketCount
  purchaser { name }
  total { amount currency }
  lines { quantity ticketType { name } }
  sponsor { id name level { name } }
}"#;

/// The scopes of the admin token `conftools up` prints, which the dashboard uses.
const DASHBOARD_SCOPES: &str = "tickets:admin events:read crm:admin crm:write crm:read";

/// A buyer's token: anyone may buy public tickets, the scope is there because a token needs one.
const BUYER_SCOPES: &str = "events:read";

const BUY: &str = "mutation Buy($input: CreateTicketPurchaseInput!) { createTicketPurchase(input: $input) { id } }";

const EVENT_PAGE: &str = "query Log($after: String) { ticketEvents(after: $after, first: 100) { pageInfo { hasNextPage } nodes { __typename id cursor } } }";

/// `conftools up` as a child process; killed on drop, with its data directory.
struct Launcher {
    child: Child,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the system under test answers, and what of it can be measured.
struct System {
    origin: String,
    data_dir: PathBuf,
    ticketing: Option<String>,
    crm: Option<String>,
    pid: Option<u32>,
    _launcher: Option<Launcher>,
}

impl System {
    fn graphql(&self) -> String {
        format!("{}/graphql", self.origin)
    }

    fn websocket(&self) -> String {
        let rest = self
            .origin
            .strip_prefix("https://")
            .map(|r| format!("wss://{r}"))
            .or_else(|| {
                self.origin
                    .strip_prefix("http://")
                    .map(|r| format!("ws://{r}"))
            })
            .unwrap_or_else(|| self.origin.clone());
        format!("{rest}/graphql")
    }

    fn ticketing_port(&self) -> Option<u16> {
        port_of(self.ticketing.as_deref()?)
    }
}

/// `http://host:port[/graphql]` without the path.
fn origin_of(url: &str) -> String {
    url.trim_end_matches('/')
        .trim_end_matches("/graphql")
        .trim_end_matches('/')
        .to_owned()
}

fn port_of(url: &str) -> Option<u16> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

async fn wait_healthy(origin: &str, launcher: &mut Launcher) -> anyhow::Result<()> {
    let health = format!("{origin}/health");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = reqwest::get(&health).await
            && response.status().is_success()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = launcher.child.try_wait() {
            bail!(
                "conftools up exited ({status}) before serving:\n{}",
                tail(&launcher.log)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the gateway did not answer at {health} within 120 s:\n{}",
                tail(&launcher.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_system(args: &Args) -> anyhow::Result<System> {
    if let Some(url) = &args.gateway_url {
        let data_dir = args
            .data_dir
            .clone()
            .context("--gateway-url needs --data-dir (the running system's, for its tokens)")?;
        return Ok(System {
            origin: origin_of(url),
            data_dir,
            ticketing: args.ticketing_url.as_deref().map(origin_of),
            crm: args.crm_url.as_deref().map(origin_of),
            pid: args.pid,
            _launcher: None,
        });
    }
    if !args.conftools_bin.exists() {
        bail!(
            "{} is missing: cargo build --release --bin conftools",
            args.conftools_bin.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let gateway = args.gateway_addr.map_or_else(free_addr, Ok)?;
    let ticketing = args.ticketing_addr.map_or_else(free_addr, Ok)?;
    let crm = args.crm_addr.map_or_else(free_addr, Ok)?;
    let log = dir.path().join("conftools.log");
    let child = Command::new(&args.conftools_bin)
        .arg("up")
        .arg("--no-web")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--gateway-addr", &gateway.to_string()])
        .args(["--ticketing-addr", &ticketing.to_string()])
        .args(["--crm-addr", &crm.to_string()])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        // Every viewer of this benchmark connects from one address: allow them all.
        .env(
            "GATEWAY_MAX_SOCKETS_PER_ADDRESS",
            (args.subscribers + 100).to_string(),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", args.conftools_bin.display()))?;
    let mut launcher = Launcher { child, log, dir };
    let origin = format!("http://{gateway}");
    wait_healthy(&origin, &mut launcher).await?;
    Ok(System {
        origin,
        data_dir: launcher.dir.path().to_owned(),
        ticketing: Some(format!("http://{ticketing}")),
        crm: Some(format!("http://{crm}")),
        pid: Some(launcher.child.id()),
        _launcher: Some(launcher),
    })
}

/// `conftools token`: a token signed with the data directory's secret.
async fn mint(args: &Args, data_dir: &Path, scopes: &str, subject: &str) -> anyhow::Result<String> {
    let mut command = Command::new(&args.conftools_bin);
    command.arg("token").arg("--data-dir").arg(data_dir).args([
        "--scope",
        scopes,
        "--subject",
        subject,
    ]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("cannot run {} token", args.conftools_bin.display()))?;
    if !output.status.success() {
        bail!(
            "conftools token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let token = String::from_utf8(output.stdout)?.trim().to_owned();
    if token.is_empty() {
        bail!("conftools token printed nothing");
    }
    Ok(token)
}

struct Gql {
    http: reqwest::Client,
    url: String,
}

impl Gql {
    async fn post(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .with_context(|| format!("HTTP {status} without a JSON body"))?;
        if body.get("errors").is_some() {
            bail!("errors from the gateway: {body}");
        }
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    }
}

fn string_at(data: &Value, pointer: &str) -> anyhow::Result<String> {
    data.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("no {pointer} in {data}"))
}

/// A conference with one public ticket type that cannot sell out; returns the type's id.
async fn stock(gql: &Gql, admin: &str) -> anyhow::Result<String> {
    let conference = string_at(
        &gql.post(Some(admin),
            "mutation { createConference(input: { name: \"Fan-out bench\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-03\" }) { id } }",
            json!({})).await?,
        "/createConference/id",
    )?;
    string_at(
        &gql.post(Some(admin),
            "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"Day pass\", price: { amount: 9900, currency: \"EUR\" }, capacity: 1000000 }) { id } }",
            json!({ "c": conference })).await?,
        "/createTicketType/id",
    )
}

/// Events after `after`, in log order: (typename, id, cursor).
async fn events_after(
    gql: &Gql,
    admin: &str,
    mut after: Option<String>,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut events = Vec::new();
    loop {
        let data = gql
            .post(Some(admin), EVENT_PAGE, json!({ "after": after }))
            .await?;
        let nodes = data
            .pointer("/ticketEvents/nodes")
            .and_then(Value::as_array)
            .with_context(|| format!("no event page in {data}"))?;
        for node in nodes {
            events.push((
                string_at(node, "/__typename")?,
                string_at(node, "/id")?,
                string_at(node, "/cursor")?,
            ));
        }
        let more = data
            .pointer("/ticketEvents/pageInfo/hasNextPage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match events.last() {
            Some((_, _, cursor)) if more && !nodes.is_empty() => after = Some(cursor.clone()),
            _ => return Ok(events),
        }
    }
}

#[derive(Default)]
struct PurchaseRun {
    latencies: Vec<Duration>,
    failed: usize,
    first_error: Option<String>,
}

impl PurchaseRun {
    fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies, p).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

/// `count` purchases of one seat, started on a fixed schedule at `rate` per second whether or
/// not earlier ones have answered (so a slow system cannot slow the load down and hide it),
/// round robin under the buyers' tokens, or anonymous without any.
async fn purchases(
    gql: &Arc<Gql>,
    buyers: &Arc<Vec<String>>,
    ticket_type: &str,
    count: usize,
    rate: f64,
) -> PurchaseRun {
    let started = tokio::time::Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        tokio::time::sleep_until(started + gap.mul_f64(i as f64)).await;
        let gql = Arc::clone(gql);
        let buyers = Arc::clone(buyers);
        let input = json!({
            "purchaser": { "name": format!("Fan {i}"), "email": format!("fan{i}@example.org") },
            "lines": [{ "ticketTypeId": ticket_type, "quantity": 1 }]
        });
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let buyer = (!buyers.is_empty()).then(|| buyers[i % buyers.len()].as_str());
            let result = gql.post(buyer, BUY, json!({ "input": input })).await;
            (t0.elapsed(), result.map(|_| ()))
        }));
    }
    let mut run = PurchaseRun::default();
    for task in futures_util::future::join_all(tasks).await {
        match task {
            Ok((elapsed, Ok(()))) => run.latencies.push(elapsed),
            Ok((_, Err(error))) => {
                run.failed += 1;
                run.first_error.get_or_insert_with(|| format!("{error:#}"));
            }
            Err(error) => {
                run.failed += 1;
                run.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    run.latencies.sort();
    run
}

/// What one subscriber saw, kept small: a hash of each event id and its latency.
#[derive(Default)]
struct Record {
    opened: bool,
    ids: Vec<u64>,
    latencies_us: Vec<u32>,
    /// `next` payloads carrying `errors` (e.g. the CRM fetch failed).
    error_payloads: u32,
    /// `next` payloads this program could not read an event from.
    unreadable: u32,
    with_sponsor: u32,
    sponsor_null: u32,
    /// How the server ended it, if it did: close code and reason, `error`, `complete`.
    ended_by_server: Option<String>,
    /// Failed to connect, or the connection broke.
    failure: Option<String>,
}

/// What every subscriber task shares: where and how to subscribe, and two tallies.
struct Shared {
    ws_url: String,
    /// The `subscribe` message, the same for everybody.
    subscribe: String,
    /// `next` messages received by all subscribers so far.
    deliveries: AtomicU64,
    first_error_payload: Mutex<Option<String>>,
}

fn id_hash(id: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    id.hash(&mut hasher);
    hasher.finish()
}

/// What a viewer looks for in each message, each searcher built once: building one per
/// search (as `str::find` does) was a tenth of the load generator's CPU, which it takes from
/// the gateway it measures on the same two cores.
struct Needle(memmem::Finder<'static>);

impl Needle {
    fn new(text: &'static str) -> Self {
        Needle(memmem::Finder::new(text))
    }

    fn find(&self, text: &str) -> Option<usize> {
        self.0.find(text.as_bytes())
    }

    fn is_in(&self, text: &str) -> bool {
        self.find(text).is_some()
    }

    /// The string value after this key (which ends with the opening quote), up to the closing
    /// quote.
    fn string_after<'a>(&self, text: &'a str) -> Option<&'a str> {
        let start = self.find(text)? + self.0.needle().len();
        let len = memchr::memchr(b'"', &text.as_bytes()[start..])?;
        text.get(start..start + len)
    }
}

static NEXT: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"type\":\"next\""));
static ERRORS: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"errors\""));
static TICKET_EVENTS: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"ticketEvents\":{"));
static ID: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"id\":\""));
static OCCURRED_AT: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"occurredAt\":\""));
static SPONSOR: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"sponsor\":{"));
static NO_SPONSOR: LazyLock<Needle> = LazyLock::new(|| Needle::new("\"sponsor\":null"));

impl Record {
    /// A `next` message: read the event's id and `occurredAt` with a scan, not a parse (the
    /// load generator shares the two cores with the system it measures). The gateway writes
    /// fields in selection order, so the first `"id"` inside `ticketEvents` is the event's.
    fn next(&mut self, text: &str, received: chrono::DateTime<chrono::Utc>, shared: &Shared) {
        shared.deliveries.fetch_add(1, Ordering::Relaxed);
        if ERRORS.is_in(text) {
            self.error_payloads += 1;
            if let Ok(mut first) = shared.first_error_payload.lock() {
                first.get_or_insert_with(|| text.chars().take(600).collect());
            }
        }
        let Some(event) = TICKET_EVENTS.find(text).map(|start| &text[start..]) else {
            self.unreadable += 1;
            return;
        };
        let (Some(id), Some(occurred)) = (ID.string_after(event), OCCURRED_AT.string_after(event))
        else {
            self.unreadable += 1;
            return;
        };
        let Ok(occurred) = chrono::DateTime::parse_from_rfc3339(occurred) else {
            self.unreadable += 1;
            return;
        };
        let micros = (received - occurred.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX));
        self.ids.push(id_hash(id));
        self.latencies_us.push(micros as u32);
        if SPONSOR.is_in(event) {
            self.with_sponsor += 1;
        } else if NO_SPONSOR.is_in(event) {
            self.sponsor_null += 1;
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, initialises with the token, waits for `connection_ack` and subscribes.
async fn open(shared: &Shared, authorization: &str) -> anyhow::Result<Socket> {
    let mut request = shared.ws_url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    // Small buffers: the client only sets the connection up (events are read off the TCP
    // stream); its default 128 KiB read buffer would cost 1.3 GB at 10,000 connections.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": authorization } });
    socket.send(Message::Text(init.to_string().into())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text)?;
                match message["type"].as_str() {
                    Some("connection_ack") => break,
                    Some("ping") => {
                        socket
                            .send(Message::Text(r#"{"type":"pong"}"#.into()))
                            .await?
                    }
                    _ => bail!("unexpected before connection_ack: {text}"),
                }
            }
            Some(Ok(Message::Close(frame))) => bail!("closed before connection_ack: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("connection ended before connection_ack"),
        }
    }
    socket
        .send(Message::Text(shared.subscribe.clone().into()))
        .await?;
    Ok(socket)
}

async fn subscriber(
    shared: Arc<Shared>,
    authorization: Arc<str>,
    permits: Arc<Semaphore>,
    opened: mpsc::UnboundedSender<Result<(), String>>,
    mut stop: oneshot::Receiver<()>,
    capacity: usize,
) -> Record {
    let mut record = Record::default();
    let socket = {
        let _permit = permits.acquire().await;
        tokio::time::timeout(Duration::from_secs(60), open(&shared, &authorization)).await
    };
    let socket = match socket {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => {
            let error = format!("{error:#}");
            let _ = opened.send(Err(error.clone()));
            record.failure = Some(error);
            return record;
        }
        Err(_) => {
            let _ = opened.send(Err("connecting took over 60 s".to_owned()));
            record.failure = Some("connect timeout".to_owned());
            return record;
        }
    };
    record.opened = true;
    let _ = opened.send(Ok(()));
    record.ids.reserve_exact(capacity);
    record.latencies_us.reserve_exact(capacity);
    // Set up, the connection is read off its TCP stream (see `bench::websocket_frames`): the
    // handshake reads nothing past `connection_ack`, and the gateway sends nothing before the
    // `subscribe` that was just sent, so no byte is left behind in the client.
    let MaybeTlsStream::Plain(mut stream) = socket.into_inner() else {
        record.failure = Some("only ws:// is measured".to_owned());
        return record;
    };
    let mut reader = FrameReader::default();
    let mut replies: Vec<Vec<u8>> = Vec::new();
    'reading: loop {
        // The stop signal is this task's own channel: polling it touches no state shared with
        // the other subscribers (a shared `watch` would take a lock per message).
        let read = tokio::select! {
            biased;
            read = reader.fill(&mut stream) => read,
            _ = &mut stop => break,
        };
        match read {
            Ok(0) => {
                record.failure = Some("connection ended without a close frame".to_owned());
                break;
            }
            Ok(_) => {}
            Err(error) => {
                record.failure = Some(error.to_string());
                break;
            }
        }
        let received = chrono::Utc::now();
        loop {
            let message = match reader.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(error) => {
                    record.failure = Some(error.to_string());
                    break 'reading;
                }
            };
            match message {
                ServerMessage::Text(text) if NEXT.is_in(text) => {
                    record.next(text, received, &shared);
                }
                ServerMessage::Text(text) => {
                    let kind = serde_json::from_str::<Value>(text)
                        .ok()
                        .and_then(|m| m["type"].as_str().map(str::to_owned));
                    match kind.as_deref() {
                        Some("ping") => {
                            replies.push(client_frame(0x1, br#"{"type":"pong"}"#));
                        }
                        Some("pong") => {}
                        Some("complete") => {
                            record.ended_by_server = Some("complete".to_owned());
                            break 'reading;
                        }
                        _ => {
                            record.ended_by_server = Some(text.chars().take(300).collect());
                            break 'reading;
                        }
                    }
                }
                ServerMessage::Close(frame) => {
                    record.ended_by_server = Some(match frame {
                        Some((code, reason)) => format!("close {code} {reason}"),
                        None => "close without a code".to_owned(),
                    });
                    break 'reading;
                }
                ServerMessage::Ping(payload) => replies.push(client_frame(0xA, payload)),
                ServerMessage::Binary(_) | ServerMessage::Pong => {}
            }
        }
        for reply in replies.drain(..) {
            if let Err(error) = stream.write_all(&reply).await {
                record.failure = Some(error.to_string());
                break 'reading;
            }
        }
    }
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        stream.write_all(&client_frame(0x8, &1000u16.to_be_bytes())),
    )
    .await;
    record
}

/// CPU and memory of one process, from `/proc`.
mod proc {
    use std::collections::HashSet;

    pub use bench::process::{cpu, kib, reset_peak};

    fn socket_inodes(pid: u32) -> HashSet<u64> {
        let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return HashSet::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let target = std::fs::read_link(entry.path()).ok()?;
                let target = target.to_str()?;
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Established TCP connections to `port` on the other end: those of process `pid`, or
    /// of the whole host without one.
    pub fn connections_to(port: u16, pid: Option<u32>) -> usize {
        let owned = pid.map(socket_inodes);
        let mut count = 0;
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(remote), Some(state), Some(inode)) =
                    (fields.get(2), fields.get(3), fields.get(9))
                else {
                    continue;
                };
                let remote_port = remote
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
                // State 01 is ESTABLISHED.
                if remote_port != Some(port) || *state != "01" {
                    continue;
                }
                if let Some(owned) = &owned {
                    match inode.parse::<u64>() {
                        Ok(inode) if owned.contains(&inode) => {}
                        _ => continue,
                    }
                }
                count += 1;
            }
        }
        count
    }
}

/// The sum of a Prometheus series over every label set that has all of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_if_any(text, name, labels).unwrap_or(0.0)
}

/// As `metric`, `None` when no such series exists (a gateway without that metric).
fn metric_if_any(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut values = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, l)) => (n, l),
                None => (series, ""),
            };
            (series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())?
        })
        .peekable();
    values.peek()?;
    Some(values.sum())
}

async fn metrics_text(http: &reqwest::Client, origin: Option<&str>) -> Option<String> {
    let response = http
        .get(format!("{origin}/metrics", origin = origin?))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// The counters read before and after the event phase.
#[derive(Default, Clone, Copy)]
struct Counters {
    gateway_crm_fetches: f64,
    gateway_ticketing_fetches: f64,
    crm_requests: Option<f64>,
    gateway_subscriptions: f64,
    /// `gateway_subscription_upstreams_active`, where the gateway has it.
    gateway_upstreams: Option<f64>,
    /// `gateway_subscribers_cut_off_total`, where the gateway has it.
    gateway_cut_off: Option<f64>,
    ticketing_subscriptions: Option<f64>,
}

async fn counters(http: &reqwest::Client, system: &System) -> Counters {
    let gateway = metrics_text(http, Some(&system.origin))
        .await
        .unwrap_or_default();
    let crm = metrics_text(http, system.crm.as_deref()).await;
    let ticketing = metrics_text(http, system.ticketing.as_deref()).await;
    Counters {
        gateway_crm_fetches: metric(
            &gateway,
            "gateway_subgraph_fetches_total",
            &[("subgraph", "crm")],
        ),
        gateway_ticketing_fetches: metric(
            &gateway,
            "gateway_subgraph_fetches_total",
            &[("subgraph", "ticketing")],
        ),
        crm_requests: crm.map(|text| {
            metric(
                &text,
                "http_requests_total",
                &[("service", "crm"), ("path", "/graphql")],
            )
        }),
        gateway_subscriptions: metric(&gateway, "gateway_subscriptions_active", &[]),
        gateway_upstreams: metric_if_any(&gateway, "gateway_subscription_upstreams_active", &[]),
        gateway_cut_off: metric_if_any(&gateway, "gateway_subscribers_cut_off_total", &[]),
        ticketing_subscriptions: ticketing.map(|text| {
            metric(
                &text,
                "event_subscriptions_active",
                &[("service", "ticketing")],
            )
        }),
    }
}

/// How every subscriber's events compare with the log.
#[derive(Default)]
struct Verdict {
    opened: usize,
    failed_to_open: usize,
    complete: usize,
    received: u64,
    missing: u64,
    duplicates: u64,
    out_of_order: u64,
    unexpected: u64,
    unreadable: u64,
    error_payloads: u64,
    with_sponsor: u64,
    sponsor_null: u64,
    ended_by_server: usize,
    broken: usize,
    endings: HashMap<String, usize>,
    latencies_us: Vec<u32>,
}

fn verify(records: Vec<Record>, expected: &[(String, String, String)]) -> Verdict {
    let position: HashMap<u64, usize> = expected
        .iter()
        .enumerate()
        .map(|(i, (_, id, _))| (id_hash(id), i))
        .collect();
    let mut verdict = Verdict::default();
    let mut seen = vec![false; expected.len()];
    for record in records {
        if let Some(ending) = record.ended_by_server.as_ref().or(record.failure.as_ref()) {
            let reason: String = ending.chars().take(120).collect();
            *verdict.endings.entry(reason).or_default() += 1;
        }
        if !record.opened {
            verdict.failed_to_open += 1;
            continue;
        }
        verdict.opened += 1;
        verdict.ended_by_server += usize::from(record.ended_by_server.is_some());
        verdict.broken += usize::from(record.failure.is_some());
        seen.iter_mut().for_each(|s| *s = false);
        let (mut duplicates, mut out_of_order, mut unexpected) = (0, 0, 0);
        let mut furthest: Option<usize> = None;
        for hash in &record.ids {
            match position.get(hash) {
                None => unexpected += 1,
                Some(&p) if seen[p] => duplicates += 1,
                Some(&p) => {
                    seen[p] = true;
                    if furthest.is_some_and(|f| p < f) {
                        out_of_order += 1;
                    }
                    furthest = furthest.max(Some(p));
                }
            }
        }
        let missing = seen.iter().filter(|s| !**s).count() as u64;
        if missing == 0 && duplicates == 0 && out_of_order == 0 && unexpected == 0 {
            verdict.complete += 1;
        }
        verdict.received += record.ids.len() as u64;
        verdict.missing += missing;
        verdict.duplicates += duplicates;
        verdict.out_of_order += out_of_order;
        verdict.unexpected += unexpected;
        verdict.unreadable += u64::from(record.unreadable);
        verdict.error_payloads += u64::from(record.error_payloads);
        verdict.with_sponsor += u64::from(record.with_sponsor);
        verdict.sponsor_null += u64::from(record.sponsor_null);
        verdict.latencies_us.extend_from_slice(&record.latencies_us);
    }
    verdict.latencies_us.sort_unstable();
    verdict
}

/// A process's CPU time and memory over a phase.
struct Usage {
    cpu: Duration,
    /// This program's own CPU time: it shares the cores with the system it measures.
    own_cpu: Duration,
    wall: Duration,
    peak_kib: u64,
}

/// Samples `VmRSS` until `done` flips, alongside `VmHWM`.
fn sample_rss(pid: Option<u32>, done: watch::Receiver<bool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let Some(pid) = pid else { return 0 };
        let mut peak = 0;
        while !*done.borrow() {
            peak = peak.max(proc::kib(pid, "VmRSS"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        peak.max(proc::kib(pid, "VmHWM"))
    })
}

fn ms(us: Option<u32>) -> f64 {
    us.map_or(f64::NAN, |us| f64::from(us) / 1e3)
}

/// Milliseconds with one decimal, `-` for a figure not measured.
fn shown(ms: f64) -> String {
    if ms.is_nan() {
        "-".to_owned()
    } else {
        format!("{ms:.1}")
    }
}

/// The subscribers' tasks, once they are all subscribed (or failed to).
struct Subscribers {
    stops: Vec<oneshot::Sender<()>>,
    handles: Vec<tokio::task::JoinHandle<Record>>,
    opened: usize,
    connect_time: Duration,
}

/// Opens `--subscribers` connections, `--connect-concurrency` at a time, spread round robin over
/// the tokens, and waits until the gateway counts every opened subscription as active.
async fn open_subscribers(
    args: &Args,
    system: &System,
    http: &reqwest::Client,
    shared: &Arc<Shared>,
    tokens: &[String],
    active_before: f64,
    viewers: &tokio::runtime::Handle,
) -> Subscribers {
    eprintln!(
        "opening {} subscribers over {} tokens ({} at a time)",
        args.subscribers, args.tokens, args.connect_concurrency
    );
    let authorizations: Vec<Arc<str>> = tokens
        .iter()
        .map(|t| Arc::from(format!("Bearer {t}")))
        .collect();
    let permits = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel();
    let capacity = args.events + 16;
    let started = Instant::now();
    let (stops, handles): (Vec<_>, Vec<_>) = (0..args.subscribers)
        .map(|i| {
            let (stop, stopped) = oneshot::channel();
            let handle = viewers.spawn(subscriber(
                Arc::clone(shared),
                Arc::clone(&authorizations[i % authorizations.len()]),
                Arc::clone(&permits),
                opened_tx.clone(),
                stopped,
                capacity,
            ));
            (stop, handle)
        })
        .unzip();
    drop(opened_tx);
    let (mut opened, mut failed) = (0, Vec::new());
    // Each task keeps its sender while it runs: count the answers instead of waiting for the end.
    while opened + failed.len() < args.subscribers {
        match opened_rx.recv().await {
            Some(Ok(())) => opened += 1,
            Some(Err(error)) => failed.push(error),
            None => break,
        }
    }
    if let Some(error) = failed.first() {
        eprintln!(
            "{} subscribers failed to open; first: {error}",
            failed.len()
        );
    }
    // Subscribed means the gateway counts the subscription as active (it does once the
    // upstream subscription it feeds from is open).
    let target = active_before + opened as f64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut active = active_before;
    while active < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        active = counters(http, system).await.gateway_subscriptions;
    }
    let connect_time = started.elapsed();
    eprintln!(
        "{opened} subscribers connected, the gateway counts {active} active subscriptions, in {:.1} s",
        connect_time.as_secs_f64()
    );
    Subscribers {
        stops,
        handles,
        opened,
        connect_time,
    }
}

/// Purchases with nobody listening, and what they cost the system.
struct Baseline {
    run: PurchaseRun,
    cpu: Option<Duration>,
    wall: Duration,
}

/// Everything a run measured.
struct Outcome {
    pid: Option<u32>,
    subscribed_after_head: bool,
    baseline: Option<Baseline>,
    loaded: PurchaseRun,
    connect_time: Duration,
    /// The log's events during the event phase: what every subscriber must have received.
    expected: Vec<(String, String, String)>,
    verdict: Verdict,
    first_error_payload: Option<String>,
    phase: Usage,
    rss_before: u64,
    rss_subscribed: u64,
    /// `/proc/loadavg` as the event phase began: other work on the machine skews every figure.
    load_average: String,
    /// Connections to ticketing's port: before subscribing, subscribed, after the events.
    sockets: [Option<usize>; 3],
    before_subscribing: Counters,
    before: Counters,
    after: Counters,
}

async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let system = start_system(args).await?;
    let pid = system.pid;
    eprintln!(
        "system: gateway {}, ticketing {}, crm {}, pid {}",
        system.origin,
        system.ticketing.as_deref().unwrap_or("?"),
        system.crm.as_deref().unwrap_or("?"),
        pid.map_or("?".to_owned(), |p| p.to_string())
    );
    let admin = mint(args, &system.data_dir, DASHBOARD_SCOPES, "bench-admin").await?;
    let mut tokens = Vec::with_capacity(args.tokens);
    for i in 0..args.tokens {
        let subject = format!("dashboard-{i}");
        tokens.push(mint(args, &system.data_dir, DASHBOARD_SCOPES, &subject).await?);
    }
    let mut buyers = Vec::with_capacity(args.buyers);
    for i in 0..args.buyers {
        let subject = format!("buyer-{i}");
        buyers.push(mint(args, &system.data_dir, BUYER_SCOPES, &subject).await?);
    }
    let buyers = Arc::new(buyers);
    if tokens.iter().collect::<HashSet<_>>().len() != tokens.len() {
        bail!("conftools token minted identical tokens for distinct subjects");
    }
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .context("HTTP client")?;
    let gql = Arc::new(Gql {
        http: http.clone(),
        url: system.graphql(),
    });
    let ticket_type = stock(&gql, &admin).await?;

    // 1. Purchases with nobody listening.
    let baseline = if args.baseline {
        eprintln!(
            "baseline: {} purchases at {}/s, no subscribers",
            args.events, args.rate
        );
        let cpu_before = pid.map(proc::cpu);
        let started = Instant::now();
        let run = purchases(&gql, &buyers, &ticket_type, args.events, args.rate).await;
        Some(Baseline {
            run,
            cpu: pid
                .zip(cpu_before)
                .map(|(p, before)| proc::cpu(p).saturating_sub(before)),
            wall: started.elapsed(),
        })
    } else {
        None
    };

    // 2. The log's head, read once for everybody, as each dashboard does before subscribing.
    let head = events_after(&gql, &admin, None)
        .await?
        .last()
        .map(|(_, _, cursor)| cursor.clone());
    let ticketing_port = system.ticketing_port();
    let sockets_to_ticketing = || ticketing_port.map(|port| proc::connections_to(port, pid));
    let sockets_before = sockets_to_ticketing();
    let rss = || pid.map_or(0, |p| proc::kib(p, "VmRSS"));
    let rss_before = rss();
    let before_subscribing = counters(&http, &system).await;

    // 3. The subscribers, each with the dashboard's subscription.
    let subscribed_after_head = head.is_some() && !args.no_cursor;
    let variables = match &head {
        Some(head) if subscribed_after_head => json!({ "after": head }),
        _ => json!({}),
    };
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": SUBSCRIPTION, "variables": variables, "operationName": "TicketEvents" } });
    let shared = Arc::new(Shared {
        ws_url: system.websocket(),
        subscribe: subscribe.to_string(),
        deliveries: AtomicU64::new(0),
        first_error_payload: Mutex::new(None),
    });
    let subscribers = open_subscribers(
        args,
        &system,
        &http,
        &shared,
        &tokens,
        before_subscribing.gateway_subscriptions,
        &viewer_thread()?,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sockets_subscribed = sockets_to_ticketing();
    let rss_subscribed = rss();

    // 4. The same purchases while everybody listens, until every delivery has arrived or none
    //    has for `--drain-secs`.
    let before = counters(&http, &system).await;
    if let Some(pid) = pid {
        proc::reset_peak(pid);
    }
    let (sampling_tx, sampling_rx) = watch::channel(false);
    let sampler = sample_rss(pid, sampling_rx);
    let cpu_before = pid.map(proc::cpu);
    let own_cpu_before = proc::cpu(std::process::id());
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let started = Instant::now();
    let deliveries_before = shared.deliveries.load(Ordering::Relaxed);
    eprintln!(
        "{} purchases at {}/s while they listen",
        args.events, args.rate
    );
    let loaded = purchases(&gql, &buyers, &ticket_type, args.events, args.rate).await;
    let expected = events_after(&gql, &admin, head.clone()).await?;
    let target = deliveries_before + (subscribers.opened * expected.len()) as u64;
    let mut last = (shared.deliveries.load(Ordering::Relaxed), Instant::now());
    while last.0 < target && last.1.elapsed() < Duration::from_secs(args.drain_secs) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = shared.deliveries.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let phase = Usage {
        cpu: pid
            .zip(cpu_before)
            .map_or(Duration::ZERO, |(p, b)| proc::cpu(p).saturating_sub(b)),
        own_cpu: proc::cpu(std::process::id()).saturating_sub(own_cpu_before),
        wall: started.elapsed(),
        peak_kib: {
            let _ = sampling_tx.send(true);
            sampler.await.unwrap_or(0)
        },
    };
    let sockets_after = sockets_to_ticketing();
    let after = counters(&http, &system).await;

    for stop in subscribers.stops {
        let _ = stop.send(());
    }
    let records: Vec<Record> = futures_util::future::join_all(subscribers.handles)
        .await
        .into_iter()
        .map(|r| r.unwrap_or_default())
        .collect();
    let verdict = verify(records, &expected);
    let first_error_payload = shared
        .first_error_payload
        .lock()
        .ok()
        .and_then(|first| first.clone());
    Ok(Outcome {
        pid,
        subscribed_after_head,
        baseline,
        loaded,
        connect_time: subscribers.connect_time,
        expected,
        verdict,
        first_error_payload,
        phase,
        rss_before,
        rss_subscribed,
        load_average,
        sockets: [sockets_before, sockets_subscribed, sockets_after],
        before_subscribing,
        before,
        after,
    })
}

fn or_unknown<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or("?".to_owned(), |v| v.to_string())
}

fn report(args: &Args, o: &Outcome) {
    let v = &o.verdict;
    let events = o.expected.len();
    let purchase_events = o
        .expected
        .iter()
        .filter(|(kind, _, _)| kind == "TicketPurchaseCreated")
        .count();
    let expected_deliveries = (args.subscribers * events) as u64;
    let latency = |p: f64| ms(percentile(&v.latencies_us, p));
    let per_event = |delta: f64| delta / events.max(1) as f64;
    let crm_fetches = per_event(o.after.gateway_crm_fetches - o.before.gateway_crm_fetches);
    let crm_requests = o
        .after
        .crm_requests
        .zip(o.before.crm_requests)
        .map(|(a, b)| per_event(a - b));
    let ticketing_fetches = o.after.gateway_ticketing_fetches - o.before.gateway_ticketing_fetches;
    let [sockets_before, sockets_subscribed, sockets_after] = o.sockets;
    let upstream = sockets_subscribed
        .zip(sockets_before)
        .map(|(with, without)| with as i64 - without as i64);
    let wall = o.phase.wall.as_secs_f64();
    let baseline_p = |p: f64| {
        o.baseline
            .as_ref()
            .map_or(f64::NAN, |b| b.run.percentile_ms(p))
    };

    println!();
    println!(
        "subscribers {} over {} tokens ({} groups expected), {} opened, {} failed to open, connected in {:.1} s",
        args.subscribers,
        args.tokens,
        args.tokens,
        v.opened,
        v.failed_to_open,
        o.connect_time.as_secs_f64()
    );
    println!(
        "events: {events} in the log during the run ({purchase_events} TicketPurchaseCreated) from {} purchases at {}/s by {}, subscribed {}",
        args.events,
        args.rate,
        if args.buyers == 0 {
            "anonymous buyers".to_owned()
        } else {
            format!("{} buyers with tokens", args.buyers)
        },
        if o.subscribed_after_head {
            "after the log's head"
        } else {
            "without a cursor"
        }
    );
    println!(
        "deliveries: expected {expected_deliveries}, received {} ({:.0}/s); subscribers with every event once and in order: {}/{}",
        v.received,
        v.received as f64 / wall,
        v.complete,
        args.subscribers
    );
    println!(
        "  missing {}, duplicates {}, out of order {}, not in the log {}, unreadable {}, payloads with errors {}",
        v.missing, v.duplicates, v.out_of_order, v.unexpected, v.unreadable, v.error_payloads
    );
    println!(
        "  cut off by the server: {}, connections broken: {}",
        v.ended_by_server, v.broken
    );
    for (reason, count) in &v.endings {
        println!("    {count} x {reason}");
    }
    if let Some(first) = &o.first_error_payload {
        println!("  first payload with errors: {first}");
    }
    println!(
        "  sponsor enrichment: {} deliveries with a sponsor, {} with sponsor null",
        v.with_sponsor, v.sponsor_null
    );
    println!(
        "latency from occurredAt: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency(0.5),
        latency(0.95),
        latency(0.99),
        latency(1.0)
    );
    println!(
        "purchases: without subscribers p50 {} ms, p99 {} ms; with subscribers p50 {:.1} ms, p99 {:.1} ms ({} failed)",
        shown(baseline_p(0.5)),
        shown(baseline_p(0.99)),
        o.loaded.percentile_ms(0.5),
        o.loaded.percentile_ms(0.99),
        o.loaded.failed
    );
    if let Some(error) = &o.loaded.first_error {
        println!("  first failed purchase: {error}");
    }
    if let Some(error) = o.baseline.as_ref().and_then(|b| b.run.first_error.as_ref()) {
        println!("  first failed baseline purchase: {error}");
    }
    println!(
        "this load generator: CPU {:.2} s in the event phase ({:.1} us per delivery), on the same cores; load average {} as it began",
        o.phase.own_cpu.as_secs_f64(),
        o.phase.own_cpu.as_secs_f64() * 1e6 / v.received.max(1) as f64,
        o.load_average
    );
    if let Some(pid) = o.pid {
        let cpu = o.phase.cpu.as_secs_f64();
        println!(
            "process {pid}: event phase {wall:.1} s wall, CPU {cpu:.2} s ({:.0} % of one core, {:.1} us per delivery), peak RSS {:.1} MiB",
            cpu / wall * 100.0,
            cpu * 1e6 / v.received.max(1) as f64,
            mib(o.phase.peak_kib)
        );
        if let Some(Baseline {
            cpu: Some(cpu),
            wall,
            ..
        }) = &o.baseline
        {
            println!(
                "  baseline phase (no subscribers): {:.1} s wall, CPU {:.2} s",
                wall.as_secs_f64(),
                cpu.as_secs_f64()
            );
        }
        println!(
            "  RSS before subscribing {:.1} MiB, with the subscribers idle {:.1} MiB ({:.1} KiB per subscriber)",
            mib(o.rss_before),
            mib(o.rss_subscribed),
            o.rss_subscribed.saturating_sub(o.rss_before) as f64 / args.subscribers as f64
        );
    }
    println!(
        "upstream: sockets to ticketing {} before subscribing, {} subscribed, {} after the events ({}); ticketing's active subscriptions {} -> {}",
        or_unknown(sockets_before),
        or_unknown(sockets_subscribed),
        or_unknown(sockets_after),
        if o.pid.is_some() {
            "this process's"
        } else {
            "whole host"
        },
        or_unknown(o.before_subscribing.ticketing_subscriptions),
        or_unknown(o.after.ticketing_subscriptions),
    );
    if let Some(upstreams) = o.after.gateway_upstreams {
        println!(
            "  the gateway's own count: {upstreams} upstream subscriptions open, {} subscribers cut off during the phase",
            o.after.gateway_cut_off.unwrap_or(0.0) - o.before.gateway_cut_off.unwrap_or(0.0)
        );
    }
    println!(
        "CRM fetches per event: {crm_fetches:.2} by the gateway's count (gateway_subgraph_fetches_total, joined requests included), {} reaching the CRM (http_requests_total service=crm path=/graphql); ticketing fetches by the gateway during the phase: {ticketing_fetches}",
        crm_requests.map_or("?".to_owned(), |n| format!("{n:.2}"))
    );

    let yes = |ok: bool| if ok { "yes" } else { "NO" };
    let baseline_p99 = baseline_p(0.99);
    println!();
    println!("targets:");
    println!(
        "  every event delivered once, in order: {}",
        yes(v.complete == args.subscribers)
    );
    println!("  p99 under 250 ms: {}", yes(latency(0.99) < 250.0));
    println!(
        "  purchase p99 within 2x of no subscribers: {}",
        if baseline_p99.is_nan() {
            "not measured"
        } else {
            yes(o.loaded.percentile_ms(0.99) <= 2.0 * baseline_p99)
        }
    );
    println!(
        "  upstream sockets = groups ({}): {}",
        args.tokens,
        upstream.map_or("not measured", |n| yes(n == args.tokens as i64))
    );
    println!(
        "  CRM fetches per event = groups ({}): {}",
        args.tokens,
        crm_requests.map_or("not measured", |n| yes(
            (n - args.tokens as f64).abs() < 0.01
        ))
    );

    let command_line = std::env::args()
        .map(|a| quoted(&a))
        .collect::<Vec<_>>()
        .join(" ");
    println!();
    println!("```sh\n{command_line}\n```");
    println!();
    println!(
        "| subscribers | tokens | events at /s | deliveries received / expected | missing, dup, out of order | cut off | p50 ms | p99 ms | max ms | purchase p99 ms, none / with subscribers | CPU s (event phase) | peak RSS MiB | upstream sockets | CRM fetches per event |"
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    println!(
        "| {} | {} | {} at {} | {} / {} | {}, {}, {} | {} | {:.1} | {:.1} | {:.1} | {} / {:.1} | {:.2} | {:.0} | {} | {} |",
        args.subscribers,
        args.tokens,
        events,
        args.rate,
        v.received,
        expected_deliveries,
        v.missing,
        v.duplicates,
        v.out_of_order,
        v.ended_by_server,
        latency(0.5),
        latency(0.99),
        latency(1.0),
        shown(baseline_p99),
        o.loaded.percentile_ms(0.99),
        o.phase.cpu.as_secs_f64(),
        mib(o.phase.peak_kib),
        or_unknown(upstream),
        crm_requests.map_or_else(
            || format!("{crm_fetches:.1} (gateway count)"),
            |n| format!("{n:.1}")
        ),
    );
}

/// The viewers' sockets run on one thread of their own, a single-threaded runtime: the load
/// generator shares the two cores with the system it measures, and ten thousand sockets
/// read by one thread cost it a third less CPU per delivery than spread over a work-stealing
/// pool (no wake-ups of idle workers, no tasks moving between threads), which leaves the
/// gateway the core it is measured on. Purchases and the measurements stay on the main
/// runtime, so their latency does not queue behind the viewers' reads.
fn viewer_thread() -> anyhow::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("viewers".to_owned())
        // Runs until the process exits, after the report.
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.tokens == 0 || args.subscribers < args.tokens {
        bail!("--tokens must be at least 1 and at most --subscribers");
    }
    let outcome = run(&args).await?;
    report(&args, &outcome);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            ws_url: String::new(),
            subscribe: String::new(),
            deliveries: AtomicU64::new(0),
            first_error_payload: Mutex::new(None),
        }
    }

    #[test]
    fn reads_the_event_from_a_next_message() {
        let shared = shared();
        let mut record = Record::default();
        let message = r#"{"id":"1","type":"next","payload":{"data":{"ticketEvents":{"__typename":"TicketPurchaseCreated","id":"e-1","cursor":"c1","occurredAt":"2026-11-30T10:00:00.000100Z","purchase":{"id":"p-1","sponsor":null}}}}}"#;
        let received = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00.250100Z")
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        record.next(message, received, &shared);
        assert_eq!(record.ids, vec![id_hash("e-1")]);
        assert_eq!(record.latencies_us, vec![250_000]);
        assert_eq!((record.sponsor_null, record.with_sponsor), (1, 0));
        assert_eq!(shared.deliveries.load(Ordering::Relaxed), 1);

        record.next(
            r#"{"type":"next","payload":{"errors":[{"message":"x"}],"data":null}}"#,
            received,
            &shared,
        );
        assert_eq!((record.error_payloads, record.unreadable), (1, 1));
    }

    #[test]
    fn counts_missing_duplicate_and_out_of_order_events() {
        let expected: Vec<(String, String, String)> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| ("E".to_owned(), (*id).to_owned(), String::new()))
            .collect();
        let record = |ids: &[&str]| Record {
            opened: true,
            ids: ids.iter().map(|id| id_hash(id)).collect(),
            latencies_us: vec![1; ids.len()],
            ..Record::default()
        };
        let verdict = verify(
            vec![
                record(&["a", "b", "c", "d"]),
                record(&["a", "c", "b", "b", "x"]),
                Record::default(),
            ],
            &expected,
        );
        assert_eq!(verdict.opened, 2);
        assert_eq!(verdict.failed_to_open, 1);
        assert_eq!(verdict.complete, 1);
        assert_eq!(verdict.missing, 1);
        assert_eq!(verdict.duplicates, 1);
        assert_eq!(verdict.out_of_order, 1);
        assert_eq!(verdict.unexpected, 1);
        assert_eq!(verdict.received, 9);
    }

    #[test]
    fn sums_prometheus_series_by_label() {
        let text = "# HELP x\n\
            gateway_subgraph_fetches_total{subgraph=\"crm\",outcome=\"ok\"} 7\n\
            gateway_subgraph_fetches_total{subgraph=\"crm\",outcome=\"errors\"} 1\n\
            gateway_subgraph_fetches_total{subgraph=\"ticketing\",outcome=\"ok\"} 5\n\
            gateway_subscriptions_active 3\n";
        let crm = metric(
            text,
            "gateway_subgraph_fetches_total",
            &[("subgraph", "crm")],
        );
        assert_eq!(crm, 8.0);
        assert_eq!(metric(text, "gateway_subscriptions_active", &[]), 3.0);
        assert_eq!(
            metric_if_any(text, "gateway_subscription_upstreams_active", &[]),
            None
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            origin_of("http://127.0.0.1:4000/graphql"),
            "http://127.0.0.1:4000"
        );
        assert_eq!(origin_of("http://127.0.0.1:4000/"), "http://127.0.0.1:4000");
        assert_eq!(port_of("http://127.0.0.1:4001"), Some(4001));
    }
}
