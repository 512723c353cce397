//! The CRM's events: what happened to sponsors, in order. Each is written in the same
//! transaction as the change it reports (the outbox), carries a snapshot as of that moment,
//! and is read back through `sponsorEvents` (query and subscription) and relayed to the bus.

use serde::{Deserialize, Serialize};

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
    /// Ticketing cancelled a purchase the CRM had booked for the sponsor: flagged for review.
    TicketAllocationCancelled {
        request: TicketAllocationRequest,
    },
    /// The allowance fell below what was already requested; nothing is booked or undone.
    TicketAllowanceExceeded {
        sponsor: Sponsor,
        excess_tickets: i64,
    },
}

impl platform::EventKind for SponsorEventKind {
    const CURSOR_KIND: &'static str = CURSOR_KIND;
    const SUBJECT_PREFIX: &'static str = SUBJECT_PREFIX;

    fn event_type(&self) -> &'static str {
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
            Self::TicketAllocationCancelled { .. } => "TicketAllocationCancelled",
            Self::TicketAllowanceExceeded { .. } => "TicketAllowanceExceeded",
        }
    }
}

/// An event as committed to the log.
pub type SponsorEvent = platform::LoggedEvent<SponsorEventKind>;
