use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use platform::Cursor;
use platform::graphql::{coded_error, event_page, event_position};
use uuid::Uuid;

use super::context;
use super::errors::{OrGraphQLError, parse_id};
use super::events::TicketEvent;
use super::policy;
use super::types::{
    Conference, Ticket, TicketPurchase, TicketPurchaseStatus, TicketType, is_visible_with,
};
use crate::domain::{self, Access, HeldPurchase};
use crate::events::TicketEventKind;
use crate::store::PurchaseFilter;

pub struct Query;

const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;

fn page_size(first: Option<i32>) -> async_graphql::Result<i64> {
    platform::graphql::page_size(first, DEFAULT_PAGE, MAX_PAGE)
}

fn id_cursor(kind: &str, after: Option<&str>) -> async_graphql::Result<Option<Uuid>> {
    after
        .map(|c| {
            Cursor::decode(kind, c)
                .and_then(|v| Uuid::parse_str(&v).ok())
                .ok_or_else(|| {
                    coded_error(
                        "BAD_USER_INPUT",
                        format!("{c:?} is not a valid cursor here"),
                    )
                })
        })
        .transpose()
}

fn not_found(what: &str, id: Uuid) -> async_graphql::Error {
    policy::not_found(&format!("{what} {id}"))
}

/// The purchase, if it exists and the caller's access reaches it.
async fn reachable_purchase(
    ctx: &Context<'_>,
    id: Uuid,
    access: &Access,
) -> async_graphql::Result<Option<domain::TicketPurchase>> {
    context(ctx)?.store.purchase(id, access).await.or_gql()
}

async fn visible_ticket_type(
    ctx: &Context<'_>,
    id: Uuid,
    access: &Access,
) -> async_graphql::Result<Option<TicketType>> {
    let found = context(ctx)?.store.ticket_type(id).await.or_gql()?;
    Ok(found.filter(|t| is_visible_with(access, t)).map(TicketType))
}

fn held_by(access: &Access) -> Option<HeldPurchase> {
    match access {
        Access::HeldWith(held) => Some(*held),
        _ => None,
    }
}

#[Object]
impl Query {
    async fn conference(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Conference>> {
        policy::authorize(ctx, "Query.conference")?;
        let id = parse_id("conference", &id)?;
        match context(ctx)?.store.conference(id).await.or_gql()? {
            Some(c) => Ok(Some(Conference(c))),
            None => Err(not_found("conference", id)),
        }
    }

    async fn conferences(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, Conference>> {
        policy::authorize(ctx, "Query.conferences")?;
        let first = page_size(first)?;
        let after_id = id_cursor("conference", after.as_deref())?;
        let page = context(ctx)?
            .store
            .conferences(after_id, first)
            .await
            .or_gql()?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection.edges.extend(page.items.into_iter().map(|c| {
            Edge::new(
                Cursor::encode("conference", &c.id.to_string()),
                Conference(c),
            )
        }));
        Ok(connection)
    }

    /// Restricted ticket types exist only for `tickets:read` and
    /// `tickets:issue-complimentary`; to anyone else they are `NOT_FOUND`.
    async fn ticket_type(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TicketType>> {
        let access = policy::authorize(ctx, "Query.ticketType")?;
        let id = parse_id("ticket type", &id)?;
        match visible_ticket_type(ctx, id, &access).await? {
            Some(t) => Ok(Some(t)),
            None => Err(not_found("ticket type", id)),
        }
    }

    /// Visible to `tickets:read`, to the client that made it, and, for a purchase made
    /// without a token, to whoever passes its `accessToken`. Anything else is `NOT_FOUND`,
    /// as if it did not exist.
    async fn ticket_purchase(
        &self,
        ctx: &Context<'_>,
        id: ID,
        access_token: Option<String>,
    ) -> async_graphql::Result<Option<TicketPurchase>> {
        let access =
            policy::authorize_presenting(ctx, "Query.ticketPurchase", access_token.as_deref())?;
        let id = parse_id("ticket purchase", &id)?;
        match reachable_purchase(ctx, id, &access).await? {
            Some(p) => Ok(Some(TicketPurchase::held(p, held_by(&access)))),
            None => Err(not_found("ticket purchase", id)),
        }
    }

    /// With `tickets:read`, all purchases; with any other token, the caller's own.
    async fn ticket_purchases(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        conference_id: Option<ID>,
        status: Option<TicketPurchaseStatus>,
        external_reference: Option<String>,
    ) -> async_graphql::Result<Connection<String, TicketPurchase>> {
        let access = policy::authorize(ctx, "Query.ticketPurchases")?;
        let filter = PurchaseFilter {
            conference_id: conference_id
                .map(|id| parse_id("conference", &id))
                .transpose()?,
            status: status.map(Into::into),
            external_reference,
            access,
        };
        let first = page_size(first)?;
        let after_id = id_cursor("ticket-purchase", after.as_deref())?;
        let page = context(ctx)?
            .store
            .purchases(filter, after_id, first)
            .await
            .or_gql()?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection.edges.extend(page.items.into_iter().map(|p| {
            Edge::new(
                Cursor::encode("ticket-purchase", &p.id.to_string()),
                TicketPurchase::from(p),
            )
        }));
        Ok(connection)
    }

    /// As `ticketPurchase`, for the purchase the ticket belongs to; `accessToken` is that
    /// purchase's.
    async fn ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
        access_token: Option<String>,
    ) -> async_graphql::Result<Option<Ticket>> {
        let access = policy::authorize_presenting(ctx, "Query.ticket", access_token.as_deref())?;
        let id = parse_id("ticket", &id)?;
        match context(ctx)?.store.ticket(id, &access).await.or_gql()? {
            Some(t) => Ok(Some(Ticket::held(t, held_by(&access)))),
            None => Err(not_found("ticket", id)),
        }
    }

    /// The event log, oldest first, `first` events after the cursor. Needs `events:read`.
    async fn ticket_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, TicketEvent>> {
        policy::authorize(ctx, "Query.ticketEvents")?;
        let first = page_size(first)?;
        let position = event_position::<TicketEventKind>(after.as_deref())?.unwrap_or(0);
        event_page(context(ctx)?.store.as_ref(), position, first)
            .await
            .or_gql()
    }

    #[graphql(entity)]
    async fn find_conference_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Conference>> {
        if policy::field_access(ctx, "Entity.Conference", None)?.is_none() {
            return Ok(None);
        }
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        Ok(context(ctx)?
            .store
            .conference(id)
            .await
            .or_gql()?
            .map(Conference))
    }

    #[graphql(entity)]
    async fn find_ticket_type_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TicketType>> {
        let Some(access) = policy::field_access(ctx, "Entity.TicketType", None)? else {
            return Ok(None);
        };
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        visible_ticket_type(ctx, id, &access).await
    }

    #[graphql(entity)]
    async fn find_ticket_purchase_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TicketPurchase>> {
        let Some(access) = policy::field_access(ctx, "Entity.TicketPurchase", None)? else {
            return Ok(None);
        };
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        Ok(reachable_purchase(ctx, id, &access)
            .await?
            .map(TicketPurchase::from))
    }

    #[graphql(entity)]
    async fn find_ticket_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Ticket>> {
        let Some(access) = policy::field_access(ctx, "Entity.Ticket", None)? else {
            return Ok(None);
        };
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        Ok(context(ctx)?
            .store
            .ticket(id, &access)
            .await
            .or_gql()?
            .map(Ticket::from))
    }
}
