//! Server start-up shared by the services: a bound listener in (so tests can use port 0),
//! graceful shutdown on a signal or a watch flag, and the background tasks that stop with
//! the service.

use std::future::Future;
use std::sync::Arc;

use async_graphql::Executor;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::JwtKeys;
use crate::graphql::graphql_router;

/// The background work of a running service (the event feed's tail, the outbox relay, the
/// service's own loops), stopped together: when the service stops serving, or when it is
/// dropped without ever serving, as tests that only start it do.
pub struct Background {
    shutdown: watch::Sender<bool>,
}

impl Background {
    pub fn new() -> Self {
        let (shutdown, _) = watch::channel(false);
        Self { shutdown }
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
        tokio::spawn(task(self.shutdown_flag()));
    }

    pub fn stop(&self) {
        // `send_replace`, not `send`: it stores the flag even when no task is listening.
        self.shutdown.send_replace(true);
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

/// A service's GraphQL schema served with `/health`, and the background work that stops when
/// serving ends.
pub struct GraphQLService<E> {
    executor: E,
    keys: Arc<JwtKeys>,
    background: Background,
}

impl<E: Executor + Clone> GraphQLService<E> {
    pub fn new(executor: E, keys: Arc<JwtKeys>, background: Background) -> Self {
        Self {
            executor,
            keys,
            background,
        }
    }

    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// `/graphql` (HTTP and WebSocket) and `/health`.
    pub fn router(&self) -> Router {
        graphql_router(self.executor.clone(), Arc::clone(&self.keys)).merge(health_router())
    }

    /// Serves until `shutdown` resolves, then stops the background tasks.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let result = serve(listener, self.router(), shutdown).await;
        self.background.stop();
        result
    }
}

/// Liveness: the process answers HTTP.
pub fn health_router() -> Router {
    Router::new().route("/health", get(|| async { "ok" }))
}

pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Without TCP_NODELAY, Nagle's algorithm holds small responses and subscription frames
    // back until the peer's delayed ACK: tens of milliseconds per event.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves when the flag turns true or its sender is gone.
pub async fn until_shutdown(mut flag: watch::Receiver<bool>) {
    while !*flag.borrow() {
        if flag.changed().await.is_err() {
            return;
        }
    }
}

/// Ctrl-C or SIGTERM.
pub async fn termination_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
