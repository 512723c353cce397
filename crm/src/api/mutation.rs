use async_graphql::{Context, ID, InputObject, Object};
use uuid::Uuid;

use super::auth;
use super::context;
use super::errors::{OrGraphQLError, parse_id};
use super::types::{Date, Invoice, MoneyInput, Sponsor, SponsorConference, SponsorshipLevel};
use crate::domain::{
    self, CompanyName, DomainError, EarlySigningRule, EmailAddress, LevelChanges, LevelName,
    NewInvoice, NewSponsor, PersonName, TicketCount,
};
use crate::store::SharedStore;

pub struct Mutation;

/// The store and sponsor id for a mutation on one sponsor, once the caller is known to hold
/// `scope`: the checks every such mutation makes first, in the same order.
fn sponsor_target<'c>(
    ctx: &'c Context<'_>,
    scope: &str,
    sponsor_id: &ID,
) -> async_graphql::Result<(&'c SharedStore, Uuid)> {
    auth::require_in(ctx, scope)?;
    let id = parse_id("sponsor", sponsor_id)?;
    Ok((&context(ctx)?.store, id))
}

#[derive(InputObject)]
pub struct CreateSponsorInput {
    /// The company's name.
    pub name: String,
    /// A sponsorship level by name (`Gold`, `Silver`, `Bronze`, …), any letter case.
    pub level: String,
    pub contact_name: String,
    /// Complimentary tickets are booked with this address as the purchaser.
    pub contact_email: String,
    /// Ticketing's conference id; may be left out while the CRM serves one conference.
    pub conference_id: Option<ID>,
}

#[derive(InputObject)]
pub struct IssueInvoiceInput {
    pub sponsor_id: ID,
    pub amount: MoneyInput,
    pub due_on: Date,
}

/// Fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateSponsorshipLevelInput {
    pub price: Option<MoneyInput>,
    pub ticket_allowance: Option<i64>,
}

#[derive(InputObject)]
pub struct ConfigureSponsorTicketsInput {
    /// Ticketing's conference id.
    pub conference_id: ID,
    /// A restricted ticket type of that conference in ticketing.
    pub ticket_type_id: ID,
}

#[derive(InputObject)]
pub struct SetEarlySigningRuleInput {
    pub conference_id: ID,
    /// Contracts signed strictly before this day earn `extraTickets`; null removes the rule.
    pub signed_before: Option<Date>,
    #[graphql(default = 1)]
    pub extra_tickets: i64,
}

#[Object]
impl Mutation {
    /// Records a sponsor with a DRAFT contract. Needs `crm:write`.
    async fn create_sponsor(
        &self,
        ctx: &Context<'_>,
        input: CreateSponsorInput,
    ) -> async_graphql::Result<Sponsor> {
        auth::require_in(ctx, auth::WRITE)?;
        let conference_id = input
            .conference_id
            .as_ref()
            .map(|id| parse_id("conference", id))
            .transpose()?;
        let new = (|| {
            Ok::<_, DomainError>(NewSponsor {
                conference_id,
                company: CompanyName::parse("name", &input.name)?,
                contact_name: PersonName::parse("contactName", &input.contact_name)?,
                contact_email: EmailAddress::parse("contactEmail", &input.contact_email)?,
                level: LevelName::parse("level", &input.level)?.as_str().to_owned(),
            })
        })()
        .or_gql()?;
        let sponsor = context(ctx)?.store.create_sponsor(new).await.or_gql()?;
        Ok(Sponsor(sponsor))
    }

