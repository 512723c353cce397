//! An Apollo Federation v2 gateway.
//!
//! It reads a supergraph SDL (join spec), derives the API schema clients see, and answers each
//! operation by planning it into subgraph fetches, running them (in parallel where the plan
//! allows), merging the results and shaping the response to the client's selection.
//!
//! `run` takes a bound listener so tests (and embedders) can start the gateway on port 0.

pub mod authentication;
pub mod config;
pub mod cors;
pub mod error;
pub mod forwarded_headers;
pub mod http;
pub mod in_flight;
pub mod incremental;
pub mod json;
pub mod json_text;
pub mod metrics;
pub mod persisted_queries;
pub mod pipeline;
pub mod response;
pub mod shared_requests;
pub mod subgraph_client;
pub mod subscriptions;
pub mod supergraph;
pub mod trusted_documents;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use authentication::BearerTokens;
pub use config::Config;
pub use error::GatewayError;
use forwarded_headers::HeaderPropagation;
use pipeline::cost::CostLimits;
use pipeline::{Limits, MutationRate, Pipeline};
use platform::client_address::TrustedProxies;
use platform::rate_limit::{MutationLimiter, RateLimits};
use subgraph_client::SubgraphClient;
use subscriptions::shared::SharingSettings;
use supergraph::Supergraph;
use trusted_documents::TrustedDocuments;

/// Loads the supergraph named by the configuration.
pub async fn load_supergraph(config: &Config) -> Result<Supergraph, GatewayError> {
    let mut supergraph = match (&config.supergraph, config.subgraphs.is_empty()) {
        (Some(path), _) => {
            // Read once at startup; blocking the runtime briefly here is harmless.
            let sdl =
                std::fs::read_to_string(path).map_err(|source| GatewayError::ReadSupergraph {
                    path: path.clone(),
                    source,
                })?;
            Supergraph::parse(&sdl)?
        }
        (None, false) => {
            let sdls = supergraph::compose::fetch_subgraph_sdls(
                &config.subgraphs,
                Duration::from_millis(config.subgraph_timeout_ms),
            )
            .await?;
            let sdl = supergraph::compose::compose(&sdls)?;
            tracing::debug!(supergraph = %sdl, "composed supergraph");
            Supergraph::parse(&sdl)?
        }
        (None, true) => return Err(GatewayError::NoSupergraph),
    };
    supergraph.override_urls(&config.subgraph_urls)?;
    Ok(supergraph)
}

/// Builds the request pipeline for a supergraph.
pub fn build_pipeline(config: &Config, supergraph: Supergraph) -> Result<Pipeline, GatewayError> {
    let metrics = Arc::new(metrics::Metrics::new(
        supergraph.subgraphs.iter().map(|s| s.name.clone()),
    ));
    let client = SubgraphClient::new(
        &supergraph,
        Duration::from_millis(config.subgraph_timeout_ms),
        &config.subgraph_timeouts,
        &config.subgraph_ws_urls,
        config.dedupe_subgraph_requests,
        metrics,
    )?;
    let limits = Limits {
        max_depth: config.max_depth,
        max_aliases: config.max_aliases,
        max_root_fields: config.max_root_fields,
        document: pipeline::validate::DocumentLimits {
            max_tokens: config.max_tokens,
            max_directives: config.max_directives,
            max_aliases: config.max_aliases,
        },
        websocket_init_timeout: Duration::from_secs(config.websocket_init_timeout_secs.max(1)),
        introspection: config.introspection,
        max_operations_per_socket: config.max_operations_per_socket.max(1),
        max_sockets_per_address: config.max_sockets_per_address,
        websocket_send_timeout: Duration::from_secs(config.websocket_send_timeout_secs.max(1)),
        max_body_bytes: config.max_body_bytes.max(1024),
        max_batch: config.max_batch.max(1),
        cost: CostLimits {
            max_cost: config.max_cost,
            default_list_size: config.default_list_size,
            list_sizes: config.list_sizes.iter().cloned().collect(),
        },
    };
    let propagation = HeaderPropagation::new(&config.propagate_headers)?;
    let tokens = match config.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
        Some(secret) => {
            BearerTokens::verified_with(secret.as_bytes(), config.jwt_audience.as_deref())
        }
        None => BearerTokens::default(),
    };
    let pipeline = Pipeline::new(Arc::new(supergraph), client, limits, config.plan_cache_size)
        .propagate_headers(propagation)
        .verify_bearer_tokens(tokens)
        .persist_queries(config.persisted_query_cache_size)
        .trust_documents(match &config.trusted_documents {
            Some(path) => TrustedDocuments::load(path, config.trusted_documents_only)?,
            None => TrustedDocuments::none(),
        });
    let pipeline = match MutationLimiter::new(RateLimits {
        mutations_per_minute: config.mutation_rate_per_minute,
        mutation_burst: config.mutation_burst,
    }) {
        Some(limiter) => pipeline.limit_mutation_rate(MutationRate {
            limiter,
            proxies: TrustedProxies::new(config.trusted_proxies.iter().copied()),
        }),
        None => pipeline,
    };
    let pipeline = if config.dedupe_subscriptions {
        pipeline.share_identical_subscriptions(SharingSettings {
            cursor_argument: config.subscription_cursor_argument.clone(),
            cursor_field: config.subscription_cursor_field.clone(),
            buffer: config.subscription_buffer,
        })
    } else {
        pipeline
    };
    Ok(if config.dedupe_client_requests {
        pipeline.share_identical_client_requests()
    } else {
        pipeline
    })
}

