//! Events as GraphQL types: one object per event type, all implementing `TicketEvent`. Each
//! resolves what it is about from the snapshot stored with the event, so a thousand
//! subscribers cost no extra database reads and see the state as of the event.

use std::sync::Arc;

use async_graphql::{ID, Interface, Object};
use chrono::{DateTime, Utc};

use super::types::{Conference, Ticket, TicketPurchase, TicketType};
use crate::events::{TicketEvent as StoredEvent, TicketEventKind};

fn mismatch() -> async_graphql::Error {
    async_graphql::Error::new("event payload does not match its type")
}

macro_rules! event_object {
    ($(#[$doc:meta])* $name:ident { $field:ident: $ty:ident <- $variant:ident($inner:ident) }) => {
        $(#[$doc])*
        pub struct $name(pub Arc<StoredEvent>);

        #[Object]
        impl $name {
            /// Unique id of this event; bus consumers deduplicate by it.
            async fn id(&self) -> ID {
                ID(self.0.id.to_string())
            }

            /// Pass to `ticketEvents(after:)` to resume right after this event.
            async fn cursor(&self) -> String {
                self.0.cursor()
            }

            async fn occurred_at(&self) -> DateTime<Utc> {
                self.0.occurred_at
            }

            /// As it was when the event happened.
            async fn $field(&self) -> async_graphql::Result<$ty> {
                match &self.0.kind {
                    TicketEventKind::$variant { $inner } => Ok($ty::from($inner.clone())),
                    _ => Err(mismatch()),
                }
            }
        }
    };
}

event_object!(ConferenceCreated { conference: Conference <- ConferenceCreated(conference) });
event_object!(TicketTypeCreated { ticket_type: TicketType <- TicketTypeCreated(ticket_type) });
event_object!(TicketTypeUpdated { ticket_type: TicketType <- TicketTypeUpdated(ticket_type) });
event_object!(
    /// The last seat of a ticket type was taken.
    TicketTypeSoldOut { ticket_type: TicketType <- TicketTypeSoldOut(ticket_type) }
);
event_object!(
    /// Seats came back to a sold-out ticket type (a cancellation, an expiry, more capacity).
    TicketTypeAvailableAgain { ticket_type: TicketType <- TicketTypeAvailableAgain(ticket_type) }
);
event_object!(TicketPurchaseCreated { purchase: TicketPurchase <- TicketPurchaseCreated(purchase) });
event_object!(TicketPurchasePaid { purchase: TicketPurchase <- TicketPurchasePaid(purchase) });
event_object!(TicketPurchaseCancelled { purchase: TicketPurchase <- TicketPurchaseCancelled(purchase) });
event_object!(
    /// An unpaid reservation timed out and its seats returned.
    TicketPurchaseExpired { purchase: TicketPurchase <- TicketPurchaseExpired(purchase) }
);
event_object!(TicketAssigned { ticket: Ticket <- TicketAssigned(ticket) });

/// Something that happened in ticketing, in log order.
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID"),
    field(name = "cursor", ty = "String"),
    field(name = "occurred_at", ty = "DateTime<Utc>")
)]
pub enum TicketEvent {
    ConferenceCreated(ConferenceCreated),
    TicketTypeCreated(TicketTypeCreated),
    TicketTypeUpdated(TicketTypeUpdated),
    TicketTypeSoldOut(TicketTypeSoldOut),
    TicketTypeAvailableAgain(TicketTypeAvailableAgain),
    TicketPurchaseCreated(TicketPurchaseCreated),
    TicketPurchasePaid(TicketPurchasePaid),
    TicketPurchaseCancelled(TicketPurchaseCancelled),
    TicketPurchaseExpired(TicketPurchaseExpired),
    TicketAssigned(TicketAssigned),
}

impl From<Arc<StoredEvent>> for TicketEvent {
    fn from(event: Arc<StoredEvent>) -> Self {
        match &event.kind {
            TicketEventKind::ConferenceCreated { .. } => {
                Self::ConferenceCreated(ConferenceCreated(event))
            }
            TicketEventKind::TicketTypeCreated { .. } => {
                Self::TicketTypeCreated(TicketTypeCreated(event))
            }
            TicketEventKind::TicketTypeUpdated { .. } => {
                Self::TicketTypeUpdated(TicketTypeUpdated(event))
            }
            TicketEventKind::TicketTypeSoldOut { .. } => {
                Self::TicketTypeSoldOut(TicketTypeSoldOut(event))
            }
            TicketEventKind::TicketTypeAvailableAgain { .. } => {
                Self::TicketTypeAvailableAgain(TicketTypeAvailableAgain(event))
            }
            TicketEventKind::TicketPurchaseCreated { .. } => {
                Self::TicketPurchaseCreated(TicketPurchaseCreated(event))
            }
            TicketEventKind::TicketPurchasePaid { .. } => {
                Self::TicketPurchasePaid(TicketPurchasePaid(event))
            }
            TicketEventKind::TicketPurchaseCancelled { .. } => {
                Self::TicketPurchaseCancelled(TicketPurchaseCancelled(event))
            }
            TicketEventKind::TicketPurchaseExpired { .. } => {
                Self::TicketPurchaseExpired(TicketPurchaseExpired(event))
            }
            TicketEventKind::TicketAssigned { .. } => Self::TicketAssigned(TicketAssigned(event)),
        }
    }
}
