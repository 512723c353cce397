//! Ticketing under load, measured from outside: the release `ticketing` binary runs as its own
//! process and this program drives it over HTTP and WebSocket, like real clients.
//!
//! 1. Purchases per second on one hot ticket type and spread over many, on SQLite and on
//!    PostgreSQL, each checked afterwards for oversold seats.
//! 2. pgbench on the same PostgreSQL server, same client count, running the physical
//!    minimum of a purchase on one hot row: a conditional UPDATE and an INSERT per
//!    transaction. That is the ceiling the hot-type figure is compared with.
//! 3. Event fan-out: many live subscribers, each must receive every event; delivery latency
//!    is measured from the event's `occurredAt`.
//!
//! Usage: `cargo run --release -p bench --bin ticketing-load -- --help`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(Parser, Debug)]
struct Args {
    /// Seconds per purchase run.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Concurrent clients in purchase runs (and pgbench clients).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// PostgreSQL server for the PostgreSQL runs and pgbench; leave empty to skip them.
    #[arg(
        long,
        env = "BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Live subscribers in the fan-out run.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Purchases made while the subscribers listen.
    #[arg(long, default_value_t = 200)]
    fanout_events: usize,
    /// Purchases per second while the subscribers listen.
    #[arg(long, default_value_t = 20)]
    fanout_rate: u64,
    /// Which databases to run purchases on.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// Skip the fan-out run.
    #[arg(long)]
    skip_fanout: bool,
    /// The ticketing binary (built with `cargo build --release -p ticketing`).
    #[arg(long)]
    ticketing_bin: Option<PathBuf>,
}

const SECRET: &str = "bench-secret";

