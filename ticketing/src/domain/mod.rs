//! The ticketing domain: pure rules and values, no I/O. Inputs are parsed into these types at
//! the API edge ("parse, don't validate"), so storage and the rules below never see an
//! unchecked string or a negative quantity.

pub mod access;
pub mod conference;
pub mod money;
pub mod purchase;
pub mod ticket_type;
pub mod values;

pub use access::{Access, HeldPurchase, PurchaseTokens, WeakSecret};
pub use conference::{Conference, NewConference};
pub use money::{Currency, Money};
pub use purchase::{
    Attendee, NewTicketPurchase, Owned, PurchaseLimits, PurchaseLine, PurchaseLineRequest,
    PurchaseStatus, Purchaser, Ticket, TicketPurchase, UnpaidSeatCap,
};
pub use ticket_type::{NewTicketType, TicketType, TicketTypeChanges, Visibility};
pub use values::{ClientKey, EmailAddress, ExternalReference, IdempotencyKey, Name, Quantity};

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// Why a request was refused. Each variant maps to one `extensions.code` at the API edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("ticket type {ticket_type} has only {remaining} ticket(s) left")]
    SoldOut { ticket_type: Uuid, remaining: i64 },
    #[error("ticket type {0} is not on sale right now")]
    SaleClosed(Uuid),
    #[error("this idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error("externalReference {reference:?} was already used for ticket purchase {purchase_id}")]
    DuplicateExternalReference {
        reference: String,
        purchase_id: Uuid,
    },
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    Forbidden(String),
    /// One purchase would reserve more seats unpaid than the per-purchase cap allows.
    #[error(
        "one purchase may reserve at most {max} seat(s) awaiting payment; this one asks for {requested}"
    )]
    TooManyUnpaidSeatsInPurchase { max: i64, requested: i64 },
    /// An anonymous buyer would hold more unpaid seats than the per-buyer cap allows.
    #[error(
        "a buyer may hold at most {max} seat(s) awaiting payment at once; {held} are held from this address and this purchase asks for {requested}: pay for or cancel a reservation first"
    )]
    UnpaidSeatLimit { max: i64, held: i64, requested: i64 },
    /// The caller's access does not reach this existing object. Whether the API says so
    /// (`FORBIDDEN`) or answers as if it did not exist (`NOT_FOUND`) depends on whether the
    /// caller may see it at all: existence is never revealed to someone who may not read it.
    #[error("{0} belongs to another client")]
    NotYours(Owned),
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
