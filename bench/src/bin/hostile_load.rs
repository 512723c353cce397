//! Hostile requests against every server of `conftools up`: what a refusal costs.
//!
//! It starts the release `conftools up --no-web` itself (ticketing, the CRM and the gateway in
//! one process, a fresh temporary data directory, free ports), and for each hostile class and
//! each server it applies to sends a burst of `--burst` such requests, `--concurrency` at once,
//! measuring the refusal latency on the client, the process's CPU time during the burst (user +
//! system from `/proc/<pid>/stat`, 10 ms ticks) divided by the burst, its RSS before, its peak
//! during (`VmHWM` reset through `/proc/<pid>/clear_refs`, and sampled `VmRSS`) and its RSS
//! `--settle-secs` after. Every answer must carry the expected HTTP status and
//! `errors[0].extensions.code`; a normal request must be served after each burst. Slow headers:
//! `--burst` connections send half a request head and nothing more, and the time until the
//! server closes them is measured (`--header-read-timeout-secs`, 10 s by default).
//!
//! The table is printed and written with notes to `--notes` (`/tmp/hostile-notes.md`).
//!
//! Usage: `cargo build --release --bin conftools && cargo build --release -p bench --bin
//! hostile-load && ./target/release/hostile-load --help`

use bench::{free_addr, mib, quoted, tail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser, Debug)]
struct Args {
    /// Hostile requests (or connections) per class and server.
    #[arg(long, default_value_t = 200)]
    burst: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// The servers' header read timeout, as a hint: slow connections are given three times
    /// this long to be closed.
    #[arg(long, default_value_t = 10)]
    header_timeout_secs: u64,
    /// How long after a burst RSS is read again.
    #[arg(long, default_value_t = 3)]
    settle_secs: u64,
    /// Idle time measured at the start: the process's background CPU rate, subtracted from
    /// each burst's CPU over the burst's wall time.
    #[arg(long, default_value_t = 5)]
    idle_secs: u64,
    /// Only the classes whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// The release launcher that `conftools up` and `conftools token` run from.
    #[arg(long, default_value = "target/release/conftools")]
    conftools_bin: PathBuf,
    /// Where the table and notes are written.
    #[arg(long, default_value = "/tmp/hostile-notes.md")]
    notes: PathBuf,
}

const SCOPES: &str = "tickets:admin events:read crm:admin crm:write crm:read";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Ticketing,
    Crm,
    Gateway,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Ticketing => "ticketing",
            Server::Crm => "crm",
            Server::Gateway => "gateway",
        }
    }

    /// A query a client of this server may always make.
    fn normal_query(self) -> &'static str {
        match self {
            Server::Ticketing => "{ conferences(first: 1) { nodes { id } } }",
            Server::Crm => "{ sponsors(first: 1) { nodes { id } } }",
            Server::Gateway => {
                "{ conferences(first: 1) { nodes { id } } sponsors(first: 1) { nodes { id } } }"
            }
        }
    }
}

const ALL: [Server; 3] = [Server::Ticketing, Server::Crm, Server::Gateway];

enum Kind {
    /// POST this body with this content type (and `X-Forwarded-For`, for the rate limit).
    Post {
        body: Bytes,
        content_type: &'static str,
        forwarded_for: Option<&'static str>,
        /// Mutations sent one by one before the burst until the first refusal.
        drain: bool,
    },
    /// Connections that send half a request head.
    SlowHeaders,
}

struct Case {
    class: &'static str,
    server: Server,
    kind: Kind,
    status: u16,
    code: Option<&'static str>,
}

fn graphql(query: &str) -> Bytes {
    Bytes::from(json!({ "query": query }).to_string())
}

/// `depth` nested `tickets { purchase { … } }` under one purchase (ticketing's schema).
fn ticket_walk(depth: usize) -> String {
    let mut inner = "id".to_owned();
    for _ in 0..depth {
        inner = format!("tickets {{ id purchase {{ id {inner} }} }}");
    }
    format!("{{ ticketPurchase(id: \"x\") {{ {inner} }} }}")
}

