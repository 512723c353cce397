use async_graphql::{Context, Subscription as SubscriptionObject};
use futures_util::{Stream, StreamExt};
use platform::graphql::coded_error;

use super::auth;
use super::context;
use super::events::SponsorEvent;
use super::query::event_position;

pub struct Subscription;

#[SubscriptionObject]
impl Subscription {
    /// Every event after `after`, then each new one as it happens: in order, each once.
    /// Reconnect with the cursor of the last event you received and you miss nothing.
    /// Without `after`, starts with the next event. Needs `crm:read`.
    async fn sponsor_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SponsorEvent>> + use<>>
    {
        auth::require_in(ctx, auth::READ)?;
        let api = context(ctx)?;
        let after = match event_position(after.as_deref())? {
            Some(position) => position,
            None => api
                .store
                .event_head()
                .await
                .map_err(super::errors::store_error)?,
        };
        Ok(api.feed.subscribe(after).map(|item| {
            item.map(SponsorEvent::from).map_err(|e| {
                tracing::warn!(error = %e, "sponsor event feed failed");
                coded_error(
                    "INTERNAL_SERVER_ERROR",
                    "the event log is unavailable; resubscribe with your last cursor",
                )
            })
        }))
    }
}
