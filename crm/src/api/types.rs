//! GraphQL object types. Each wraps a domain value; fields that reach further (a sponsor's
//! invoices, its allocation) load through the store.

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

pub use platform::graphql::Date;

use super::context;
use super::errors::OrGraphQLError;
use super::policy;
use crate::allocation::TICKETING_NOT_CONFIGURED;
use crate::domain::{self, allocation::RequestStatus};
pub use platform::graphql::MinorUnits;

/// An amount in minor units (cents) of an ISO 4217 currency.
// Shareable: ticketing defines the same value type; name, fields and descriptions match
// ticketing's so the gateway composes them.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(shareable)]
pub struct Money {
    /// Minor units: 1999 is 19.99 in a currency with cents.
    pub amount: MinorUnits,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl From<domain::Money> for Money {
    fn from(m: domain::Money) -> Self {
        Self {
            amount: MinorUnits(m.amount),
            currency: m.currency.as_str().to_owned(),
        }
    }
}

/// Money as a client sends it: minor units and an ISO 4217 code.
#[derive(InputObject, Debug, Clone)]
pub struct MoneyInput {
    pub amount: MinorUnits,
    pub currency: String,
}

impl MoneyInput {
    pub fn parse(&self) -> Result<domain::Money, domain::DomainError> {
        domain::Money::new(self.amount.0, domain::Currency::parse(&self.currency)?)
    }
}

/// A count the API returns as a GraphQL `Int`, which the spec limits to 32 bits. The domain
/// keeps counts far below that; this refuses to send one that is not.
pub fn int(value: i64) -> async_graphql::Result<i32> {
    i32::try_from(value).map_err(|_| {
        tracing::error!(value, "a count does not fit a GraphQL Int");
        platform::graphql::coded_error(
            "INTERNAL_SERVER_ERROR",
            "the CRM could not complete the request; it has been logged",
        )
    })
}

pub struct SponsorshipLevel(pub domain::SponsorshipLevel);

#[Object]
impl SponsorshipLevel {
    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    async fn price(&self) -> Money {
        self.0.price.into()
    }

    /// Complimentary tickets a sponsor at this level gets.
    async fn ticket_allowance(&self) -> async_graphql::Result<i32> {
        int(self.0.ticket_allowance.get())
    }

