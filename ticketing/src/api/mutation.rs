use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::context;
use super::errors::{OrGraphQLError, parse_id};
use super::policy;
use super::types::{
    Conference, Date, MoneyInput, PersonInput, Ticket, TicketPurchase, TicketType, Visibility,
};
use crate::domain::{
    self, Access, DomainError, ExternalReference, IdempotencyKey, Name, NewConference,
    NewTicketPurchase, NewTicketType, PurchaseLineRequest, Quantity, TicketTypeChanges,
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
    pub capacity: i32,
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
    pub capacity: Option<i32>,
    pub visibility: Option<Visibility>,
    pub sale_starts_at: MaybeUndefined<DateTime<Utc>>,
    pub sale_ends_at: MaybeUndefined<DateTime<Utc>>,
}

#[derive(InputObject, serde::Serialize)]
pub struct PurchaseLineInput {
    pub ticket_type_id: ID,
    pub quantity: i32,
}

#[derive(InputObject)]
pub struct CreateTicketPurchaseInput {
    pub purchaser: PersonInput,
    pub lines: Vec<PurchaseLineInput>,
    /// Issued at no charge and paid at once; needs `tickets:issue-complimentary`.
    #[graphql(default)]
    pub complimentary: bool,
    /// The client's own name for this purchase: opaque to ticketing, unique per client.
    /// Only for clients with a bearer token.
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

fn held_by(access: &Access) -> Option<domain::HeldPurchase> {
    match access {
        Access::HeldWith(held) => Some(*held),
        _ => None,
    }
}

#[Object]
impl Mutation {
    /// Needs `tickets:admin`.
    async fn create_conference(
        &self,
        ctx: &Context<'_>,
        input: CreateConferenceInput,
    ) -> async_graphql::Result<Conference> {
        policy::authorize(ctx, "Mutation.createConference")?;
        let new = (|| {
            NewConference::new(
                Name::parse("name", &input.name)?,
                domain::Currency::parse(&input.currency)?,
                input.starts_on.0,
                input.ends_on.0,
                domain::now().date_naive(),
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
        policy::authorize(ctx, "Mutation.createTicketType")?;
        let conference_id = parse_id("conference", &input.conference_id)?;
        let new = (|| {
            NewTicketType::new(
                conference_id,
                Name::parse("name", &input.name)?,
                input.price.parse()?,
                i64::from(input.capacity),
                input.visibility.into(),
                input.sale_starts_at,
                input.sale_ends_at,
                domain::now(),
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
        policy::authorize(ctx, "Mutation.updateTicketType")?;
        let id = parse_id("ticket type", &id)?;
        let changes = (|| {
            Ok::<_, DomainError>(TicketTypeChanges {
                name: input
                    .name
                    .as_deref()
                    .map(|n| Name::parse("name", n))
                    .transpose()?,
                price: input.price.as_ref().map(MoneyInput::parse).transpose()?,
                capacity: input.capacity.map(i64::from),
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
    /// Without a bearer token the answer carries the purchase's `accessToken`, its only
    /// credential: keep it to read, cancel or assign the purchase. `externalReference` needs
    /// a token.
    ///
    /// With an `idempotencyKey` (kept at least 24 hours), repeating the same request returns
    /// the first result and creates nothing. A client with a token owns its keys: the same
    /// key with a different request fails with `IDEMPOTENCY_KEY_REUSED`. Without a token, a
    /// different request under the same key is simply another purchase. An
    /// `externalReference` can be used once per client, ever (`DUPLICATE_EXTERNAL_REFERENCE`).
    async fn create_ticket_purchase(
        &self,
        ctx: &Context<'_>,
        input: CreateTicketPurchaseInput,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<TicketPurchase> {
        const OPERATION: &str = "Mutation.createTicketPurchase";
        let access = policy::authorize(ctx, OPERATION)?;
        if input.complimentary && !access.reaches_restricted() {
            return Err(policy::refused(ctx, OPERATION, "complimentary purchases"));
        }
        let principal = policy::principal(ctx);
        let client = policy::client_key(&principal);
        if input.external_reference.is_some() && client.is_anonymous() {
            return Err(platform::graphql::coded_error(
                "BAD_USER_INPUT",
                "externalReference is for clients with a bearer token: a purchase made without one is identified by its id and accessToken",
            ));
        }
        let mut lines = Vec::with_capacity(input.lines.len());
        for line in &input.lines {
            lines.push(PurchaseLineRequest {
                ticket_type_id: parse_id("ticket type", &line.ticket_type_id)?,
                quantity: Quantity::parse(i64::from(line.quantity)).or_gql()?,
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
        let api = context(ctx)?;
        // A buyer without a token is counted by where it buys from: the address the HTTP
        // edge resolved (behind trusted proxies, the forwarded one).
        let buyer_address = client.is_anonymous().then(|| {
            ctx.data_opt::<platform::client_address::ClientAddress>()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string)
        });
        let request = NewTicketPurchase {
            client,
            purchaser,
            lines,
            complimentary: input.complimentary,
            external_reference,
            idempotency_key,
            request_hash,
            access,
            sees_restricted: policy::has_full_access(ctx, "Query.ticketType"),
            buyer_address,
            limits: api.purchase_limits,
        };
        let outcome = api
            .store
            .create_purchase(request, api.reservation_ttl)
            .await
            .or_gql()?;
        let purchase = outcome.purchase;
        if purchase.is_anonymous() && !principal.is_authenticated() {
            // Its only credential, handed to the buyer who made it (again on a replay).
            let (token, held) = api.purchase_tokens.issue(purchase.id);
            return Ok(TicketPurchase::issued(purchase, held, token));
        }
        Ok(TicketPurchase::from(purchase))
    }

    /// Records that payment arrived. Needs `tickets:admin` (the payment integration's
    /// scope). Confirming a paid purchase again changes nothing.
    async fn confirm_ticket_purchase_payment(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<TicketPurchase> {
        policy::authorize(ctx, "Mutation.confirmTicketPurchasePayment")?;
        let id = parse_id("ticket purchase", &id)?;
        let purchase = context(ctx)?.store.confirm_payment(id).await.or_gql()?;
        Ok(TicketPurchase::from(purchase))
    }

    /// Cancels a purchase and returns its seats. The client that made it (or, for a
    /// purchase made without a token, whoever passes its `accessToken`) may cancel it while
    /// it is unpaid; cancelling a paid one needs `tickets:admin`.
    async fn cancel_ticket_purchase(
        &self,
        ctx: &Context<'_>,
        id: ID,
        access_token: Option<String>,
    ) -> async_graphql::Result<TicketPurchase> {
        let access = policy::authorize_presenting(
            ctx,
            "Mutation.cancelTicketPurchase",
            access_token.as_deref(),
        )?;
        let id = parse_id("ticket purchase", &id)?;
        let held = held_by(&access);
        let purchase = context(ctx)?
            .store
            .cancel_purchase(id, access)
            .await
            .map_err(|e| policy::conceal(ctx, e, "Query.ticketPurchase"))?;
        Ok(TicketPurchase::held(purchase, held))
    }

    /// Names the attendee of one ticket. Allowed to the client that made the purchase (or
    /// whoever passes the purchase's `accessToken`) and to `tickets:admin`.
    async fn assign_ticket(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        attendee: PersonInput,
        access_token: Option<String>,
    ) -> async_graphql::Result<Ticket> {
        let access =
            policy::authorize_presenting(ctx, "Mutation.assignTicket", access_token.as_deref())?;
        let id = parse_id("ticket", &ticket_id)?;
        let attendee = attendee.parse("attendee").or_gql()?;
        let held = held_by(&access);
        let ticket = context(ctx)?
            .store
            .assign_ticket(id, attendee, access)
            .await
            .map_err(|e| policy::conceal(ctx, e, "Query.ticket"))?;
        Ok(Ticket::held(ticket, held))
    }
}
