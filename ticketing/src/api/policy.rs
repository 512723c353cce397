//! Ticketing's authorization policy: one table, [`POLICY`], naming for every operation who may
//! call it, and one function, [`authorize`], that every resolver asks. Nothing else in the API
//! decides who may do what, so the table is the whole story an auditor has to read (and
//! `ticketing --print-policy` prints it as the Markdown table in `docs/security.md`).
//!
//! What the table grants is an [`Access`]: everything ([`Access::Any`]), what is public, what
//! the caller's client created ([`Access::OwnedBy`], the token's subject), or the one
//! anonymous purchase whose access token the caller presented ([`Access::HeldWith`]). The
//! store puts that access into the `WHERE` clause of the statement that reads or changes the
//! data, so the decision and the change are one step.
//!
//! How a refusal is answered:
//! - no token where the operation needs one: `UNAUTHENTICATED`;
//! - a token without a scope the operation needs: `FORBIDDEN`;
//! - an object the caller's access does not reach: `NOT_FOUND`, worded exactly as for an
//!   object that does not exist, so ids reveal nothing, except for callers who may read the
//!   object anyway (`tickets:read`), who are told `FORBIDDEN`;
//! - entity resolution (`_entities`) and object fields: `null`, no error.
//!
//! Scopes mean what they say: `tickets:read` reads, it never writes. `tickets:admin` implies
//! every other `tickets:*` scope, but not `events:read`, which is granted on its own. Fields
//! the table does not list are visible to whoever reached the object they belong to.

use std::borrow::Cow;

use async_graphql::Context;
use platform::Principal;
use platform::graphql::coded_error;

use crate::domain::{Access, ClientKey, DomainError, HeldPurchase};
use crate::store::StoreError;

pub const READ: &str = "tickets:read";
pub const ISSUE_COMPLIMENTARY: &str = "tickets:issue-complimentary";
pub const ADMIN: &str = "tickets:admin";
pub const EVENTS_READ: &str = "events:read";

/// Every scope ticketing knows.
pub const SCOPES: &[&str] = &[READ, ISSUE_COMPLIMENTARY, ADMIN, EVENTS_READ];

/// Who a rule admits, and the access each gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone, with or without a token: [`Access::Any`].
    Anyone,
    /// Anyone, with or without a token, but only to what is public: [`Access::Public`].
    Public,
    /// A token with this scope: [`Access::Any`].
    Scope(&'static str),
    /// Any token, for what its client created: [`Access::OwnedBy`].
    Owner,
    /// Whoever presents an anonymous purchase's `accessToken`, for that purchase:
    /// [`Access::HeldWith`].
    Holder,
}

impl Caller {
    pub fn describe(&self) -> String {
        match self {
            Self::Anyone => "anyone".into(),
            Self::Public => "anyone (public only)".into(),
            Self::Scope(scope) => format!("`{scope}`"),
            Self::Owner => "owner".into(),
            Self::Holder => "holder".into(),
        }
    }
}

/// One row of the policy.
#[derive(Debug)]
pub struct Rule {
    /// `Query.ticketPurchase`, `Mutation.cancelTicketPurchase`, `Subscription.ticketEvents`,
    /// `Entity.TicketPurchase` (resolution through `_entities`), or a field of an object type
    /// such as `TicketPurchase.purchaser`.
    pub operation: &'static str,
    /// The callers it admits, strongest first.
    pub callers: &'static [Caller],
    /// What the callers may do, in a sentence or two.
    pub description: &'static str,
}

impl Rule {
    /// The scopes of the rule's callers.
    pub fn scopes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.callers.iter().filter_map(|c| match c {
            Caller::Scope(scope) => Some(*scope),
            _ => None,
        })
    }

    pub fn admits(&self, caller: Caller) -> bool {
        self.callers.contains(&caller)
    }
}