struct Server {
    child: Child,
    url: String,
    ws_url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_server(
    bin: &PathBuf,
    database_url: String,
    dir: Option<tempfile::TempDir>,
) -> anyhow::Result<Server> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &database_url,
        ])
        .args(["--database-max-connections", "32"])
        .env("CONFTOOLS_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}/graphql"),
        ws_url: format!("ws://127.0.0.1:{port}/graphql"),
        _dir: dir,
    };
    let health = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(&health).await.is_err() {
        if Instant::now() > deadline {
            bail!("ticketing did not come up on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(server)
}

fn token(scopes: &[&str]) -> anyhow::Result<String> {
    Ok(platform::JwtKeys::from_secret(SECRET.as_bytes()).mint(
        "bench",
        scopes,
        Duration::from_secs(3600),
    )?)
}

async fn gql(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Ok(request.send().await?.json().await?)
}

async fn ok(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body = gql(client, url, Some(token), query, variables).await?;
    if body.get("errors").is_some() {
        bail!("unexpected errors: {body}");
    }
    Ok(body["data"].clone())
}

/// A conference with one hot type and `spread` others; returns (hot, others).
async fn stock(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    capacity: i64,
    spread: usize,
) -> anyhow::Result<(String, Vec<String>)> {
    let conference = ok(client, url, admin,
        "mutation { createConference(input: { name: \"Bench\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-03\" }) { id } }",
        json!({})).await?["createConference"]["id"].as_str().unwrap_or_default().to_owned();
    let create = "mutation($c: ID!, $n: String!, $cap: Int!) { createTicketType(input: { conferenceId: $c, name: $n, price: { amount: 9900, currency: \"EUR\" }, capacity: $cap }) { id } }";
    let mut ids = Vec::new();
    for i in 0..=spread {
        let data = ok(
            client,
            url,
            admin,
            create,
            json!({ "c": conference, "n": format!("Type {i}"), "cap": capacity }),
        )
        .await?;
        ids.push(
            data["createTicketType"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let hot = ids.remove(0);
    Ok((hot, ids))
}

const BUY: &str =
    "mutation($input: CreateTicketPurchaseInput!) { createTicketPurchase(input: $input) { id } }";

struct RunResult {
    ok: u64,
    sold_out: u64,
    failed: u64,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl RunResult {
    fn throughput(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// `clients` loops buying one ticket each time, for `duration`.
async fn purchase_run(
    url: &str,
    types: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) -> RunResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + duration;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let client = client.clone();
        let url = url.to_owned();
        let types = Arc::clone(&types);
        let next = Arc::clone(&next);
        tokio::spawn(async move {
            let (mut ok, mut sold_out, mut failed, mut latencies) = (0u64, 0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let ticket_type = &types[(n as usize) % types.len()];
                let input = json!({
                    "purchaser": { "name": format!("Buyer {n}"), "email": format!("b{n}@example.org") },
                    "lines": [{ "ticketTypeId": ticket_type, "quantity": 1 }]
                });
                let t0 = Instant::now();
                match gql(&client, &url, None, BUY, json!({ "input": input })).await {
                    Ok(body) if body.get("errors").is_none() => {
                        ok += 1;
                        latencies.push(t0.elapsed());
                    }
                    Ok(body) if body["errors"][0]["extensions"]["code"] == "SOLD_OUT" => sold_out += 1,
                    _ => failed += 1,
                }
            }
            (ok, sold_out, failed, latencies)
        })
    });
    let mut result = RunResult {
        ok: 0,
        sold_out: 0,
        failed: 0,
        seconds: 0.0,
        latencies: Vec::new(),
    };
    for worker in futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        result.ok += worker.0;
        result.sold_out += worker.1;
        result.failed += worker.2;
        result.latencies.extend(worker.3);
    }
    result.seconds = started.elapsed().as_secs_f64();
    result.latencies.sort();
    result
}

async fn sold(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    ids: &[String],
) -> anyhow::Result<(i64, i64)> {
    let (mut sold, mut capacity) = (0, 0);
    for id in ids {
        let data = ok(
            client,
            url,
            admin,
            "query($id: ID!) { ticketType(id: $id) { sold capacity } }",
            json!({ "id": id }),
        )
        .await?;
        sold += data["ticketType"]["sold"].as_i64().unwrap_or(-1);
        capacity += data["ticketType"]["capacity"].as_i64().unwrap_or(0);
    }
    Ok((sold, capacity))
}

async fn database_url(
    backend: &str,
    server_url: &str,
) -> anyhow::Result<(String, Option<tempfile::TempDir>)> {
    if backend == "sqlite" {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("ticketing.db").display());
        return Ok((url, Some(dir)));
    }
    Ok((create_database(server_url, "bench_ticketing").await?, None))
}

async fn create_database(server_url: &str, prefix: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server_url)
        .await
        .with_context(|| format!("PostgreSQL at {server_url} is unreachable"))?;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let (scheme, rest) = server_url.split_once("://").context("URL needs a scheme")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    Ok(format!("{scheme}://{authority}/{name}"))
}

async fn drop_database(server_url: &str, url: &str) {
    use sqlx::Connection;
    let Some(name) = url.rsplit('/').next() else {
        return;
    };
    if let Ok(mut conn) = sqlx::PgConnection::connect(server_url).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

fn row(label: &str, r: &RunResult, oversold: i64) {
    println!(
        "| {label} | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
        r.throughput(),
        r.percentile(0.50).as_secs_f64() * 1e3,
        r.percentile(0.99).as_secs_f64() * 1e3,
        r.sold_out,
        r.failed,
        oversold
    );
}

async fn purchases(args: &Args, bin: &PathBuf, backend: &str) -> anyhow::Result<()> {
    let (url, dir) = database_url(backend, &args.postgres_url).await?;
    let server = start_server(bin, url.clone(), dir).await?;
    let client = reqwest::Client::new();
    let admin = token(&["tickets:admin", "events:read"])?;
    let duration = Duration::from_secs(args.duration);

    let (hot, spread) = stock(&client, &server.url, &admin, 1_000_000, 100).await?;
    let hot_run = purchase_run(
        &server.url,
        Arc::new(vec![hot.clone()]),
        args.clients,
        duration,
    )
    .await;
    let (hot_sold, _) = sold(&client, &server.url, &admin, std::slice::from_ref(&hot)).await?;
    row(
        &format!("{backend}: one hot ticket type"),
        &hot_run,
        hot_sold - hot_run.ok as i64,
    );

    let spread = Arc::new(spread);
    let spread_run = purchase_run(&server.url, Arc::clone(&spread), args.clients, duration).await;
    let (spread_sold, _) = sold(&client, &server.url, &admin, &spread).await?;
    row(
        &format!("{backend}: spread over 100 types"),
        &spread_run,
        spread_sold - spread_run.ok as i64,
    );

    // Scarcity: far more buyers than seats; exactly the capacity is sold.
    let (scarce, _) = stock(&client, &server.url, &admin, 500, 0).await?;
    let scarce_run = purchase_run(
        &server.url,
        Arc::new(vec![scarce.clone()]),
        args.clients,
        Duration::from_secs(3),
    )
    .await;
    let (scarce_sold, scarce_capacity) = sold(&client, &server.url, &admin, &[scarce]).await?;
    row(
        &format!(
            "{backend}: 500 seats, {} buyers",
            scarce_run.ok + scarce_run.sold_out
        ),
        &scarce_run,
        (scarce_sold - scarce_capacity).max(0) + (scarce_sold - scarce_run.ok as i64).abs(),
    );
    drop(server);
    if backend == "postgres" {
        drop_database(&args.postgres_url, &url).await;
    }
    Ok(())
}

/// pgbench running the physical minimum of a purchase against one hot row.
async fn pgbench(args: &Args) -> anyhow::Result<()> {
    let url = create_database(&args.postgres_url, "bench_pgbench").await?;
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        for statement in [
            "CREATE TABLE stock (id INT PRIMARY KEY, capacity BIGINT NOT NULL, sold BIGINT NOT NULL)",
            "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, stock_id INT NOT NULL, quantity INT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            "INSERT INTO stock VALUES (1, 1000000000, 0)",
        ] {
            sqlx::query(statement).execute(&mut conn).await?;
        }
    }
    let script = tempfile::NamedTempFile::new()?;
    std::fs::write(
        script.path(),
        "BEGIN;\nUPDATE stock SET sold = sold + 1 WHERE id = 1 AND sold + 1 <= capacity;\nINSERT INTO orders (stock_id, quantity) VALUES (1, 1);\nEND;\n",
    )?;
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &args.clients.to_string(),
            "-j",
            "2",
            "-T",
            &args.duration.to_string(),
            "-f",
        ])
        .arg(script.path())
        .arg(&url)
        .output()
        .context("pgbench is not installed (apt-get install postgresql-client)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps ="))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    let latency = text
        .lines()
        .find(|l| l.starts_with("latency average"))
        .and_then(|l| l.split('=').nth(1))
        .unwrap_or("?")
        .trim();
    println!("| pgbench: conditional UPDATE + INSERT on one row | {tps} | avg {latency} | | | | |");
    drop_database(&args.postgres_url, &url).await;
    Ok(())
}

