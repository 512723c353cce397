//! The gateway under load, side by side with the subgraph it fronts, in one run.
//!
//! The release `ticketing`, `crm` and `gateway` binaries run as their own processes, the
//! gateway composing the two services as `conftools up` does. Three workloads:
//!
//! 1. *direct*: a ticketing-only query sent straight to ticketing;
//! 2. *via gateway*: the same query through the gateway (one subgraph fetch, so the
//!    difference from 1 is the gateway's overhead);
//! 3. *cross-subgraph*: purchases with their sponsors, through the gateway (a ticketing
//!    fetch, then one batched `_entities` fetch to the CRM).
//!
//! Each workload runs once with a single connection (latency without queueing) and once
//! with `--connections` (throughput). For every process it reports CPU time per request,
//! from `/proc/<pid>/stat`, and peak resident memory (`VmHWM`, reset before each run).
//!
//! Usage: `cargo build --release -p ticketing -p crm -p gateway -p bench &&
//! ./target/release/gateway-load --help`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of unmeasured load before each run (warms caches and connection pools).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Concurrent connections in the throughput runs.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Sponsors onboarded, hence ticket purchases the queries return (one per sponsor).
    #[arg(long, default_value_t = 10)]
    purchases: usize,
    /// CPUs the servers are pinned to (`taskset -c` list), e.g. `1`; the load generator is
    /// pinned by starting it under `taskset` itself. Empty: no pinning.
    #[arg(long, default_value = "")]
    server_cpus: String,
    /// Let the gateway share identical in-flight subgraph requests (its default). Off here
    /// unless asked, so that every client request reaches the subgraph, as it does direct.
    #[arg(long)]
    share_requests: bool,
    /// Folder holding the release `ticketing`, `crm` and `gateway` binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
}

const SECRET: &str = "bench-secret";

