//! `conftools`: runs Conference Tools in one process (`up`), mints tokens for scripts
//! (`token`) and writes the gateway's public schema to `schema.graphql` (`compose`). Each
//! service also has its own binary for running alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use conftools::compose::{self, COMPOSE_COMMAND};
use conftools::{demo, web};
use platform::{InProcessBus, JwtKeys};
use rand::RngCore;

#[derive(Parser)]
#[command(
    name = "conftools",
    about = "Conference Tools: ticketing, sponsorship CRM and gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every service in this process, on SQLite files under the data directory.
    Up(UpArgs),
    /// Print a bearer token signed with the data directory's secret.
    Token(TokenArgs),
    /// Write the gateway's public API schema (ticketing and the CRM composed) to a file.
    Compose(ComposeArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// Where the databases and the JWT secret live.
    #[arg(long, env = "CONFTOOLS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Address of the ticketing service.
    #[arg(
        long,
        env = "CONFTOOLS_TICKETING_ADDR",
        default_value = "127.0.0.1:4001"
    )]
    ticketing_addr: SocketAddr,
    /// Address of the sponsorship CRM.
    #[arg(long, env = "CONFTOOLS_CRM_ADDR", default_value = "127.0.0.1:4002")]
    crm_addr: SocketAddr,
    /// Address of the gateway: the one GraphQL API over both, for frontends.
    #[arg(long, env = "CONFTOOLS_GATEWAY_ADDR", default_value = "127.0.0.1:4000")]
    gateway_addr: SocketAddr,
    /// How long an unpaid purchase holds its seats.
    #[arg(long, env = "TICKETING_RESERVATION_TTL_SECS", default_value_t = 1800)]
    reservation_ttl_secs: u64,
    /// Seed a demo conference into an empty system (ticket types, purchases, sponsors at every
    /// step of the pipeline) and keep buyers arriving while it runs.
    #[arg(long)]
    demo: bool,
    /// A built dashboard to serve at `/` as it is. Without it, `web/` of this source tree is
    /// built with npm into `web/dist` when that is missing or older than its sources.
    #[arg(long, env = "CONFTOOLS_WEB_DIR", conflicts_with = "no_web")]
    web_dir: Option<PathBuf>,
    /// Serve the API only: no dashboard, and no npm build.
    #[arg(long)]
    no_web: bool,
    /// Have the gateway run only trusted documents: the dashboard's operations (the manifest
    /// its build writes beside the page, `trusted-documents.json`) and the demo's. Anything
    /// else is refused with `PERSISTED_QUERY_NOT_IN_LIST`.
    #[arg(long, env = "CONFTOOLS_TRUSTED_DOCUMENTS_ONLY")]
    trusted_documents_only: bool,
    /// How long stopping may take after SIGTERM or Ctrl-C: requests still running then are
    /// abandoned (a write commits or rolls back whole) and the process exits.
    #[arg(long, env = "CONFTOOLS_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    shutdown_grace_secs: u64,
}

#[derive(clap::Args)]
struct TokenArgs {
    #[arg(long, env = "CONFTOOLS_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// Space-separated scopes, e.g. "tickets:admin events:read".
    #[arg(long)]
    scope: String,
    /// The token's subject: the client it names.
    #[arg(long, default_value = "script")]
    subject: String,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 24)]
    ttl_hours: u64,
}

#[derive(clap::Args)]
struct ComposeArgs {
    /// Where to write the schema.
    #[arg(long, default_value = compose::SCHEMA_FILE)]
    output: PathBuf,
    /// Write nothing; fail if the file is missing or differs from the composed schema.
    #[arg(long)]
    check: bool,
}

/// A secret `up` keeps in its data directory, generated on first start; an environment
/// variable overrides it.
struct KeptSecret {
    file: &'static str,
    env: &'static str,
}

/// The secret every service verifies tokens with.
const JWT_SECRET: KeptSecret = KeptSecret {
    file: "jwt-secret",
    env: "CONFTOOLS_JWT_SECRET",
};

/// The key ticketing derives anonymous buyers' purchase access tokens from: kept across
/// restarts, or every token handed out so far would stop opening its purchase.
const PURCHASE_TOKEN_SECRET: KeptSecret = KeptSecret {
    file: "purchase-token-secret",
    env: "TICKETING_PURCHASE_TOKEN_SECRET",
};

fn load_or_create_secret(data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    JWT_SECRET.load_or_create(data_dir, create)
}

