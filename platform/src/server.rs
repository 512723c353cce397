//! Server start-up shared by the services: a bound listener in (so tests can use port 0),
//! `/health`, `/ready` and `/metrics` beside `/graphql`, graceful shutdown on a signal or a
//! watch flag, and the background tasks that stop with the service.
//!
//! Shutdown, in order: `/ready` turns 503 and the listener stops accepting; the background
//! tasks are told to stop, which ends every event subscription (clients get `complete` and
//! resume elsewhere with their cursor); in-flight requests finish; then the process waits,
//! briefly, for subscriptions to close and background tasks to return. All of it within the
//! shutdown grace period: whatever is still running then (a request stuck on a wedged
//! database) is abandoned, so SIGTERM always ends the process. Abandoning is safe because no
//! request owns a write transaction (`database::run_to_completion`): what was not committed
//! by then rolls back when the process's connections close.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Executor;
use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::JwtKeys;
use crate::client_address::TrustedProxies;
use crate::feed::OpenSubscriptions;
use crate::graphql::{ClientLimits, RequestLimits, graphql_router};
use crate::rate_limit::{MutationLimiter, RateLimits};
use crate::telemetry;

/// One dependency `/ready` checks: the database, the bus.
#[async_trait]
pub trait Probe: Send + Sync {
    async fn probe(&self) -> Result<(), String>;
}

/// The longest a probe may take before it counts as failed: a hung database must not hang
/// the load balancer's health check too.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for subscriptions to close and background tasks to return.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a service may take to stop after the signal, unless configured otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The background work of a running service (the event feed's tail, the outbox relay, the
/// service's own loops), stopped together: when the service stops serving, or when it is
/// dropped without ever serving, as tests that only start it do. It also holds what `/ready`
/// checks.
pub struct Background {
    shutdown: Arc<watch::Sender<bool>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    probes: Vec<(&'static str, Arc<dyn Probe>)>,
    subscriptions: OpenSubscriptions,
}

impl Background {
    pub fn new() -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            shutdown: Arc::new(shutdown),
            tasks: Mutex::new(Vec::new()),
            probes: Vec::new(),
            subscriptions: OpenSubscriptions::default(),
        }
    }

    /// Turns true when the tasks should stop.
    pub fn shutdown_flag(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Spawns a task that is given the shutdown flag and is expected to return once it
    /// turns true.
    pub fn spawn<F>(&self, task: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.shutdown_flag()));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|t| !t.is_finished());
            tasks.push(handle);
        }
    }

    /// Adds a dependency `/ready` checks.
    pub fn add_probe(&mut self, name: &'static str, probe: Arc<dyn Probe>) {
        self.probes.push((name, probe));
    }

    /// The subscriptions open on this instance.
    pub fn open_subscriptions(&self) -> OpenSubscriptions {
        self.subscriptions.clone()
    }

    pub fn stop(&self) {
        // `send_replace`, not `send`: it stores the flag even when no task is listening.
        self.shutdown.send_replace(true);
    }

    /// Stops the tasks and waits (up to a few seconds) for them to return and for open
    /// subscriptions to close.
    pub async fn drain(&self) {
        self.stop();
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!("a background task did not stop in time");
                break;
            }
        }
        while self.subscriptions.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn readiness(&self) -> Readiness {
        Readiness {
            probes: Arc::new(self.probes.clone()),
            shutdown: self.shutdown_flag(),
        }
    }
}

impl Default for Background {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone)]
struct Readiness {
    probes: Arc<Vec<(&'static str, Arc<dyn Probe>)>>,
    shutdown: watch::Receiver<bool>,
}

/// `/ready`: 200 when every dependency answers, 503 naming the ones that do not, and 503
/// once shutdown has begun so a load balancer moves traffic away.
async fn ready(State(readiness): State<Readiness>) -> Response {
    if *readiness.shutdown.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "shutting down" })),
        )
            .into_response();
    }
    let results =
        futures_util::future::join_all(readiness.probes.iter().map(|(name, probe)| async move {
            let outcome = match tokio::time::timeout(PROBE_TIMEOUT, probe.probe()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error),
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            };
            (*name, outcome)
        }))
        .await;
    let mut checks = serde_json::Map::new();
    let mut all_ok = true;
    for (name, outcome) in results {
        let value = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(error) => {
                all_ok = false;
                tracing::warn!(dependency = name, %error, "not ready");
                error
            }
        };
        checks.insert(name.to_owned(), serde_json::Value::String(value));
    }
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if all_ok { "ready" } else { "unavailable" },
        "checks": checks,
    });
    (status, axum::Json(body)).into_response()
}

/// A service's GraphQL schema served with `/health`, `/ready` and `/metrics`, and the
/// background work that stops when serving ends.
pub struct GraphQLService<E> {
    service: &'static str,
    executor: E,
    keys: Arc<JwtKeys>,
    background: Background,
    shutdown_grace: Duration,
    request_limits: RequestLimits,
    clients: ClientLimits,
}