const FANOUT_QUERY: &str = "subscription { ticketEvents { __typename occurredAt } }";

/// One subscriber: connects, subscribes, then reports each event's delivery latency.
async fn subscriber(
    ws_url: String,
    token: String,
    ready: tokio::sync::mpsc::Sender<()>,
    expected: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut request = ws_url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let text = |v: Value| Message::Text(v.to_string().into());
    socket.send(text(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))).await?;
    while let Some(message) = socket.next().await {
        if let Message::Text(t) = message?
            && t.contains("connection_ack")
        {
            break;
        }
    }
    socket
        .send(text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": FANOUT_QUERY } }),
        ))
        .await?;
    let _ = ready.send(()).await;
    let mut latencies = Vec::with_capacity(expected);
    while latencies.len() < expected {
        let Some(message) = tokio::time::timeout(Duration::from_secs(30), socket.next()).await?
        else {
            break;
        };
        let Message::Text(t) = message? else { continue };
        let now = chrono::Utc::now();
        // The load generator shares the machine with the server: it reads only the timestamp
        // instead of parsing each message, so its own cost stays out of the measurement.
        const FIELD: &str = "\"occurredAt\":\"";
        let Some(start) = t.find(FIELD).map(|i| i + FIELD.len()) else {
            continue;
        };
        let Some(len) = t[start..].find('"') else {
            continue;
        };
        let occurred = chrono::DateTime::parse_from_rfc3339(&t[start..start + len])?;
        latencies.push(
            (now - occurred.with_timezone(&chrono::Utc))
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e3,
        );
    }
    Ok(latencies)
}

