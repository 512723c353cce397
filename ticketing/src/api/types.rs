//! GraphQL object types. Each wraps a domain value; fields that reach further (a purchase's
//! tickets, a line's ticket type) load through the store. Purchases and tickets remember the
//! access token they were reached with, so their private fields can tell a holder from a
//! stranger ([`policy`]).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

pub use platform::graphql::Date;

use super::context;
use super::errors::OrGraphQLError;
use super::policy;
use crate::domain::{self, Access, HeldPurchase};

pub use platform::graphql::MinorUnits;

/// An amount in minor units (cents) of an ISO 4217 currency.
// Shareable: other subgraphs (the CRM's invoices) define the same value type.
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
            "ticketing could not complete the request; it has been logged",
        )
    })
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// On sale to anyone.
    Public,
    /// Kept out of public stock; issued only by clients with `tickets:issue-complimentary`.
    Restricted,
}

impl From<domain::Visibility> for Visibility {
    fn from(v: domain::Visibility) -> Self {
        match v {
            domain::Visibility::Public => Self::Public,
            domain::Visibility::Restricted => Self::Restricted,
        }
    }
}

impl From<Visibility> for domain::Visibility {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => Self::Public,
            Visibility::Restricted => Self::Restricted,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketPurchaseStatus {
    /// Seats are reserved until `expiresAt`; payment has not arrived yet.
    PendingPayment,
    Paid,
    Cancelled,
    /// Payment did not arrive in time; the seats went back on sale.
    Expired,
}

impl From<domain::PurchaseStatus> for TicketPurchaseStatus {
    fn from(s: domain::PurchaseStatus) -> Self {
        match s {
            domain::PurchaseStatus::PendingPayment => Self::PendingPayment,
            domain::PurchaseStatus::Paid => Self::Paid,
            domain::PurchaseStatus::Cancelled => Self::Cancelled,
            domain::PurchaseStatus::Expired => Self::Expired,
        }
    }
}

impl From<TicketPurchaseStatus> for domain::PurchaseStatus {
    fn from(s: TicketPurchaseStatus) -> Self {
        match s {
            TicketPurchaseStatus::PendingPayment => Self::PendingPayment,
            TicketPurchaseStatus::Paid => Self::Paid,
            TicketPurchaseStatus::Cancelled => Self::Cancelled,
            TicketPurchaseStatus::Expired => Self::Expired,
        }
    }
}

/// A person: a purchaser or a ticket's attendee.
#[derive(SimpleObject, Debug, Clone)]
pub struct Person {
    pub name: String,
    pub email: String,
}

impl From<&domain::Purchaser> for Person {
    fn from(p: &domain::Purchaser) -> Self {
        Self {
            name: p.name.as_str().to_owned(),
            email: p.email.as_str().to_owned(),
        }
    }
}

#[derive(InputObject, Debug, Clone, serde::Serialize)]
pub struct PersonInput {
    pub name: String,
    pub email: String,
}

impl PersonInput {
    pub fn parse(&self, field: &str) -> Result<domain::Purchaser, domain::DomainError> {
        Ok(domain::Purchaser {
            name: domain::Name::parse(&format!("{field}.name"), &self.name)?,
            email: domain::EmailAddress::parse(&format!("{field}.email"), &self.email)?,
        })
    }
}

pub struct Conference(pub domain::Conference);

impl From<domain::Conference> for Conference {
    fn from(c: domain::Conference) -> Self {
        Self(c)
    }
}

#[Object]
impl Conference {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// Every ticket type of the conference is priced in this currency.
    async fn currency(&self) -> &str {
        self.0.currency.as_str()
    }

    async fn starts_on(&self) -> Date {
        Date(self.0.starts_on)
    }

