//! Events as GraphQL types: one object per event type, all implementing `SponsorEvent`. Each
//! resolves what it is about from the snapshot stored with the event, so subscribers cost no
//! extra reads and see the state as of the event.

use std::sync::Arc;

use async_graphql::{ID, Interface, Object};
use chrono::{DateTime, Utc};

use super::types::{
    Invoice, Sponsor, SponsorConference, SponsorshipLevel, TicketAllocationRequest,
};
use crate::events::{SponsorEvent as StoredEvent, SponsorEventKind};

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

            /// Pass to `sponsorEvents(after:)` to resume right after this event.
            async fn cursor(&self) -> String {
                self.0.cursor()
            }

            async fn occurred_at(&self) -> DateTime<Utc> {
                self.0.occurred_at
            }


            /// As it was when the event happened.
            async fn $field(&self) -> async_graphql::Result<$ty> {
                match &self.0.kind {
                    SponsorEventKind::$variant { $inner, .. } => Ok($ty($inner.clone())),
                    _ => Err(mismatch()),
                }
            }
        }
    };
}

event_object!(SponsorCreated { sponsor: Sponsor <- SponsorCreated(sponsor) });
event_object!(ContractSent { sponsor: Sponsor <- ContractSent(sponsor) });
event_object!(ContractSigned { sponsor: Sponsor <- ContractSigned(sponsor) });
event_object!(ContractCancelled { sponsor: Sponsor <- ContractCancelled(sponsor) });
event_object!(InvoiceIssued { invoice: Invoice <- InvoiceIssued(invoice) });
event_object!(InvoicePaid { invoice: Invoice <- InvoicePaid(invoice) });
event_object!(InvoiceVoided { invoice: Invoice <- InvoiceVoided(invoice) });
event_object!(
    /// Contract signed and every invoice paid: the sponsor's tickets are due.
    SponsorOnboarded { sponsor: Sponsor <- SponsorOnboarded(sponsor) }
);
event_object!(SponsorLevelChanged { sponsor: Sponsor <- SponsorLevelChanged(sponsor) });
event_object!(TicketAllowanceOverrideSet { sponsor: Sponsor <- TicketAllowanceOverrideSet(sponsor) });
event_object!(SponsorshipLevelUpdated { level: SponsorshipLevel <- SponsorshipLevelUpdated(level) });
event_object!(SponsorConferenceConfigured { conference: SponsorConference <- SponsorConferenceConfigured(conference) });
event_object!(
    /// A booking was queued: the first on onboarding, or a top-up after the allowance grew.
    TicketAllocationRequested { request: TicketAllocationRequest <- TicketAllocationRequested(request) }
);
event_object!(TicketAllocationBooked { request: TicketAllocationRequest <- TicketAllocationBooked(request) });
event_object!(TicketAllocationFailed { request: TicketAllocationRequest <- TicketAllocationFailed(request) });
event_object!(TicketAllocationRetried { request: TicketAllocationRequest <- TicketAllocationRetried(request) });
event_object!(
    /// Ticketing cancelled a purchase booked for the sponsor: flagged for review, not re-booked.
    TicketAllocationCancelled { request: TicketAllocationRequest <- TicketAllocationCancelled(request) }
);

/// The allowance fell below what was already requested: flagged for an admin, nothing booked.
pub struct TicketAllowanceExceeded(pub Arc<StoredEvent>);

#[Object]
impl TicketAllowanceExceeded {
    /// Unique id of this event; bus consumers deduplicate by it.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Pass to `sponsorEvents(after:)` to resume right after this event.
    async fn cursor(&self) -> String {
        self.0.cursor()
    }

    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// As it was when the event happened.
    async fn sponsor(&self) -> async_graphql::Result<Sponsor> {
        match &self.0.kind {
            SponsorEventKind::TicketAllowanceExceeded { sponsor, .. } => {
                Ok(Sponsor(sponsor.clone()))
            }
            _ => Err(mismatch()),
        }
    }

