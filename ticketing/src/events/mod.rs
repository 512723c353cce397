//! Ticketing's events: what happened, in the order it happened. Each is written in the same
//! transaction as the state change it reports (the outbox), carries a snapshot of what it is
//! about as of that moment, and is read back through the API's event log and subscriptions
//! and relayed to the bus for internal consumers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Conference, Ticket, TicketPurchase, TicketType};

/// Bus subjects are `ticketing.events.<EventType>`.
pub const SUBJECT_PREFIX: &str = "ticketing.events";
/// The kind tag of the opaque cursors of the event log.
pub const CURSOR_KIND: &str = "ticket-event";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TicketEventKind {
    ConferenceCreated {
        conference: Conference,
    },
    TicketTypeCreated {
        ticket_type: TicketType,
    },
    TicketTypeUpdated {
        ticket_type: TicketType,
    },
    TicketTypeSoldOut {
        ticket_type: TicketType,
    },
    /// Seats came back (a cancellation or an expiry) to a type that was sold out.
    TicketTypeAvailableAgain {
        ticket_type: TicketType,
    },
    TicketPurchaseCreated {
        purchase: TicketPurchase,
    },
    TicketPurchasePaid {
        purchase: TicketPurchase,
    },
    TicketPurchaseCancelled {
        purchase: TicketPurchase,
    },
    TicketPurchaseExpired {
        purchase: TicketPurchase,
    },
    TicketAssigned {
        ticket: Ticket,
    },
}

impl TicketEventKind {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::ConferenceCreated { .. } => "ConferenceCreated",
            Self::TicketTypeCreated { .. } => "TicketTypeCreated",
            Self::TicketTypeUpdated { .. } => "TicketTypeUpdated",
            Self::TicketTypeSoldOut { .. } => "TicketTypeSoldOut",
            Self::TicketTypeAvailableAgain { .. } => "TicketTypeAvailableAgain",
            Self::TicketPurchaseCreated { .. } => "TicketPurchaseCreated",
            Self::TicketPurchasePaid { .. } => "TicketPurchasePaid",
            Self::TicketPurchaseCancelled { .. } => "TicketPurchaseCancelled",
            Self::TicketPurchaseExpired { .. } => "TicketPurchaseExpired",
            Self::TicketAssigned { .. } => "TicketAssigned",
        }
    }

    /// Splits into the stored `(event_type, data)` pair.
    pub fn to_stored(&self) -> Result<(&'static str, serde_json::Value), serde_json::Error> {
        let mut value = serde_json::to_value(self)?;
        let data = value
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or(serde_json::Value::Null);
        Ok((self.event_type(), data))
    }

    pub fn from_stored(
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
    }
}

/// An event as committed to the log.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketEvent {
    pub position: i64,
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub kind: TicketEventKind,
}

impl TicketEvent {
    pub fn cursor(&self) -> String {
        platform::Cursor::encode_position(CURSOR_KIND, self.position)
    }

    /// The message internal systems receive on the bus.
    pub fn bus_payload(&self) -> serde_json::Value {
        let data = self
            .kind
            .to_stored()
            .map(|(_, d)| d)
            .unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "id": self.id,
            "type": self.kind.event_type(),
            "position": self.position,
            "occurredAt": self.occurred_at,
            "data": data,
        })
    }
}

impl platform::Positioned for TicketEvent {
    fn position(&self) -> i64 {
        self.position
    }
}

/// The store seen as an event log, for the live feed.
pub struct StoreEventLog(pub crate::store::SharedStore);

#[async_trait::async_trait]
impl platform::EventLogReader<TicketEvent> for StoreEventLog {
    async fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<TicketEvent>, platform::FeedError> {
        self.0
            .events_after(after, limit)
            .await
            .map_err(|e| platform::FeedError(e.to_string()))
    }

    async fn head(&self) -> Result<i64, platform::FeedError> {
        self.0
            .event_head()
            .await
            .map_err(|e| platform::FeedError(e.to_string()))
    }
}

/// The store seen as an outbox, for the bus relay.
pub struct StoreOutbox(pub crate::store::SharedStore);

#[async_trait::async_trait]
impl platform::Outbox for StoreOutbox {
    async fn unpublished(
        &self,
        limit: i64,
    ) -> Result<Vec<platform::OutboxMessage>, platform::OutboxError> {
        let err = |e: crate::store::StoreError| platform::OutboxError(e.to_string());
        let offset = self.0.outbox_offset().await.map_err(err)?;
        let events = self.0.events_after(offset, limit).await.map_err(err)?;
        Ok(events
            .into_iter()
            .map(|e| platform::OutboxMessage {
                position: e.position,
                id: e.id,
                subject: format!("{SUBJECT_PREFIX}.{}", e.kind.event_type()),
                payload: e.bus_payload(),
            })
            .collect())
    }

    async fn mark_published(&self, up_to_position: i64) -> Result<(), platform::OutboxError> {
        self.0
            .set_outbox_offset(up_to_position)
            .await
            .map_err(|e| platform::OutboxError(e.to_string()))
    }
}
