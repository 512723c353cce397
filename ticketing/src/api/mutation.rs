use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::auth;
use super::context;
use super::errors::{OrGraphQLError, parse_id};
use super::types::{
    Conference, Date, MoneyInput, PersonInput, Ticket, TicketPurchase, TicketType, Visibility,
};
use crate::domain::{
    self, DomainError, ExternalReference, IdempotencyKey, Name, NewConference, NewTicketPurchase,
    NewTicketType, PurchaseLineRequest, PurchaseStatus, Quantity, TicketTypeChanges,
};

pub struct Mutation;

#[derive(InputObject)]
pub struct CreateConferenceInput {
    pub name: String,
    /// ISO 4217 code every ticket type of this conference is priced in.
    pub currency: String,
    pub starts_on: Date,
    pub ends_on: Date,
}

#[derive(InputObject)]
pub struct CreateTicketTypeInput {
    pub conference_id: ID,
    pub name: String,
    pub price: MoneyInput,
    pub capacity: i64,
    #[graphql(default_with = "Visibility::Public")]
    pub visibility: Visibility,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
}

/// Fields left out stay as they are; `saleStartsAt: null` clears the bound.
#[derive(InputObject)]
pub struct UpdateTicketTypeInput {
    pub name: Option<String>,
    pub price: Option<MoneyInput>,
    pub capacity: Option<i64>,
    pub visibility: Option<Visibility>,
    pub sale_starts_at: MaybeUndefined<DateTime<Utc>>,
    pub sale_ends_at: MaybeUndefined<DateTime<Utc>>,
}

#[derive(InputObject, serde::Serialize)]
pub struct PurchaseLineInput {
    pub ticket_type_id: ID,
    pub quantity: i64,
}

#[derive(InputObject)]
pub struct CreateTicketPurchaseInput {
    pub purchaser: PersonInput,
    pub lines: Vec<PurchaseLineInput>,
    /// Issued at no charge and paid at once; needs `tickets:issue-complimentary`.
    #[graphql(default)]
    pub complimentary: bool,
    /// The client's own name for this purchase: opaque to ticketing, unique per client.
    pub external_reference: Option<String>,
}

