//! What the CRM hears from ticketing on the bus: a cancelled purchase that was booked for a
//! sponsor is flagged on the sponsor (`needsReview`, `cancelledPurchaseIds`). The CRM reads
//! ticketing's JetStream stream with a durable consumer, so instances share one position and
//! a restart resumes where the group left off, and it parses the event JSON with its own
//! types: it knows ticketing only by what ticketing publishes, never by its crate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::jetstream::{DurableConsumer, EventHandler, HandleError, ReceivedEvent, StreamSpec};
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::{self, AllocationReference};
use crate::store::SharedStore;

/// Ticketing publishes its events under this prefix (`ticketing.events.<Type>`).
pub const TICKETING_SUBJECT_PREFIX: &str = "ticketing.events";
/// The only ticketing event the CRM acts on.
pub const PURCHASE_CANCELLED: &str = "TicketPurchaseCancelled";
/// The durable consumer's name unless configured otherwise.
pub const DEFAULT_CONSUMER: &str = "crm-ticketing-events";

/// The part of ticketing's purchase snapshot the CRM needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Purchase {
    id: Uuid,
    #[serde(default)]
    complimentary: bool,
    #[serde(default)]
    external_reference: Option<String>,
    #[serde(default)]
    cancelled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
struct PurchaseCancelled {
    purchase: Purchase,
}

/// The consumer of ticketing's cancellations: `name` is shared by every instance of one CRM.
/// `forget_after` lets the server drop a consumer left unused that long (for short-lived
/// CRMs such as tests); a production CRM keeps its position for ever.
pub fn consumer(name: &str, forget_after: Option<Duration>) -> DurableConsumer {
    DurableConsumer {
        stream: StreamSpec::for_prefix(TICKETING_SUBJECT_PREFIX),
        durable_name: name.to_owned(),
        filter_subject: format!("{TICKETING_SUBJECT_PREFIX}.{PURCHASE_CANCELLED}"),
        inactive_threshold: forget_after,
    }
}

/// Flags the sponsor behind a cancelled purchase. Idempotent: a redelivered cancellation
/// finds the request already flagged and changes nothing.
pub struct CancellationHandler {
    store: SharedStore,
}

impl CancellationHandler {
    pub fn new(store: SharedStore) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

#[async_trait]
impl EventHandler for CancellationHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandleError> {
        if event.event_type != PURCHASE_CANCELLED {
            return Ok(());
        }
        let cancelled: PurchaseCancelled = match serde_json::from_value(event.data.clone()) {
            Ok(c) => c,
            Err(error) => {
                // Retrying cannot make it readable; say so loudly and move on.
                tracing::error!(event = %event.id, %error, "unreadable TicketPurchaseCancelled; skipped");
                return Ok(());
            }
        };
        let purchase = cancelled.purchase;
        // Only the CRM's own bookings carry its reference, and they are complimentary (a
        // privileged scope); a reference on anything else is not believed.
        let reference = purchase
            .external_reference
            .as_deref()
            .filter(|_| purchase.complimentary)
            .and_then(AllocationReference::parse);
        match self
            .store
            .record_purchase_cancelled(
                purchase.id,
                reference,
                purchase.cancelled_at.unwrap_or_else(domain::now),
            )
            .await
        {
            Ok(Some(request)) => {
                tracing::warn!(
                    sponsor = %request.sponsor_id, purchase = %purchase.id,
                    "ticketing cancelled a sponsor's purchase; flagged for review"
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(error) => Err(HandleError::Transient(error.to_string())),
        }
    }
}
