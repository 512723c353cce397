//! The message bus internal systems listen on. The embedded default is in-process; JetStream
//! ([`crate::jetstream`]) plugs in behind the same trait. Messages carry the event id so a
//! bus that deduplicates (JetStream's `Nats-Msg-Id`) can drop the relay's redeliveries.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct BusMessage {
    /// Unique per event; the deduplication key.
    pub id: Uuid,
    /// e.g. `ticketing.events.TicketPurchaseCreated`.
    pub subject: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the bus is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait EventBus: Send + Sync {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError>;

    /// Whether the bus can take messages now; `/ready` reports it. An in-process bus always can.
    async fn ready(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// A bus inside one process: every subscriber sees every message published after it
/// subscribed. Publishing with no subscriber is not an error: nobody is listening yet.
#[derive(Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<BusMessage>>,
}

impl InProcessBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusMessage>> {
        self.sender.subscribe()
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError> {
        let _ = self.sender.send(Arc::new(message.clone()));
        Ok(())
    }
}