const READERS: &[Caller] = &[Caller::Scope(READ), Caller::Owner, Caller::Holder];
const SEES_RESTRICTED: &[Caller] = &[
    Caller::Public,
    Caller::Scope(READ),
    Caller::Scope(ISSUE_COMPLIMENTARY),
];
const ADMIN_ONLY: &[Caller] = &[Caller::Scope(ADMIN)];
const ADMIN_OWNER_HOLDER: &[Caller] = &[Caller::Scope(ADMIN), Caller::Owner, Caller::Holder];

/// The policy. A test drives every caller through every row against a real server, and fails
/// for any field of `Query`, `Mutation` or `Subscription` that is missing here.
pub static POLICY: &[Rule] = &[
    // Conferences and ticket types: the shop window.
    Rule {
        operation: "Query.conference",
        callers: &[Caller::Anyone],
        description: "Read a conference.",
    },
    Rule {
        operation: "Query.conferences",
        callers: &[Caller::Anyone],
        description: "List conferences.",
    },
    Rule {
        operation: "Query.ticketType",
        callers: SEES_RESTRICTED,
        description: "Public ticket types: anyone. Restricted ones exist only for `tickets:read` and `tickets:issue-complimentary`; to everyone else they are NOT_FOUND.",
    },
    Rule {
        operation: "Conference.ticketTypes",
        callers: SEES_RESTRICTED,
        description: "A conference's ticket types: the public ones for anyone, the restricted ones too for `tickets:read` and `tickets:issue-complimentary`.",
    },
    // Purchases and tickets: private to their client.
    Rule {
        operation: "Query.ticketPurchase",
        callers: READERS,
        description: "`tickets:read`: any purchase. A client with a token: its own. Without a token: the purchase whose `accessToken` is given. Anything else is NOT_FOUND.",
    },
    Rule {
        operation: "Query.ticketPurchases",
        callers: &[Caller::Scope(READ), Caller::Owner],
        description: "`tickets:read`: all purchases. Any other token: its client's own. No token: UNAUTHENTICATED.",
    },
    Rule {
        operation: "Query.ticket",
        callers: READERS,
        description: "As `ticketPurchase`, for the purchase the ticket belongs to.",
    },
    Rule {
        operation: "TicketPurchase.purchaser",
        callers: READERS,
        description: "The purchaser's name and e-mail: `tickets:read`, the owner, the holder. Null for everyone else, e.g. an `events:read` dashboard reading purchase events.",
    },
    Rule {
        operation: "Ticket.attendee",
        callers: READERS,
        description: "The attendee's name and e-mail: as `TicketPurchase.purchaser`.",
    },
    Rule {
        operation: "TicketPurchase.accessToken",
        callers: &[Caller::Holder],
        description: "Issued once, in the `createTicketPurchase` response to a buyer without a token (an idempotent replay repeats it); null everywhere else.",
    },
    // The event log.
    Rule {
        operation: "Query.ticketEvents",
        callers: &[Caller::Scope(EVENTS_READ)],
        description: "Read the event log. Purchaser and attendee details in it follow their own rows above.",
    },
    Rule {
        operation: "Subscription.ticketEvents",
        callers: &[Caller::Scope(EVENTS_READ)],
        description: "Follow the event log live.",
    },
    // Federation.
    Rule {
        operation: "Query._service",
        callers: &[Caller::Anyone],
        description: "The federation SDL, for the gateway.",
    },
    Rule {
        operation: "Entity.Conference",
        callers: &[Caller::Anyone],
        description: "Resolve a conference reference (`_entities`).",
    },
    Rule {
        operation: "Entity.TicketType",
        callers: SEES_RESTRICTED,
        description: "Resolve a ticket type reference: as `ticketType`, null where that is NOT_FOUND.",
    },
    Rule {
        operation: "Entity.TicketPurchase",
        callers: &[Caller::Scope(READ), Caller::Owner],
        description: "Resolve a purchase reference: `tickets:read` any, a client its own, null otherwise (a reference carries no access token).",
    },
    Rule {
        operation: "Entity.Ticket",
        callers: &[Caller::Scope(READ), Caller::Owner],
        description: "Resolve a ticket reference: as `Entity.TicketPurchase`.",
    },
    // Changes.
    Rule {
        operation: "Mutation.createConference",
        callers: ADMIN_ONLY,
        description: "Create a conference.",
    },
    Rule {
        operation: "Mutation.createTicketType",
        callers: ADMIN_ONLY,
        description: "Create a ticket type.",
    },
    Rule {
        operation: "Mutation.updateTicketType",
        callers: ADMIN_ONLY,
        description: "Change a ticket type.",
    },
    Rule {
        operation: "Mutation.createTicketPurchase",
        callers: &[Caller::Public, Caller::Scope(ISSUE_COMPLIMENTARY)],
        description: "Buy public ticket types at their price: anyone; without a token the answer carries the purchase's `accessToken`, and `externalReference` is refused. Restricted types and complimentary purchases: `tickets:issue-complimentary` (UNAUTHENTICATED without a token, FORBIDDEN without the scope; a restricted type is NOT_FOUND to whoever may not see it).",
    },
    Rule {
        operation: "Mutation.confirmTicketPurchasePayment",
        callers: ADMIN_ONLY,
        description: "Record a payment (the payment integration's scope).",
    },
    Rule {
        operation: "Mutation.cancelTicketPurchase",
        callers: ADMIN_OWNER_HOLDER,
        description: "`tickets:admin`: any purchase, paid ones too. The owner or the holder: their own while it is unpaid (a paid one is FORBIDDEN), decided by the UPDATE itself. `tickets:read` alone cancels only its own (it is an owner then): another client's purchase is FORBIDDEN (it may see it), for any other token NOT_FOUND.",
    },
    Rule {
        operation: "Mutation.assignTicket",
        callers: ADMIN_OWNER_HOLDER,
        description: "`tickets:admin`: any ticket. The owner or the holder: the tickets of their own purchase. Another client's ticket is FORBIDDEN to `tickets:read`, NOT_FOUND to any other token.",
    },
];

