//! The `crm` binary's configuration: flags, each with an environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Parser};
use platform::telemetry::LogFormat;

use crate::Settings;
use crate::allocation::AllocationSettings;
use crate::api::{SchemaLimits, cost_limits};
use platform::graphql::RequestLimits;
use platform::operation_limits::{DocumentLimits, OperationLimits};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "crm",
    about = "Sponsorship CRM: sponsors, contracts, invoices and their complimentary tickets"
)]
pub struct Config {
    /// Address to serve GraphQL on.
    #[arg(long, env = "CRM_LISTEN", default_value = "127.0.0.1:4002")]
    pub listen: SocketAddr,

    /// sqlite://path (created on first start) or postgres://…; never ticketing's database.
    #[arg(
        long,
        env = "CRM_DATABASE_URL",
        default_value = "sqlite://./data/crm.db"
    )]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(long, env = "CRM_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// HS256 secret shared by the services to verify bearer tokens. Without it an
    /// ephemeral secret is generated and an admin token for it is logged.
    #[arg(long, env = "CONFTOOLS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Accept only bearer tokens whose `aud` names this audience (e.g. `crm`), so a token
    /// minted for another service does not open the CRM. Without it any audience is accepted.
    #[arg(long, env = "CRM_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Ticketing's GraphQL endpoint, e.g. http://127.0.0.1:4001/graphql: where the CRM books
    /// sponsor tickets and checks the conferences an admin registers. Without it the CRM
    /// tracks the sponsors of conferences already registered, registers none and books nothing.
    #[arg(long, env = "CRM_TICKETING_URL")]
    pub ticketing_url: Option<String>,

    /// The CRM's bearer token for ticketing, with the tickets:issue-complimentary scope.
    /// Without it the CRM signs its own short-lived tokens (subject `crm`) with the shared
    /// secret. Keep the subject stable: ticketing scopes external references to it.
    #[arg(long, env = "CRM_TICKETING_TOKEN", hide_env_values = true)]
    pub ticketing_token: Option<String>,

    /// The audience ticketing demands (its `--jwt-audience`, e.g. `ticketing`): the tokens the
    /// CRM signs for itself name it in `aud`. Ignored with `--ticketing-token`.
    #[arg(long, env = "CRM_TICKETING_AUDIENCE")]
    pub ticketing_audience: Option<String>,

    /// Longest wait for one answer from ticketing.
    #[arg(long, env = "CRM_TICKETING_TIMEOUT_SECS", default_value_t = 10)]
    pub ticketing_timeout_secs: u64,

    /// First wait before retrying a booking after a transient failure; doubles each time.
    #[arg(long, env = "CRM_ALLOCATION_RETRY_BASE_MS", default_value_t = 1000)]
    pub allocation_retry_base_ms: u64,

    /// Longest wait between two retries of a booking.
    #[arg(long, env = "CRM_ALLOCATION_RETRY_MAX_SECS", default_value_t = 300)]
    pub allocation_retry_max_secs: u64,

    /// Serve GraphQL introspection (`--introspection false` to turn it off).
    #[arg(long, env = "CRM_INTROSPECTION", default_value_t = true, action = ArgAction::Set)]
    pub introspection: bool,

    /// NATS server with JetStream, e.g. nats://127.0.0.1:4222: the outbox is relayed to the
    /// stream CRM_EVENTS (subjects `crm.events.<Type>`). The CRM also consumes ticketing's stream
    /// (durable consumer `crm-ticketing-events`) to learn of cancelled sponsor purchases. Without it events stay on the
    /// in-process bus.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// Name of the durable JetStream consumer of ticketing's events; every instance of one
    /// CRM uses the same, a second, separate CRM another.
    #[arg(
        long,
        env = "CRM_TICKETING_EVENTS_CONSUMER",
        default_value = crate::ticketing_events::DEFAULT_CONSUMER
    )]
    pub ticketing_events_consumer: String,

    /// How long the service may take to stop after SIGTERM or Ctrl-C: requests still running
    /// then are abandoned (a write commits or rolls back whole) and the process exits.
    #[arg(long, env = "CRM_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// The largest request body read, in bytes; a larger one is refused (413) after reading
    /// no more than this.
    #[arg(long, env = "CRM_MAX_BODY_BYTES", default_value_t = platform::edge::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// The most operations in one batched POST (a JSON array); 1 refuses batches.
    #[arg(long, env = "CRM_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// The most an operation may cost, estimated before it runs: every object a field returns
    /// counts 1 (a mutation's root field 10), scalars nothing, lists multiply by `first`/
    /// `last` or their expected size (10 unless declared). Above it: COST_LIMIT_EXCEEDED.
    /// 0 turns cost analysis off.
    #[arg(long, env = "CRM_MAX_COST", default_value_t = platform::operation_limits::CostLimits::default().max_cost)]
    pub max_cost: u64,

    /// The most lexical tokens in one GraphQL document (TOKEN_LIMIT_EXCEEDED), counted before
    /// it is parsed. 0 turns the limit off.
    #[arg(long, env = "CRM_MAX_TOKENS", default_value_t = DocumentLimits::default().max_tokens)]
    pub max_tokens: usize,

    /// The most directives (`@…`) in one document (DIRECTIVE_LIMIT_EXCEEDED). 0: no limit.
    #[arg(long, env = "CRM_MAX_DIRECTIVES", default_value_t = DocumentLimits::default().max_directives)]
    pub max_directives: usize,

    /// The most aliases in one document (MAX_ALIASES_EXCEEDED). 0: no limit.
    #[arg(long, env = "CRM_MAX_ALIASES", default_value_t = DocumentLimits::default().max_aliases)]
    pub max_aliases: usize,

    /// The most distinct root fields one operation selects (ROOT_FIELD_LIMIT_EXCEEDED).
    /// 0: no limit.
    #[arg(long, env = "CRM_MAX_ROOT_FIELDS", default_value_t = DocumentLimits::default().max_root_fields)]
    pub max_root_fields: usize,

    /// The longest a query or mutation may run, in milliseconds; past it the answer is 504
    /// TIMEOUT (over a WebSocket, a TIMEOUT error). 0: no deadline.
    #[arg(long, env = "CRM_REQUEST_TIMEOUT_MS", default_value_t = platform::graphql::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64)]
    pub request_timeout_ms: u64,

    /// Seconds a client has to send a request's head, counted from when the connection is
    /// ready for one: also how long a kept-alive connection may sit idle.
    #[arg(long, env = "CRM_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request body may take between two chunks.
    #[arg(long, env = "CRM_BODY_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub body_read_timeout_secs: u64,

    /// HTTP connections served at once; more wait in the listen backlog.
    #[arg(long, env = "CRM_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: usize,

    /// How long a WebSocket may stay open without `connection_init`, in milliseconds; then
    /// it is closed with 4408.
    #[arg(long, env = "CRM_CONNECTION_INIT_TIMEOUT_MS", default_value_t = RequestLimits::default().connection_init_timeout.as_millis() as u64)]
    pub connection_init_timeout_ms: u64,

    /// The most operations running at once on one WebSocket; one more gets a
    /// TOO_MANY_OPERATIONS error. 0: no limit.
    #[arg(long, env = "CRM_MAX_OPERATIONS_PER_SOCKET", default_value_t = RequestLimits::default().max_operations_per_socket)]
    pub max_operations_per_socket: usize,

    /// Mutations one client (a token's subject, or an anonymous caller's address) may send
    /// per minute, sustained, on this instance; more is refused with 429 and `Retry-After`.
    /// 0 turns the limit off.
    #[arg(long, env = "CRM_MUTATION_RATE_PER_MINUTE", default_value_t = platform::rate_limit::RateLimits::default().mutations_per_minute)]
    pub mutation_rate_per_minute: u32,

    /// Mutations one client may send at once before the per-minute rate applies.
    #[arg(long, env = "CRM_MUTATION_BURST", default_value_t = platform::rate_limit::RateLimits::default().mutation_burst)]
    pub mutation_burst: u32,

    /// A proxy (address or CIDR range, repeatable) whose `X-Forwarded-For` or `Forwarded`
    /// header names the client: a load balancer, the gateway. Without one, the peer's
    /// address is the client's.
    #[arg(
        long = "trusted-proxy",
        env = "CRM_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = platform::client_address::ProxyRange::parse
    )]
    pub trusted_proxies: Vec<platform::client_address::ProxyRange>,

    /// Log lines as `text` or `json` (one object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Create or migrate the database to this version's schema, then exit (a deploy step
    /// before rolling out new instances; starting a service migrates too).
    #[arg(long)]
    pub migrate_only: bool,

    /// Print the published schema (crm/schema.graphql) and exit.
    #[arg(long)]
    pub print_schema: bool,

    /// Print the authorization policy as a Markdown table (for the docs) and exit.
    #[arg(long)]
    pub print_policy: bool,
}

