//! Gateway configuration: one clap struct, every option also settable from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use platform::client_address::ProxyRange;
use platform::rate_limit::RateLimits;

/// `NAME=VALUE` pairs on the command line (`--subgraph products=http://...`).
fn name_value(input: &str) -> Result<(String, String), String> {
    let (name, value) = input
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{input}'"))?;
    if name.is_empty() || value.is_empty() {
        return Err(format!("expected NAME=VALUE, got '{input}'"));
    }
    Ok((name.to_string(), value.to_string()))
}

fn name_millis(input: &str) -> Result<(String, Duration), String> {
    let (name, millis) = name_value(input)?;
    let millis: u64 = millis
        .parse()
        .map_err(|_| format!("expected NAME=MILLISECONDS, got '{input}'"))?;
    Ok((name, Duration::from_millis(millis)))
}

/// `Type.field=N`: the expected size of one list field, for cost analysis.
fn list_size(input: &str) -> Result<((String, String), u64), String> {
    let (field, size) = name_value(input)?;
    let expected = || format!("expected Type.field=SIZE, got '{input}'");
    let (parent, name) = field.split_once('.').ok_or_else(expected)?;
    if parent.is_empty() || name.is_empty() {
        return Err(expected());
    }
    let size = size.parse().map_err(|_| expected())?;
    Ok(((parent.to_string(), name.to_string()), size))
}

