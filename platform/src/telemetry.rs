//! What operators see of a running service: structured logs and Prometheus metrics.
//!
//! Metrics go to one process-wide recorder (the `metrics` facade has exactly one), rendered at
//! every service's `/metrics`; each series carries a `service` label, so the embedded launcher,
//! which runs several services in one process, still tells them apart.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Metric names, in one place so dashboards and docs/deploy.md can rely on them.
pub mod names {
    /// Counter: HTTP requests, by `service`, `path`, `method`, `status`.
    pub const HTTP_REQUESTS: &str = "http_requests_total";
    /// Histogram: HTTP request latency in seconds, by `service`, `path`, `method`.
    pub const HTTP_DURATION: &str = "http_request_duration_seconds";
    /// Counter: failed requests (HTTP 5xx, or a GraphQL response carrying errors), by
    /// `service`, `kind` (`http` or `graphql`).
    pub const ERRORS: &str = "request_errors_total";
    /// Gauge: events committed but not yet acknowledged by the bus, by `service`.
    pub const OUTBOX_LAG: &str = "outbox_lag_events";
    /// Counter: events the relay published to the bus, by `service`.
    pub const OUTBOX_PUBLISHED: &str = "outbox_published_events_total";
    /// Gauge: open event subscriptions on this instance, by `service`.
    pub const SUBSCRIPTIONS: &str = "event_subscriptions_active";
    /// Gauge: ticket allocation requests waiting to be booked, by `service`.
    pub const ALLOCATION_QUEUE_DEPTH: &str = "allocation_queue_depth";
    /// Counter: mutations refused by the per-client rate limit (`RATE_LIMITED`), by `service`.
    pub const RATE_LIMITED: &str = "rate_limited_requests_total";
    /// Gauge: clients with a rate limit bucket on this instance, by `service`.
    pub const RATE_LIMITED_CLIENTS: &str = "rate_limit_clients";
}

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. `None` only if some other
/// recorder was installed first (then this process's metrics go there).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            const LATENCY_BUCKETS: &[f64] = &[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let builder = match PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            {
                Ok(builder) => builder,
                Err(error) => {
                    tracing::warn!(%error, "latency buckets refused; using summaries");
                    PrometheusBuilder::new()
                }
            };
            match builder.install_recorder() {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render_metrics() -> Response {
    match prometheus() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response(),
    }
}

/// Middleware: counts and times every request. The path label is the route's pattern, never
/// the raw URI, so a client cannot blow up the number of series.
pub async fn track_http(service: &'static str, request: Request, next: Next) -> Response {
    // Installing here too: a series recorded before the recorder exists is lost.
    let _ = prometheus();
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status();
    metrics::counter!(names::HTTP_REQUESTS, "service" => service, "path" => path.clone(), "method" => method.clone(), "status" => status.as_u16().to_string()).increment(1);
    metrics::histogram!(names::HTTP_DURATION, "service" => service, "path" => path, "method" => method)
        .record(started.elapsed().as_secs_f64());
    if status.is_server_error() {
        metrics::counter!(names::ERRORS, "service" => service, "kind" => "http").increment(1);
    }
    response
}

/// Counts a GraphQL response that carries errors (sent with HTTP 200, so the middleware
/// cannot see it).
pub fn graphql_errored(service: &'static str) {
    metrics::counter!(names::ERRORS, "service" => service, "kind" => "graphql").increment(1);
}

/// Counts a request refused by the per-client mutation rate limit.
pub fn rate_limited(service: &'static str) {
    metrics::counter!(names::RATE_LIMITED, "service" => service).increment(1);
}

/// The `service` label of a service whose events are published under `prefix`
/// (`ticketing.events` → `ticketing`).
pub fn service_of_prefix(prefix: &'static str) -> &'static str {
    prefix.split('.').next().unwrap_or(prefix)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// Installs the process's log subscriber: `RUST_LOG` filters (default `info,sqlx=warn`), the
/// format is text or JSON. Calling it twice keeps the first.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,async_nats=warn".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