    /// 1 is the most valuable level.
    async fn rank(&self) -> async_graphql::Result<i32> {
        int(self.0.rank)
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractStatus {
    Draft,
    Sent,
    Signed,
    Cancelled,
}

impl From<domain::ContractStatus> for ContractStatus {
    fn from(s: domain::ContractStatus) -> Self {
        match s {
            domain::ContractStatus::Draft => Self::Draft,
            domain::ContractStatus::Sent => Self::Sent,
            domain::ContractStatus::Signed => Self::Signed,
            domain::ContractStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// The sponsorship contract: DRAFT -> SENT -> SIGNED, or CANCELLED before signing.
pub struct Contract(pub domain::Contract);

#[Object]
impl Contract {
    async fn status(&self) -> ContractStatus {
        self.0.status.into()
    }

    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }

    async fn signed_at(&self) -> Option<DateTime<Utc>> {
        self.0.signed_at
    }

    /// The signing date the allocation date rule looks at.
    async fn signed_on(&self) -> Option<Date> {
        self.0.signed_on.map(Date)
    }

    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Issued,
    Paid,
    Void,
}

impl From<domain::InvoiceStatus> for InvoiceStatus {
    fn from(s: domain::InvoiceStatus) -> Self {
        match s {
            domain::InvoiceStatus::Issued => Self::Issued,
            domain::InvoiceStatus::Paid => Self::Paid,
            domain::InvoiceStatus::Void => Self::Void,
        }
    }
}

pub struct Invoice(pub domain::Invoice);

#[Object]
impl Invoice {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn sponsor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Sponsor>> {
        Ok(context(ctx)?
            .store
            .sponsor(self.0.sponsor_id)
            .await
            .or_gql()?
            .map(Sponsor))
    }

    async fn amount(&self) -> Money {
        self.0.amount.into()
    }

    async fn due_on(&self) -> Date {
        Date(self.0.due_on)
    }

    async fn status(&self) -> InvoiceStatus {
        self.0.status.into()
    }

    async fn issued_at(&self) -> DateTime<Utc> {
        self.0.issued_at
    }

    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }

    async fn voided_at(&self) -> Option<DateTime<Utc>> {
        self.0.voided_at
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketAllocationStatus {
    /// Not onboarded yet, or nothing to book.
    NotDue,
    /// A booking is queued or waiting for its next attempt.
    Pending,
    /// Every ticket requested is booked in ticketing.
    Booked,
    /// Ticketing refused a booking for good; see `reason`, fix it, `retryTicketAllocation`.
    Failed,
}

impl From<domain::AllocationStatus> for TicketAllocationStatus {
    fn from(s: domain::AllocationStatus) -> Self {
        match s {
            domain::AllocationStatus::NotDue => Self::NotDue,
            domain::AllocationStatus::Pending => Self::Pending,
            domain::AllocationStatus::Booked => Self::Booked,
            domain::AllocationStatus::Failed => Self::Failed,
        }
    }
}

impl From<TicketAllocationStatus> for domain::AllocationStatus {
    fn from(s: TicketAllocationStatus) -> Self {
        match s {
            TicketAllocationStatus::NotDue => Self::NotDue,
            TicketAllocationStatus::Pending => Self::Pending,
            TicketAllocationStatus::Booked => Self::Booked,
            TicketAllocationStatus::Failed => Self::Failed,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketAllocationRequestStatus {
    Pending,
    Booked,
    Failed,
}

impl From<RequestStatus> for TicketAllocationRequestStatus {
    fn from(s: RequestStatus) -> Self {
        match s {
            RequestStatus::Pending => Self::Pending,
            RequestStatus::Booked => Self::Booked,
            RequestStatus::Failed => Self::Failed,
        }
    }
}

/// How the allowance was reached.
#[derive(SimpleObject, Debug, Clone)]
pub struct TicketAllowance {
    /// The sponsorship level's allowance.
    pub from_level: i32,
    /// Extra tickets from the conference's early-signing rule.
    pub early_signing_bonus: i32,
    /// An admin's override, which replaces the two above.
    pub overridden: Option<i32>,
    pub total: i32,
}

impl TicketAllowance {
    fn from_domain(a: domain::TicketAllowance) -> async_graphql::Result<Self> {
        Ok(Self {
            from_level: int(a.from_level)?,
            early_signing_bonus: int(a.early_signing_bonus)?,
            overridden: a.overridden.map(int).transpose()?,
            total: int(a.total)?,
        })
    }
}

/// One booking in ticketing: the first, or a top-up after the allowance grew.
pub struct TicketAllocationRequest(pub domain::TicketAllocationRequest);

#[Object]
impl TicketAllocationRequest {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn sponsor_id(&self) -> ID {
        ID(self.0.sponsor_id.to_string())
    }

    /// 1 for the first booking, then 2, 3, … for top-ups.
    async fn seq(&self) -> async_graphql::Result<i32> {
        int(self.0.seq)
    }

    async fn quantity(&self) -> async_graphql::Result<i32> {
        int(self.0.quantity)
    }

    /// The purchase's `externalReference` in ticketing.
    async fn external_reference(&self) -> &str {
        &self.0.external_reference
    }

    async fn status(&self) -> TicketAllocationRequestStatus {
        self.0.status.into()
    }

    /// Calls made to ticketing (since an admin's last retry).
    async fn attempts(&self) -> async_graphql::Result<i32> {
        int(self.0.attempts)
    }

    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == RequestStatus::Pending).then_some(self.0.next_attempt_at)
    }

    async fn last_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_attempt_at
    }

    /// Why it failed, or why the last attempt did not book.
    async fn reason(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    async fn purchase(&self) -> Option<TicketPurchase> {
        self.0.purchase_id.map(TicketPurchase::reference)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn booked_at(&self) -> Option<DateTime<Utc>> {
        self.0.booked_at
    }

    /// When ticketing cancelled the purchase this request booked.
    async fn purchase_cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.purchase_cancelled_at
    }
}

/// A sponsor's complimentary tickets: how many are due, how many ticketing holds, and where
/// the booking stands.
pub struct TicketAllocation {
    pub allocation: domain::TicketAllocation,
    pub ticketing_configured: bool,
}

#[Object]
impl TicketAllocation {
    async fn status(&self) -> TicketAllocationStatus {
        self.allocation.status.into()
    }

    /// Tickets the sponsor is entitled to now.
    async fn tickets_allowed(&self) -> async_graphql::Result<i32> {
        int(self.allocation.allowance.total)
    }

    async fn allowance(&self) -> async_graphql::Result<TicketAllowance> {
        TicketAllowance::from_domain(self.allocation.allowance)
    }

    /// Tickets ticketing holds for the sponsor.
    async fn tickets_booked(&self) -> async_graphql::Result<i32> {
        int(self.allocation.tickets_booked())
    }

    /// Tickets asked of ticketing so far, booked or not.
    async fn tickets_requested(&self) -> async_graphql::Result<i32> {
        int(self.allocation.tickets_requested())
    }

    /// Tickets requested beyond the current allowance (it shrank after booking). Nothing is
    /// cancelled automatically: an admin decides.
    async fn excess_tickets(&self) -> async_graphql::Result<i32> {
        int(self.allocation.excess_tickets())
    }

    /// True when the allowance shrank below what was booked or requested, or ticketing
    /// cancelled a purchase booked for the sponsor.
    async fn needs_review(&self) -> bool {
        self.allocation.excess_tickets() > 0 || !self.allocation.cancelled_purchase_ids().is_empty()
    }

    /// Purchases booked for the sponsor that ticketing has since cancelled. Nothing is
    /// re-booked automatically: an admin decides.
    async fn cancelled_purchase_ids(&self) -> Vec<ID> {
        self.allocation
            .cancelled_purchase_ids()
            .into_iter()
            .map(|id| ID(id.to_string()))
            .collect()
    }

    /// Calls to ticketing for the bookings not yet booked.
    async fn attempts(&self) -> async_graphql::Result<i32> {
        int(self
            .allocation
            .requests
            .iter()
            .filter(|r| r.status != RequestStatus::Booked)
            .map(|r| r.attempts)
            .sum())
    }

    /// Why the allocation is not (yet) booked: the refusal of a FAILED booking, the last
    /// transient error of a PENDING one, or that ticketing is not configured.
    async fn reason(&self) -> Option<String> {
        let open = |status| {
            self.allocation
                .requests
                .iter()
                .filter(move |r| r.status == status)
                .find_map(|r| r.last_error.clone())
        };
        open(RequestStatus::Failed).or_else(|| {
            let pending = self
                .allocation
                .requests
                .iter()
                .any(|r| r.status == RequestStatus::Pending);
            if pending && !self.ticketing_configured {
                Some(TICKETING_NOT_CONFIGURED.to_owned())
            } else {
                open(RequestStatus::Pending)
            }
        })
    }

    /// Ids of the purchases in ticketing.
    async fn purchase_ids(&self) -> Vec<ID> {
        self.allocation
            .requests
            .iter()
            .filter_map(|r| r.purchase_id)
            .map(|id| ID(id.to_string()))
            .collect()
    }

    async fn requests(&self) -> Vec<TicketAllocationRequest> {
        self.allocation
            .requests
            .iter()
            .cloned()
            .map(TicketAllocationRequest)
            .collect()
    }
}

pub struct Sponsor(pub domain::Sponsor);

#[Object]
impl Sponsor {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Ticketing's id of the conference sponsored.
    async fn conference_id(&self) -> ID {
        ID(self.0.conference_id.to_string())
    }

    /// The company's name.
    async fn name(&self) -> &str {
        self.0.company.as_str()
    }

    /// The contact person at the sponsor. Personal data: null unless the caller has
    /// `crm:write`.
    async fn contact_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(policy::visible(ctx, "Sponsor.contactName")?.then(|| self.0.contact_name.as_str()))
    }

    /// Tickets are booked with this contact as the purchaser. Personal data: null unless the
    /// caller has `crm:write`.
    async fn contact_email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(policy::visible(ctx, "Sponsor.contactEmail")?.then(|| self.0.contact_email.as_str()))
    }

    async fn level(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SponsorshipLevel>> {
        let levels = context(ctx)?.store.levels().await.or_gql()?;
        Ok(levels
            .into_iter()
            .find(|l| l.name == self.0.level)
            .map(SponsorshipLevel))
    }

    async fn ticket_allowance_override(&self) -> async_graphql::Result<Option<i32>> {
        self.0
            .ticket_allowance_override
            .map(|t| int(t.get()))
            .transpose()
    }

    async fn contract(&self) -> Contract {
        Contract(self.0.contract.clone())
    }

    async fn invoices(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Invoice>> {
        Ok(context(ctx)?
            .store
            .invoices_of(self.0.id)
            .await
            .or_gql()?
            .into_iter()
            .map(Invoice)
            .collect())
    }

    /// Contract signed and every invoice that was not voided paid.
    async fn onboarded(&self) -> bool {
        self.0.is_onboarded()
    }

    async fn onboarded_at(&self) -> Option<DateTime<Utc>> {
        self.0.onboarded_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn ticket_allocation(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<TicketAllocation> {
        let api = context(ctx)?;
        let allocation = api.store.allocation_of(&self.0).await.or_gql()?;
        Ok(TicketAllocation {
            allocation,
            ticketing_configured: api.ticketing_configured(),
        })
    }

    /// The sponsor's complimentary purchases in ticketing, resolved there through the gateway.
    async fn ticket_purchases(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<TicketPurchase>> {
        let allocation = context(ctx)?.store.allocation_of(&self.0).await.or_gql()?;
        Ok(allocation
            .requests
            .iter()
            .filter_map(|r| r.purchase_id)
            .map(TicketPurchase::reference)
            .collect())
    }
}

/// Ticketing's purchase, extended with the sponsor it was issued for. The CRM only holds its
/// key; every other field comes from ticketing.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct TicketPurchase {
    pub id: ID,
    // Ticketing's field, never served from here: the gateway fetches it from ticketing and
    // hands it over in the `_entities` representation because `sponsor` requires it. `None`
    // when it was not handed over (a purchase reached through the CRM's own fields) or the
    // purchase has none. No doc comment, so ticketing's description is the only one.
    #[graphql(external)]
    pub external_reference: Option<String>,
}

impl TicketPurchase {
    /// A purchase the CRM reached through its own records, knowing only the id.
    pub fn reference(id: uuid::Uuid) -> Self {
        Self {
            id: ID(id.to_string()),
            external_reference: None,
        }
    }
}

#[ComplexObject]
impl TicketPurchase {
    /// The sponsor whose complimentary tickets these are; null for any other purchase.
    // Ticketing publishes `TicketPurchaseCreated` as it commits, often before the CRM has
    // recorded the purchase id from ticketing's reply. The `externalReference` the CRM chose
    // for the booking exists from the start, so it is read first; the recorded id covers
    // purchases reached without it.
    #[graphql(requires = "externalReference")]
    async fn sponsor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Sponsor>> {
        policy::authorize(ctx, "TicketPurchase.sponsor")?;
        let Ok(id) = uuid::Uuid::parse_str(self.id.as_str()) else {
            return Ok(None);
        };
        let store = &context(ctx)?.store;
        let reference = self
            .external_reference
            .as_deref()
            .and_then(domain::AllocationReference::parse);
        let sponsor = match reference {
            Some(reference) => store.sponsor_for_reference(reference, id).await,
            None => store.sponsor_for_purchase(id).await,
        };
        Ok(sponsor.or_gql()?.map(Sponsor))
    }
}

/// Extra tickets for contracts signed before a date.
#[derive(SimpleObject, Debug, Clone)]
pub struct EarlySigningRule {
    /// Contracts signed strictly before this day earn the extra tickets.
    pub signed_before: Date,
    pub extra_tickets: i32,
}

/// A conference the CRM serves, with its sponsor-ticket settings.
pub struct SponsorConference(pub domain::ConferenceSetup);

#[Object]
impl SponsorConference {
    /// Ticketing's conference id.
    async fn conference_id(&self) -> ID {
        ID(self.0.conference_id.to_string())
    }

    /// The restricted ticket type in ticketing that sponsor tickets are issued from.
    async fn sponsor_ticket_type_id(&self) -> Option<ID> {
        self.0.sponsor_ticket_type_id.map(|id| ID(id.to_string()))
    }

    /// The ISO 4217 currency the conference sells in, learned from ticketing when it was
    /// registered: its sponsors are invoiced in it. Null for a conference an earlier version
    /// recorded without asking ticketing, which the CRM no longer serves until an admin
    /// registers it again (`configureSponsorTickets`).
    async fn currency(&self) -> Option<&str> {
        self.0.currency.as_ref().map(|c| c.as_str())
    }

    async fn early_signing_rule(&self) -> async_graphql::Result<Option<EarlySigningRule>> {
        self.0
            .early_signing
            .map(|r| {
                Ok(EarlySigningRule {
                    signed_before: Date(r.signed_before),
                    extra_tickets: int(r.extra_tickets.get())?,
                })
            })
            .transpose()
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