    /// DRAFT -> SENT. Sending again changes nothing. Needs `crm:write`.
    async fn send_contract(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, auth::WRITE, &sponsor_id)?;
        Ok(Sponsor(store.send_contract(id).await.or_gql()?))
    }

    /// SENT -> SIGNED, on `signedOn` (today when left out; never in the future). With every
    /// invoice paid this onboards the sponsor. Needs `crm:write`.
    async fn sign_contract(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
        signed_on: Option<Date>,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, auth::WRITE, &sponsor_id)?;
        let today = domain::now().date_naive();
        let signed_on = signed_on.map_or(today, |d| d.0);
        if signed_on > today {
            return Err(DomainError::invalid(format!(
                "signedOn {signed_on} is in the future"
            )))
            .or_gql();
        }
        Ok(Sponsor(store.sign_contract(id, signed_on).await.or_gql()?))
    }

    /// DRAFT or SENT -> CANCELLED. Needs `crm:write`.
    async fn cancel_contract(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, auth::WRITE, &sponsor_id)?;
        Ok(Sponsor(store.cancel_contract(id).await.or_gql()?))
    }

    /// A new ISSUED invoice. Needs `crm:write`.
    async fn issue_invoice(
        &self,
        ctx: &Context<'_>,
        input: IssueInvoiceInput,
    ) -> async_graphql::Result<Invoice> {
        auth::require_in(ctx, auth::WRITE)?;
        let sponsor_id = parse_id("sponsor", &input.sponsor_id)?;
        let new =
            (|| NewInvoice::new(sponsor_id, input.amount.parse()?, input.due_on.0))().or_gql()?;
        Ok(Invoice(
            context(ctx)?.store.issue_invoice(new).await.or_gql()?,
        ))
    }

    /// ISSUED -> PAID; paying the last open invoice of a signed sponsor onboards it and
    /// queues its ticket booking. Paying again changes nothing. Needs `crm:write`.
    async fn mark_invoice_paid(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        auth::require_in(ctx, auth::WRITE)?;
        let id = parse_id("invoice", &id)?;
        Ok(Invoice(
            context(ctx)?.store.mark_invoice_paid(id).await.or_gql()?,
        ))
    }

    /// ISSUED -> VOID: the invoice no longer counts for onboarding. Needs `crm:write`.
    async fn void_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        auth::require_in(ctx, auth::WRITE)?;
        let id = parse_id("invoice", &id)?;
        Ok(Invoice(
            context(ctx)?.store.void_invoice(id).await.or_gql()?,
        ))
    }

    /// Moves a sponsor to another level. After onboarding, a larger allowance books the
    /// difference once; a smaller one is flagged (`ticketAllocation.needsReview`) and books
    /// nothing. Needs `crm:write`.
    async fn change_sponsor_level(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
        level: String,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, auth::WRITE, &sponsor_id)?;
        let level = LevelName::parse("level", &level).or_gql()?;
        Ok(Sponsor(
            store.change_level(id, level.as_str()).await.or_gql()?,
        ))
    }

    /// Changes a level's price or ticket allowance; onboarded sponsors at that level are
    /// topped up or flagged. Needs `crm:admin`.
    async fn update_sponsorship_level(
        &self,
        ctx: &Context<'_>,
        name: String,
        input: UpdateSponsorshipLevelInput,
    ) -> async_graphql::Result<SponsorshipLevel> {
        auth::require_in(ctx, auth::ADMIN)?;
        let changes = (|| {
            Ok::<_, DomainError>(LevelChanges {
                price: input.price.as_ref().map(MoneyInput::parse).transpose()?,
                ticket_allowance: input
                    .ticket_allowance
                    .map(|n| TicketCount::parse("ticketAllowance", n))
                    .transpose()?,
            })
        })()
        .or_gql()?;
        let name = LevelName::parse("name", &name).or_gql()?;
        Ok(SponsorshipLevel(
            context(ctx)?
                .store
                .update_level(name.as_str(), changes)
                .await
                .or_gql()?,
        ))
    }

    /// Sets (or, with `tickets: null`, clears) the number of complimentary tickets for one
    /// sponsor, replacing every rule. Needs `crm:admin`.
    async fn set_ticket_allowance_override(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
        tickets: Option<i64>,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, auth::ADMIN, &sponsor_id)?;
        let tickets = tickets
            .map(|n| TicketCount::parse("tickets", n))
            .transpose()
            .or_gql()?;
        Ok(Sponsor(
            store.set_allowance_override(id, tickets).await.or_gql()?,
        ))
    }

    /// Names the restricted ticket type in ticketing that a conference's sponsor tickets are
    /// issued from (and registers the conference with the CRM). Needs `crm:admin`.
    async fn configure_sponsor_tickets(
        &self,
        ctx: &Context<'_>,
        input: ConfigureSponsorTicketsInput,
    ) -> async_graphql::Result<SponsorConference> {
        auth::require_in(ctx, auth::ADMIN)?;
        let conference_id = parse_id("conference", &input.conference_id)?;
        let ticket_type_id = parse_id("ticket type", &input.ticket_type_id)?;
        Ok(SponsorConference(
            context(ctx)?
                .store
                .configure_sponsor_tickets(conference_id, ticket_type_id)
                .await
                .or_gql()?,
        ))
    }

    /// Extra tickets for sponsors who sign before a date; onboarded sponsors of the
    /// conference are topped up or flagged. Needs `crm:admin`.
    async fn set_early_signing_rule(
        &self,
        ctx: &Context<'_>,
        input: SetEarlySigningRuleInput,
    ) -> async_graphql::Result<SponsorConference> {
        auth::require_in(ctx, auth::ADMIN)?;
        let conference_id = parse_id("conference", &input.conference_id)?;
        let extra_tickets = TicketCount::parse("extraTickets", input.extra_tickets).or_gql()?;
        let rule = input.signed_before.map(|d| EarlySigningRule {
            signed_before: d.0,
            extra_tickets,
        });
        Ok(SponsorConference(
            context(ctx)?
                .store
                .set_early_signing_rule(conference_id, rule)
                .await
                .or_gql()?,
        ))
    }

    /// Puts a sponsor's FAILED bookings back in the queue (after the cause was fixed) and
    /// makes bookings waiting out a backoff due now. Needs `crm:admin`.
    async fn retry_ticket_allocation(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, auth::ADMIN, &sponsor_id)?;
        Ok(Sponsor(store.retry_allocation(id).await.or_gql()?))
    }
}
