use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use platform::Cursor;
use platform::graphql::{coded_error, event_page, event_position};
use uuid::Uuid;

use super::auth;
use super::context;
use super::errors::{OrGraphQLError, parse_id};
use super::events::TicketEvent;
use super::types::{
    Conference, Ticket, TicketPurchase, TicketPurchaseStatus, TicketType, may_see_ticket_type,
};
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
    coded_error("NOT_FOUND", format!("{what} {id} does not exist"))
}

/// Loads a purchase the caller may see; `None` when it does not exist.
async fn visible_purchase(
    ctx: &Context<'_>,
    id: Uuid,
) -> async_graphql::Result<Option<TicketPurchase>> {
    let Some(purchase) = context(ctx)?.store.purchase(id).await.or_gql()? else {
        return Ok(None);
    };
    if auth::may_access_purchase(&auth::principal(ctx), &purchase) {
        Ok(Some(TicketPurchase(purchase)))
    } else {
        Err(auth::forbidden_purchase(id))
    }
}

async fn visible_ticket_type(
    ctx: &Context<'_>,
    id: Uuid,
) -> async_graphql::Result<Option<TicketType>> {
    let found = context(ctx)?.store.ticket_type(id).await.or_gql()?;
    // A restricted type is invisible, not forbidden, to the public: its existence is private.
    Ok(found
        .filter(|t| may_see_ticket_type(&auth::principal(ctx), t))
        .map(TicketType))
}

async fn visible_ticket(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Ticket>> {
    let Some(ticket) = context(ctx)?.store.ticket(id).await.or_gql()? else {
        return Ok(None);
    };
    match visible_purchase(ctx, ticket.purchase_id).await? {
        Some(_) => Ok(Some(Ticket(ticket))),
        None => Ok(None),
    }
}

#[Object]
impl Query {
    async fn conference(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Conference>> {
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

    async fn ticket_type(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TicketType>> {
        let id = parse_id("ticket type", &id)?;
        match visible_ticket_type(ctx, id).await? {
            Some(t) => Ok(Some(t)),
            None => Err(not_found("ticket type", id)),
        }
    }

    /// Visible to `tickets:read`, to the client that made it, and, for purchases made
    /// without a token, to whoever holds the id.
    async fn ticket_purchase(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TicketPurchase>> {
        let id = parse_id("ticket purchase", &id)?;
        match visible_purchase(ctx, id).await? {
            Some(p) => Ok(Some(p)),
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
        let principal = auth::principal(ctx);
        if !principal.is_authenticated() {
            return Err(coded_error(
                "UNAUTHENTICATED",
                "listing ticket purchases needs a bearer token",
            ));
        }
        let filter = PurchaseFilter {
            conference_id: conference_id
                .map(|id| parse_id("conference", &id))
                .transpose()?,
            status: status.map(Into::into),
            external_reference,
            client: (!auth::can_read_all_purchases(&principal))
                .then(|| auth::client_key(&principal)),
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
                TicketPurchase(p),
            )
        }));
        Ok(connection)
    }

    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Ticket>> {
        let id = parse_id("ticket", &id)?;
        match visible_ticket(ctx, id).await? {
            Some(t) => Ok(Some(t)),
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
        auth::require(&auth::principal(ctx), auth::EVENTS_READ)?;
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
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        visible_ticket_type(ctx, id).await
    }

    #[graphql(entity)]
    async fn find_ticket_purchase_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<TicketPurchase>> {
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        visible_purchase(ctx, id).await
    }

    #[graphql(entity)]
    async fn find_ticket_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Ticket>> {
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        visible_ticket(ctx, id).await
    }
}
