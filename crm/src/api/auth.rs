//! The CRM's scopes: `crm:read` to look, `crm:write` for the sales steps (sponsors,
//! contracts, invoices, levels of a sponsor), `crm:admin` for the rules (level allowances,
//! overrides, sponsor ticket configuration, retrying allocations). Admin implies write, write
//! implies read.

use std::borrow::Cow;

use platform::Principal;
use platform::graphql::coded_error;

pub const READ: &str = "crm:read";
pub const WRITE: &str = "crm:write";
pub const ADMIN: &str = "crm:admin";

pub fn principal<'a>(ctx: &'a async_graphql::Context<'_>) -> Cow<'a, Principal> {
    platform::graphql::principal(ctx)
}

fn grants(principal: &Principal, scope: &str) -> bool {
    match scope {
        READ => [READ, WRITE, ADMIN].iter().any(|s| principal.has_scope(s)),
        WRITE => [WRITE, ADMIN].iter().any(|s| principal.has_scope(s)),
        other => principal.has_scope(other),
    }
}

/// Fails with `UNAUTHENTICATED` without a token and `FORBIDDEN` without the scope.
pub fn require(principal: &Principal, scope: &str) -> async_graphql::Result<()> {
    if !principal.is_authenticated() {
        return Err(coded_error(
            "UNAUTHENTICATED",
            format!("this operation needs a bearer token with the {scope} scope"),
        ));
    }
    if grants(principal, scope) {
        Ok(())
    } else {
        Err(coded_error(
            "FORBIDDEN",
            format!("this operation needs the {scope} scope"),
        ))
    }
}

pub fn require_in(ctx: &async_graphql::Context<'_>, scope: &str) -> async_graphql::Result<()> {
    require(&principal(ctx), scope)
}
