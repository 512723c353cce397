use async_graphql::{Context, Subscription as SubscriptionObject};
use futures_util::Stream;
use platform::graphql::{event_position, event_stream};

use super::context;
use super::errors::OrGraphQLError;
use super::events::SponsorEvent;
use super::policy;
use crate::events::SponsorEventKind;

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
        policy::authorize(ctx, "Subscription.sponsorEvents")?;
        let api = context(ctx)?;
        let after = match event_position::<SponsorEventKind>(after.as_deref())? {
            Some(position) => position,
            None => api.store.event_head().await.or_gql()?,
        };
        Ok(event_stream(&api.feed, after))
    }
}
