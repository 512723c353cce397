//! The CRM's events: what happened to sponsors, in order. Each is written in the same
//! transaction as the change it reports (the outbox), carries a snapshot as of that moment,
//! and is read back through `sponsorEvents` (query and subscription) and relayed to the bus.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{ConferenceSetup, Invoice, Sponsor, SponsorshipLevel, TicketAllocationRequest};

/// Bus subjects are `crm.events.<EventType>`.
pub const SUBJECT_PREFIX: &str = "crm.events";
/// The kind tag of the opaque cursors of the event log.
pub const CURSOR_KIND: &str = "sponsor-event";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SponsorEventKind {
    SponsorCreated {
        sponsor: Sponsor,
    },
    ContractSent {
        sponsor: Sponsor,
    },
    ContractSigned {
        sponsor: Sponsor,
    },
    ContractCancelled {
        sponsor: Sponsor,
    },
    InvoiceIssued {
        invoice: Invoice,
    },
    InvoicePaid {
        invoice: Invoice,
    },
    InvoiceVoided {
        invoice: Invoice,
    },
    /// Contract signed and every live invoice paid: the sponsor's tickets are due.
    SponsorOnboarded {
        sponsor: Sponsor,
    },
    SponsorLevelChanged {
        sponsor: Sponsor,
    },
    TicketAllowanceOverrideSet {
        sponsor: Sponsor,
    },
    SponsorshipLevelUpdated {
        level: SponsorshipLevel,
    },
    SponsorConferenceConfigured {
        conference: ConferenceSetup,
    },
    /// A booking was queued: the first one on onboarding, or a top-up after the allowance grew.
    TicketAllocationRequested {
        request: TicketAllocationRequest,
    },
    TicketAllocationBooked {
        request: TicketAllocationRequest,
    },
    TicketAllocationFailed {
        request: TicketAllocationRequest,
    },
    TicketAllocationRetried {
        request: TicketAllocationRequest,
    },
    /// The allowance fell below what was already requested; nothing is booked or undone.
    TicketAllowanceExceeded {
        sponsor: Sponsor,
        excess_tickets: i64,
    },
}

impl SponsorEventKind {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::SponsorCreated { .. } => "SponsorCreated",
            Self::ContractSent { .. } => "ContractSent",
            Self::ContractSigned { .. } => "ContractSigned",
            Self::ContractCancelled { .. } => "ContractCancelled",
            Self::InvoiceIssued { .. } => "InvoiceIssued",
            Self::InvoicePaid { .. } => "InvoicePaid",
            Self::InvoiceVoided { .. } => "InvoiceVoided",
            Self::SponsorOnboarded { .. } => "SponsorOnboarded",
            Self::SponsorLevelChanged { .. } => "SponsorLevelChanged",
            Self::TicketAllowanceOverrideSet { .. } => "TicketAllowanceOverrideSet",
            Self::SponsorshipLevelUpdated { .. } => "SponsorshipLevelUpdated",
            Self::SponsorConferenceConfigured { .. } => "SponsorConferenceConfigured",
            Self::TicketAllocationRequested { .. } => "TicketAllocationRequested",
            Self::TicketAllocationBooked { .. } => "TicketAllocationBooked",
            Self::TicketAllocationFailed { .. } => "TicketAllocationFailed",
            Self::TicketAllocationRetried { .. } => "TicketAllocationRetried",
            Self::TicketAllowanceExceeded { .. } => "TicketAllowanceExceeded",
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
pub struct SponsorEvent {
    pub position: i64,
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub kind: SponsorEventKind,
}

impl SponsorEvent {
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

impl platform::Positioned for SponsorEvent {
    fn position(&self) -> i64 {
        self.position
    }
}

/// The store seen as an event log, for the live feed.
pub struct StoreEventLog(pub crate::store::SharedStore);

#[async_trait::async_trait]
impl platform::EventLogReader<SponsorEvent> for StoreEventLog {
    async fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<SponsorEvent>, platform::FeedError> {
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
