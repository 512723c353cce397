//! Ticketing: conferences, ticket types, purchases and tickets, served as an open host
//! service over GraphQL. It knows callers only by their token's scopes and never why they
//! buy: a partner CRM, a speaker CRM and a public web shop use the same API.
//!
//! [`Ticketing::start`] opens the database and starts the background work (the live event
//! feed, the outbox relay, reservation expiry); [`Ticketing::serve`] serves a bound listener,
//! so tests run the real server on port 0.

pub mod api;
pub mod config;
pub mod domain;
pub mod events;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use platform::server::{Background, GraphQLService};
use platform::{CommitSignal, EventBus, JwtKeys};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{ApiContext, SchemaLimits, TicketingSchema};
use crate::domain::{PurchaseLimits, PurchaseTokens, WeakSecret};
use crate::store::{SharedStore, StoreError};

#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub max_connections: u32,
    pub reservation_ttl: Duration,
    /// How often unpaid reservations are checked for expiry.
    pub expiry_interval: Duration,
    /// Idempotency keys are kept at least this long (never less than 24 hours).
    pub idempotency_retention: Duration,
    /// How often the live feed and the relay look for events committed by other processes.
    pub poll_interval: Duration,
    pub limits: SchemaLimits,
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
    /// The caps on seats held without payment, per anonymous buyer and per purchase.
    pub purchase_limits: PurchaseLimits,
    /// The secret the access tokens of purchases made without a bearer token are derived
    /// from (HMAC-SHA256), at least 32 bytes. Every instance of the service must share it,
    /// and it must outlive restarts, or buyers' tokens stop working. `None` generates a
    /// random one at start (with a warning): fine for a test, not for a deployment.
    pub purchase_token_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &self.database_url)
            .field("max_connections", &self.max_connections)
            .field("reservation_ttl", &self.reservation_ttl)
            .field("expiry_interval", &self.expiry_interval)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("poll_interval", &self.poll_interval)
            .field("limits", &self.limits)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("request_limits", &self.request_limits)
            .field("rate_limits", &self.rate_limits)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("purchase_limits", &self.purchase_limits)
            .field(
                "purchase_token_secret",
                &self.purchase_token_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./data/ticketing.db".into(),
            max_connections: 16,
            reservation_ttl: Duration::from_secs(30 * 60),
            expiry_interval: Duration::from_secs(5),
            idempotency_retention: Duration::from_secs(48 * 3600),
            poll_interval: Duration::from_millis(500),
            limits: SchemaLimits::default(),
            shutdown_grace: platform::server::DEFAULT_SHUTDOWN_GRACE,
            request_limits: platform::graphql::RequestLimits::default(),
            rate_limits: platform::rate_limit::RateLimits::default(),
            trusted_proxies: platform::client_address::TrustedProxies::none(),
            purchase_limits: PurchaseLimits::default(),
            purchase_token_secret: None,
        }
    }
}

/// The purchase token keys for the configured secret, or for a random one.
fn purchase_tokens(secret: Option<Vec<u8>>) -> Result<PurchaseTokens, WeakSecret> {
    match secret {
        Some(secret) => PurchaseTokens::new(secret),
        None => {
            use rand::RngCore;
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            tracing::warn!(
                "no purchase token secret configured (--purchase-token-secret): using a random one; \
                 access tokens of anonymous purchases will not survive a restart or work on other instances"
            );
            PurchaseTokens::new(secret)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event feed could not start: {0}")]
    Feed(#[from] platform::FeedError),
    #[error(transparent)]
    PurchaseTokenSecret(#[from] WeakSecret),
}

/// A running ticketing service: storage open, background tasks started. Dropping it stops
/// the background tasks.
pub struct Ticketing {
    store: SharedStore,
    service: GraphQLService<TicketingSchema>,
}

const MIN_KEY_RETENTION: Duration = Duration::from_secs(24 * 3600);

impl Ticketing {
    pub async fn start(
        settings: Settings,
        keys: Arc<JwtKeys>,
        bus: Arc<dyn EventBus>,
    ) -> Result<Self, StartError> {
        let purchase_tokens = purchase_tokens(settings.purchase_token_secret.clone())?;
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
            commits,
            settings.poll_interval,
            &mut background,
        )
        .await?;
        let expiry_store = Arc::clone(&store);
        background.spawn(|shutdown| {
            expire_and_purge(
                expiry_store,
                settings.expiry_interval,
                settings.idempotency_retention.max(MIN_KEY_RETENTION),
                shutdown,
            )
        });
        let schema = api::build_schema(
            Some(ApiContext {
                store: Arc::clone(&store),
                feed,
                reservation_ttl: settings.reservation_ttl,
                purchase_tokens,
                purchase_limits: settings.purchase_limits,
            }),
            settings.limits.clone(),
        );
        Ok(Self {
            store,
            service: GraphQLService::new("ticketing", schema, keys, background)
                .with_shutdown_grace(settings.shutdown_grace)
                .with_request_limits(platform::graphql::RequestLimits {
                    // The transport skips parsing what the schema will refuse unparsed.
                    document: settings.limits.operations.document,
                    ..settings.request_limits
                })
                .with_rate_limits(settings.rate_limits)
                .with_trusted_proxies(settings.trusted_proxies.clone()),
        })
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn schema(&self) -> &TicketingSchema {
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

/// Returns the seats of unpaid reservations whose time is up, and forgets idempotency keys
/// past their retention. Safe to run in every instance: each expiry is a conditional update.
async fn expire_and_purge(
    store: SharedStore,
    every: Duration,
    key_retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let retention = chrono::Duration::from_std(key_retention).unwrap_or(chrono::Duration::days(2));
    // Keys are few and cheap to keep; purging about hourly is plenty.
    const PURGE_EVERY: Duration = Duration::from_secs(3600);
    let mut last_purge: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        loop {
            match store.expire_due_reservations(domain::now()).await {
                Ok(0) => break,
                Ok(n) => tracing::info!(expired = n, "unpaid reservations expired"),
                Err(error) => {
                    tracing::warn!(%error, "expiring reservations failed");
                    break;
                }
            }
        }
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(tokio::time::Instant::now());
            if let Err(error) = store
                .purge_idempotency_keys(domain::now() - retention)
                .await
            {
                tracing::warn!(%error, "purging idempotency keys failed");
            }
        }
    }
}
