//! The outbox relay: events are written in the same transaction as the state change they
//! report, and this loop publishes them afterwards, in order, marking each batch once the bus
//! has taken it. A crash between publish and mark republishes the batch: delivery is
//! at-least-once and consumers (or the bus) deduplicate by event id.
//!
//! With several instances on one database every instance runs a relay, but only the holder
//! of the relay lease publishes (a PostgreSQL advisory lock; the others stand by and take
//! over when its session ends, or when it gives the lease up after a failure). Should two
//! ever publish at once (SQLite, or a lease lost mid-batch), the bus drops the repeat by its
//! id (JetStream's `Nats-Msg-Id`), and since each relay publishes in position order and waits
//! for each ack, the first copy of every event is stored in log order.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use uuid::Uuid;

use crate::bus::{BusMessage, EventBus};
use crate::feed::CommitSignal;

#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub position: i64,
    pub id: Uuid,
    pub subject: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
#[error("outbox storage failed: {0}")]
pub struct OutboxError(pub String);

#[async_trait]
pub trait Outbox: Send + Sync {
    /// The oldest unpublished messages, in position order.
    async fn unpublished(&self, limit: i64) -> Result<Vec<OutboxMessage>, OutboxError>;
    async fn mark_published(&self, up_to_position: i64) -> Result<(), OutboxError>;
    /// How many committed events the bus has not taken yet.
    async fn lag(&self) -> Result<i64, OutboxError>;
    /// The lease to be this log's one relay, `None` while another instance holds it.
    async fn lead(&self) -> Result<Option<RelayLease>, OutboxError> {
        Ok(Some(RelayLease::unconditional()))
    }
}

/// The right to relay a log, held until dropped.
pub struct RelayLease {
    /// The session whose advisory lock is the lease; `None` where every relay may lead.
    session: Option<sqlx::PgConnection>,
}

impl RelayLease {
    /// A lease that needs no lock (SQLite, the in-memory case).
    pub fn unconditional() -> Self {
        Self { session: None }
    }

    pub(crate) fn held_by(session: sqlx::PgConnection) -> Self {
        Self {
            session: Some(session),
        }
    }

    /// Whether the session holding the lock is still alive (its lock with it).
    async fn still_held(&mut self) -> bool {
        use sqlx::Connection;
        match &mut self.session {
            None => true,
            Some(session) => session.ping().await.is_ok(),
        }
    }
}

pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    bus: Arc<dyn EventBus>,
    commits: CommitSignal,
    poll_interval: Duration,
    /// The `service` label of the relay's metrics.
    service: &'static str,
}

/// The lag gauge costs a query; under load the relay wakes on every commit, so it is
/// measured at most this often.
const LAG_EVERY: Duration = Duration::from_secs(1);
/// How often a standby relay asks for the lease, and the leader checks it still holds it.
const LEASE_CHECK_EVERY: Duration = Duration::from_secs(1);

impl OutboxRelay {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        bus: Arc<dyn EventBus>,
        commits: CommitSignal,
        poll_interval: Duration,
        service: &'static str,
    ) -> Self {
        Self {
            outbox,
            bus,
            commits,
            poll_interval,
            service,
        }
    }

    /// Keeps or takes the relay lease; checked at most once a second, which bounds how long
    /// a relay whose session died keeps publishing next to its successor.
    async fn keep_lease(
        &self,
        lease: &mut Option<RelayLease>,
        checked: &mut Option<tokio::time::Instant>,
    ) {
        if checked.is_some_and(|at| at.elapsed() < LEASE_CHECK_EVERY) {
            return;
        }
        *checked = Some(tokio::time::Instant::now());
        match lease {
            Some(held) => {
                if !held.still_held().await {
                    tracing::warn!(service = self.service, "outbox relay lost its lease");
                    *lease = None;
                }
            }
            None => match self.outbox.lead().await {
                Ok(Some(taken)) => {
                    tracing::info!(service = self.service, "this instance relays the outbox");
                    *lease = Some(taken);
                }
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "relay lease unavailable"),
            },
        }
    }

    async fn measure_lag(&self, last: &mut Option<tokio::time::Instant>) {
        if last.is_some_and(|at| at.elapsed() < LAG_EVERY) {
            return;
        }
        *last = Some(tokio::time::Instant::now());
        match self.outbox.lag().await {
            Ok(lag) => {
                metrics::gauge!(crate::telemetry::names::OUTBOX_LAG, "service" => self.service)
                    .set(lag as f64)
            }
            Err(error) => tracing::debug!(%error, "outbox lag unknown"),
        }
    }

    /// Runs until `shutdown` flips to true. Failures are logged and retried with backoff:
    /// a bus or database outage delays publication, it never loses an event.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.commits.subscribe();
        let mut backoff = Duration::from_millis(100);
        let mut lag_measured = None;
        let mut lease = None;
        let mut lease_checked = None;
        loop {
            self.keep_lease(&mut lease, &mut lease_checked).await;
            let drained = match lease {
                Some(_) => self.drain().await,
                // Another instance relays; this one stands by.
                None => Ok(()),
            };
            self.measure_lag(&mut lag_measured).await;
            match drained {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, "outbox relay failed; retrying");
                    // Give the lease up: another instance may reach the bus when this one
                    // cannot. It is asked for again at the next check.
                    lease = None;
                    lease_checked = None;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
            tokio::select! {
                _ = commits.changed() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn drain(&self) -> Result<(), String> {
        const BATCH: i64 = 500;
        loop {
            let batch = self
                .outbox
                .unpublished(BATCH)
                .await
                .map_err(|e| e.to_string())?;
            let Some(last) = batch.last().map(|m| m.position) else {
                return Ok(());
            };
            for message in &batch {
                let bus_message = BusMessage {
                    id: message.id,
                    subject: message.subject.clone(),
                    payload: message.payload.clone(),
                };
                self.bus
                    .publish(&bus_message)
                    .await
                    .map_err(|e| e.to_string())?;
                metrics::counter!(crate::telemetry::names::OUTBOX_PUBLISHED, "service" => self.service)
                    .increment(1);
            }
            self.outbox
                .mark_published(last)
                .await
                .map_err(|e| e.to_string())?;
            if (batch.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }
}