impl Config {
    pub fn settings(&self) -> Settings {
        let timeout = Duration::from_secs(self.ticketing_timeout_secs.max(1));
        Settings {
            database_url: self.database_url.clone(),
            max_connections: self.database_max_connections,
            ticketing_url: self.ticketing_url.clone().filter(|u| !u.trim().is_empty()),
            ticketing_token: self
                .ticketing_token
                .clone()
                .filter(|t| !t.trim().is_empty()),
            ticketing_audience: self
                .ticketing_audience
                .clone()
                .filter(|a| !a.trim().is_empty()),
            ticketing_timeout: timeout,
            allocation: AllocationSettings {
                retry_base: Duration::from_millis(self.allocation_retry_base_ms.max(1)),
                retry_max: Duration::from_secs(self.allocation_retry_max_secs.max(1)),
                // A claim must outlive the slowest call it covers.
                lease: (timeout * 3).max(Duration::from_secs(30)),
                ..AllocationSettings::default()
            },
            limits: SchemaLimits {
                introspection: self.introspection,
                operations: OperationLimits {
                    document: DocumentLimits {
                        max_tokens: self.max_tokens,
                        max_directives: self.max_directives,
                        max_aliases: self.max_aliases,
                        max_root_fields: self.max_root_fields,
                    },
                    cost: cost_limits(self.max_cost),
                },
                ..SchemaLimits::default()
            },
            nats_url: self.nats_url.clone().filter(|u| !u.trim().is_empty()),
            ticketing_events_consumer: self.ticketing_events_consumer.clone(),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            request_limits: platform::graphql::RequestLimits {
                max_body_bytes: self.max_body_bytes,
                max_batch: self.max_batch.max(1),
                request_timeout: (self.request_timeout_ms > 0)
                    .then(|| Duration::from_millis(self.request_timeout_ms)),
                connection_init_timeout: Duration::from_millis(
                    self.connection_init_timeout_ms.max(1),
                ),
                max_operations_per_socket: self.max_operations_per_socket,
                edge: platform::edge::EdgeLimits {
                    header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
                    body_read_timeout: Duration::from_secs(self.body_read_timeout_secs.max(1)),
                    max_connections: self.max_connections,
                    // Nagle's algorithm held subscription frames back until the peer's
                    // delayed ACK: tens of milliseconds per event.
                    tcp_nodelay: true,
                },
                // Set from `limits.operations` when the service starts.
                document: DocumentLimits::default(),
            },
            rate_limits: platform::rate_limit::RateLimits {
                mutations_per_minute: self.mutation_rate_per_minute,
                mutation_burst: self.mutation_burst,
            },
            trusted_proxies: platform::client_address::TrustedProxies::new(
                self.trusted_proxies.iter().copied(),
            ),
            ..Settings::default()
        }
    }
}
