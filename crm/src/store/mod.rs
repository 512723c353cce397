//! Where the CRM's state lives: its own database, never shared with ticketing. One trait,
//! the operations the API and the allocation process need, each a single transaction that
//! also appends the events it causes and queues the bookings they make due; two dialects
//! (SQLite for the embedded default, PostgreSQL at scale) generated from one implementation.

mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::{
    AllocationReference, AllocationStatus, ConferenceSetup, DomainError, EarlySigningRule, Invoice,
    LevelChanges, NewInvoice, NewSponsor, Sponsor, SponsorTicketSource, SponsorshipLevel,
    TicketAllocation, TicketAllocationRequest, TicketCount,
};
use crate::events::SponsorEventKind;

pub use platform::Page;
pub use sql::connect;

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
    /// A write run to completion in a task of its own panicked or was stopped by shutdown.
    #[error(transparent)]
    Aborted(#[from] platform::database::WriteAborted),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

#[derive(Debug, Clone, Default)]
pub struct SponsorFilter {
    pub conference_id: Option<Uuid>,
    /// A level name, any letter case.
    pub level: Option<String>,
    pub onboarded: Option<bool>,
    pub allocation_status: Option<AllocationStatus>,
}

/// How one call to ticketing for a claimed request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Booked {
        purchase_id: Uuid,
    },
    /// Refused for good: stays FAILED until an admin retries.
    Failed {
        reason: String,
    },
    /// Worth another try at `next_attempt_at`.
    Retry {
        reason: String,
        next_attempt_at: DateTime<Utc>,
    },
}

/// Also its event log ([`platform::EventStorage`]), which the feed, the relay and the API read.
#[async_trait]
pub trait CrmStore: platform::EventStorage<Kind = SponsorEventKind, Error = StoreError> {
    async fn levels(&self) -> Result<Vec<SponsorshipLevel>, StoreError>;
    /// Changes a level; a changed allowance tops up (or flags) its onboarded sponsors.
    async fn update_level(
        &self,
        name: &str,
        changes: LevelChanges,
    ) -> Result<SponsorshipLevel, StoreError>;

    async fn conferences(&self) -> Result<Vec<ConferenceSetup>, StoreError>;
    async fn conference(&self, id: Uuid) -> Result<Option<ConferenceSetup>, StoreError>;
    /// Registers a conference ticketing vouched for (or refreshes it): from then on the CRM
    /// serves it.
    async fn configure_sponsor_tickets(
        &self,
        source: SponsorTicketSource,
    ) -> Result<ConferenceSetup, StoreError>;
    /// Only for a conference the CRM serves.
    async fn set_early_signing_rule(
        &self,
        conference_id: Uuid,
        rule: Option<EarlySigningRule>,
    ) -> Result<ConferenceSetup, StoreError>;

    /// Only for a conference the CRM serves.
    async fn create_sponsor(&self, new: NewSponsor) -> Result<Sponsor, StoreError>;
    async fn sponsor(&self, id: Uuid) -> Result<Option<Sponsor>, StoreError>;
    async fn sponsors(
        &self,
        filter: SponsorFilter,
        after: Option<Uuid>,
        first: i64,
    ) -> Result<Page<Sponsor>, StoreError>;
    async fn send_contract(&self, sponsor_id: Uuid) -> Result<Sponsor, StoreError>;
    async fn sign_contract(
        &self,
        sponsor_id: Uuid,
        signed_on: NaiveDate,
    ) -> Result<Sponsor, StoreError>;
    async fn cancel_contract(&self, sponsor_id: Uuid) -> Result<Sponsor, StoreError>;
    async fn change_level(&self, sponsor_id: Uuid, level: &str) -> Result<Sponsor, StoreError>;
    async fn set_allowance_override(
        &self,
        sponsor_id: Uuid,
        tickets: Option<TicketCount>,
    ) -> Result<Sponsor, StoreError>;

    /// Only for a sponsor whose contract is not cancelled, in its conference's currency.
    async fn issue_invoice(&self, new: NewInvoice) -> Result<Invoice, StoreError>;
    async fn mark_invoice_paid(&self, id: Uuid) -> Result<Invoice, StoreError>;
    async fn void_invoice(&self, id: Uuid) -> Result<Invoice, StoreError>;
    async fn invoice(&self, id: Uuid) -> Result<Option<Invoice>, StoreError>;
    async fn invoices_of(&self, sponsor_id: Uuid) -> Result<Vec<Invoice>, StoreError>;

    async fn allocation_of(&self, sponsor: &Sponsor) -> Result<TicketAllocation, StoreError>;
    /// The sponsor whose request recorded this purchase id (known once ticketing answered).
    async fn sponsor_for_purchase(&self, purchase_id: Uuid) -> Result<Option<Sponsor>, StoreError>;
    /// The sponsor behind the request `reference` names, if that request exists and has not
    /// recorded a purchase other than `purchase_id`: the answer is right even before ticketing's
    /// reply is recorded, and a reference presented with somebody else's purchase is not
    /// believed.
    async fn sponsor_for_reference(
        &self,
        reference: AllocationReference,
        purchase_id: Uuid,
    ) -> Result<Option<Sponsor>, StoreError>;
    /// Puts FAILED requests back in the queue and makes waiting ones due now.
    async fn retry_allocation(&self, sponsor_id: Uuid) -> Result<Sponsor, StoreError>;
    /// Leases up to `limit` due requests to `owner` (a lease id, fresh per claim) for
    /// `lease`, counting an attempt on
    /// each. A request leased to someone else is never returned until its lease lapses.
    async fn claim_due_requests(
        &self,
        owner: Uuid,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<TicketAllocationRequest>, StoreError>;
    /// Records the outcome if `owner` still holds the lease; `false` when it no longer does
    /// (then another worker owns the request and nothing is written).
    async fn finish_attempt(
        &self,
        request_id: Uuid,
        owner: Uuid,
        outcome: AttemptOutcome,
    ) -> Result<bool, StoreError>;
    /// When the earliest waiting request becomes due (or its lease lapses).
    async fn next_attempt_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Ticketing cancelled `purchase_id`: flags the request that booked it, once, and logs
    /// `TicketAllocationCancelled`. `None` when no request booked it (not a sponsor's purchase,
    /// or already flagged).
    async fn record_purchase_cancelled(
        &self,
        purchase_id: Uuid,
        reference: Option<AllocationReference>,
        cancelled_at: DateTime<Utc>,
    ) -> Result<Option<TicketAllocationRequest>, StoreError>;
    /// How many requests wait to be booked (PENDING, leased or not).
    async fn allocation_queue_depth(&self) -> Result<i64, StoreError>;
}

pub type SharedStore = Arc<dyn CrmStore>;
