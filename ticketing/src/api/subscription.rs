use async_graphql::{Context, Subscription as SubscriptionObject};
use futures_util::{Stream, StreamExt};
use platform::Cursor;
use platform::graphql::coded_error;

use super::auth;
use super::context;
use super::events::TicketEvent;
use crate::events::CURSOR_KIND;

pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Every event after `after`, then each new one as it happens: in order, each once.
    /// Reconnect with the cursor of the last event you received and you miss nothing.
    /// Without `after`, starts with the next event. Needs `events:read`.
    async fn ticket_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<TicketEvent>> + use<>> {
        auth::require(&auth::principal(ctx), auth::EVENTS_READ)?;
        let api = context(ctx)?;
        let after = match after {
            Some(cursor) => Cursor::decode_position(CURSOR_KIND, &cursor).ok_or_else(|| {
                coded_error(
                    "BAD_USER_INPUT",
                    format!("{cursor:?} is not a ticket event cursor"),
                )
            })?,
            None => api
                .store
                .event_head()
                .await
                .map_err(super::errors::store_error)?,
        };
        Ok(api.feed.subscribe(after).map(|item| {
            item.map(TicketEvent::from).map_err(|e| {
                tracing::warn!(error = %e, "ticket event feed failed");
                coded_error(
                    "INTERNAL_SERVER_ERROR",
                    "the event log is unavailable; resubscribe with your last cursor",
                )
            })
        }))
    }
}