pub fn rule(operation: &str) -> Option<&'static Rule> {
    POLICY.iter().find(|r| r.operation == operation)
}

/// Whether the principal holds `scope`: `tickets:admin` implies the other `tickets:*`
/// scopes, never `events:read`.
pub fn holds(principal: &Principal, scope: &str) -> bool {
    principal.has_scope(scope) || (scope.starts_with("tickets:") && principal.has_scope(ADMIN))
}

/// Why a rule refused a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `UNAUTHENTICATED` or `FORBIDDEN`.
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn into_error(self) -> async_graphql::Error {
        coded_error(self.code, self.message)
    }
}

/// The heart of the policy: what `rule` gives a caller with these credentials. `held` is the
/// anonymous purchase whose access token the caller presented, already verified.
pub fn decide(
    rule: &Rule,
    principal: &Principal,
    held: Option<HeldPurchase>,
) -> Result<Access, Refusal> {
    if rule.scopes().any(|scope| holds(principal, scope)) || rule.admits(Caller::Anyone) {
        return Ok(Access::Any);
    }
    // A presented access token is what the caller asks to be judged by.
    if let Some(held) = held
        && rule.admits(Caller::Holder)
    {
        return Ok(Access::HeldWith(held));
    }
    if principal.is_authenticated() && rule.admits(Caller::Owner) {
        return Ok(Access::OwnedBy(client_key(principal)));
    }
    if rule.admits(Caller::Public) {
        return Ok(Access::Public);
    }
    Err(refuse(rule, principal))
}

