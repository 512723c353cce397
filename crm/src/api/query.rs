use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object};
use platform::Cursor;
use platform::graphql::{coded_error, event_page, event_position};
use uuid::Uuid;

use super::context;
use super::errors::{OrGraphQLError, not_found, parse_id};
use super::events::SponsorEvent;
use super::policy;
use super::types::{
    Invoice, Sponsor, SponsorConference, SponsorshipLevel, TicketAllocationStatus, TicketPurchase,
};
use crate::events::SponsorEventKind;
use crate::store::SponsorFilter;

pub struct Query;

const DEFAULT_PAGE: i32 = 20;
const MAX_PAGE: i32 = 100;
const SPONSOR_CURSOR: &str = "sponsor";

fn page_size(first: Option<i32>) -> async_graphql::Result<i64> {
    platform::graphql::page_size(first, DEFAULT_PAGE, MAX_PAGE)
}

#[Object]
impl Query {
    /// Needs `crm:read`.
    async fn sponsor(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Sponsor>> {
        policy::authorize(ctx, "Query.sponsor")?;
        let id = parse_id("sponsor", &id)?;
        match context(ctx)?.store.sponsor(id).await.or_gql()? {
            Some(s) => Ok(Some(Sponsor(s))),
            None => Err(not_found("sponsor", id)),
        }
    }

    /// Sponsors in creation order, optionally filtered (`level` by name, any letter case).
    /// Needs `crm:read`.
    #[allow(clippy::too_many_arguments)]
    async fn sponsors(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        conference_id: Option<ID>,
        level: Option<String>,
        onboarded: Option<bool>,
        allocation_status: Option<TicketAllocationStatus>,
    ) -> async_graphql::Result<Connection<String, Sponsor>> {
        policy::authorize(ctx, "Query.sponsors")?;
        let first = page_size(first)?;
        let after_id = after
            .as_deref()
            .map(|c| {
                Cursor::decode(SPONSOR_CURSOR, c)
                    .and_then(|v| Uuid::parse_str(&v).ok())
                    .ok_or_else(|| {
                        coded_error("BAD_USER_INPUT", format!("{c:?} is not a sponsor cursor"))
                    })
            })
            .transpose()?;
        let filter = SponsorFilter {
            conference_id: conference_id
                .map(|id| parse_id("conference", &id))
                .transpose()?,
            level,
            onboarded,
            allocation_status: allocation_status.map(Into::into),
        };
        let page = context(ctx)?
            .store
            .sponsors(filter, after_id, first)
            .await
            .or_gql()?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection.edges.extend(page.items.into_iter().map(|s| {
            Edge::new(
                Cursor::encode(SPONSOR_CURSOR, &s.id.to_string()),
                Sponsor(s),
            )
        }));
        Ok(connection)
    }

    /// Most valuable first. Needs `crm:read`.
    async fn sponsorship_levels(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<SponsorshipLevel>> {
        policy::authorize(ctx, "Query.sponsorshipLevels")?;
        Ok(context(ctx)?
            .store
            .levels()
            .await
            .or_gql()?
            .into_iter()
            .map(SponsorshipLevel)
            .collect())
    }

    /// Needs `crm:read`.
    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Invoice>> {
        policy::authorize(ctx, "Query.invoice")?;
        let id = parse_id("invoice", &id)?;
        match context(ctx)?.store.invoice(id).await.or_gql()? {
            Some(i) => Ok(Some(Invoice(i))),
            None => Err(not_found("invoice", id)),
        }
    }

    /// The conferences the CRM serves and their sponsor-ticket settings. Needs `crm:read`.
    async fn sponsor_conferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<SponsorConference>> {
        policy::authorize(ctx, "Query.sponsorConferences")?;
        Ok(context(ctx)?
            .store
            .conferences()
            .await
            .or_gql()?
            .into_iter()
            .map(SponsorConference)
            .collect())
    }

    /// The event log, oldest first, `first` events after the cursor. Needs `crm:read`.
    async fn sponsor_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Connection<String, SponsorEvent>> {
        policy::authorize(ctx, "Query.sponsorEvents")?;
        let first = page_size(first)?;
        let position = event_position::<SponsorEventKind>(after.as_deref())?.unwrap_or(0);
        event_page(context(ctx)?.store.as_ref(), position, first)
            .await
            .or_gql()
    }

    #[graphql(entity)]
    async fn find_sponsor_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Sponsor>> {
        policy::authorize(ctx, "Entity.Sponsor")?;
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        Ok(context(ctx)?.store.sponsor(id).await.or_gql()?.map(Sponsor))
    }

    /// Any purchase id resolves: the CRM adds `sponsor` to ticketing's purchases, which is
    /// null for those it did not book. `externalReference` is not part of the key: the
    /// gateway passes it along because `sponsor` requires it.
    #[graphql(entity)]
    async fn find_ticket_purchase_by_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(key)] id: ID,
        external_reference: Option<String>,
    ) -> async_graphql::Result<TicketPurchase> {
        policy::authorize(ctx, "Entity.TicketPurchase")?;
        Ok(TicketPurchase {
            id,
            external_reference,
        })
    }
}