    async fn ends_on(&self) -> Date {
        Date(self.0.ends_on)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Public ticket types; restricted ones too for `tickets:read` and
    /// `tickets:issue-complimentary`.
    async fn ticket_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TicketType>> {
        let access = policy::authorize(ctx, "Conference.ticketTypes")?;
        let types = context(ctx)?
            .store
            .ticket_types_of(self.0.id)
            .await
            .or_gql()?;
        Ok(types
            .into_iter()
            .filter(|t| is_visible_with(&access, t))
            .map(TicketType)
            .collect())
    }
}

/// Whether a ticket type is visible with the access the policy gave: restricted types are
/// invisible, not forbidden, to the public; their existence is private.
pub fn is_visible_with(access: &Access, t: &domain::TicketType) -> bool {
    t.visibility == domain::Visibility::Public || access.reaches_restricted()
}

pub struct TicketType(pub domain::TicketType);

impl From<domain::TicketType> for TicketType {
    fn from(t: domain::TicketType) -> Self {
        Self(t)
    }
}

#[Object]
impl TicketType {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn conference(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conference>> {
        Ok(context(ctx)?
            .store
            .conference(self.0.conference_id)
            .await
            .or_gql()?
            .map(Conference))
    }

    async fn name(&self) -> &str {
        self.0.name.as_str()
    }

    async fn price(&self) -> Money {
        self.0.price.into()
    }

    async fn capacity(&self) -> async_graphql::Result<i32> {
        int(self.0.capacity)
    }

    /// Seats taken: paid, or reserved and awaiting payment.
    async fn sold(&self) -> async_graphql::Result<i32> {
        int(self.0.sold)
    }

    async fn remaining(&self) -> async_graphql::Result<i32> {
        int(self.0.remaining())
    }

    async fn visibility(&self) -> Visibility {
        self.0.visibility.into()
    }

    async fn sale_starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.sale_starts_at
    }

    async fn sale_ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.sale_ends_at
    }

    /// Inside its sale window now (says nothing about remaining seats).
    async fn on_sale(&self) -> bool {
        self.0.is_on_sale_at(Utc::now())
    }
}

pub struct PurchaseLine(pub domain::PurchaseLine);

#[Object]
impl PurchaseLine {
    async fn ticket_type(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketType>> {
        Ok(context(ctx)?
            .store
            .ticket_type(self.0.ticket_type_id)
            .await
            .or_gql()?
            .map(TicketType))
    }

    async fn ticket_type_id(&self) -> ID {
        ID(self.0.ticket_type_id.to_string())
    }

    async fn quantity(&self) -> async_graphql::Result<i32> {
        int(self.0.quantity)
    }

    /// The price when the purchase was made.
    async fn unit_price(&self) -> Money {
        self.0.unit_price.into()
    }
}

/// A purchase as the API shows it.
pub struct TicketPurchase {
    pub purchase: domain::TicketPurchase,
    /// The access token the caller reached it with, if any: the holder sees the purchaser.
    held: Option<HeldPurchase>,
    /// The access token to hand out: only in the answer to the anonymous buyer who made it.
    issued_token: Option<String>,
}

impl From<domain::TicketPurchase> for TicketPurchase {
    fn from(purchase: domain::TicketPurchase) -> Self {
        Self {
            purchase,
            held: None,
            issued_token: None,
        }
    }
}

impl TicketPurchase {
    /// Reached with an access token.
    pub fn held(purchase: domain::TicketPurchase, held: Option<HeldPurchase>) -> Self {
        Self {
            held,
            ..Self::from(purchase)
        }
    }

    /// Just created by a buyer without a token, who gets its access token once.
    pub fn issued(purchase: domain::TicketPurchase, held: HeldPurchase, token: String) -> Self {
        Self {
            purchase,
            held: Some(held),
            issued_token: Some(token),
        }
    }
}

#[Object]
impl TicketPurchase {
    async fn id(&self) -> ID {
        ID(self.purchase.id.to_string())
    }

