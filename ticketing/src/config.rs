//! The `ticketing` binary's configuration: flags, each with an environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Parser};
use platform::telemetry::LogFormat;

use crate::Settings;
use crate::api::{SchemaLimits, cost_limits};
use crate::domain::PurchaseLimits;
use platform::graphql::RequestLimits;
use platform::operation_limits::{DocumentLimits, OperationLimits};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ticketing",
    about = "Ticketing: the open host service for ticket purchases"
)]
pub struct Config {
    /// Address to serve GraphQL on.
    #[arg(long, env = "TICKETING_LISTEN", default_value = "127.0.0.1:4001")]
    pub listen: SocketAddr,

    /// sqlite://path (created on first start) or postgres://…
    #[arg(
        long,
        env = "TICKETING_DATABASE_URL",
        default_value = "sqlite://./data/ticketing.db"
    )]
    pub database_url: String,

    /// Largest number of pooled database connections.
    #[arg(long, env = "TICKETING_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,

    /// HS256 secret shared by the services to verify bearer tokens. Without it an
    /// ephemeral secret is generated and an admin token for it is logged.
    #[arg(long, env = "CONFTOOLS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Accept only bearer tokens whose `aud` claim names this audience (e.g. `ticketing`),
    /// so a token minted for another service is refused. Without it, any audience is accepted.
    #[arg(long, env = "TICKETING_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Secret (at least 32 bytes) the access tokens of purchases made without a bearer token
    /// are derived from. Share it between instances and keep it across restarts; without it a
    /// random one is used and buyers' tokens die with the process.
    #[arg(long, env = "TICKETING_PURCHASE_TOKEN_SECRET", hide_env_values = true)]
    pub purchase_token_secret: Option<String>,

    /// How long an unpaid purchase holds its seats.
    #[arg(long, env = "TICKETING_RESERVATION_TTL_SECS", default_value_t = 1800)]
    pub reservation_ttl_secs: u64,

    /// Serve GraphQL introspection (`--introspection false` to turn it off).
    #[arg(long, env = "TICKETING_INTROSPECTION", default_value_t = true, action = ArgAction::Set)]
    pub introspection: bool,

    /// How long the service may take to stop after SIGTERM or Ctrl-C: requests still running
    /// then are abandoned (a write commits or rolls back whole) and the process exits.
    #[arg(long, env = "TICKETING_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// The largest request body read, in bytes; a larger one is refused (413) after reading
    /// no more than this.
    #[arg(long, env = "TICKETING_MAX_BODY_BYTES", default_value_t = platform::edge::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// The most operations in one batched POST (a JSON array); 1 refuses batches.
    #[arg(long, env = "TICKETING_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

    /// The most an operation may cost, estimated before it runs: every object a field returns
    /// counts 1 (a mutation's root field 10), scalars nothing, lists multiply by `first`/
    /// `last` or their expected size (10 unless declared). Above it: COST_LIMIT_EXCEEDED.
    /// 0 turns cost analysis off.
    #[arg(long, env = "TICKETING_MAX_COST", default_value_t = platform::operation_limits::CostLimits::default().max_cost)]
    pub max_cost: u64,

    /// The most lexical tokens in one GraphQL document (TOKEN_LIMIT_EXCEEDED), counted before
    /// it is parsed. 0 turns the limit off.
    #[arg(long, env = "TICKETING_MAX_TOKENS", default_value_t = DocumentLimits::default().max_tokens)]
    pub max_tokens: usize,

    /// The most directives (`@…`) in one document (DIRECTIVE_LIMIT_EXCEEDED). 0: no limit.
    #[arg(long, env = "TICKETING_MAX_DIRECTIVES", default_value_t = DocumentLimits::default().max_directives)]
    pub max_directives: usize,

    /// The most aliases in one document (MAX_ALIASES_EXCEEDED). 0: no limit.
    #[arg(long, env = "TICKETING_MAX_ALIASES", default_value_t = DocumentLimits::default().max_aliases)]
    pub max_aliases: usize,

    /// The most distinct root fields one operation selects (ROOT_FIELD_LIMIT_EXCEEDED).
    /// 0: no limit.
    #[arg(long, env = "TICKETING_MAX_ROOT_FIELDS", default_value_t = DocumentLimits::default().max_root_fields)]
    pub max_root_fields: usize,

    /// The longest a query or mutation may run, in milliseconds; past it the answer is 504
    /// TIMEOUT (over a WebSocket, a TIMEOUT error). 0: no deadline.
    #[arg(long, env = "TICKETING_REQUEST_TIMEOUT_MS", default_value_t = platform::graphql::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64)]
    pub request_timeout_ms: u64,

    /// Seconds a client has to send a request's head, counted from when the connection is
    /// ready for one: also how long a kept-alive connection may sit idle.
    #[arg(long, env = "TICKETING_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request body may take between two chunks.
    #[arg(long, env = "TICKETING_BODY_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub body_read_timeout_secs: u64,

    /// HTTP connections served at once; more wait in the listen backlog.
    #[arg(long, env = "TICKETING_MAX_CONNECTIONS", default_value_t = 8192)]
    pub max_connections: usize,

    /// How long a WebSocket may stay open without `connection_init`, in milliseconds; then
    /// it is closed with 4408.
    #[arg(long, env = "TICKETING_CONNECTION_INIT_TIMEOUT_MS", default_value_t = RequestLimits::default().connection_init_timeout.as_millis() as u64)]
    pub connection_init_timeout_ms: u64,

    /// The most operations running at once on one WebSocket; one more gets a
    /// TOO_MANY_OPERATIONS error. 0: no limit.
    #[arg(long, env = "TICKETING_MAX_OPERATIONS_PER_SOCKET", default_value_t = RequestLimits::default().max_operations_per_socket)]
    pub max_operations_per_socket: usize,

    /// Mutations one client (a token's subject, or an anonymous caller's address) may send
    /// per minute, sustained, on this instance; more is refused with 429 and `Retry-After`.
    /// 0 turns the limit off.
    #[arg(long, env = "TICKETING_MUTATION_RATE_PER_MINUTE", default_value_t = platform::rate_limit::RateLimits::default().mutations_per_minute)]
    pub mutation_rate_per_minute: u32,

    /// Mutations one client may send at once before the per-minute rate applies.
    #[arg(long, env = "TICKETING_MUTATION_BURST", default_value_t = platform::rate_limit::RateLimits::default().mutation_burst)]
    pub mutation_burst: u32,

    /// A proxy (address or CIDR range, repeatable) whose `X-Forwarded-For` or `Forwarded`
    /// header names the client: a load balancer, the gateway. Without one, the peer's
    /// address is the client's.
    #[arg(
        long = "trusted-proxy",
        env = "TICKETING_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = platform::client_address::ProxyRange::parse
    )]
    pub trusted_proxies: Vec<platform::client_address::ProxyRange>,

    /// Seats one buyer without a token (one address; an IPv6 /64) may hold awaiting payment
    /// at once; a purchase beyond is refused with UNPAID_SEAT_LIMIT. 0 turns the cap off.
    #[arg(long, env = "TICKETING_MAX_UNPAID_SEATS_PER_BUYER", default_value_t = PurchaseLimits::default().max_unpaid_seats_per_buyer)]
    pub max_unpaid_seats_per_buyer: u32,

    /// Seats one purchase awaiting payment may reserve, whoever buys (complimentary and free
    /// purchases are paid at once and not capped). 0 turns the cap off.
    #[arg(long, env = "TICKETING_MAX_UNPAID_SEATS_PER_PURCHASE", default_value_t = PurchaseLimits::default().max_unpaid_seats_per_purchase)]
    pub max_unpaid_seats_per_purchase: u32,

    /// NATS server with JetStream, e.g. nats://127.0.0.1:4222: the outbox is relayed to the
    /// stream TICKETING_EVENTS (subjects `ticketing.events.<Type>`). Without it events stay on the
    /// in-process bus.
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,

    /// Log lines as `text` or `json` (one object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Create or migrate the database to this version's schema, then exit (a deploy step
    /// before rolling out new instances; starting a service migrates too).
    #[arg(long)]
    pub migrate_only: bool,

    /// Print the published schema (ticketing/schema.graphql) and exit.
    #[arg(long)]
    pub print_schema: bool,

    /// Print the authorization policy as a Markdown table (for docs/security.md) and exit.
    #[arg(long)]
    pub print_policy: bool,
}