impl KeptSecret {
    fn load_or_create(&self, data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
        if let Ok(secret) = std::env::var(self.env)
            && !secret.is_empty()
        {
            return Ok(secret.into_bytes());
        }
        let path = data_dir.join(self.file);
        match std::fs::read_to_string(&path) {
            Ok(secret) if !secret.trim().is_empty() => {
                return Ok(secret.trim().as_bytes().to_vec());
            }
            Ok(_) => bail!(
                "{} is empty; delete it to have a new secret made",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no secret at {}: run `conftools up --data-dir {}` once first",
                path.display(),
                data_dir.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = hex::encode(bytes);
        write_private(&path, &secret)?;
        Ok(secret.into_bytes())
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

fn sqlite_url(data_dir: &Path, file: &str) -> String {
    format!("sqlite://{}", data_dir.join(file).display())
}

/// Where another component of this process reaches a listener: one on all interfaces
/// (`0.0.0.0`, `::`) is reached on loopback.
fn local_origin(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn graphql_url(addr: SocketAddr) -> String {
    format!("{}/graphql", local_origin(addr))
}

/// The built dashboard to serve, building it first when needed; `None` serves the API only.
async fn dashboard(args: &UpArgs) -> anyhow::Result<Option<PathBuf>> {
    if args.no_web {
        return Ok(None);
    }
    if let Some(dir) = &args.web_dir {
        if !dir.join("index.html").is_file() {
            bail!("--web-dir {}: there is no index.html in it", dir.display());
        }
        return Ok(Some(dir.clone()));
    }
    let sources = web::source_dir();
    if !sources.join("package.json").is_file() {
        // An installed binary away from its source tree: nothing to build.
        tracing::warn!(
            "no dashboard sources at {}; serving the API only (--web-dir serves a built one)",
            sources.display()
        );
        return Ok(None);
    }
    // npm runs for a while on the first start; keep it off the runtime's workers.
    let built = tokio::task::spawn_blocking(move || web::ensure_built(&sources))
        .await
        .context("the dashboard build task failed")??;
    Ok(Some(built))
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.trusted_documents_only && args.no_web {
        bail!(NO_MANIFEST);
    }
    let web_dir = dashboard(&args).await?;
    let secret = load_or_create_secret(&args.data_dir, true)?;
    let trusted_documents = match (&web_dir, args.trusted_documents_only) {
        (_, false) => None,
        (None, true) => bail!(NO_MANIFEST),
        (Some(web_dir), true) => Some(trusted_documents(web_dir, &args.data_dir)?),
    };
    let keys = Arc::new(JwtKeys::from_secret(&secret));
    let bus = Arc::new(InProcessBus::default());

    let ticketing_listener = tokio::net::TcpListener::bind(args.ticketing_addr)
        .await
        .with_context(|| format!("cannot listen on {} for ticketing", args.ticketing_addr))?;
    let ticketing_addr = ticketing_listener.local_addr()?;
    let ticketing = ticketing::Ticketing::start(
        ticketing::Settings {
            database_url: sqlite_url(&args.data_dir, "ticketing.db"),
            reservation_ttl: Duration::from_secs(args.reservation_ttl_secs.max(1)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            purchase_token_secret: Some(
                PURCHASE_TOKEN_SECRET.load_or_create(&args.data_dir, true)?,
            ),
            trusted_proxies: gateway_as_proxy()?,
            ..ticketing::Settings::default()
        },
        Arc::clone(&keys),
        bus.clone(),
    )
    .await
    .context("ticketing could not start")?;

    let crm_listener = tokio::net::TcpListener::bind(args.crm_addr)
        .await
        .with_context(|| format!("cannot listen on {} for the CRM", args.crm_addr))?;
    let crm_addr = crm_listener.local_addr()?;
    // The CRM talks to ticketing over HTTP like any other client. Given no token, it mints its
    // own short-lived `tickets:issue-complimentary` tokens with the shared secret, so a
    // long-running system never holds an expired one.
    let crm = crm::Crm::start(
        crm::Settings {
            database_url: sqlite_url(&args.data_dir, "crm.db"),
            ticketing_url: Some(graphql_url(ticketing_addr)),
            shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            trusted_proxies: gateway_as_proxy()?,
            ..crm::Settings::default()
        },
        Arc::clone(&keys),
        bus,
    )
    .await
    .context("the CRM could not start")?;

    let admin_token = keys.mint(
        "admin",
        &[
            "tickets:admin",
            "events:read",
            "crm:admin",
            "crm:write",
            "crm:read",
        ],
        Duration::from_secs(24 * 3600),
    )?;

    let gateway_listener = tokio::net::TcpListener::bind(args.gateway_addr)
        .await
        .with_context(|| format!("cannot listen on {} for the gateway", args.gateway_addr))?;
    let gateway_addr = gateway_listener.local_addr()?;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticketing_task = tokio::spawn(ticketing.serve(
        ticketing_listener,
        platform::server::until_shutdown(stopped.clone()),
    ));
    let crm_task = tokio::spawn(crm.serve(
        crm_listener,
        platform::server::until_shutdown(stopped.clone()),
    ));

    // The gateway composes from the services' `_service { sdl }`, so it starts once both are
    // serving. It runs exactly as the standalone binary does (`gateway::run`); nothing is
    // printed until it serves, so a composition error stops `up` with that error instead of
    // leaving a printed URL that answers nothing.
    let mut gateway_config = gateway_config(
        gateway_addr,
        vec![
            (compose::TICKETING.to_owned(), graphql_url(ticketing_addr)),
            (compose::CRM.to_owned(), graphql_url(crm_addr)),
        ],
    )?;
    gateway_config.web_dir = web_dir.clone();
    if let Some(manifest) = trusted_documents {
        gateway_config.trusted_documents = Some(manifest);
        gateway_config.trusted_documents_only = true;
    }
    gateway_config.shutdown_grace_secs = args.shutdown_grace_secs;
    // The gateway checks tokens by the services' rules, so what it answers itself
    // (introspection, validation errors) is never served to a forged or expired token.
    gateway_config.jwt_secret =
        Some(String::from_utf8(secret.clone()).context("the JWT secret must be text")?);
    // The gateway gets worker threads of its own, as it would a process of its own: fanning an
    // event out to thousands of live viewers wakes thousands of tasks at once, and on a shared
    // runtime a purchase arriving then would queue behind all of them. With separate
    // runtimes the operating system shares the cores between the two.
    let gateway_runtime = gateway_runtime()?;
    let gateway_listener = gateway_listener.into_std()?;
    let gateway_stopped = platform::server::until_shutdown(stopped);
    let mut gateway_task = gateway_runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(gateway_listener)?;
        gateway::run(listener, gateway_config, gateway_stopped).await
    });
    tokio::select! {
        ended = &mut gateway_task => return Err(gateway_ended(ended)),
        () = serving(gateway_addr) => {}
    }

    // The demo goes in through the gateway, as any organiser's script would, and before the
    // URLs are printed: the dashboard then shows a live conference the moment it opens.
    let mut walk_ins = None;
    if args.demo {
        let gateway = demo::Gateway::new(graphql_url(gateway_addr), admin_token.clone());
        eprintln!("seeding the demo conference…");
        match demo::seed(&gateway).await {
            Ok(seeded) => {
                if !seeded.created {
                    eprintln!("the demo conference is already there; seeding skipped");
                }
                walk_ins = Some(tokio::spawn(demo::walk_ins(gateway, seeded)));
            }
            Err(error @ demo::DemoError::NotEmpty) => tracing::warn!("{error}"),
            Err(error) => {
                let _ = stop.send(true);
                return Err(anyhow::Error::new(error).context("seeding the demo failed"));
            }
        }
    }

    println!("Conference Tools is running (Ctrl-C to stop)");
    println!("  gateway     http://{gateway_addr}/graphql");
    if web_dir.is_some() {
        // The token rides in the URL once: the page moves it to its storage and out of the
        // address bar.
        println!(
            "  dashboard   {}/?token={admin_token}",
            local_origin(gateway_addr)
        );
    }
    println!("  ticketing   http://{ticketing_addr}/graphql");
    println!("  crm         http://{crm_addr}/graphql");
    println!("  data        {}", args.data_dir.display());
    println!("  admin token (24 h):");
    println!("{admin_token}");

    // The gateway is what frontends use: if it stops on its own, so does everything.
    tokio::select! {
        () = platform::signal::termination_signal() => {}
        ended = &mut gateway_task => {
            let _ = stop.send(true);
            return Err(gateway_ended(ended));
        }
    }
    let _ = stop.send(true);
    if let Some(walk_ins) = walk_ins {
        walk_ins.abort();
    }
    // Each service stops within the grace period on its own; this bounds the whole, so that
    // SIGTERM ends the process whatever is stuck.
    let drained = tokio::time::timeout(Duration::from_secs(args.shutdown_grace_secs), async {
        let (ticketing, crm, gateway) = tokio::join!(ticketing_task, crm_task, gateway_task);
        ticketing??;
        crm??;
        gateway??;
        Ok::<_, anyhow::Error>(())
    })
    .await;
    match drained {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!("stopped with connections still open");
            Ok(())
        }
    }
}

const NO_MANIFEST: &str = "--trusted-documents-only enforces the trusted documents the \
     dashboard's build writes beside it, and there is no dashboard to take them from: drop \
     --no-web, or pass --web-dir with a built dashboard";

/// The manifest the gateway enforces under `--trusted-documents-only`: the dashboard's, with the
/// demo's operations added (the demo goes through the gateway too), written into the data
/// directory afresh at each start so it always matches the dashboard being served.
fn trusted_documents(web_dir: &Path, data_dir: &Path) -> anyhow::Result<PathBuf> {
    use conftools::trusted_documents::{MANIFEST_FILE, write_with};
    // With the JWT secret from the environment nothing else has created it yet.
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let manifest = data_dir.join(MANIFEST_FILE);
    let held = write_with(web_dir, demo::DOCUMENTS, &manifest)?;
    tracing::info!(
        manifest = %manifest.display(),
        "the gateway runs only the {held} trusted documents of the dashboard and the demo"
    );
    Ok(manifest)
}

/// Resolves once `/health` answers at `addr`.
async fn serving(addr: SocketAddr) {
    let client = reqwest::Client::new();
    let health = format!("{}/health", local_origin(addr));
    loop {
        let answered = client
            .get(&health)
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if answered {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Why the gateway task ended before `up` asked it to.
/// The services believe the `X-Forwarded-For` of the in-process gateway, which connects from
/// loopback: their per-client limits (mutation rate, unpaid seats) then count each dashboard
/// visitor, not the gateway. Anything else on this machine is trusted alike, which on a
/// machine of one's own it is anyway.
fn gateway_as_proxy() -> anyhow::Result<platform::client_address::TrustedProxies> {
    Ok(platform::client_address::TrustedProxies::new(loopback()?))
}

fn loopback() -> anyhow::Result<Vec<platform::client_address::ProxyRange>> {
    ["127.0.0.1", "::1"]
        .into_iter()
        .map(platform::client_address::ProxyRange::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)
}

/// A runtime for the gateway alone, with as many workers as there are cores. It lives as
/// long as the process: it is leaked because a runtime cannot be dropped from inside another.
fn gateway_runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("gateway")
        .enable_all()
        .build()
        .context("cannot start the gateway's runtime")?;
    Ok(Box::leak(Box::new(runtime)))
}

fn gateway_ended(
    ended: Result<Result<(), gateway::GatewayError>, tokio::task::JoinError>,
) -> anyhow::Error {
    match ended {
        Ok(Ok(())) => anyhow::anyhow!("the gateway stopped unexpectedly"),
        Ok(Err(error)) => anyhow::Error::new(error).context("the gateway stopped"),
        Err(error) => anyhow::Error::new(error).context("the gateway task failed"),
    }
}

/// The gateway's settings for `up`: tuning (timeouts, limits, introspection) from the same
/// `GATEWAY_*` variables the standalone gateway reads; where it listens and what it composes
/// from are the launcher's, so a stray `GATEWAY_SUPERGRAPH` cannot point it elsewhere.
fn gateway_config(
    listen: SocketAddr,
    subgraphs: Vec<(String, String)>,
) -> anyhow::Result<gateway::Config> {
    let mut config = gateway::Config::try_parse_from(["gateway"])
        .context("invalid GATEWAY_* environment variable")?;
    config.listen = listen;
    config.supergraph = None;
    config.subgraphs = subgraphs;
    config.subgraph_urls.clear();
    config.subgraph_ws_urls.clear();
    // As the services trust the gateway: a proxy on this machine in front of `up` (or the
    // demo's walk-ins) names the client, unless GATEWAY_TRUSTED_PROXIES says otherwise.
    if config.trusted_proxies.is_empty() {
        config.trusted_proxies = loopback()?;
    }
    Ok(config)
}

/// `compose`: writes the schema, or with `--check` compares it and fails when stale.
fn compose_schema(args: ComposeArgs) -> anyhow::Result<()> {
    let schema = compose::api_schema().context("composing ticketing and the CRM failed")?;
    let path = &args.output;
    if args.check {
        let current = match std::fs::read_to_string(path) {
            Ok(current) => current,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("{} does not exist: run `{COMPOSE_COMMAND}`", path.display())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        if current != schema {
            bail!(
                "{} is stale: run `{COMPOSE_COMMAND}` and commit the result",
                path.display()
            );
        }
        println!("{} is up to date", path.display());
        return Ok(());
    }
    std::fs::write(path, &schema).with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let secret = load_or_create_secret(&args.data_dir, false)?;
    let keys = JwtKeys::from_secret(&secret);
    let scopes: Vec<&str> = args.scope.split_whitespace().collect();
    if scopes.is_empty() {
        bail!("--scope needs at least one scope");
    }
    let token = keys.mint(
        &args.subject,
        &scopes,
        Duration::from_secs(args.ttl_hours.max(1) * 3600),
    )?;
    println!("{token}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    platform::memory::return_free_memory_to_the_system();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up(args) => up(args).await,
        Command::Token(args) => token(args),
        Command::Compose(args) => compose_schema(args),
    }
}