#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gateway", about = "Apollo Federation v2 gateway")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,

    /// Supergraph SDL file (join spec), as produced by composition.
    #[arg(long, env = "GATEWAY_SUPERGRAPH")]
    pub supergraph: Option<PathBuf>,

    /// Compose from subgraphs instead of a supergraph file: NAME=URL, repeatable.
    #[arg(long = "subgraph", env = "GATEWAY_SUBGRAPHS", value_delimiter = ',', value_parser = name_value)]
    pub subgraphs: Vec<(String, String)>,

    /// Replace a subgraph URL from the supergraph: NAME=URL, repeatable.
    #[arg(long = "override-subgraph-url", env = "GATEWAY_OVERRIDE_SUBGRAPH_URLS", value_delimiter = ',', value_parser = name_value)]
    pub subgraph_urls: Vec<(String, String)>,

    /// WebSocket URL for a subgraph's subscriptions: NAME=URL, repeatable. By default the
    /// subgraph's HTTP URL with a `ws`/`wss` scheme.
    #[arg(long = "subgraph-ws-url", env = "GATEWAY_SUBGRAPH_WS_URLS", value_delimiter = ',', value_parser = name_value)]
    pub subgraph_ws_urls: Vec<(String, String)>,

    /// Timeout for a subgraph request, in milliseconds.
    #[arg(long, env = "GATEWAY_SUBGRAPH_TIMEOUT_MS", default_value_t = 30_000)]
    pub subgraph_timeout_ms: u64,

    /// Per-subgraph timeout: NAME=MILLISECONDS, repeatable.
    #[arg(long = "subgraph-timeout", env = "GATEWAY_SUBGRAPH_TIMEOUTS", value_delimiter = ',', value_parser = name_millis)]
    pub subgraph_timeouts: Vec<(String, Duration)>,

    /// Client request header to send on to every subgraph request, besides `Authorization`
    /// (always sent), repeatable; names are case-insensitive. It goes with root and entity
    /// fetches, with the entity fetches of every subscription event, and with the upgrade
    /// request and `connection_init` payload of the upstream subscription WebSocket. WebSocket
    /// clients may put it in their `connection_init` payload instead (key in any case), which
    /// wins over the upgrade request's header. Browsers calling cross-origin may send it too
    /// (CORS). Headers about the connection or the body (`Host`, `Content-Length`, ...) are
    /// the gateway's own and are refused at startup.
    #[arg(
        long = "propagate-header",
        env = "GATEWAY_PROPAGATE_HEADERS",
        value_delimiter = ','
    )]
    pub propagate_headers: Vec<String>,

    /// Send identical subgraph requests that are in flight at the same moment (same subgraph,
    /// forwarded headers and body; queries only) once and share the answer.
    #[arg(long, env = "GATEWAY_DEDUPE_SUBGRAPH_REQUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub dedupe_subgraph_requests: bool,

    /// Execute identical client queries that are in flight at the same moment (same body,
    /// forwarded headers and response media type) once and give each client the answer.
    #[arg(long, env = "GATEWAY_DEDUPE_CLIENT_REQUESTS", default_value_t = false, action = clap::ArgAction::Set)]
    pub dedupe_client_requests: bool,

    /// Let identical subscriptions (same operation, variables apart from the cursor, and
    /// forwarded headers) share one upstream subscription, each event enriched and shaped
    /// once for all of them.
    #[arg(long, env = "GATEWAY_DEDUPE_SUBSCRIPTIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub dedupe_subscriptions: bool,

    /// The root field argument a subscription resumes from (an event stream's cursor): it is
    /// left out when comparing subscriptions, and late subscribers resume from it.
    #[arg(
        long,
        env = "GATEWAY_SUBSCRIPTION_CURSOR_ARGUMENT",
        default_value = "after"
    )]
    pub subscription_cursor_argument: String,

    /// The field of each subscription event that holds its cursor.
    #[arg(
        long,
        env = "GATEWAY_SUBSCRIPTION_CURSOR_FIELD",
        default_value = "cursor"
    )]
    pub subscription_cursor_field: String,

    /// Events a subscriber may fall behind the live ones before it is cut off (WebSocket
    /// close 1013, resubscribe from the last cursor); also the recent events each shared
    /// subscription keeps for subscribers that join late.
    #[arg(long, env = "GATEWAY_SUBSCRIPTION_BUFFER", default_value_t = 128)]
    pub subscription_buffer: usize,

    /// Seconds one WebSocket message may take to write before the client counts as stalled
    /// and the connection is closed.
    #[arg(
        long,
        env = "GATEWAY_WEBSOCKET_SEND_TIMEOUT_SECS",
        default_value_t = 15
    )]
    pub websocket_send_timeout_secs: u64,

    /// Seconds a client has to send a request's head, counted from when the connection is
    /// ready for one: also how long a kept-alive connection may sit idle.
    #[arg(long, env = "GATEWAY_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request body may take between two chunks.
    #[arg(long, env = "GATEWAY_BODY_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub body_read_timeout_secs: u64,

    /// HTTP connections served at once; more wait in the listen backlog. Upgraded WebSockets
    /// do not count (see `--max-sockets-per-address`).
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: usize,

    /// Mutations one client (a verified token's subject, or an anonymous caller's address)
    /// may send per minute, sustained, on this instance; more get 429 `RATE_LIMITED` with
    /// `Retry-After`. The services' rule and default. 0 turns the limit off.
    #[arg(long, env = "GATEWAY_MUTATION_RATE_PER_MINUTE", default_value_t = RateLimits::default().mutations_per_minute)]
    pub mutation_rate_per_minute: u32,

    /// Mutations one client may send at once before the per-minute rate applies.
    #[arg(long, env = "GATEWAY_MUTATION_BURST", default_value_t = RateLimits::default().mutation_burst)]
    pub mutation_burst: u32,

    /// A proxy in front of the gateway (address or CIDR range, repeatable or comma-separated)
    /// whose `X-Forwarded-For` or `Forwarded` header names the client for the rate limit.
    /// Without one, the connecting address is the client's.
    #[arg(
        long = "trusted-proxy",
        env = "GATEWAY_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = ProxyRange::parse
    )]
    pub trusted_proxies: Vec<ProxyRange>,

    /// Automatic persisted queries (Apollo's `persistedQuery` extension) remembered, the
    /// oldest forgotten first; 0 turns persisted queries off (`PERSISTED_QUERY_NOT_SUPPORTED`).
    #[arg(long, env = "GATEWAY_PERSISTED_QUERY_CACHE_SIZE", default_value_t = crate::pipeline::DEFAULT_PERSISTED_QUERIES)]
    pub persisted_query_cache_size: usize,

    /// Operations one batch (a JSON array, as Apollo Client's `BatchHttpLink` sends) may hold;
    /// a larger batch runs nothing (400 `BATCH_LIMIT_EXCEEDED`). 1 refuses batches of more
    /// than one operation. Each operation is checked as a single one would be.
    #[arg(long, env = "GATEWAY_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// A manifest of trusted documents (Apollo's persisted query manifest, or an object of
    /// id to document as GraphQL Code Generator's client preset writes it): clients may send
    /// a document's id (`documentId`, or `extensions.persistedQuery.sha256Hash`) instead of
    /// its text.
    #[arg(long, env = "GATEWAY_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<PathBuf>,

    /// Runs only the documents of `--trusted-documents`; anything else is refused with
    /// `PERSISTED_QUERY_NOT_IN_LIST`.
    #[arg(
        long,
        env = "GATEWAY_TRUSTED_DOCUMENTS_ONLY",
        requires = "trusted_documents",
        default_value_t = false
    )]
    pub trusted_documents_only: bool,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "GATEWAY_MAX_BODY_BYTES", default_value_t = platform::edge::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Deepest field nesting accepted in an operation.
    #[arg(long, env = "GATEWAY_MAX_DEPTH", default_value_t = 32)]
    pub max_depth: usize,

    /// Highest estimated cost accepted for an operation: each object, interface or union a
    /// field returns counts 1 (a mutation field 10), multiplied along lists by their expected
    /// size. Above it: `COST_LIMIT_EXCEEDED`, before any subgraph is asked.
    #[arg(long, env = "GATEWAY_MAX_COST", default_value_t = 50_000)]
    pub max_cost: u64,

    /// Expected size of a list field without `first`/`last` or a `--list-size`.
    #[arg(long, env = "GATEWAY_DEFAULT_LIST_SIZE", default_value_t = 10)]
    pub default_list_size: u64,

    /// Expected size of one list field, `Type.field=N` (repeatable).
    #[arg(long = "list-size", env = "GATEWAY_LIST_SIZES", value_delimiter = ',', value_parser = list_size)]
    pub list_sizes: Vec<((String, String), u64)>,

    /// Most lexical tokens accepted in a document; parsing stops there
    /// (`TOKEN_LIMIT_EXCEEDED`).
    #[arg(long, env = "GATEWAY_MAX_TOKENS", default_value_t = 15_000)]
    pub max_tokens: usize,

    /// Most directive uses accepted in a document (`DIRECTIVE_LIMIT_EXCEEDED`).
    #[arg(long, env = "GATEWAY_MAX_DIRECTIVES", default_value_t = 50)]
    pub max_directives: usize,

    /// Most root fields accepted in an operation (`ROOT_FIELD_LIMIT_EXCEEDED`).
    #[arg(long, env = "GATEWAY_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: usize,

    /// Seconds a WebSocket client has to send `connection_init` before it is closed (4408).
    #[arg(
        long,
        env = "GATEWAY_WEBSOCKET_INIT_TIMEOUT_SECS",
        default_value_t = 10
    )]
    pub websocket_init_timeout_secs: u64,

    /// Most aliases accepted in an operation.
    #[arg(long, env = "GATEWAY_MAX_ALIASES", default_value_t = 64)]
    pub max_aliases: usize,

    /// The services' HS256 secret: with it the gateway verifies bearer tokens itself, by the
    /// services' rules, and answers 401 `UNAUTHENTICATED` to an invalid one before doing
    /// anything. Without it tokens go to the subgraphs unverified.
    #[arg(long, env = "CONFTOOLS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// With `--jwt-secret`: accept only tokens whose `aud` names this audience.
    #[arg(long, env = "GATEWAY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Answer introspection queries (`__schema`, `__type`) from the API schema.
    #[arg(long, env = "GATEWAY_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Operations one WebSocket connection may run at once; a `subscribe` beyond it gets an
    /// `error` (`TOO_MANY_OPERATIONS`) and starts nothing.
    #[arg(long, env = "GATEWAY_MAX_OPERATIONS_PER_SOCKET", default_value_t = 50)]
    pub max_operations_per_socket: usize,

    /// WebSocket connections one client address may hold at once; more are refused with 429
    /// `TOO_MANY_CONNECTIONS` before the upgrade. Many viewers behind one NAT (a venue's
    /// Wi-Fi) share an address: size it for the largest such crowd.
    #[arg(long, env = "GATEWAY_MAX_SOCKETS_PER_ADDRESS", default_value_t = 1000)]
    pub max_sockets_per_address: usize,

    /// Number of query plans kept in memory.
    #[arg(long, env = "GATEWAY_PLAN_CACHE_SIZE", default_value_t = 1024)]
    pub plan_cache_size: usize,

    /// Browser origin allowed to call the gateway (CORS), repeatable; `*` allows any origin.
    /// Without any, the gateway sends no CORS headers and browsers keep to same-origin.
    #[arg(
        long = "cors-allow-origin",
        env = "GATEWAY_CORS_ALLOW_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,

    /// Let browsers send cookies and `Authorization` cross-origin
    /// (`Access-Control-Allow-Credentials`). Needs explicit origins, not `*`.
    #[arg(long, env = "GATEWAY_CORS_ALLOW_CREDENTIALS", default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub cors_allow_credentials: bool,

    /// Request header browsers may send cross-origin besides `Authorization`, `Content-Type`
    /// and `Accept`, repeatable.
    #[arg(
        long = "cors-allow-header",
        env = "GATEWAY_CORS_ALLOW_HEADERS",
        value_delimiter = ','
    )]
    pub cors_allow_headers: Vec<String>,

    /// How long browsers may cache a preflight answer, in seconds.
    #[arg(long, env = "GATEWAY_CORS_MAX_AGE_SECS", default_value_t = 600)]
    pub cors_max_age_secs: u64,

    /// A folder of static files (a built frontend) served at `/`; paths that name no file get
    /// its `index.html`, so a single-page app's own routes load too. `/graphql`, `/health`,
    /// `/ready` and `/metrics` stay the gateway's.
    #[arg(long, env = "GATEWAY_WEB_DIR")]
    pub web_dir: Option<PathBuf>,

    /// How long the gateway may take to stop after SIGTERM or Ctrl-C: `/ready` turns 503 at
    /// once, requests in flight get this long to finish, then the process exits regardless.
    #[arg(long, env = "GATEWAY_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,
}

impl Config {
    /// A configuration with defaults, for embedding and tests.
    pub fn with_supergraph(path: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        let mut config = Config::parse_from(["gateway"]);
        config.supergraph = Some(path.into());
        config
    }
}