/// The refusal for a caller the rule does not admit (or admits only to less than it needs).
fn refuse(rule: &Rule, principal: &Principal) -> Refusal {
    let scopes: Vec<&str> = rule.scopes().collect();
    let scope_list = scopes
        .iter()
        .map(|s| format!("the {s} scope"))
        .collect::<Vec<_>>()
        .join(" or ");
    if principal.is_authenticated() {
        return Refusal {
            code: "FORBIDDEN",
            message: format!("{} needs {scope_list}", rule.operation),
        };
    }
    let mut ways = Vec::new();
    if !scopes.is_empty() {
        ways.push(format!("a bearer token with {scope_list}"));
    }
    if rule.admits(Caller::Owner) {
        ways.push("a bearer token (for its client's own)".to_owned());
    }
    if rule.admits(Caller::Holder) {
        ways.push("the purchase's accessToken".to_owned());
    }
    Refusal {
        code: "UNAUTHENTICATED",
        message: format!("{} needs {}", rule.operation, ways.join(" or ")),
    }
}

pub fn principal<'a>(ctx: &'a Context<'_>) -> Cow<'a, Principal> {
    platform::graphql::principal(ctx)
}

/// The client a token speaks for; one shared key for callers without a token.
pub fn client_key(principal: &Principal) -> ClientKey {
    ClientKey::for_subject(principal.subject())
}

fn rule_for(operation: &str) -> async_graphql::Result<&'static Rule> {
    // Fail closed: an operation the table forgot is refused, and the matrix test catches it.
    rule(operation).ok_or_else(|| {
        tracing::error!(operation, "no policy rule");
        coded_error(
            "INTERNAL_SERVER_ERROR",
            "ticketing could not complete the request; it has been logged",
        )
    })
}

/// What the caller may touch with `operation`, or the refusal as a GraphQL error.
pub fn authorize(ctx: &Context<'_>, operation: &str) -> async_graphql::Result<Access> {
    authorize_presenting(ctx, operation, None)
}

/// As [`authorize`], for the operations that take a purchase's `accessToken`. A token that
/// is not one ticketing issued is refused (`UNAUTHENTICATED`), as a bad bearer token is:
/// never quietly treated as no token.
pub fn authorize_presenting(
    ctx: &Context<'_>,
    operation: &str,
    access_token: Option<&str>,
) -> async_graphql::Result<Access> {
    let rule = rule_for(operation)?;
    let held = match access_token {
        None => None,
        Some(token) => Some(verify_access_token(ctx, token)?),
    };
    decide(rule, &principal(ctx), held).map_err(Refusal::into_error)
}

fn verify_access_token(ctx: &Context<'_>, token: &str) -> async_graphql::Result<HeldPurchase> {
    super::context(ctx)?
        .purchase_tokens
        .verify(token)
        .ok_or_else(|| {
            coded_error(
                "UNAUTHENTICATED",
                "the accessToken is not valid: pass the one createTicketPurchase returned",
            )
        })
}

/// The refusal for a caller whose access to `operation` falls short of what the request
/// needs (e.g. a complimentary purchase with public access): `UNAUTHENTICATED` without a
/// token, `FORBIDDEN` with one.
pub fn refused(ctx: &Context<'_>, operation: &str, what: &str) -> async_graphql::Error {
    match rule_for(operation) {
        Ok(rule) => {
            let refusal = refuse(rule, &principal(ctx));
            let scopes = rule
                .scopes()
                .map(|s| format!("the {s} scope"))
                .collect::<Vec<_>>()
                .join(" or ");
            let message = if refusal.code == "UNAUTHENTICATED" {
                format!("{what} need a bearer token with {scopes}")
            } else {
                format!("{what} need {scopes}")
            };
            coded_error(refusal.code, message)
        }
        Err(error) => error,
    }
}

/// For fields and entity resolution, where a refusal is `null`: the access, or `None`.
pub fn field_access(
    ctx: &Context<'_>,
    operation: &str,
    held: Option<HeldPurchase>,
) -> async_graphql::Result<Option<Access>> {
    let rule = rule_for(operation)?;
    Ok(decide(rule, &principal(ctx), held).ok())
}

