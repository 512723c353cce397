//! The `ticketing` binary's configuration: flags, each with an environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Parser};
use platform::telemetry::LogFormat;

use crate::Settings;
use crate::api::SchemaLimits;

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
    #[arg(long, env = "TICKETING_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// The most operations in one batched POST (a JSON array); 1 refuses batches.
    #[arg(long, env = "TICKETING_MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,

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
                ..SchemaLimits::default()
            },
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            request_limits: platform::graphql::RequestLimits {
                max_body_bytes: self.max_body_bytes,
                max_batch: self.max_batch.max(1),
            },
            purchase_token_secret: self
                .purchase_token_secret
                .as_ref()
                .map(|s| s.as_bytes().to_vec()),
            ..Settings::default()
        }
    }
}
