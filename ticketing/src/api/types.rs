//! GraphQL object types. Each wraps a domain value; fields that reach further (a purchase's
//! tickets, a line's ticket type) load through the store.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

pub use platform::graphql::Date;

use super::auth;
use super::context;
use super::errors::OrGraphQLError;
use crate::domain;

/// An amount in minor units (cents) of an ISO 4217 currency.
// Shareable: other subgraphs (the CRM's invoices) define the same value type.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(shareable)]
pub struct Money {
    /// Minor units: 1999 is 19.99 in a currency with cents.
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl From<domain::Money> for Money {
    fn from(m: domain::Money) -> Self {
        Self {
            amount: m.amount,
            currency: m.currency.as_str().to_owned(),
        }
    }
}

/// Money as a client sends it: minor units and an ISO 4217 code.
#[derive(InputObject, Debug, Clone, serde::Serialize)]
pub struct MoneyInput {
    pub amount: i64,
    pub currency: String,
}

impl MoneyInput {
    pub fn parse(&self) -> Result<domain::Money, domain::DomainError> {
        domain::Money::new(self.amount, domain::Currency::parse(&self.currency)?)
    }
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

    /// Public ticket types; restricted ones too for clients that may issue them.
    async fn ticket_types(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TicketType>> {
        let principal = auth::principal(ctx);
        let types = context(ctx)?
            .store
            .ticket_types_of(self.0.id)
            .await
            .or_gql()?;
        Ok(types
            .into_iter()
            .filter(|t| may_see_ticket_type(&principal, t))
            .map(TicketType)
            .collect())
    }
}

pub fn may_see_ticket_type(principal: &platform::Principal, t: &domain::TicketType) -> bool {
    t.visibility == domain::Visibility::Public
        || auth::is_privileged(principal)
        || auth::can_read_all_purchases(principal)
}

pub struct TicketType(pub domain::TicketType);

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

    async fn capacity(&self) -> i64 {
        self.0.capacity
    }

    /// Seats taken: paid, or reserved and awaiting payment.
    async fn sold(&self) -> i64 {
        self.0.sold
    }

    async fn remaining(&self) -> i64 {
        self.0.remaining()
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

    async fn quantity(&self) -> i64 {
        self.0.quantity
    }

    /// The price when the purchase was made.
    async fn unit_price(&self) -> Money {
        self.0.unit_price.into()
    }
}

pub struct TicketPurchase(pub domain::TicketPurchase);

#[Object]
impl TicketPurchase {
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

    async fn purchaser(&self) -> Person {
        (&self.0.purchaser).into()
    }

    async fn lines(&self) -> Vec<PurchaseLine> {
        self.0.lines.iter().cloned().map(PurchaseLine).collect()
    }

    async fn status(&self) -> TicketPurchaseStatus {
        self.0.status.into()
    }

    async fn complimentary(&self) -> bool {
        self.0.complimentary
    }

    async fn total(&self) -> Money {
        self.0.total.into()
    }

    async fn ticket_count(&self) -> i64 {
        self.0.ticket_count()
    }

    /// The client's own reference, opaque to ticketing.
    async fn external_reference(&self) -> Option<&str> {
        self.0.external_reference.as_ref().map(|r| r.as_str())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When an unpaid reservation lapses.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    async fn paid_at(&self) -> Option<DateTime<Utc>> {
        self.0.paid_at
    }

    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }

    async fn expired_at(&self) -> Option<DateTime<Utc>> {
        self.0.expired_at
    }

    /// One ticket per seat.
    async fn tickets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Ticket>> {
        Ok(context(ctx)?
            .store
            .tickets_of(self.0.id)
            .await
            .or_gql()?
            .into_iter()
            .map(Ticket)
            .collect())
    }
}

pub struct Ticket(pub domain::Ticket);

#[Object]
impl Ticket {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn ticket_type(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketType>> {
        Ok(context(ctx)?
            .store
            .ticket_type(self.0.ticket_type_id)
            .await
            .or_gql()?
            .map(TicketType))
    }

    async fn purchase(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TicketPurchase>> {
        Ok(context(ctx)?
            .store
            .purchase(self.0.purchase_id)
            .await
            .or_gql()?
            .map(TicketPurchase))
    }

    async fn purchase_id(&self) -> ID {
        ID(self.0.purchase_id.to_string())
    }

    /// Who will attend on this ticket, once assigned.
    async fn attendee(&self) -> Option<Person> {
        self.0.attendee.as_ref().map(Person::from)
    }

    async fn assigned_at(&self) -> Option<DateTime<Utc>> {
        self.0.assigned_at
    }
}