/// Whether `operation` gives the caller full access (e.g. `tickets:read` for
/// `Query.ticketPurchase`): such a caller may be told that an object exists.
pub fn has_full_access(ctx: &Context<'_>, operation: &str) -> bool {
    rule(operation).is_some_and(|rule| decide(rule, &principal(ctx), None) == Ok(Access::Any))
}

/// Turns a store refusal of an object the caller's access does not reach into the answer the
/// policy gives: `FORBIDDEN` for a caller who may read it through `read_operation` anyway,
/// otherwise `NOT_FOUND` in the very words used for an object that does not exist.
pub fn conceal(ctx: &Context<'_>, error: StoreError, read_operation: &str) -> async_graphql::Error {
    match error {
        StoreError::Domain(DomainError::NotYours(what)) => {
            if has_full_access(ctx, read_operation) {
                coded_error(
                    "FORBIDDEN",
                    format!(
                        "{what} belongs to another client: changing it needs the {ADMIN} scope"
                    ),
                )
            } else {
                not_found(&what.to_string())
            }
        }
        other => super::errors::store_error(other),
    }
}

/// `NOT_FOUND` for `what` (e.g. "ticket purchase <id>"): the one wording for "does not
/// exist" and "is not yours".
pub fn not_found(what: &str) -> async_graphql::Error {
    coded_error("NOT_FOUND", format!("{what} does not exist"))
}

/// The policy as a Markdown table (operation, who, notes) after a short legend.
pub fn markdown() -> String {
    let mut out = String::from(
        "Who: *anyone* (with or without a token); *anyone (public only)*: public ticket types and \
         paid purchases of them; a scope: a bearer token with it (`tickets:admin` implies every \
         other `tickets:*` scope, not `events:read`); *owner*: any bearer token, for what its \
         client (the token's subject) created; *holder*: whoever passes the `accessToken` of a \
         purchase made without a token, for that purchase.\n\n\
         | operation | who | notes |\n| --- | --- | --- |\n",
    );
    for rule in POLICY {
        let who = rule
            .callers
            .iter()
            .map(Caller::describe)
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            rule.operation,
            who,
            rule.description.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(scopes: &[&str]) -> Principal {
        Principal::new("client", scopes.iter().map(|s| (*s).to_owned()))
    }

    fn rule(operation: &str) -> &'static Rule {
        super::rule(operation).unwrap_or_else(|| panic!("{operation} missing"))
    }

    #[test]
    fn operations_are_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for rule in POLICY {
            assert!(seen.insert(rule.operation), "{} twice", rule.operation);
            assert!(!rule.callers.is_empty(), "{} admits nobody", rule.operation);
            for scope in rule.scopes() {
                assert!(SCOPES.contains(&scope), "{scope} is not a ticketing scope");
            }
        }
    }

    #[test]
    fn reading_never_writes() {
        let cancel = rule("Mutation.cancelTicketPurchase");
        let reader = token(&[READ]);
        assert_eq!(
            decide(cancel, &reader, None),
            Ok(Access::OwnedBy(ClientKey::for_subject(Some("client"))))
        );
        assert_eq!(
            decide(cancel, &token(&[ADMIN]), None),
            Ok(Access::Any),
            "admin implies the tickets scopes"
        );
        let events = rule("Query.ticketEvents");
        assert_eq!(
            decide(events, &token(&[ADMIN]), None).map_err(|r| r.code),
            Err("FORBIDDEN"),
            "but not events:read"
        );
        assert_eq!(
            decide(events, &Principal::anonymous(), None).map_err(|r| r.code),
            Err("UNAUTHENTICATED")
        );
    }

    #[test]
    fn the_markdown_has_a_row_per_rule() {
        let rows = markdown().lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, POLICY.len());
    }
}