/// A service started as its own process; killed on drop.
struct Process {
    name: &'static str,
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU time the process has used so far.
    fn cpu_time(&self) -> Duration {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())) else {
            return Duration::ZERO;
        };
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th
        // fields of the whole line, in clock ticks (100 per second on Linux).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return Duration::ZERO;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
            .sum();
        Duration::from_millis(ticks * 10)
    }

    /// Peak resident set size since the last `reset_peak_memory`, in MiB.
    fn peak_memory_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    fn reset_peak_memory(&self) {
        // Writing 5 to clear_refs resets VmHWM to the current RSS.
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(
    name: &'static str,
    bin: &Path,
    args: &[String],
    envs: &[(&str, String)],
    server_cpus: &str,
) -> anyhow::Result<Child> {
    let mut command = if server_cpus.is_empty() {
        Command::new(bin)
    } else {
        let mut taskset = Command::new("taskset");
        taskset.args(["-c", server_cpus]).arg(bin);
        taskset
    };
    command
        .args(args)
        .env("CONFTOOLS_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // `taskset` execs the binary, so the child's pid is the service's own.
    command
        .spawn()
        .with_context(|| format!("cannot start {name} ({})", bin.display()))
}

async fn wait_healthy(name: &str, port: u16) -> anyhow::Result<()> {
    let health = format!("http://127.0.0.1:{port}/health");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(&health).await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not come up on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_service(
    name: &'static str,
    bin: &Path,
    extra: &[String],
    server_cpus: &str,
) -> anyhow::Result<(Process, String)> {
    let port = free_port()?;
    let dir = tempfile::tempdir()?;
    let mut args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--database-url".to_owned(),
        format!(
            "sqlite://{}",
            dir.path().join(format!("{name}.db")).display()
        ),
    ];
    args.extend_from_slice(extra);
    let child = spawn(name, bin, &args, &[], server_cpus)?;
    let process = Process {
        name,
        child,
        _dir: Some(dir),
    };
    wait_healthy(name, port).await?;
    Ok((process, format!("http://127.0.0.1:{port}/graphql")))
}

fn token(subject: &str, scopes: &[&str]) -> anyhow::Result<String> {
    Ok(platform::JwtKeys::from_secret(SECRET.as_bytes()).mint(
        subject,
        scopes,
        Duration::from_secs(6 * 3600),
    )?)
}

async fn ok(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body: Value = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    if body.get("errors").is_some() {
        bail!("unexpected errors: {body}");
    }
    Ok(body["data"].clone())
}

fn id(data: &Value, field: &str) -> anyhow::Result<String> {
    data[field]["id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {field}.id in {data}"))
}

/// A conference in ticketing and `sponsors` sponsors onboarded in the CRM (contract signed,
/// invoice paid): the CRM then books each sponsor's ticket through ticketing, as in
/// production. Returns once every booking is visible in ticketing.
async fn seed(
    client: &reqwest::Client,
    ticketing: &str,
    crm: &str,
    admin: &str,
    sponsors: usize,
) -> anyhow::Result<()> {
    let conference = id(
        &ok(client, ticketing, admin,
            "mutation { createConference(input: { name: \"Bench\", currency: \"EUR\", startsOn: \"2027-01-01\", endsOn: \"2027-01-03\" }) { id } }",
            json!({})).await?,
        "createConference",
    )?;
    let ticket_type = id(
        &ok(client, ticketing, admin,
            "mutation($c: ID!) { createTicketType(input: { conferenceId: $c, name: \"Sponsor pass\", price: { amount: 49900, currency: \"EUR\" }, capacity: 100000 }) { id } }",
            json!({ "c": conference })).await?,
        "createTicketType",
    )?;
    ok(client, crm, admin,
        "mutation($input: ConfigureSponsorTicketsInput!) { configureSponsorTickets(input: $input) { conferenceId } }",
        json!({ "input": { "conferenceId": conference, "ticketTypeId": ticket_type } })).await?;
    for n in 0..sponsors {
        let sponsor = id(
            &ok(client, crm, admin,
                "mutation($input: CreateSponsorInput!) { createSponsor(input: $input) { id } }",
                json!({ "input": { "name": format!("Sponsor {n}"), "level": "Bronze", "conferenceId": conference,
                    "contactName": format!("Contact {n}"), "contactEmail": format!("sponsor{n}@example.org") } })).await?,
            "createSponsor",
        )?;
        for step in [
            "mutation($s: ID!) { sendContract(sponsorId: $s) { id } }",
            "mutation($s: ID!) { signContract(sponsorId: $s) { id } }",
        ] {
            ok(client, crm, admin, step, json!({ "s": sponsor })).await?;
        }
        let invoice = id(
            &ok(client, crm, admin,
                "mutation($input: IssueInvoiceInput!) { issueInvoice(input: $input) { id } }",
                json!({ "input": { "sponsorId": sponsor, "amount": { "amount": 500000, "currency": "EUR" }, "dueOn": "2027-03-01" } })).await?,
            "issueInvoice",
        )?;
        ok(
            client,
            crm,
            admin,
            "mutation($id: ID!) { markInvoicePaid(id: $id) { id } }",
            json!({ "id": invoice }),
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let data = ok(
            client,
            ticketing,
            admin,
            "query($first: Int) { ticketPurchases(first: $first) { nodes { id } } }",
            json!({ "first": sponsors }),
        )
        .await?;
        let booked = data["ticketPurchases"]["nodes"]
            .as_array()
            .map_or(0, Vec::len);
        if booked >= sponsors {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the CRM booked {booked} of {sponsors} sponsors' tickets within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Served by ticketing alone.
const PURCHASES: &str = "query Purchases($first: Int) { ticketPurchases(first: $first) { nodes { id status externalReference ticketCount total { amount currency } purchaser { name email } tickets { id } } } }";

/// Ticketing's purchases, each with its sponsor from the CRM (`@requires(externalReference)`).
const PURCHASES_WITH_SPONSORS: &str = "query PurchasesWithSponsors($first: Int) { ticketPurchases(first: $first) { nodes { id status ticketCount total { amount currency } tickets { id } sponsor { id name contactName level { name } } } } }";

struct Workload {
    name: &'static str,
    url: String,
    body: bytes::Bytes,
    /// Checked in every response: proves the run measured real answers, not errors.
    expect: &'static str,
}

#[derive(Default)]
struct Measured {
    requests: u64,
    failed: u64,
    seconds: f64,
    latencies: Vec<Duration>,
    /// (process, CPU time, peak MiB) per server process.
    processes: Vec<(&'static str, Duration, f64)>,
}

impl Measured {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn cpu_per_request_ms(&self, name: &str) -> f64 {
        self.processes
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0.0, |(_, cpu, _)| {
                cpu.as_secs_f64() * 1000.0 / self.requests.max(1) as f64
            })
    }

    fn peak_mib(&self, name: &str) -> f64 {
        self.processes
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0.0, |(_, _, mib)| *mib)
    }
}

/// `connections` closed loops posting the workload's body until `duration` has passed.
async fn drive(
    workload: &Workload,
    token: &str,
    connections: usize,
    duration: Duration,
) -> (u64, u64, Vec<Duration>) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + duration;
    let authorization = format!("Bearer {token}");
    let workers = (0..connections).map(|_| {
        let client = client.clone();
        let url = workload.url.clone();
        let body = workload.body.clone();
        let expect = workload.expect;
        let authorization = authorization.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("authorization", &authorization)
                    .body(body.clone())
                    .send()
                    .await;
                let answered = match response {
                    Ok(response) if response.status().is_success() => response.bytes().await.ok(),
                    _ => None,
                };
                // Borrowed, not copied: the load generator shares the machine with the servers.
                let answered = answered.unwrap_or_default();
                let answered_text = String::from_utf8_lossy(&answered);
                let good = !answered_text.contains("\"errors\"") && answered_text.contains(expect);
                if !good && failed == 0 {
                    eprintln!("first failed answer from {url}: {answered_text:.300}");
                }
                if good {
                    ok += 1;
                    latencies.push(started.elapsed());
                } else {
                    failed += 1;
                }
            }
            (ok, failed, latencies)
        })
    });
    let mut total = (0, 0, Vec::new());
    for (ok, failed, latencies) in futures_util::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
    {
        total.0 += ok;
        total.1 += failed;
        total.2.extend(latencies);
    }
    total
}

