//! The sponsorship CRM: sponsors, contracts, invoices and the rules for their complimentary
//! tickets, which it books itself through ticketing's open host service, exactly once,
//! however often the network or either service fails. Ticketing never learns that sponsors
//! exist, and this crate knows ticketing only through the schema ticketing publishes.
//!
//! [`Crm::start`] opens the database and starts the background work (the live event feed,
//! the outbox relay, the allocation worker when a ticketing URL is configured, the consumer of
//! ticketing's cancellations when a NATS URL is);
//! [`Crm::serve`] serves a bound listener, so tests run the real server on port 0.

pub mod allocation;
pub mod api;
pub mod config;
pub mod domain;
pub mod events;
pub mod store;
pub mod ticketing_client;
pub mod ticketing_events;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use platform::server::{Background, GraphQLService};
use platform::{CommitSignal, EventBus, JwtKeys};
use tokio::net::TcpListener;

use crate::allocation::{AllocationSettings, AllocationWorker};
use crate::api::{ApiContext, CrmSchema, SchemaLimits};
use crate::store::{SharedStore, StoreError};
use crate::ticketing_client::{ServiceCredentials, TicketingClient, TicketingError};

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub max_connections: u32,
    /// How often the live feed and the relay look for events committed by other processes.
    pub poll_interval: Duration,
    /// Ticketing's GraphQL endpoint, where the CRM books sponsor tickets and looks up the
    /// conferences an admin registers. Without it the sponsors of conferences already
    /// registered are tracked, but no conference can be registered and no ticket is booked.
    pub ticketing_url: Option<String>,
    /// The CRM's own bearer token for ticketing (`tickets:issue-complimentary`). Without
    /// one the CRM signs its own with the shared secret (subject `crm`).
    pub ticketing_token: Option<String>,
    /// The audience the tokens the CRM signs for ticketing name in `aud` (ticketing's
    /// `--jwt-audience`); `None` names none.
    pub ticketing_audience: Option<String>,
    /// Longest wait for one answer from ticketing.
    pub ticketing_timeout: Duration,
    pub allocation: AllocationSettings,
    pub limits: SchemaLimits,
    /// NATS with JetStream: where the CRM consumes ticketing's events (cancelled sponsor
    /// purchases). Without it the CRM does not hear of cancellations.
    pub nats_url: Option<String>,
    /// The durable consumer of ticketing's events, shared by all instances of this CRM.
    pub ticketing_events_consumer: String,
    /// Let NATS forget that consumer after this long unused (short-lived CRMs, tests).
    pub ticketing_events_consumer_ttl: Option<Duration>,
    /// The longest the service takes to stop once shutdown begins: in-flight requests that
    /// have not finished by then are abandoned (their writes commit or roll back whole).
    pub shutdown_grace: Duration,
    /// What one HTTP request may bring: body size, operations per batch.
    pub request_limits: platform::graphql::RequestLimits,
    /// How many mutations one client (token subject, or address) may send, per instance.
    pub rate_limits: platform::rate_limit::RateLimits,
    /// Proxies (load balancers, the gateway) whose `X-Forwarded-For`/`Forwarded` header
    /// names the client's address; none by default.
    pub trusted_proxies: platform::client_address::TrustedProxies,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./data/crm.db".into(),
            max_connections: 16,
            poll_interval: Duration::from_millis(500),
            ticketing_url: None,
            ticketing_token: None,
            ticketing_audience: None,
            ticketing_timeout: Duration::from_secs(10),
            allocation: AllocationSettings::default(),
            limits: SchemaLimits::default(),
            nats_url: None,
            ticketing_events_consumer: ticketing_events::DEFAULT_CONSUMER.to_owned(),
            ticketing_events_consumer_ttl: None,
            shutdown_grace: platform::server::DEFAULT_SHUTDOWN_GRACE,
            request_limits: platform::graphql::RequestLimits::default(),
            rate_limits: platform::rate_limit::RateLimits::default(),
            trusted_proxies: platform::client_address::TrustedProxies::none(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event feed could not start: {0}")]
    Feed(#[from] platform::FeedError),
    #[error("the ticketing client could not be built: {0}")]
    Ticketing(#[from] TicketingError),
    #[error(transparent)]
    Bus(#[from] platform::BusError),
}

/// A running CRM: storage open, background tasks started. Dropping it stops them.
pub struct Crm {
    store: SharedStore,
    service: GraphQLService<CrmSchema>,
}

impl Crm {
    pub async fn start(
        settings: Settings,
        keys: Arc<JwtKeys>,
        bus: Arc<dyn EventBus>,
    ) -> Result<Self, StartError> {
        let commits = CommitSignal::new();
        let store = store::connect(
            &settings.database_url,
            settings.max_connections,
            commits.clone(),
        )
        .await?;
        let mut background = Background::new();
        let feed = platform::event_log::start_event_log(
            Arc::clone(&store),
            bus,
            commits.clone(),
            settings.poll_interval,
            &mut background,
        )
        .await?;
        let ticketing = match settings.ticketing_url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                let credentials = match settings.ticketing_token.clone() {
                    Some(token) => ServiceCredentials::Token(token),
                    None => {
                        tracing::info!(
                            "no ticketing token given: signing the CRM's own short-lived service tokens"
                        );
                        ServiceCredentials::Minted {
                            keys: Arc::clone(&keys),
                            audience: settings
                                .ticketing_audience
                                .clone()
                                .filter(|a| !a.trim().is_empty()),
                        }
                    }
                };
                let client = TicketingClient::new(url, credentials, settings.ticketing_timeout)?;
                let worker = AllocationWorker::new(
                    Arc::clone(&store),
                    client.clone(),
                    commits,
                    settings.allocation,
                );
                background.spawn(|shutdown| worker.run(shutdown));
                Some(client)
            }
            _ => {
                tracing::warn!(
                    "no ticketing URL: no conference can be registered and no complimentary ticket booked"
                );
                None
            }
        };
        if let Some(url) = settings.nats_url.as_deref() {
            let client =
                platform::jetstream::connect(url, &settings.ticketing_events_consumer).await?;
            let consumer = ticketing_events::consumer(
                &settings.ticketing_events_consumer,
                settings.ticketing_events_consumer_ttl,
            );
            let handler = ticketing_events::CancellationHandler::new(Arc::clone(&store));
            background.spawn(|shutdown| consumer.run(client, handler, shutdown));
        }
        let schema = api::build_schema(
            Some(ApiContext {
                store: Arc::clone(&store),
                feed,
                ticketing,
            }),
            settings.limits.clone(),
        );
        Ok(Self {
            store,
            service: GraphQLService::new("crm", schema, keys, background)
                .with_shutdown_grace(settings.shutdown_grace)
                .with_request_limits(platform::graphql::RequestLimits {
                    // The transport skips parsing what the schema will refuse unparsed.
                    document: settings.limits.operations.document,
                    ..settings.request_limits
                })
                .with_rate_limits(settings.rate_limits)
                .with_trusted_proxies(settings.trusted_proxies),
        })
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn schema(&self) -> &CrmSchema {
        self.service.executor()
    }

    /// `/graphql` (HTTP and WebSocket), `/health`, `/ready` and `/metrics`.
    pub fn router(&self) -> Router {
        self.service.router()
    }

    /// Serves until `shutdown` resolves, then stops the background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.service.serve(listener, shutdown).await
    }
}
