//! What operators see of a running gateway at `/metrics`, in the Prometheus text format.
//!
//! Plain atomics rather than the `metrics` facade: the facade has one recorder per process,
//! and the embedded launcher runs the gateway in the same process as the services, whose
//! platform crate installs that recorder; a gateway recorder would take theirs or lose its
//! own. Every label value is also known at startup (three outcomes, the supergraph's
//! subgraphs), so each series is a fixed slot: recording is an atomic add, with no lookup, lock
//! or allocation on the request path. Each gateway has its own `Metrics`, so several in one
//! process (tests) never mix their numbers.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: the services' buckets, so dashboards
/// compare like with like.
const BUCKETS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The same bounds in nanoseconds, so recording compares integers.
const BUCKETS_NANOS: [u64; 13] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// How a GraphQL request over HTTP ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Executed; the response carries no errors.
    Ok,
    /// Executed; the response carries errors (a failed subgraph fetch, a field error).
    Errors,
    /// Refused before execution: unreadable, invalid, over a limit, not acceptable.
    Rejected,
}

impl RequestOutcome {
    const ALL: [RequestOutcome; 3] = [
        RequestOutcome::Ok,
        RequestOutcome::Errors,
        RequestOutcome::Rejected,
    ];

    fn label(self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Errors => "errors",
            RequestOutcome::Rejected => "rejected",
        }
    }
}

/// How one subgraph fetch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A GraphQL response without errors.
    Ok,
    /// A GraphQL response with errors.
    Errors,
    /// No usable answer: connection failure, timeout, a status without a GraphQL body.
    Failed,
}

impl FetchOutcome {
    const ALL: [FetchOutcome; 3] = [FetchOutcome::Ok, FetchOutcome::Errors, FetchOutcome::Failed];

    fn label(self) -> &'static str {
        match self {
            FetchOutcome::Ok => "ok",
            FetchOutcome::Errors => "errors",
            FetchOutcome::Failed => "failed",
        }
    }
}

/// A latency histogram: per-bucket counts (not cumulative; rendering adds them up), the total
/// count and the sum.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_NANOS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is not below the value (Prometheus's `le`); beyond the
        // last one, only `+Inf` (the count) holds it.
        let index = BUCKETS_NANOS.partition_point(|&bound| bound < nanos);
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `labels` is empty or a `name="value",` list that the `le` label follows.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS_SECONDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.trim_end_matches(','))
        };
        let _ = writeln!(out, "{name}_sum{braced} {sum}");
        let _ = writeln!(out, "{name}_count{braced} {count}");
    }
}

#[derive(Debug)]
struct SubgraphSeries {
    /// Already escaped for a label value.
    name: String,
    fetches: [AtomicU64; 3],
    latency: Histogram,
}

/// The gateway's counters, one slot per series.
#[derive(Debug)]
pub struct Metrics {
    requests: [AtomicU64; 3],
    request_latency: Histogram,
    /// Indexed by `SubgraphId`.
    subgraphs: Box<[SubgraphSeries]>,
    subscriptions: AtomicI64,
    upstreams: AtomicI64,
    cut_off: AtomicU64,
    rate_limited: AtomicU64,
}

