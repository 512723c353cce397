use async_graphql::{Context, ID, InputObject, Object};
use uuid::Uuid;

use super::context;
use super::errors::{OrGraphQLError, parse_id, ticketing_lookup_error};
use super::policy;
use super::types::{Date, Invoice, MoneyInput, Sponsor, SponsorConference, SponsorshipLevel};
use crate::domain::{
    self, CompanyName, DomainError, EarlySigningRule, EmailAddress, LevelChanges, LevelName,
    NewInvoice, NewSponsor, PersonName, SponsorTicketSource, TicketCount, calendar,
};
use crate::store::SharedStore;

pub struct Mutation;

/// The store and sponsor id for a mutation on one sponsor, once the policy admitted the
/// caller to `operation`: the checks every such mutation makes first, in the same order.
fn sponsor_target<'c>(
    ctx: &'c Context<'_>,
    operation: &str,
    sponsor_id: &ID,
) -> async_graphql::Result<(&'c SharedStore, Uuid)> {
    policy::authorize(ctx, operation)?;
    let id = parse_id("sponsor", sponsor_id)?;
    Ok((&context(ctx)?.store, id))
}

fn today() -> chrono::NaiveDate {
    domain::now().date_naive()
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
    /// Ticketing's id of a conference the CRM serves; may be left out while it serves one.
    pub conference_id: Option<ID>,
}

#[derive(InputObject)]
pub struct IssueInvoiceInput {
    pub sponsor_id: ID,
    /// In the currency of the sponsor's conference.
    pub amount: MoneyInput,
    /// At most a year ago and at most five years ahead.
    pub due_on: Date,
}

/// Fields left out stay as they are.
#[derive(InputObject)]
pub struct UpdateSponsorshipLevelInput {
    pub price: Option<MoneyInput>,
    pub ticket_allowance: Option<i32>,
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
    /// A conference the CRM serves.
    pub conference_id: ID,
    /// Contracts signed strictly before this day earn `extraTickets`; null removes the rule.
    pub signed_before: Option<Date>,
    #[graphql(default = 1)]
    pub extra_tickets: i32,
}

#[Object]
impl Mutation {
    /// Records a sponsor with a DRAFT contract, for a conference the CRM serves. Needs
    /// `crm:write`.
    async fn create_sponsor(
        &self,
        ctx: &Context<'_>,
        input: CreateSponsorInput,
    ) -> async_graphql::Result<Sponsor> {
        policy::authorize(ctx, "Mutation.createSponsor")?;
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
        let (store, id) = sponsor_target(ctx, "Mutation.sendContract", &sponsor_id)?;
        Ok(Sponsor(store.send_contract(id).await.or_gql()?))
    }

