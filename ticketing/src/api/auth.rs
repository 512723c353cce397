//! Ticketing's scopes and the checks resolvers make. Reading public conferences and ticket
//! types and buying public, paid tickets needs no token at all.

use std::borrow::Cow;

use platform::Principal;
use platform::graphql::coded_error;

use crate::domain::{ClientKey, TicketPurchase};

pub const READ: &str = "tickets:read";
pub const ISSUE_COMPLIMENTARY: &str = "tickets:issue-complimentary";
pub const ADMIN: &str = "tickets:admin";
pub const EVENTS_READ: &str = "events:read";

pub fn principal<'a>(ctx: &'a async_graphql::Context<'_>) -> Cow<'a, Principal> {
    platform::graphql::principal(ctx)
}

/// Fails with `UNAUTHENTICATED` without a token and `FORBIDDEN` without the scope. `ADMIN`
/// implies every ticket scope but not `events:read`, which is granted on its own.
pub fn require(principal: &Principal, scope: &str) -> async_graphql::Result<()> {
    if !principal.is_authenticated() {
        return Err(coded_error(
            "UNAUTHENTICATED",
            format!("this operation needs a bearer token with the {scope} scope"),
        ));
    }
    if principal.has_scope(scope) || (scope != EVENTS_READ && principal.has_scope(ADMIN)) {
        Ok(())
    } else {
        Err(coded_error(
            "FORBIDDEN",
            format!("this operation needs the {scope} scope"),
        ))
    }
}

pub fn can_read_all_purchases(principal: &Principal) -> bool {
    principal.has_scope(READ) || principal.has_scope(ADMIN)
}

/// May issue restricted ticket types and complimentary purchases.
pub fn is_privileged(principal: &Principal) -> bool {
    principal.has_scope(ISSUE_COMPLIMENTARY) || principal.has_scope(ADMIN)
}

pub fn client_key(principal: &Principal) -> ClientKey {
    ClientKey::for_subject(principal.subject())
}

/// Who may see or act on a purchase: readers, the client that made it, and, for a purchase
/// made without a token, whoever holds its id (the id is the buyer's only credential).
pub fn may_access_purchase(principal: &Principal, purchase: &TicketPurchase) -> bool {
    can_read_all_purchases(principal)
        || purchase.was_created_by(&client_key(principal))
        || purchase
            .client_key
            .as_ref()
            .is_some_and(ClientKey::is_anonymous)
}

pub fn forbidden_purchase(id: uuid::Uuid) -> async_graphql::Error {
    coded_error(
        "FORBIDDEN",
        format!("ticket purchase {id} belongs to another client"),
    )
}
