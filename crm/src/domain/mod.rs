//! The sponsorship domain: pure rules and values, no I/O. Inputs are parsed into these types
//! at the API edge, so storage and the rules never see an unchecked string or a negative
//! ticket count.

pub mod allocation;
pub mod allowance;
pub mod calendar;
pub mod conference;
pub mod invoice;
pub mod level;
pub mod money;
pub mod sponsor;
pub mod values;

pub use allocation::{
    AllocationReference, AllocationStatus, TicketAllocation, TicketAllocationRequest,
};
pub use allowance::{EarlySigningRule, TicketAllowance};
pub use conference::{ConferenceSetup, ListedTicketType, SponsorTicketSource, TicketingConference};
pub use invoice::{Invoice, InvoiceStatus, NewInvoice};
pub use level::{LevelChanges, SponsorshipLevel};
pub use money::{Currency, Money};
pub use sponsor::{Contract, ContractStatus, NewSponsor, Sponsor};
pub use values::{CompanyName, EmailAddress, LevelName, PersonName, TicketCount};

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// Why a request was refused. Each variant maps to one `extensions.code` at the API edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidState(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }
}

/// Now, at the precision PostgreSQL stores, so a value read back equals the one written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Time-ordered ids keep keyset pagination in creation order without a separate sequence.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}
