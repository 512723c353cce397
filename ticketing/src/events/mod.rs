//! Ticketing's events: what happened, in the order it happened. Each is written in the same
//! transaction as the state change it reports (the outbox), carries a snapshot of what it is
//! about as of that moment, and is read back through the API's event log and subscriptions
//! and relayed to the bus for internal consumers.

use serde::{Deserialize, Serialize};

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

impl platform::EventKind for TicketEventKind {
    const CURSOR_KIND: &'static str = CURSOR_KIND;
    const SUBJECT_PREFIX: &'static str = SUBJECT_PREFIX;

    fn event_type(&self) -> &'static str {
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
}

/// An event as committed to the log.
pub type TicketEvent = platform::LoggedEvent<TicketEventKind>;