fn maybe(value: MaybeUndefined<DateTime<Utc>>) -> Option<Option<DateTime<Utc>>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// What makes two purchase requests "the same" for idempotent replay.
fn request_fingerprint(
    purchaser: &domain::Purchaser,
    lines: &[PurchaseLineRequest],
    complimentary: bool,
    external_reference: Option<&ExternalReference>,
) -> String {
    let mut sorted: Vec<_> = lines
        .iter()
        .map(|l| (l.ticket_type_id, l.quantity.get()))
        .collect();
    sorted.sort();
    let canonical = serde_json::json!({
        "purchaser": [purchaser.name.as_str(), purchaser.email.as_str().to_lowercase()],
        "lines": sorted,
        "complimentary": complimentary,
        "externalReference": external_reference.map(ExternalReference::as_str),
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[Object]
impl Mutation {
    /// Needs `tickets:admin`.
    async fn create_conference(
        &self,
        ctx: &Context<'_>,
        input: CreateConferenceInput,
    ) -> async_graphql::Result<Conference> {
        auth::require(&auth::principal(ctx), auth::ADMIN)?;
        let new = (|| {
            NewConference::new(
                Name::parse("name", &input.name)?,
                domain::Currency::parse(&input.currency)?,
                input.starts_on.0,
                input.ends_on.0,
            )
        })()
        .or_gql()?;
        let conference = context(ctx)?.store.create_conference(new).await.or_gql()?;
        Ok(Conference(conference))
    }

    /// Needs `tickets:admin`.
    async fn create_ticket_type(
        &self,
        ctx: &Context<'_>,
        input: CreateTicketTypeInput,
    ) -> async_graphql::Result<TicketType> {
        auth::require(&auth::principal(ctx), auth::ADMIN)?;
        let conference_id = parse_id("conference", &input.conference_id)?;
        let new = (|| {
            NewTicketType::new(
                conference_id,
                Name::parse("name", &input.name)?,
                input.price.parse()?,
                input.capacity,
                input.visibility.into(),
                input.sale_starts_at,
                input.sale_ends_at,
            )
        })()
        .or_gql()?;
        let created = context(ctx)?.store.create_ticket_type(new).await.or_gql()?;
        Ok(TicketType(created))
    }

    /// Needs `tickets:admin`. Capacity can never drop below the seats already taken.
    async fn update_ticket_type(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTicketTypeInput,
    ) -> async_graphql::Result<TicketType> {
        auth::require(&auth::principal(ctx), auth::ADMIN)?;
        let id = parse_id("ticket type", &id)?;
        let changes = (|| {
            Ok::<_, DomainError>(TicketTypeChanges {
                name: input
                    .name
                    .as_deref()
                    .map(|n| Name::parse("name", n))
                    .transpose()?,
                price: input.price.as_ref().map(MoneyInput::parse).transpose()?,
                capacity: input.capacity,
                visibility: input.visibility.map(Into::into),
                sale_starts_at: maybe(input.sale_starts_at),
                sale_ends_at: maybe(input.sale_ends_at),
            })
        })()
        .or_gql()?;
        let updated = context(ctx)?
            .store
            .update_ticket_type(id, changes)
            .await
            .or_gql()?;
        Ok(TicketType(updated))
    }

    /// Buys or issues tickets. Anyone may buy public tickets; restricted types and
    /// complimentary purchases need `tickets:issue-complimentary`.
    ///
    /// With an `idempotencyKey` (per client, kept at least 24 hours), repeating the same
    /// request returns the first result and creates nothing; the same key with a different
    /// request fails with `IDEMPOTENCY_KEY_REUSED`. An `externalReference` can be used once
    /// per client, ever (`DUPLICATE_EXTERNAL_REFERENCE`).
    async fn create_ticket_purchase(
        &self,
        ctx: &Context<'_>,
        input: CreateTicketPurchaseInput,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<TicketPurchase> {
        let principal = auth::principal(ctx);
        if input.complimentary && !auth::is_privileged(&principal) {
            auth::require(&principal, auth::ISSUE_COMPLIMENTARY)?;
        }
        let mut lines = Vec::with_capacity(input.lines.len());
        for line in &input.lines {
            lines.push(PurchaseLineRequest {
                ticket_type_id: parse_id("ticket type", &line.ticket_type_id)?,
                quantity: Quantity::parse(line.quantity).or_gql()?,
            });
        }
        NewTicketPurchase::check_lines(&lines).or_gql()?;
        let purchaser = input.purchaser.parse("purchaser").or_gql()?;
        let external_reference = input
            .external_reference
            .as_deref()
            .map(ExternalReference::parse)
            .transpose()
            .or_gql()?;
        let idempotency_key = idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()
            .or_gql()?;
        let request_hash = request_fingerprint(
            &purchaser,
            &lines,
            input.complimentary,
            external_reference.as_ref(),
        );
        let request = NewTicketPurchase {
            client: auth::client_key(&principal),
            purchaser,
            lines,
            complimentary: input.complimentary,
            external_reference,
            idempotency_key,
            request_hash,
            privileged: auth::is_privileged(&principal),
        };
        let api = context(ctx)?;
        let outcome = api
            .store
            .create_purchase(request, api.reservation_ttl)
            .await
            .or_gql()?;
        Ok(TicketPurchase(outcome.purchase))
    }

    /// Records that payment arrived. Needs `tickets:admin` (the payment integration's
    /// scope). Confirming a paid purchase again changes nothing.
    async fn confirm_ticket_purchase_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TicketPurchase> {
        auth::require(&auth::principal(ctx), auth::ADMIN)?;
        let id = parse_id("ticket purchase", &id)?;
        let purchase = context(ctx)?.store.confirm_payment(id).await.or_gql()?;
        Ok(TicketPurchase(purchase))
    }

    /// Cancels a purchase and returns its seats. A client may cancel its own unpaid
    /// purchase; cancelling a paid one needs `tickets:admin`.
    async fn cancel_ticket_purchase(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TicketPurchase> {
        let principal = auth::principal(ctx);
        let id = parse_id("ticket purchase", &id)?;
        let api = context(ctx)?;
        if !principal.has_scope(auth::ADMIN) {
            let purchase = api.store.purchase(id).await.or_gql()?.ok_or_else(|| {
                platform::graphql::coded_error(
                    "NOT_FOUND",
                    format!("ticket purchase {id} does not exist"),
                )
            })?;
            if !auth::may_access_purchase(&principal, &purchase) {
                return Err(auth::forbidden_purchase(id));
            }
            if purchase.status == PurchaseStatus::Paid {
                auth::require(&principal, auth::ADMIN)?;
            }
        }
        let purchase = api.store.cancel_purchase(id).await.or_gql()?;
        Ok(TicketPurchase(purchase))
    }

    /// Names the attendee of one ticket. Allowed to the purchase's owner and to
    /// `tickets:admin`.
    async fn assign_ticket(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        attendee: PersonInput,
    ) -> async_graphql::Result<Ticket> {
        let principal = auth::principal(ctx);
        let id = parse_id("ticket", &ticket_id)?;
        let attendee = attendee.parse("attendee").or_gql()?;
        let api = context(ctx)?;
        let ticket = api.store.ticket(id).await.or_gql()?.ok_or_else(|| {
            platform::graphql::coded_error("NOT_FOUND", format!("ticket {id} does not exist"))
        })?;
        if !principal.has_scope(auth::ADMIN) {
            let purchase = api.store.purchase(ticket.purchase_id).await.or_gql()?;
            if !purchase.is_some_and(|p| auth::may_access_purchase(&principal, &p)) {
                return Err(auth::forbidden_purchase(ticket.purchase_id));
            }
        }
        let ticket = api.store.assign_ticket(id, attendee).await.or_gql()?;
        Ok(Ticket(ticket))
    }
}
