//! Ticketing's GraphQL API: the open host service. Any client with the right scopes issues
//! purchases through it; nothing here knows or asks why.

pub mod errors;
pub mod events;
pub mod mutation;
pub mod policy;
pub mod query;
pub mod subscription;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Schema;
use platform::EventFeed;
use platform::operation_limits::{CostLimits, DocumentLimits, OperationLimits};

use crate::domain::{PurchaseLimits, PurchaseTokens};
use crate::events::TicketEvent;
use crate::store::SharedStore;

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

pub type TicketingSchema = Schema<Query, Mutation, Subscription>;

/// What resolvers reach through the context.
#[derive(Clone)]
pub struct ApiContext {
    pub store: SharedStore,
    pub feed: Arc<EventFeed<TicketEvent>>,
    pub reservation_ttl: Duration,
    /// Issues and verifies the access tokens of purchases made without a bearer token.
    pub purchase_tokens: PurchaseTokens,
    /// The caps on seats held without payment.
    pub purchase_limits: PurchaseLimits,
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

/// The lists whose expected size the ticketing service knows better than the default of 10:
/// a purchase has one line per ticket type it buys, rarely more than a few.
pub fn cost_limits(max_cost: u64) -> CostLimits {
    CostLimits {
        max_cost,
        ..CostLimits::default()
    }
    .with_list_size("TicketPurchase", "lines", 5)
}

pub fn build_schema(context: Option<ApiContext>, limits: SchemaLimits) -> TicketingSchema {
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
        // "Did you mean …?" in a validation error names fields of the schema: with
        // introspection off, that is the schema leaking one guess at a time.
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(context) = context {
        builder = builder.data(context);
    }
    builder.finish()
}

/// The schema as published in `ticketing/schema.graphql`: plain SDL, which code generators
/// for clients (the CRM's among them) read without federation machinery.
pub fn published_sdl() -> String {
    build_schema(None, SchemaLimits::default()).sdl()
}

pub fn context<'a>(ctx: &'a async_graphql::Context<'_>) -> async_graphql::Result<&'a ApiContext> {
    ctx.data::<ApiContext>()
}