impl Metrics {
    /// Series for each subgraph, in `SubgraphId` order.
    pub fn new(subgraphs: impl IntoIterator<Item = String>) -> Self {
        Metrics {
            requests: Default::default(),
            request_latency: Histogram::default(),
            subgraphs: subgraphs
                .into_iter()
                .map(|name| SubgraphSeries {
                    name: escape(&name),
                    fetches: Default::default(),
                    latency: Histogram::default(),
                })
                .collect(),
            subscriptions: AtomicI64::new(0),
            upstreams: AtomicI64::new(0),
            cut_off: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    pub fn request(&self, outcome: RequestOutcome, elapsed: Duration) {
        self.requests[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.request_latency.record(elapsed);
    }

    pub fn subgraph_fetch(&self, subgraph: usize, outcome: FetchOutcome, elapsed: Duration) {
        if let Some(series) = self.subgraphs.get(subgraph) {
            series.fetches[outcome as usize].fetch_add(1, Ordering::Relaxed);
            series.latency.record(elapsed);
        }
    }

    /// Counts a subscription as active until the returned guard is dropped, however the
    /// subscription ends.
    pub fn subscription_opened(self: &Arc<Self>) -> ActiveSubscription {
        self.subscriptions.fetch_add(1, Ordering::Relaxed);
        ActiveSubscription(Arc::clone(self))
    }

    /// Counts an upstream subscription (to the subgraph owning a subscription's root field)
    /// as open until the returned guard is dropped.
    pub fn upstream_opened(self: &Arc<Self>) -> ActiveUpstream {
        self.upstreams.fetch_add(1, Ordering::Relaxed);
        ActiveUpstream(Arc::clone(self))
    }

    /// A subscriber fell too far behind and was cut off.
    /// A mutation refused by the client's rate limit.
    pub fn mutation_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn subscriber_cut_off(&self) {
        self.cut_off.fetch_add(1, Ordering::Relaxed);
    }

    /// Every series in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096 + self.subgraphs.len() * 2048);
        out.push_str(
            "# HELP gateway_requests_total GraphQL requests over HTTP (streams excluded), by \
             outcome: ok, errors (the response carries errors), rejected (refused before \
             execution).\n# TYPE gateway_requests_total counter\n",
        );
        for outcome in RequestOutcome::ALL {
            let count = self.requests[outcome as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gateway_requests_total{{outcome=\"{}\"}} {count}",
                outcome.label()
            );
        }
        out.push_str(
            "# HELP gateway_request_duration_seconds Time to answer a GraphQL request over \
             HTTP.\n# TYPE gateway_request_duration_seconds histogram\n",
        );
        self.request_latency
            .render(&mut out, "gateway_request_duration_seconds", "");

        out.push_str(
            "# HELP gateway_subgraph_fetches_total Subgraph fetches, by subgraph and outcome: \
             ok, errors (a GraphQL response with errors), failed (no usable answer).\n\
             # TYPE gateway_subgraph_fetches_total counter\n",
        );
        for series in &self.subgraphs {
            for outcome in FetchOutcome::ALL {
                let count = series.fetches[outcome as usize].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "gateway_subgraph_fetches_total{{subgraph=\"{}\",outcome=\"{}\"}} {count}",
                    series.name,
                    outcome.label()
                );
            }
        }
        out.push_str(
            "# HELP gateway_subgraph_fetch_duration_seconds Time from sending a subgraph fetch \
             (or joining an identical one in flight) to its answer, by subgraph.\n\
             # TYPE gateway_subgraph_fetch_duration_seconds histogram\n",
        );
        for series in &self.subgraphs {
            let labels = format!("subgraph=\"{}\",", series.name);
            series
                .latency
                .render(&mut out, "gateway_subgraph_fetch_duration_seconds", &labels);
        }

        let _ = writeln!(
            out,
            "# HELP gateway_subscriptions_active Subscriptions open through this gateway.\n\
             # TYPE gateway_subscriptions_active gauge\n\
             gateway_subscriptions_active {}",
            self.subscriptions.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP gateway_subscription_upstreams_active Subscriptions this gateway holds open \
             to subgraphs; identical client subscriptions share one.\n\
             # TYPE gateway_subscription_upstreams_active gauge\n\
             gateway_subscription_upstreams_active {}",
            self.upstreams.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP gateway_subscribers_cut_off_total Subscribers cut off because they fell \
             further behind than their buffer allows.\n\
             # TYPE gateway_subscribers_cut_off_total counter\n\
             gateway_subscribers_cut_off_total {}",
            self.cut_off.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP gateway_mutations_rate_limited_total Mutations refused because their client \
             was over its rate.\n\
             # TYPE gateway_mutations_rate_limited_total counter\n\
             gateway_mutations_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        out
    }
}

/// An active subscription, counted until dropped.
#[derive(Debug)]
pub struct ActiveSubscription(Arc<Metrics>);

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        self.0.subscriptions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open upstream subscription, counted until dropped.
#[derive(Debug)]
pub struct ActiveUpstream(Arc<Metrics>);

impl Drop for ActiveUpstream {
    fn drop(&mut self) {
        self.0.upstreams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_count_everything() {
        let metrics = Metrics::new(["a\"b".to_string()]);
        metrics.request(RequestOutcome::Ok, Duration::from_micros(500));
        metrics.request(RequestOutcome::Ok, Duration::from_millis(1));
        metrics.request(RequestOutcome::Rejected, Duration::from_millis(30));
        metrics.request(RequestOutcome::Errors, Duration::from_secs(60));
        metrics.subgraph_fetch(0, FetchOutcome::Failed, Duration::from_millis(3));
        // An unknown subgraph is ignored, not a panic.
        metrics.subgraph_fetch(7, FetchOutcome::Ok, Duration::from_millis(3));
        let text = metrics.render();
        for line in [
            "gateway_requests_total{outcome=\"ok\"} 2",
            "gateway_requests_total{outcome=\"errors\"} 1",
            "gateway_requests_total{outcome=\"rejected\"} 1",
            "gateway_request_duration_seconds_bucket{le=\"0.001\"} 2",
            "gateway_request_duration_seconds_bucket{le=\"0.025\"} 2",
            "gateway_request_duration_seconds_bucket{le=\"0.05\"} 3",
            "gateway_request_duration_seconds_bucket{le=\"10\"} 3",
            "gateway_request_duration_seconds_bucket{le=\"+Inf\"} 4",
            "gateway_request_duration_seconds_count 4",
            "gateway_subgraph_fetches_total{subgraph=\"a\\\"b\",outcome=\"failed\"} 1",
            "gateway_subgraph_fetch_duration_seconds_bucket{subgraph=\"a\\\"b\",le=\"0.005\"} 1",
            "gateway_subgraph_fetch_duration_seconds_count{subgraph=\"a\\\"b\"} 1",
            "gateway_subscriptions_active 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
    }

    #[test]
    fn a_subscription_is_active_until_its_guard_drops() {
        let metrics = Arc::new(Metrics::new([]));
        let first = metrics.subscription_opened();
        let second = metrics.subscription_opened();
        drop(first);
        assert!(
            metrics
                .render()
                .contains("gateway_subscriptions_active 1\n")
        );
        drop(second);
        assert!(
            metrics
                .render()
                .contains("gateway_subscriptions_active 0\n")
        );
    }
}
