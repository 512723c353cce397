//! The outbox relay: events are written in the same transaction as the state change they
//! report, and this loop publishes them afterwards, in order, marking each batch once the bus
//! has taken it. A crash between publish and mark republishes the batch: delivery is
//! at-least-once and consumers (or the bus) deduplicate by event id.

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
}

pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    bus: Arc<dyn EventBus>,
    commits: CommitSignal,
    poll_interval: Duration,
}

impl OutboxRelay {
    pub fn new(
        outbox: Arc<dyn Outbox>,
        bus: Arc<dyn EventBus>,
        commits: CommitSignal,
        poll_interval: Duration,
    ) -> Self {
        Self {
            outbox,
            bus,
            commits,
            poll_interval,
        }
    }

    /// Runs until `shutdown` flips to true. Failures are logged and retried with backoff:
    /// a bus or database outage delays publication, it never loses an event.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut commits = self.commits.subscribe();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.drain().await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, "outbox relay failed; retrying");
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