async fn measure(
    workload: &Workload,
    token: &str,
    connections: usize,
    args: &Args,
    processes: &[&Process],
) -> Measured {
    drive(
        workload,
        token,
        connections,
        Duration::from_secs(args.warmup),
    )
    .await;
    for process in processes {
        process.reset_peak_memory();
    }
    let cpu_before: Vec<Duration> = processes.iter().map(|p| p.cpu_time()).collect();
    let started = Instant::now();
    let (requests, failed, mut latencies) = drive(
        workload,
        token,
        connections,
        Duration::from_secs(args.duration),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let processes = processes
        .iter()
        .zip(cpu_before)
        .map(|(p, before)| {
            (
                p.name,
                p.cpu_time().saturating_sub(before),
                p.peak_memory_mib(),
            )
        })
        .collect();
    Measured {
        requests,
        failed,
        seconds,
        latencies,
        processes,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = |name: &str| {
        let path = args.bin_dir.join(name);
        if path.exists() {
            Ok(path)
        } else {
            bail!(
                "{} is missing: cargo build --release -p ticketing -p crm -p gateway",
                path.display()
            )
        }
    };
    let admin = token(
        "bench-admin",
        &[
            "tickets:read",
            "tickets:admin",
            "crm:read",
            "crm:write",
            "crm:admin",
        ],
    )?;
    let crm_to_ticketing = token("crm", &["tickets:read", "tickets:issue-complimentary"])?;

    let (ticketing, ticketing_url) =
        start_service("ticketing", &bin("ticketing")?, &[], &args.server_cpus).await?;
    let (crm, crm_url) = start_service(
        "crm",
        &bin("crm")?,
        &[
            "--ticketing-url".to_owned(),
            ticketing_url.clone(),
            "--ticketing-token".to_owned(),
            crm_to_ticketing,
        ],
        &args.server_cpus,
    )
    .await?;
    let gateway_port = free_port()?;
    let gateway_child = spawn(
        "gateway",
        &bin("gateway")?,
        &[
            "--listen".to_owned(),
            format!("127.0.0.1:{gateway_port}"),
            "--subgraph".to_owned(),
            format!("ticketing={ticketing_url}"),
            "--subgraph".to_owned(),
            format!("crm={crm_url}"),
            "--dedupe-subgraph-requests".to_owned(),
            args.share_requests.to_string(),
        ],
        &[],
        &args.server_cpus,
    )?;
    let gateway = Process {
        name: "gateway",
        child: gateway_child,
        _dir: None,
    };
    wait_healthy("gateway", gateway_port).await?;
    let gateway_url = format!("http://127.0.0.1:{gateway_port}/graphql");

    let client = reqwest::Client::new();
    seed(&client, &ticketing_url, &crm_url, &admin, args.purchases).await?;

    let body = |query: &str| -> anyhow::Result<bytes::Bytes> {
        Ok(serde_json::to_vec(
            &json!({ "query": query, "variables": { "first": args.purchases } }),
        )?
        .into())
    };
    let workloads = [
        Workload {
            name: "ticketing direct",
            url: ticketing_url.clone(),
            body: body(PURCHASES)?,
            expect: "\"tickets\"",
        },
        Workload {
            name: "ticketing via gateway",
            url: gateway_url.clone(),
            body: body(PURCHASES)?,
            expect: "\"tickets\"",
        },
        Workload {
            name: "cross-subgraph via gateway",
            url: gateway_url.clone(),
            body: body(PURCHASES_WITH_SPONSORS)?,
            expect: "\"Sponsor ",
        },
    ];
    let processes = [&ticketing, &crm, &gateway];

    println!(
        "\n{} purchases per response, {} s per run after {} s warm-up\n",
        args.purchases, args.duration, args.warmup
    );
    println!(
        "| workload | connections | req/s | p50 ms | p99 ms | failed | gateway CPU ms/req | ticketing CPU ms/req | crm CPU ms/req | gateway peak MiB | ticketing peak MiB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut single = Vec::new();
    for connections in [1, args.connections] {
        for workload in &workloads {
            let m = measure(workload, &admin, connections, &args, &processes).await;
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} |",
                workload.name,
                connections,
                m.throughput(),
                m.percentile_ms(0.5),
                m.percentile_ms(0.99),
                m.failed,
                m.cpu_per_request_ms("gateway"),
                m.cpu_per_request_ms("ticketing"),
                m.cpu_per_request_ms("crm"),
                m.peak_mib("gateway"),
                m.peak_mib("ticketing"),
            );
            if connections == 1 {
                single.push(m.percentile_ms(0.5));
            }
        }
    }
    if let [direct, via_gateway, _] = single[..] {
        println!(
            "\nGateway overhead, single-subgraph query, one connection: p50 {:.2} ms -> {:.2} ms (+{:.0} %)",
            direct,
            via_gateway,
            (via_gateway / direct - 1.0) * 100.0
        );
    }
    Ok(())
}