async fn fanout(args: &Args, bin: &PathBuf) -> anyhow::Result<()> {
    let (url, dir) = database_url("sqlite", &args.postgres_url).await?;
    let server = start_server(bin, url, dir).await?;
    let client = reqwest::Client::new();
    let admin = token(&["tickets:admin", "events:read"])?;
    let (hot, _) = stock(&client, &server.url, &admin, 1_000_000, 0).await?;
    let reader = token(&["events:read"])?;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(args.subscribers);
    let mut handles = Vec::new();
    for _ in 0..args.subscribers {
        handles.push(tokio::spawn(subscriber(
            server.ws_url.clone(),
            reader.clone(),
            ready_tx.clone(),
            args.fanout_events,
        )));
    }
    for _ in 0..args.subscribers {
        ready_rx
            .recv()
            .await
            .context("a subscriber failed to connect")?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A steady rate of purchases while everyone listens.
    let started = Instant::now();
    let gap_micros = 1_000_000 / args.fanout_rate.max(1);
    for i in 0..args.fanout_events {
        let input = json!({ "purchaser": { "name": "Fan", "email": "fan@example.org" }, "lines": [{ "ticketTypeId": hot, "quantity": 1 }] });
        ok(&client, &server.url, &admin, BUY, json!({ "input": input })).await?;
        let due = started + Duration::from_micros(gap_micros * (i as u64 + 1));
        tokio::time::sleep_until(due.into()).await;
    }
    let mut all = Vec::new();
    let mut complete = 0;
    for handle in handles {
        match handle.await? {
            Ok(latencies) => {
                if latencies.len() == args.fanout_events {
                    complete += 1;
                }
                all.extend(latencies);
            }
            Err(error) => eprintln!("subscriber failed: {error:#}"),
        }
    }
    all.sort_by(f64::total_cmp);
    let pick = |p: f64| {
        all.get(((all.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "| fan-out: {} subscribers x {} events at {}/s | {}/{} received all | p50 {:.1} ms | p99 {:.1} ms | max {:.1} ms | deliveries {} |",
        args.subscribers,
        args.fanout_events,
        args.fanout_rate,
        complete,
        args.subscribers,
        pick(0.5),
        pick(0.99),
        pick(1.0),
        all.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.ticketing_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("ticketing"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: cargo build --release -p ticketing",
            bin.display()
        );
    }
    println!("| run | purchases/s | p50 ms | p99 ms | sold out | failed | oversold |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for backend in &args.backends {
        match backend.as_str() {
            "sqlite" => purchases(&args, &bin, "sqlite").await?,
            "postgres" if !args.postgres_url.is_empty() => {
                purchases(&args, &bin, "postgres").await?;
                pgbench(&args).await?;
            }
            "postgres" | "none" => {}
            other => bail!("unknown backend {other:?}: sqlite, postgres or none"),
        }
    }
    if !args.skip_fanout {
        println!();
        fanout(&args, &bin).await?;
    }
    Ok(())
}
