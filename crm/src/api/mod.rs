//! The CRM's GraphQL API, with the same transport and conventions as ticketing's: a
//! federation subgraph whose `Sponsor` is an entity and which adds `sponsor` to ticketing's
//! `TicketPurchase`. Who may call what is decided in one place, [`policy`].

pub mod errors;
pub mod events;
pub mod mutation;
pub mod policy;
pub mod query;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::Schema;
use platform::EventFeed;
use platform::operation_limits::{CostLimits, DocumentLimits, OperationLimits};

use crate::events::SponsorEvent;
use crate::store::SharedStore;
use crate::ticketing_client::TicketingClient;

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

pub type CrmSchema = Schema<Query, Mutation, Subscription>;

/// What resolvers reach through the context.
#[derive(Clone)]
pub struct ApiContext {
    pub store: SharedStore,
    pub feed: Arc<EventFeed<SponsorEvent>>,
    /// Ticketing's API, when a URL was given: where allocations are booked and where
    /// conferences are looked up when an admin registers one. Without it nothing is booked
    /// and no conference can be registered.
    pub ticketing: Option<TicketingClient>,
}

impl ApiContext {
    /// Whether allocations can be booked at all.
    pub fn ticketing_configured(&self) -> bool {
        self.ticketing.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct SchemaLimits {
    pub depth: usize,
    /// async-graphql's complexity: fields selected, each counting 1, lists not multiplied. A
    /// backstop for wide selections of scalars, which cost nothing in `operations.cost`.
    pub complexity: usize,
    pub introspection: bool,
    /// Tokens, directives, aliases, root fields and cost in objects, checked before
    /// validation (`platform::operation_limits`).
    pub operations: OperationLimits,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            depth: 16,
            complexity: 2_000,
            introspection: true,
            operations: OperationLimits {
                document: DocumentLimits::default(),
                cost: cost_limits(CostLimits::default().max_cost),
            },
        }
    }
}

/// The lists whose expected size the CRM knows better than the default of 10: a sponsor is
/// invoiced a few times (a deposit, the balance, a correction).
pub fn cost_limits(max_cost: u64) -> CostLimits {
    CostLimits {
        max_cost,
        ..CostLimits::default()
    }
    .with_list_size("Sponsor", "invoices", 4)
}

pub fn build_schema(context: Option<ApiContext>, limits: SchemaLimits) -> CrmSchema {
    let mut builder = Schema::build(Query, Mutation, Subscription)
        .enable_federation()
        .enable_subscription_in_federation()
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity)
        .limit_recursive_depth(32)
        // Before `ErrorCodes`, which leaves the codes these refusals carry alone.
        .extension(limits.operations)
        .extension(platform::graphql::ErrorCodes);
    if !limits.introspection {
        // "Did you mean …?" would hand out the field names introspection now keeps back.
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(context) = context {
        builder = builder.data(context);
    }
    builder.finish()
}

/// The schema as published in `crm/schema.graphql`: plain SDL for client code generators.
pub fn published_sdl() -> String {
    build_schema(None, SchemaLimits::default()).sdl()
}

/// The federation SDL served at `_service { sdl }`, which a gateway composes.
pub fn federation_sdl() -> String {
    build_schema(None, SchemaLimits::default())
        .sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

pub fn context<'a>(ctx: &'a async_graphql::Context<'_>) -> async_graphql::Result<&'a ApiContext> {
    ctx.data::<ApiContext>()
}