impl Config {
    pub fn settings(&self) -> Settings {
        Settings {
            database_url: self.database_url.clone(),
            max_connections: self.database_max_connections,
            reservation_ttl: Duration::from_secs(self.reservation_ttl_secs.max(1)),
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
            purchase_limits: PurchaseLimits {
                max_unpaid_seats_per_buyer: self.max_unpaid_seats_per_buyer,
                max_unpaid_seats_per_purchase: self.max_unpaid_seats_per_purchase,
            },
            purchase_token_secret: self
                .purchase_token_secret
                .as_ref()
                .map(|s| s.as_bytes().to_vec()),
            ..Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::rate_limit::RateLimits;

    #[test]
    fn the_limits_are_flags_with_the_documented_defaults() {
        let settings = Config::try_parse_from(["ticketing"])
            .expect("no flags")
            .settings();
        assert_eq!(
            settings.rate_limits,
            RateLimits {
                mutations_per_minute: 120,
                mutation_burst: 60
            }
        );
        assert_eq!(
            settings.purchase_limits,
            PurchaseLimits {
                max_unpaid_seats_per_buyer: 20,
                max_unpaid_seats_per_purchase: 10
            }
        );
        assert!(settings.trusted_proxies.is_empty());

        let settings = Config::try_parse_from([
            "ticketing",
            "--mutation-rate-per-minute",
            "0",
            "--mutation-burst",
            "5",
            "--max-unpaid-seats-per-buyer",
            "4",
            "--max-unpaid-seats-per-purchase",
            "2",
            "--trusted-proxy",
            "10.0.0.0/8,127.0.0.1",
            "--trusted-proxy",
            "::1",
        ])
        .expect("flags")
        .settings();
        assert_eq!(
            settings.rate_limits,
            RateLimits {
                mutations_per_minute: 0,
                mutation_burst: 5
            }
        );
        assert_eq!(
            settings.purchase_limits,
            PurchaseLimits {
                max_unpaid_seats_per_buyer: 4,
                max_unpaid_seats_per_purchase: 2
            }
        );
        assert!(!settings.trusted_proxies.is_empty());
        assert!(Config::try_parse_from(["ticketing", "--trusted-proxy", "gateway"]).is_err());
    }
}