    async fn conference(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conference>> {
        Ok(context(ctx)?
            .store
            .conference(self.purchase.conference_id)
            .await
            .or_gql()?
            .map(Conference))
    }

    /// Who bought it. Null unless the caller has `tickets:read`, made the purchase, or
    /// holds its access token (e.g. for an `events:read`-only dashboard).
    async fn purchaser(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        let access = policy::field_access(ctx, "TicketPurchase.purchaser", self.held)?;
        Ok(access
            .filter(|a| a.covers(&self.purchase))
            .map(|_| Person::from(&self.purchase.purchaser)))
    }

    async fn lines(&self) -> Vec<PurchaseLine> {
        self.purchase
            .lines
            .iter()
            .cloned()
            .map(PurchaseLine)
            .collect()
    }

    async fn status(&self) -> TicketPurchaseStatus {
        self.purchase.status.into()
    }

    async fn complimentary(&self) -> bool {
        self.purchase.complimentary
    }

    async fn total(&self) -> Money {
        self.purchase.total.into()
    }

    async fn ticket_count(&self) -> async_graphql::Result<i32> {
        int(self.purchase.ticket_count())
    }

    /// The client's own reference, opaque to ticketing.
    async fn external_reference(&self) -> Option<&str> {
        self.purchase
            .external_reference
            .as_ref()
            .map(|r| r.as_str())
    }

    /// The credential of a purchase made without a bearer token: pass it as `accessToken`
    /// to read (`ticketPurchase`, `ticket`), cancel or assign it; the id alone opens
    /// nothing. Returned once, in the `createTicketPurchase` answer to a buyer without a
    /// token (a retry with the same idempotency key returns it again); null everywhere else.
    async fn access_token(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        let access = policy::field_access(ctx, "TicketPurchase.accessToken", self.held)?;
        Ok(access
            .filter(|a| a.covers(&self.purchase))
            .and(self.issued_token.as_deref()))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.purchase.created_at
    }

    /// When an unpaid reservation lapses.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.purchase.expires_at
    }

    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.purchase.paid_at
    }

    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.purchase.cancelled_at
    }

    async fn expired_at(&self) -> Option<DateTime<Utc>> {
        self.purchase.expired_at
    }

    /// One ticket per seat.
    async fn tickets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Ticket>> {
        Ok(context(ctx)?
            .store
            .tickets_of(self.purchase.id)
            .await
            .or_gql()?
            .into_iter()
            .map(|t| Ticket::held(t, self.held))
            .collect())
    }
}

/// A ticket as the API shows it.
pub struct Ticket {
    pub ticket: domain::Ticket,
    /// The access token the caller reached it with, if any: the holder sees the attendee.
    held: Option<HeldPurchase>,
}

impl From<domain::Ticket> for Ticket {
    fn from(ticket: domain::Ticket) -> Self {
        Self { ticket, held: None }
    }
}

impl Ticket {
    pub fn held(ticket: domain::Ticket, held: Option<HeldPurchase>) -> Self {
        Self { ticket, held }
    }
}

#[Object]
impl Ticket {
    async fn id(&self) -> ID {
        ID(self.ticket.id.to_string())
    }

    async fn ticket_type(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketType>> {
        Ok(context(ctx)?
            .store
            .ticket_type(self.ticket.ticket_type_id)
            .await
            .or_gql()?
            .map(TicketType))
    }

    /// The purchase it belongs to: whoever reached the ticket reaches its purchase.
    async fn purchase(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketPurchase>> {
        Ok(context(ctx)?
            .store
            .purchase(self.ticket.purchase_id, &Access::Any)
            .await
            .or_gql()?
            .map(|p| TicketPurchase::held(p, self.held)))
    }

    async fn purchase_id(&self) -> ID {
        ID(self.ticket.purchase_id.to_string())
    }

    /// Who will attend on this ticket, once assigned. Null unless the caller has
    /// `tickets:read`, made the purchase, or holds its access token.
    async fn attendee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Person>> {
        let access = policy::field_access(ctx, "Ticket.attendee", self.held)?;
        Ok(access
            .filter(|a| a.covers_ticket(&self.ticket))
            .and(self.ticket.attendee.as_ref())
            .map(Person::from))
    }

    async fn assigned_at(&self) -> Option<DateTime<Utc>> {
        self.ticket.assigned_at
    }
}