/// 100 sponsors with `depth` nested `invoices { sponsor { … } }` (the CRM's schema).
fn invoice_walk(depth: usize) -> String {
    let mut inner = "id".to_owned();
    for _ in 0..depth {
        inner = format!("invoices {{ id sponsor {{ id {inner} }} }}");
    }
    format!("{{ sponsors(first: 100) {{ nodes {{ {inner} }} }} }}")
}

fn cases() -> Vec<Case> {
    let json = "application/json";
    let mut cases = Vec::new();
    let mut post = |class, server, body: Bytes, status, code| {
        cases.push(Case {
            class,
            server,
            kind: Kind::Post {
                body,
                content_type: json,
                forwarded_for: None,
                drain: false,
            },
            status,
            code,
        });
    };
    let big = Bytes::from(
        json!({ "query": "{ __typename }", "variables": { "pad": "x".repeat(3 << 20) } })
            .to_string(),
    );
    for server in ALL {
        post(
            "body 3 MiB",
            server,
            big.clone(),
            413,
            Some("PAYLOAD_TOO_LARGE"),
        );
    }
    let batch =
        Bytes::from(Value::Array(vec![json!({ "query": "{ __typename }" }); 1000]).to_string());
    for server in ALL {
        post(
            "batch of 1,000",
            server,
            batch.clone(),
            400,
            Some("BATCH_LIMIT_EXCEEDED"),
        );
    }
    let cost = Some("COST_LIMIT_EXCEEDED");
    post(
        "cost: 6 nested tickets",
        Server::Ticketing,
        graphql(&ticket_walk(6)),
        200,
        cost,
    );
    post(
        "cost: 6 nested tickets",
        Server::Gateway,
        graphql(&ticket_walk(6)),
        200,
        cost,
    );
    post(
        "cost: 6 nested invoices",
        Server::Crm,
        graphql(&invoice_walk(6)),
        200,
        cost,
    );
    post(
        "cost: 6 nested invoices",
        Server::Gateway,
        graphql(&invoice_walk(6)),
        200,
        cost,
    );
    // The worst a token flood can do within the default body limit (512 KiB): read in full,
    // decoded, then refused at the first token over the limit.
    let tokens = graphql(&format!("{{ {}}}", "a ".repeat(250_000)));
    let directives = graphql(&format!("{{ __typename{} }}", "@x".repeat(5_000)));
    // Not at the root: the gateway would count 70 root fields first.
    let aliases = graphql(&format!(
        "{{ conferences {{ nodes {{ {} }} }} }}",
        (0..70)
            .map(|i| format!("a{i}: id"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let roots = graphql(&format!(
        "{{ {} }}",
        (0..30)
            .map(|i| format!("r{i}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for (class, body, code) in [
        ("250k tokens (0.5 MB)", tokens, "TOKEN_LIMIT_EXCEEDED"),
        ("5,000 directives", directives, "DIRECTIVE_LIMIT_EXCEEDED"),
        ("70 aliases", aliases, "MAX_ALIASES_EXCEEDED"),
        ("30 root fields", roots, "ROOT_FIELD_LIMIT_EXCEEDED"),
    ] {
        for server in ALL {
            post(class, server, body.clone(), 200, Some(code));
        }
    }
    let mutation = graphql("mutation { cancelTicketPurchase(id: \"x\") { id } }");
    for server in ALL {
        let (status, code) = (415, Some("UNSUPPORTED_MEDIA_TYPE"));
        cases.push(Case {
            class: "text/plain mutation",
            server,
            kind: Kind::Post {
                body: mutation.clone(),
                content_type: "text/plain",
                forwarded_for: None,
                drain: false,
            },
            status,
            code,
        });
    }
    // One anonymous client per server (under `conftools up` all three trust loopback's
    // X-Forwarded-For); the gateway refuses by itself, before any subgraph request.
    for (server, body, address, status) in [
        (Server::Ticketing, mutation.clone(), "198.51.100.1", 429),
        (
            Server::Crm,
            graphql("mutation { __typename }"),
            "198.51.100.2",
            429,
        ),
        (Server::Gateway, mutation.clone(), "198.51.100.3", 429),
    ] {
        cases.push(Case {
            class: "mutations past the burst",
            server,
            kind: Kind::Post {
                body,
                content_type: json,
                forwarded_for: Some(address),
                drain: true,
            },
            status,
            code: Some("RATE_LIMITED"),
        });
    }
    for server in ALL {
        cases.push(Case {
            class: "slow headers",
            server,
            kind: Kind::SlowHeaders,
            status: 0,
            code: None,
        });
    }
    cases
}

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

struct System {
    addrs: [SocketAddr; 3],
    pid: u32,
    token: String,
    launcher: Launcher,
}

impl System {
    fn addr(&self, server: Server) -> SocketAddr {
        self.addrs[server as usize]
    }

    fn url(&self, server: Server) -> String {
        format!("http://{}/graphql", self.addr(server))
    }
}

async fn start(args: &Args) -> anyhow::Result<System> {
    if !args.conftools_bin.exists() {
        bail!(
            "{} is missing: cargo build --release --bin conftools",
            args.conftools_bin.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let addrs = [free_addr()?, free_addr()?, free_addr()?];
    let log = dir.path().join("conftools.log");
    let child = Command::new(&args.conftools_bin)
        .args(["up", "--no-web", "--data-dir"])
        .arg(dir.path())
        .args(["--ticketing-addr", &addrs[0].to_string()])
        .args(["--crm-addr", &addrs[1].to_string()])
        .args(["--gateway-addr", &addrs[2].to_string()])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", args.conftools_bin.display()))?;
    let mut launcher = Launcher { child, log, dir };
    let health = format!("http://{}/health", addrs[2]);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = reqwest::get(&health).await
            && response.status().is_success()
        {
            break;
        }
        if let Ok(Some(status)) = launcher.child.try_wait() {
            bail!("conftools up exited ({status}):\n{}", tail(&launcher.log));
        }
        if Instant::now() > deadline {
            bail!(
                "no answer at {health} within 120 s:\n{}",
                tail(&launcher.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = Command::new(&args.conftools_bin)
        .arg("token")
        .arg("--data-dir")
        .arg(launcher.dir.path())
        .args(["--scope", SCOPES, "--subject", "hostile-load"])
        .output()
        .context("conftools token")?;
    if !output.status.success() {
        bail!(
            "conftools token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let token = String::from_utf8(output.stdout)?.trim().to_owned();
    let pid = launcher.child.id();
    Ok(System {
        addrs,
        pid,
        token,
        launcher,
    })
}

/// One answer: its latency and (status, `errors[0].extensions.code`), or what went wrong.
type Answer = (Duration, Result<(u16, Option<String>), String>);

async fn post(http: &reqwest::Client, url: &str, case: &Case) -> Answer {
    let Kind::Post {
        body,
        content_type,
        forwarded_for,
        ..
    } = &case.kind
    else {
        return (Duration::ZERO, Err("not a POST".to_owned()));
    };
    let started = Instant::now();
    let mut request = http
        .post(url)
        .header("content-type", *content_type)
        .body(body.clone());
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", *address);
    }
    let outcome = async {
        let response = request.send().await.map_err(|e| root_cause(&e))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| root_cause(&e))?;
        let code = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
            v.pointer("/errors/0/extensions/code")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Ok((status, code))
    }
    .await;
    (started.elapsed(), outcome)
}

/// The innermost error of a chain (reqwest's own message names only the URL).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    format!("client: {inner}")
}

/// Half a request head, then nothing: the time until the server closes the connection.
async fn slow_connection(addr: SocketAddr, give_up: Duration) -> Answer {
    let started = Instant::now();
    let outcome = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buffer = [0u8; 512];
        let mut answered = Vec::new();
        loop {
            match tokio::time::timeout(give_up, stream.read(&mut buffer)).await {
                Err(_) => return Err(format!("still open after {} s", give_up.as_secs())),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => answered.extend_from_slice(buffer.get(..n).unwrap_or_default()),
            }
        }
        // A status line if the server answered before closing, else 0 for "just closed".
        let status = String::from_utf8_lossy(&answered)
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((status, None))
    }
    .await;
    (started.elapsed(), outcome)
}

struct Row {
    class: &'static str,
    server: Server,
    expected: String,
    ok: usize,
    total: usize,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
    rss: [u64; 3],
    next_ok: bool,
    notes: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Sends mutations one by one until the first refusal: how many the bucket let through.
async fn drain(http: &reqwest::Client, url: &str, case: &Case) -> usize {
    for passed in 0..1_000 {
        let (_, outcome) = post(http, url, case).await;
        if matches!(outcome, Ok((_, Some(ref code))) if code == "RATE_LIMITED") {
            return passed;
        }
    }
    1_000
}

async fn run_case(
    args: &Args,
    system: &System,
    http: &reqwest::Client,
    case: &Case,
    idle_cpu_per_sec: f64,
) -> Row {
    let url = system.url(case.server);
    let pid = system.pid;
    let mut notes = Vec::new();
    if let Kind::Post { drain: true, .. } = case.kind {
        let passed = drain(http, &url, case).await;
        notes.push(format!(
            "{passed} mutations passed before the first refusal"
        ));
    }
    let rss_before = bench::process::kib(pid, "VmRSS");
    bench::process::reset_peak(pid);
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(bench::process::kib(pid, "VmRSS"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak.max(bench::process::kib(pid, "VmHWM"))
        })
    };
    let cpu_before = bench::process::cpu(pid);
    let started = Instant::now();
    let answers: Vec<Answer> = match case.kind {
        Kind::Post { .. } => {
            futures_util::stream::iter(0..args.burst)
                .map(|_| post(http, &url, case))
                .buffer_unordered(args.concurrency.max(1))
                .collect()
                .await
        }
        Kind::SlowHeaders => {
            let give_up = Duration::from_secs(args.header_timeout_secs.max(1) * 3);
            let addr = system.addr(case.server);
            futures_util::future::join_all((0..args.burst).map(|_| slow_connection(addr, give_up)))
                .await
        }
    };
    let cpu = bench::process::cpu(pid).saturating_sub(cpu_before);
    let wall = started.elapsed();
    let background = idle_cpu_per_sec * wall.as_secs_f64();
    if background > 0.001 {
        notes.push(format!(
            "CPU {:.0} ms over {:.1} s, less {:.0} ms idle background",
            cpu.as_secs_f64() * 1e3,
            wall.as_secs_f64(),
            background * 1e3
        ));
    }
    let cpu = (cpu.as_secs_f64() - background).max(0.0);
    sampling.store(false, Ordering::Relaxed);
    let peak = sampler.await.unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;
    let rss_after = bench::process::kib(pid, "VmRSS");

    let expected = (case.status, case.code.map(str::to_owned));
    let mut latencies: Vec<Duration> = answers.iter().map(|(d, _)| *d).collect();
    latencies.sort();
    let mut ok = 0;
    let mut mismatches: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, outcome) in &answers {
        match outcome {
            Ok(answer) if *answer == expected => ok += 1,
            Ok((status, code)) => {
                *mismatches
                    .entry(format!("{status} {}", code.as_deref().unwrap_or("-")))
                    .or_default() += 1
            }
            // The innermost cause is last in `{e:#}`.
            Err(e) => {
                let cause = e.rsplit(": ").next().unwrap_or(e);
                *mismatches
                    .entry(cause.chars().take(120).collect())
                    .or_default() += 1
            }
        }
    }
    for (what, count) in mismatches {
        notes.push(format!("{count} x {what}"));
    }
    let normal = http
        .post(&url)
        .bearer_auth(&system.token)
        .json(&json!({ "query": case.server.normal_query() }))
        .send()
        .await;
    let next_ok = match normal {
        Ok(response) if response.status().is_success() => match response.json::<Value>().await {
            Ok(body) if body.get("errors").is_none() => true,
            Ok(body) => {
                notes.push(format!("normal request: {body}"));
                false
            }
            Err(e) => {
                notes.push(format!("normal request: {e}"));
                false
            }
        },
        Ok(response) => {
            notes.push(format!("normal request: HTTP {}", response.status()));
            false
        }
        Err(e) => {
            notes.push(format!("normal request: {e:#}"));
            false
        }
    };
    Row {
        class: case.class,
        server: case.server,
        expected: match case.kind {
            Kind::SlowHeaders => "closed".to_owned(),
            Kind::Post { .. } => format!("{} {}", case.status, case.code.unwrap_or("(no code)")),
        },
        ok,
        total: answers.len(),
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        cpu_us: cpu * 1e6 / answers.len().max(1) as f64,
        rss: [rss_before, peak, rss_after],
        next_ok,
        notes,
    }
}

fn table(args: &Args, rows: &[Row]) -> String {
    let mut out = String::new();
    let command_line = std::env::args()
        .map(|a| quoted(&a))
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str(&format!("```sh\n{command_line}\n```\n\n"));
    out.push_str(&format!(
        "burst {}, concurrency {}, RSS after = {} s after the burst; CPU per refusal from 10 ms ticks (resolution {:.0} us)\n\n",
        args.burst,
        args.concurrency,
        args.settle_secs,
        10_000.0 / args.burst.max(1) as f64
    ));
    out.push_str("| class | server | status / code | refusals ok/total | p50 ms | p99 ms | CPU per refusal us | RSS before / peak / after MiB | next request |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {}/{} | {:.1} | {:.1} | {:.0} | {:.1} / {:.1} / {:.1} | {} |\n",
            r.class,
            r.server.name(),
            r.expected,
            r.ok,
            r.total,
            r.p50_ms,
            r.p99_ms,
            r.cpu_us,
            mib(r.rss[0]),
            mib(r.rss[1]),
            mib(r.rss[2]),
            if r.next_ok { "ok" } else { "FAILED" }
        ));
    }
    out
}

fn notes(rows: &[Row]) -> String {
    let mut out = String::from("\nNotes:\n\n");
    for r in rows {
        let flagged = [
            (r.cpu_us > 1_000.0).then(|| format!("CPU {:.0} us per refusal (over 1 ms)", r.cpu_us)),
            (r.rss[2] > r.rss[0] + 16 * 1024).then(|| {
                format!(
                    "RSS {:.1} MiB after vs {:.1} before",
                    mib(r.rss[2]),
                    mib(r.rss[0])
                )
            }),
        ];
        let lines: Vec<String> = r
            .notes
            .iter()
            .cloned()
            .chain(flagged.into_iter().flatten())
            .collect();
        if !lines.is_empty() {
            out.push_str(&format!(
                "- {} / {}: {}\n",
                r.class,
                r.server.name(),
                lines.join("; ")
            ));
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let system = start(&args).await?;
    eprintln!(
        "conftools up (pid {}): ticketing {}, crm {}, gateway {}",
        system.pid, system.addrs[0], system.addrs[1], system.addrs[2]
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let idle_before = bench::process::cpu(system.pid);
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_cpu_per_sec = bench::process::cpu(system.pid)
        .saturating_sub(idle_before)
        .as_secs_f64()
        / args.idle_secs.max(1) as f64;
    eprintln!(
        "idle background CPU: {:.2} ms per second",
        idle_cpu_per_sec * 1e3
    );
    let mut rows = Vec::new();
    for case in cases() {
        if let Some(only) = &args.only
            && !case.class.contains(only.as_str())
        {
            continue;
        }
        eprintln!("{} / {}", case.class, case.server.name());
        rows.push(run_case(&args, &system, &http, &case, idle_cpu_per_sec).await);
    }
    let mut system = system;
    if let Ok(Some(status)) = system.launcher.child.try_wait() {
        eprintln!(
            "conftools up exited during the run ({status}):\n{}",
            tail(&system.launcher.log)
        );
    }
    let mut text = table(&args, &rows);
    text.push_str(&format!(
        "\nidle background CPU of the process: {:.2} ms per second (over {} s), subtracted\n",
        idle_cpu_per_sec * 1e3,
        args.idle_secs
    ));
    let notes = notes(&rows);
    println!("{text}{notes}");
    std::fs::write(&args.notes, format!("# Hostile load\n\n{text}{notes}"))
        .with_context(|| format!("cannot write {}", args.notes.display()))?;
    drop(system);
    Ok(())
}