    /// Tickets requested beyond the new allowance.
    async fn excess_tickets(&self) -> async_graphql::Result<i32> {
        match &self.0.kind {
            SponsorEventKind::TicketAllowanceExceeded { excess_tickets, .. } => {
                super::types::int(*excess_tickets)
            }
            _ => Err(mismatch()),
        }
    }
}

/// Something that happened in the CRM, in log order.
#[derive(Interface)]
#[graphql(
    field(name = "id", ty = "ID"),
    field(name = "cursor", ty = "String"),
    field(name = "occurred_at", ty = "DateTime<Utc>")
)]
pub enum SponsorEvent {
    SponsorCreated(SponsorCreated),
    ContractSent(ContractSent),
    ContractSigned(ContractSigned),
    ContractCancelled(ContractCancelled),
    InvoiceIssued(InvoiceIssued),
    InvoicePaid(InvoicePaid),
    InvoiceVoided(InvoiceVoided),
    SponsorOnboarded(SponsorOnboarded),
    SponsorLevelChanged(SponsorLevelChanged),
    TicketAllowanceOverrideSet(TicketAllowanceOverrideSet),
    SponsorshipLevelUpdated(SponsorshipLevelUpdated),
    SponsorConferenceConfigured(SponsorConferenceConfigured),
    TicketAllocationRequested(TicketAllocationRequested),
    TicketAllocationBooked(TicketAllocationBooked),
    TicketAllocationFailed(TicketAllocationFailed),
    TicketAllocationRetried(TicketAllocationRetried),
    TicketAllocationCancelled(TicketAllocationCancelled),
    TicketAllowanceExceeded(TicketAllowanceExceeded),
}

impl From<Arc<StoredEvent>> for SponsorEvent {
    fn from(event: Arc<StoredEvent>) -> Self {
        use SponsorEventKind as K;
        match &event.kind {
            K::SponsorCreated { .. } => Self::SponsorCreated(SponsorCreated(event)),
            K::ContractSent { .. } => Self::ContractSent(ContractSent(event)),
            K::ContractSigned { .. } => Self::ContractSigned(ContractSigned(event)),
            K::ContractCancelled { .. } => Self::ContractCancelled(ContractCancelled(event)),
            K::InvoiceIssued { .. } => Self::InvoiceIssued(InvoiceIssued(event)),
            K::InvoicePaid { .. } => Self::InvoicePaid(InvoicePaid(event)),
            K::InvoiceVoided { .. } => Self::InvoiceVoided(InvoiceVoided(event)),
            K::SponsorOnboarded { .. } => Self::SponsorOnboarded(SponsorOnboarded(event)),
            K::SponsorLevelChanged { .. } => Self::SponsorLevelChanged(SponsorLevelChanged(event)),
            K::TicketAllowanceOverrideSet { .. } => {
                Self::TicketAllowanceOverrideSet(TicketAllowanceOverrideSet(event))
            }
            K::SponsorshipLevelUpdated { .. } => {
                Self::SponsorshipLevelUpdated(SponsorshipLevelUpdated(event))
            }
            K::SponsorConferenceConfigured { .. } => {
                Self::SponsorConferenceConfigured(SponsorConferenceConfigured(event))
            }
            K::TicketAllocationRequested { .. } => {
                Self::TicketAllocationRequested(TicketAllocationRequested(event))
            }
            K::TicketAllocationBooked { .. } => {
                Self::TicketAllocationBooked(TicketAllocationBooked(event))
            }
            K::TicketAllocationFailed { .. } => {
                Self::TicketAllocationFailed(TicketAllocationFailed(event))
            }
            K::TicketAllocationRetried { .. } => {
                Self::TicketAllocationRetried(TicketAllocationRetried(event))
            }
            K::TicketAllocationCancelled { .. } => {
                Self::TicketAllocationCancelled(TicketAllocationCancelled(event))
            }
            K::TicketAllowanceExceeded { .. } => {
                Self::TicketAllowanceExceeded(TicketAllowanceExceeded(event))
            }
        }
    }
}