    /// SENT -> SIGNED, on `signedOn` (today when left out; never in the future, at most five
    /// years ago). With every invoice paid this onboards the sponsor. Needs `crm:write`.
    async fn sign_contract(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
        signed_on: Option<Date>,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, "Mutation.signContract", &sponsor_id)?;
        let today = today();
        let signed_on =
            calendar::signing_date("signedOn", signed_on.map_or(today, |d| d.0), today).or_gql()?;
        Ok(Sponsor(store.sign_contract(id, signed_on).await.or_gql()?))
    }

    /// DRAFT or SENT -> CANCELLED. Needs `crm:write`.
    async fn cancel_contract(
        &self,
        ctx: &Context<'_>,
        sponsor_id: ID,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, "Mutation.cancelContract", &sponsor_id)?;
        Ok(Sponsor(store.cancel_contract(id).await.or_gql()?))
    }

    /// A new ISSUED invoice, in the currency of the sponsor's conference. Needs `crm:write`.
    async fn issue_invoice(
        &self,
        ctx: &Context<'_>,
        input: IssueInvoiceInput,
    ) -> async_graphql::Result<Invoice> {
        policy::authorize(ctx, "Mutation.issueInvoice")?;
        let sponsor_id = parse_id("sponsor", &input.sponsor_id)?;
        let new =
            (|| NewInvoice::new(sponsor_id, input.amount.parse()?, input.due_on.0, today()))()
                .or_gql()?;
        Ok(Invoice(
            context(ctx)?.store.issue_invoice(new).await.or_gql()?,
        ))
    }

    /// ISSUED -> PAID; paying the last open invoice of a signed sponsor onboards it and
    /// queues its ticket booking. Paying again changes nothing. Needs `crm:write`.
    async fn mark_invoice_paid(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        policy::authorize(ctx, "Mutation.markInvoicePaid")?;
        let id = parse_id("invoice", &id)?;
        Ok(Invoice(
            context(ctx)?.store.mark_invoice_paid(id).await.or_gql()?,
        ))
    }

    /// ISSUED -> VOID: the invoice no longer counts for onboarding. Needs `crm:write`.
    async fn void_invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invoice> {
        policy::authorize(ctx, "Mutation.voidInvoice")?;
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
        let (store, id) = sponsor_target(ctx, "Mutation.changeSponsorLevel", &sponsor_id)?;
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
        policy::authorize(ctx, "Mutation.updateSponsorshipLevel")?;
        let changes = (|| {
            Ok::<_, DomainError>(LevelChanges {
                price: input.price.as_ref().map(MoneyInput::parse).transpose()?,
                ticket_allowance: input
                    .ticket_allowance
                    .map(|n| TicketCount::parse("ticketAllowance", n.into()))
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
        tickets: Option<i32>,
    ) -> async_graphql::Result<Sponsor> {
        let (store, id) = sponsor_target(ctx, "Mutation.setTicketAllowanceOverride", &sponsor_id)?;
        let tickets = tickets
            .map(|n| TicketCount::parse("tickets", n.into()))
            .transpose()
            .or_gql()?;
        Ok(Sponsor(
            store.set_allowance_override(id, tickets).await.or_gql()?,
        ))
    }

    /// Registers a conference with the CRM and names the restricted ticket type in ticketing
    /// that its sponsor tickets are issued from. The CRM asks ticketing first: the conference
    /// must exist there, the ticket type must be one of its RESTRICTED types, and the CRM
    /// records the conference's currency, which its invoices must then use. Registering again
    /// changes the ticket type. Needs `crm:admin`.
    async fn configure_sponsor_tickets(
        &self,
        ctx: &Context<'_>,
        input: ConfigureSponsorTicketsInput,
    ) -> async_graphql::Result<SponsorConference> {
        policy::authorize(ctx, "Mutation.configureSponsorTickets")?;
        let conference_id = parse_id("conference", &input.conference_id)?;
        let ticket_type_id = parse_id("ticket type", &input.ticket_type_id)?;
        let api = context(ctx)?;
        let Some(ticketing) = &api.ticketing else {
            return Err(platform::graphql::coded_error(
                "TICKETING_UNAVAILABLE",
                format!(
                    "the CRM cannot check conference {conference_id} with ticketing: it was started without a ticketing URL (--ticketing-url)"
                ),
            ));
        };
        let conference = ticketing
            .conference(conference_id)
            .await
            .map_err(|e| ticketing_lookup_error(conference_id, &e))?
            .ok_or_else(|| {
                platform::graphql::coded_error(
                    "NOT_FOUND",
                    format!("ticketing has no conference {conference_id}"),
                )
            })?;
        let source = SponsorTicketSource::vouched_by(&conference, ticket_type_id).or_gql()?;
        Ok(SponsorConference(
            api.store.configure_sponsor_tickets(source).await.or_gql()?,
        ))
    }

    /// Extra tickets for sponsors who sign before a date; onboarded sponsors of the
    /// conference are topped up or flagged. Only for a conference the CRM serves. Needs
    /// `crm:admin`.
    async fn set_early_signing_rule(
        &self,
        ctx: &Context<'_>,
        input: SetEarlySigningRuleInput,
    ) -> async_graphql::Result<SponsorConference> {
        policy::authorize(ctx, "Mutation.setEarlySigningRule")?;
        let conference_id = parse_id("conference", &input.conference_id)?;
        let rule = (|| {
            let extra_tickets = TicketCount::parse("extraTickets", input.extra_tickets.into())?;
            input
                .signed_before
                .map(|d| {
                    Ok::<_, DomainError>(EarlySigningRule {
                        signed_before: calendar::rule_date("signedBefore", d.0, today())?,
                        extra_tickets,
                    })
                })
                .transpose()
        })()
        .or_gql()?;
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
        let (store, id) = sponsor_target(ctx, "Mutation.retryTicketAllocation", &sponsor_id)?;
        Ok(Sponsor(store.retry_allocation(id).await.or_gql()?))
    }
}