/// Worker threads of their own for long-lived streams: fanning one event out to thousands of
/// live viewers wakes thousands of tasks at once, and queries or purchases that arrive then
/// must not queue behind all of them. On threads of its own, the operating system shares the
/// cores between the two kinds of work instead.
pub struct StreamingRuntime(Option<tokio::runtime::Runtime>);

impl StreamingRuntime {
    pub fn start() -> Result<Self, GatewayError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("gateway-streams")
            .on_thread_start(yield_to_requests)
            .enable_all()
            .build()?;
        Ok(StreamingRuntime(Some(runtime)))
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(runtime) => runtime.handle().clone(),
            None => tokio::runtime::Handle::current(),
        }
    }
}

/// Streams threads run at a lower scheduling priority (nice 10): when the cores are busy, a
/// request thread that wakes for a query or a purchase gets its turn first, and the
/// viewers' events wait a few milliseconds instead.
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority with PRIO_PROCESS and who = 0 changes only the calling thread
        // on Linux; it takes no pointers.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        if result != 0 {
            tracing::debug!("cannot lower the streams threads' priority");
        }
    }
}

impl Drop for StreamingRuntime {
    /// Streams still open when the gateway stops are cut; a runtime cannot block to finish
    /// them from inside another one.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Serves the gateway on `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    // Configuration mistakes surface before the (possibly slow) supergraph load; header names
    // first, because CORS would report a bad one less precisely.
    HeaderPropagation::new(&config.propagate_headers)?;
    let cors = cors::layer(&config)?;
    let supergraph = load_supergraph(&config).await?;
    let streaming = StreamingRuntime::start()?;
    let pipeline = Arc::new(build_pipeline(&config, supergraph)?.stream_on(streaming.handle()));
    let readiness = http::Readiness::default();
    if pipeline.mutation_rate().is_some() {
        tokio::spawn(forget_quiet_clients(Arc::clone(&pipeline)));
    }
    let mut app = http::router(pipeline, readiness.clone());
    if let Some(dir) = &config.web_dir {
        app = app.fallback_service(
            tower::ServiceBuilder::new()
                .layer(axum::middleware::map_response(http::frontend_headers))
                .service(http::static_files(dir)),
        );
        // A browser opening /graphql gets GraphiQL as web/'s build bundled it, not the CDN page.
        app = app.layer(axum::Extension(http::BundledGraphiQL::in_web_dir(dir)));
    }
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    tracing::info!(address = ?listener.local_addr().ok(), "gateway listening");
    let (begun, shutdown_begun) = tokio::sync::oneshot::channel();
    let draining = async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        readiness.start_draining();
        let _ = begun.send(());
    };
    // Timeouts for slow clients, a bound on connections, and the peer's address in every
    // request (it goes to subgraphs with mutations, `X-Forwarded-For`).
    let edge = platform::edge::EdgeLimits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_secs.max(1)),
        body_read_timeout: Duration::from_secs(config.body_read_timeout_secs.max(1)),
        max_connections: config.max_connections,
        // Measured with 10,000 live viewers (docs/benchmarks.md): with TCP_NODELAY every
        // event is a segment of its own on every socket, and delivery p99 doubled. Responses
        // leave in one write each, so Nagle's algorithm does not hold them back.
        tcp_nodelay: false,
    };
    let serving = platform::edge::serve(listener, app, edge, draining);
    tokio::pin!(serving);
    tokio::select! {
        served = &mut serving => return Ok(served?),
        Ok(()) = shutdown_begun => {}
    }
    // Long-lived subscriptions and requests stuck on a subgraph would hold a graceful
    // shutdown forever: they get the grace period, then are cut.
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    match tokio::time::timeout(grace, serving).await {
        Ok(served) => Ok(served?),
        Err(_) => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "connections still open when the shutdown grace period ended; stopping anyway"
            );
            Ok(())
        }
    }
}

/// Drops the rate-limit buckets of clients back to a full burst, every
/// [`platform::rate_limit::FORGET_EVERY`], so that a flood of addresses costs memory only
/// while it lasts. Ends with the last reference to the pipeline.
async fn forget_quiet_clients(pipeline: Arc<Pipeline>) {
    let pipeline = Arc::downgrade(&pipeline);
    let mut every = tokio::time::interval(platform::rate_limit::FORGET_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        if let Some(rate) = pipeline.mutation_rate() {
            rate.limiter.forget_quiet_clients();
        }
    }
}