impl<E: Executor + Clone> GraphQLService<E> {
    /// `service` labels the metrics and logs, e.g. `ticketing`.
    pub fn new(
        service: &'static str,
        executor: E,
        keys: Arc<JwtKeys>,
        background: Background,
    ) -> Self {
        Self {
            service,
            executor,
            keys,
            background,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            request_limits: RequestLimits::default(),
            clients: ClientLimits::default(),
        }
    }

    /// What one request may bring (body size, batch size).
    pub fn with_request_limits(mut self, limits: RequestLimits) -> Self {
        self.request_limits = limits;
        self
    }

    /// How many mutations one client may send (`429 RATE_LIMITED` beyond). Buckets of quiet
    /// clients are forgotten by a background task of the service.
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        let limiter = MutationLimiter::new(limits).map(Arc::new);
        if let Some(limiter) = &limiter {
            let limiter = Arc::clone(limiter);
            let service = self.service;
            self.background
                .spawn(move |shutdown| forget_quiet_clients(limiter, service, shutdown));
        }
        self.clients.mutations = limiter;
        self
    }

    /// The proxies (load balancers, the gateway) whose `X-Forwarded-For` or `Forwarded`
    /// header names the client's address.
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.clients.trusted_proxies = proxies;
        self
    }

    /// The longest the service takes to stop once shutdown begins.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// `/graphql` (HTTP and WebSocket), `/health`, `/ready` and `/metrics`, every request
    /// counted and timed.
    pub fn router(&self) -> Router {
        let service = self.service;
        graphql_router(
            service,
            self.executor.clone(),
            Arc::clone(&self.keys),
            self.request_limits,
            self.clients.clone(),
        )
        .merge(health_router())
        .route("/ready", get(ready).with_state(self.background.readiness()))
        .route("/metrics", get(telemetry::render_metrics))
        .layer(axum::middleware::from_fn(move |request, next| {
            telemetry::track_http(service, request, next)
        }))
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests, ends the
    /// subscriptions and stops the background tasks, taking at most the shutdown grace.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let flag = Arc::clone(&self.background.shutdown);
        let service = self.service;
        let (begun, shutdown_begun) = tokio::sync::oneshot::channel();
        let draining = async move {
            shutdown.await;
            tracing::info!(service, "shutting down: finishing in-flight requests");
            // Ends subscriptions (their sockets would otherwise keep the server waiting)
            // and turns `/ready` to 503 while the last requests finish.
            flag.send_replace(true);
            let _ = begun.send(());
        };
        let router = self.router();
        let edge = self.request_limits.edge;
        let background = &self.background;
        let stopping = async move {
            let result = serve(listener, router, edge, draining).await;
            background.drain().await;
            result
        };
        let result = within_grace(stopping, shutdown_begun, self.shutdown_grace, service)
            .await
            .unwrap_or(Ok(()));
        tracing::info!(service, "stopped");
        result
    }
}

/// Drops the rate limit buckets of clients that have been quiet long enough to be back at a
/// full burst, every minute, until shutdown.
async fn forget_quiet_clients(
    limiter: Arc<MutationLimiter>,
    service: &'static str,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(crate::rate_limit::FORGET_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        limiter.forget_quiet_clients();
        metrics::gauge!(crate::telemetry::names::RATE_LIMITED_CLIENTS, "service" => service)
            .set(limiter.clients() as f64);
    }
}

/// Liveness: the process answers HTTP.
pub fn health_router() -> Router {
    Router::new().route("/health", get(|| async { "ok" }))
}

/// Serves `router` behind the shared edge (`crate::edge`): client timeouts, a bound on
/// connections, `TCP_NODELAY`, and the peer's address in each request's extensions (limits
/// for anonymous callers count by it).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: crate::edge::EdgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::edge::serve(listener, router, edge, shutdown).await
}

/// Runs `work` to its end, or until `grace` has passed since `begun` fired, whichever comes
/// first; `None` when the grace ran out (and the rest of `work` is abandoned).
pub async fn within_grace<T>(
    work: impl Future<Output = T>,
    begun: tokio::sync::oneshot::Receiver<()>,
    grace: Duration,
    service: &'static str,
) -> Option<T> {
    tokio::pin!(work);
    tokio::select! {
        done = &mut work => return Some(done),
        Ok(()) = begun => {}
    }
    match tokio::time::timeout(grace, work).await {
        Ok(done) => Some(done),
        Err(_) => {
            tracing::warn!(
                service,
                grace_secs = grace.as_secs_f64(),
                "still busy when the shutdown grace period ended; stopping anyway"
            );
            None
        }
    }
}

/// Resolves when the flag turns true or its sender is gone.
pub async fn until_shutdown(mut flag: watch::Receiver<bool>) {
    while !*flag.borrow() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}
