//! Where ticketing's state lives. One trait, the operations the API needs, each a single
//! transaction that also appends the events it causes; two dialects (SQLite for the embedded
//! default, PostgreSQL at scale) generated from one implementation.

mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{
    Access, Attendee, Conference, DomainError, NewConference, NewTicketPurchase, NewTicketType,
    PurchaseStatus, Ticket, TicketPurchase, TicketType, TicketTypeChanges,
};
use crate::events::TicketEventKind;

pub use platform::Page;
pub use sql::{SqlStore, connect};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Opening the database: a bad URL, an unreachable server, a failed migration.
    #[error(transparent)]
    Open(#[from] platform::database::OpenError),
    #[error(transparent)]
    EventLog(#[from] platform::event_log::EventLogError),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Aborted(#[from] platform::database::WriteAborted),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct PurchaseFilter {
    pub conference_id: Option<Uuid>,
    pub status: Option<PurchaseStatus>,
    pub external_reference: Option<String>,
    /// Which purchases the caller may list at all (its own, without `tickets:read`).
    pub access: Access,
}

#[derive(Debug, Clone)]
pub struct PurchaseOutcome {
    pub purchase: TicketPurchase,
    /// The request repeated an idempotency key: nothing was created.
    pub replayed: bool,
}

/// Also its event log ([`platform::EventStorage`]), which the feed, the relay and the API read.
#[async_trait]
pub trait TicketStore: platform::EventStorage<Kind = TicketEventKind, Error = StoreError> {
    async fn create_conference(&self, new: NewConference) -> Result<Conference, StoreError>;
    async fn conference(&self, id: Uuid) -> Result<Option<Conference>, StoreError>;
    async fn conferences(
        &self,
        after: Option<Uuid>,
        first: i64,
    ) -> Result<Page<Conference>, StoreError>;

    async fn create_ticket_type(&self, new: NewTicketType) -> Result<TicketType, StoreError>;
    async fn update_ticket_type(
        &self,
        id: Uuid,
        changes: TicketTypeChanges,
    ) -> Result<TicketType, StoreError>;
    async fn ticket_type(&self, id: Uuid) -> Result<Option<TicketType>, StoreError>;
    async fn ticket_types_of(&self, conference_id: Uuid) -> Result<Vec<TicketType>, StoreError>;

    /// Takes the seats and records the purchase, or replays the first result of the same
    /// idempotency key, in one transaction.
    async fn create_purchase(
        &self,
        request: NewTicketPurchase,
        reservation_ttl: Duration,
    ) -> Result<PurchaseOutcome, StoreError>;
    /// The purchase, if it exists and `access` reaches it.
    async fn purchase(
        &self,
        id: Uuid,
        access: &Access,
    ) -> Result<Option<TicketPurchase>, StoreError>;
    async fn purchases(
        &self,
        filter: PurchaseFilter,
        after: Option<Uuid>,
        first: i64,
    ) -> Result<Page<TicketPurchase>, StoreError>;
    async fn confirm_payment(&self, id: Uuid) -> Result<TicketPurchase, StoreError>;
    /// Cancels the purchase if `access` reaches it and may cancel it in its status
    /// ([`TicketPurchase::cancel`]), decided by the `UPDATE` itself.
    async fn cancel_purchase(&self, id: Uuid, access: Access)
    -> Result<TicketPurchase, StoreError>;
    /// Expires unpaid reservations whose time is up and returns their seats.
    async fn expire_due_reservations(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    async fn purge_idempotency_keys(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// The tickets of a purchase the caller has already reached.
    async fn tickets_of(&self, purchase_id: Uuid) -> Result<Vec<Ticket>, StoreError>;
    /// The ticket, if it exists and `access` reaches its purchase.
    async fn ticket(&self, id: Uuid, access: &Access) -> Result<Option<Ticket>, StoreError>;
    /// Names the attendee if `access` reaches the ticket's purchase and it holds its seats
    /// ([`Ticket::assign`]), decided by the `UPDATE` itself.
    async fn assign_ticket(
        &self,
        id: Uuid,
        attendee: Attendee,
        access: Access,
    ) -> Result<Ticket, StoreError>;
}

pub type SharedStore = Arc<dyn TicketStore>;
