//! The CRM's authorization policy: one table, [`POLICY`], naming for every operation who may
//! call it, and one function, [`authorize`], that every resolver asks (or [`visible`], for
//! the fields whose refusal is `null`). Nothing else in the API decides who may do what, so
//! the table is the whole story an auditor has to read, and `crm --print-policy` prints it as
//! Markdown for the docs.
//!
//! Scopes: `crm:read` looks, `crm:write` does the sales work (sponsors, contracts, invoices, a
//! sponsor's level), `crm:admin` sets the rules (level allowances and prices, overrides,
//! which conferences the CRM serves and their sponsor tickets, retrying bookings). Admin
//! implies write and write implies read: whoever changes the rules or records a sale has to
//! see what they change. Read never writes.
//!
//! Objects have no owner: the CRM is the organiser's sponsorship team's shared tool, and any
//! salesperson may pick up any sponsor, so a second client with the same scopes may do
//! exactly what the first may. Scopes decide alone, before anything is read, which is also
//! why no refusal can reveal whether an object exists: a caller without `crm:read` is refused
//! before the id is looked at, and every caller with it may see every object anyway.
//!
//! Contact details (`Sponsor.contactName`, `Sponsor.contactEmail`) are personal data of
//! people at the sponsor. A read-only dashboard (`crm:read`) shows the pipeline and does not
//! need them; the people who write to sponsors (`crm:write`) do. For `crm:read` they are
//! `null`, without an error, so one query serves both kinds of caller.
//!
//! How a refusal is answered: no token where one is needed, `UNAUTHENTICATED`; a token
//! without the scope, `FORBIDDEN`; for the fields marked [`Denial::Null`], `null`.

use std::borrow::Cow;

use async_graphql::Context;
use platform::Principal;
use platform::graphql::coded_error;

pub const READ: &str = "crm:read";
pub const WRITE: &str = "crm:write";
pub const ADMIN: &str = "crm:admin";

/// Every scope the CRM knows, weakest first.
pub const SCOPES: &[&str] = &[READ, WRITE, ADMIN];

/// Who a rule admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone, with or without a token.
    Anyone,
    /// A token with this scope, or one that implies it.
    Scope(&'static str),
}

impl Caller {
    pub fn describe(&self) -> String {
        match self {
            Self::Anyone => "anyone".into(),
            Self::Scope(scope) => format!("`{scope}`"),
        }
    }
}

/// How a caller the rule does not admit is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// A GraphQL error with `extensions.code` `UNAUTHENTICATED` or `FORBIDDEN`.
    Error,
    /// The field is `null`, without an error.
    Null,
}

/// One row of the policy.
#[derive(Debug)]
pub struct Rule {
    /// `Query.sponsor`, `Mutation.issueInvoice`, `Subscription.sponsorEvents`,
    /// `Entity.Sponsor` (resolution through `_entities`), or a field of an object type such
    /// as `Sponsor.contactEmail`.
    pub operation: &'static str,
    /// The callers it admits.
    pub callers: &'static [Caller],
    pub denial: Denial,
    /// What the callers may do, in a sentence or two.
    pub description: &'static str,
}

impl Rule {
    /// The scopes of the rule's callers.
    pub fn scopes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.callers.iter().filter_map(|c| match c {
            Caller::Scope(scope) => Some(*scope),
            Caller::Anyone => None,
        })
    }

    pub fn admits_anyone(&self) -> bool {
        self.callers.contains(&Caller::Anyone)
    }
}

const READERS: &[Caller] = &[Caller::Scope(READ)];
const WRITERS: &[Caller] = &[Caller::Scope(WRITE)];
const ADMINS: &[Caller] = &[Caller::Scope(ADMIN)];
const ANYONE: &[Caller] = &[Caller::Anyone];

const fn rule(
    operation: &'static str,
    callers: &'static [Caller],
    description: &'static str,
) -> Rule {
    Rule {
        operation,
        callers,
        denial: Denial::Error,
        description,
    }
}

/// The policy. A test drives every caller through every row against a real server, and fails
/// for any field of `Query`, `Mutation` or `Subscription` that is missing here.
pub static POLICY: &[Rule] = &[
    // Looking.
    rule(
        "Query.sponsor",
        READERS,
        "Read a sponsor: level, contract, invoices, ticket allocation.",
    ),
    rule(
        "Query.sponsors",
        READERS,
        "List sponsors, filtered by conference, level, onboarding or allocation status.",
    ),
    rule(
        "Query.sponsorshipLevels",
        READERS,
        "The levels with their prices and ticket allowances.",
    ),
    rule("Query.invoice", READERS, "Read an invoice."),
    rule(
        "Query.sponsorConferences",
        READERS,
        "The conferences the CRM serves, their currency and sponsor-ticket settings.",
    ),
    rule(
        "Query.sponsorEvents",
        READERS,
        "Read the event log. Sponsors in it follow the `Sponsor.*` rows below.",
    ),
    rule(
        "Subscription.sponsorEvents",
        READERS,
        "Follow the event log live.",
    ),
    Rule {
        operation: "Sponsor.contactName",
        callers: WRITERS,
        denial: Denial::Null,
        description: "The sponsor's contact person, personal data: for the people who work with sponsors. Null for `crm:read` (a dashboard), wherever a sponsor appears (queries, events, entities).",
    },
    Rule {
        operation: "Sponsor.contactEmail",
        callers: WRITERS,
        denial: Denial::Null,
        description: "The contact's e-mail address (sponsor tickets are booked to it): as `Sponsor.contactName`.",
    },
    // Federation.
    rule(
        "Query._service",
        ANYONE,
        "The federation SDL, for the gateway.",
    ),
    rule(
        "Query._entities",
        ANYONE,
        "Entity resolution for the gateway; each entity type follows its `Entity.*` row.",
    ),
    rule(
        "Entity.Sponsor",
        READERS,
        "Resolve a sponsor reference: as `Query.sponsor` (an unknown id resolves to null).",
    ),
    rule(
        "Entity.TicketPurchase",
        ANYONE,
        "Resolve ticketing's purchase reference to the CRM's extension of it: holds only the id, every other field decides for itself.",
    ),
    rule(
        "TicketPurchase.sponsor",
        READERS,
        "The sponsor a purchase was booked for (null for any other purchase).",
    ),
    // The sales work.
    rule(
        "Mutation.createSponsor",
        WRITERS,
        "Record a sponsor (DRAFT contract) for a conference the CRM serves.",
    ),
    rule("Mutation.sendContract", WRITERS, "DRAFT -> SENT."),
    rule(
        "Mutation.signContract",
        WRITERS,
        "SENT -> SIGNED; may onboard the sponsor and queue its ticket booking.",
    ),
    rule(
        "Mutation.cancelContract",
        WRITERS,
        "DRAFT or SENT -> CANCELLED.",
    ),
    rule(
        "Mutation.issueInvoice",
        WRITERS,
        "Issue an invoice, in the currency of the sponsor's conference.",
    ),
    rule(
        "Mutation.markInvoicePaid",
        WRITERS,
        "Record a payment; may onboard the sponsor and queue its ticket booking.",
    ),
    rule("Mutation.voidInvoice", WRITERS, "Void an unpaid invoice."),
    rule(
        "Mutation.changeSponsorLevel",
        WRITERS,
        "Move a sponsor to another level (what was sold changed); may top up its tickets or flag an excess.",
    ),
    // The rules.
    rule(
        "Mutation.updateSponsorshipLevel",
        ADMINS,
        "Change a level's price or ticket allowance for every sponsor at that level.",
    ),
    rule(
        "Mutation.setTicketAllowanceOverride",
        ADMINS,
        "Set or clear one sponsor's number of tickets, replacing every rule.",
    ),
    rule(
        "Mutation.configureSponsorTickets",
        ADMINS,
        "Register a conference with the CRM (checked with ticketing) and name its sponsor ticket type.",
    ),
    rule(
        "Mutation.setEarlySigningRule",
        ADMINS,
        "Extra tickets for a served conference's early signers.",
    ),
    rule(
        "Mutation.retryTicketAllocation",
        ADMINS,
        "Re-queue a sponsor's failed bookings and hurry waiting ones.",
    ),
];

pub fn rule_for(operation: &str) -> Option<&'static Rule> {
    POLICY.iter().find(|r| r.operation == operation)
}

/// Whether the principal holds `scope`: admin implies write, write implies read.
pub fn holds(principal: &Principal, scope: &str) -> bool {
    let implied_by: &[&str] = match scope {
        READ => &[READ, WRITE, ADMIN],
        WRITE => &[WRITE, ADMIN],
        other => return principal.has_scope(other),
    };
    implied_by.iter().any(|s| principal.has_scope(s))
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

/// The heart of the policy: whether `rule` admits a caller with these credentials.
pub fn decide(rule: &Rule, principal: &Principal) -> Result<(), Refusal> {
    if rule.admits_anyone() || rule.scopes().any(|scope| holds(principal, scope)) {
        return Ok(());
    }
    let scopes = rule
        .scopes()
        .map(|s| format!("the {s} scope"))
        .collect::<Vec<_>>()
        .join(" or ");
    Err(if principal.is_authenticated() {
        Refusal {
            code: "FORBIDDEN",
            message: format!("{} needs {scopes}", rule.operation),
        }
    } else {
        Refusal {
            code: "UNAUTHENTICATED",
            message: format!("{} needs a bearer token with {scopes}", rule.operation),
        }
    })
}

pub fn principal<'a>(ctx: &'a Context<'_>) -> Cow<'a, Principal> {
    platform::graphql::principal(ctx)
}

fn lookup(operation: &str) -> async_graphql::Result<&'static Rule> {
    // Fail closed: an operation the table forgot is refused, and the matrix test catches it.
    rule_for(operation).ok_or_else(|| {
        tracing::error!(operation, "no policy rule");
        coded_error(
            "INTERNAL_SERVER_ERROR",
            "the CRM could not complete the request; it has been logged",
        )
    })
}

/// Whether the caller may run `operation`, as the refusal the table prescribes.
pub fn authorize(ctx: &Context<'_>, operation: &str) -> async_graphql::Result<()> {
    let rule = lookup(operation)?;
    decide(rule, &principal(ctx)).map_err(Refusal::into_error)
}

/// For the fields whose refusal is `null` ([`Denial::Null`]): whether the caller sees it.
pub fn visible(ctx: &Context<'_>, operation: &str) -> async_graphql::Result<bool> {
    let rule = lookup(operation)?;
    Ok(decide(rule, &principal(ctx)).is_ok())
}

/// The policy as a Markdown table (operation, who, notes) after a short legend.
pub fn markdown() -> String {
    let mut out = String::from(
        "Who: *anyone* (with or without a token); a scope: a bearer token with it or one that \
         implies it (`crm:admin` implies `crm:write`, which implies `crm:read`). Sponsors have \
         no owner: the scopes decide alone. Refused callers get `UNAUTHENTICATED` (no token) \
         or `FORBIDDEN` (no scope), except where the notes say *null*.\n\n\
         | operation | who | notes |\n| --- | --- | --- |\n",
    );
    for rule in POLICY {
        let who = rule
            .callers
            .iter()
            .map(Caller::describe)
            .collect::<Vec<_>>()
            .join(", ");
        let refused = match rule.denial {
            Denial::Error => "",
            Denial::Null => " Refused: *null*.",
        };
        out.push_str(&format!(
            "| `{}` | {} | {}{} |\n",
            rule.operation,
            who,
            rule.description.replace('|', "\\|"),
            refused
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
        rule_for(operation).unwrap_or_else(|| panic!("{operation} missing"))
    }

    #[test]
    fn operations_are_listed_once_and_admit_somebody() {
        let mut seen = std::collections::HashSet::new();
        for rule in POLICY {
            assert!(seen.insert(rule.operation), "{} twice", rule.operation);
            assert!(!rule.callers.is_empty(), "{} admits nobody", rule.operation);
            for scope in rule.scopes() {
                assert!(SCOPES.contains(&scope), "{scope} is not a CRM scope");
            }
        }
    }

    /// The table names exactly the root fields and entity types the schema has.
    #[test]
    fn every_root_field_of_the_schema_has_a_rule() {
        use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
        let sdl = crate::api::published_sdl();
        let document = async_graphql::parser::parse_schema(&sdl).expect("the SDL parses");
        let mut in_schema = Vec::new();
        for definition in document.definitions {
            let TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let name = ty.node.name.node.to_string();
            if !["Query", "Mutation", "Subscription"].contains(&name.as_str()) {
                continue;
            }
            if let TypeKind::Object(object) = &ty.node.kind {
                for field in &object.fields {
                    in_schema.push(format!("{name}.{}", field.node.name.node));
                }
            }
        }
        // The plain SDL leaves out federation's own fields; the gateway reaches them.
        in_schema.extend(["Query._service".to_owned(), "Query._entities".to_owned()]);
        for operation in &in_schema {
            assert!(rule_for(operation).is_some(), "{operation} has no rule");
        }
        for rule in POLICY {
            let root = ["Query.", "Mutation.", "Subscription."]
                .iter()
                .any(|p| rule.operation.starts_with(p));
            if root {
                assert!(
                    in_schema.iter().any(|o| o == rule.operation),
                    "{} is not in the schema",
                    rule.operation
                );
            }
        }
    }

    #[test]
    fn scopes_imply_downwards_and_reading_never_writes() {
        let create = rule("Mutation.createSponsor");
        assert_eq!(
            decide(create, &token(&[READ])).map_err(|r| r.code),
            Err("FORBIDDEN")
        );
        assert!(decide(create, &token(&[WRITE])).is_ok());
        assert!(decide(create, &token(&[ADMIN])).is_ok());
        assert_eq!(
            decide(create, &Principal::anonymous()).map_err(|r| r.code),
            Err("UNAUTHENTICATED")
        );
        let levels = rule("Mutation.updateSponsorshipLevel");
        assert!(decide(levels, &token(&[WRITE])).is_err());
        assert!(decide(rule("Query.sponsor"), &token(&[ADMIN])).is_ok());
        assert!(
            decide(rule("Query.sponsor"), &token(&["tickets:admin"])).is_err(),
            "another service's admin is nobody here"
        );
        assert!(decide(rule("Sponsor.contactEmail"), &token(&[READ])).is_err());
    }

    /// `crm:read` never writes: no mutation admits it, or anyone.
    #[test]
    fn no_mutation_admits_readers() {
        for rule in POLICY
            .iter()
            .filter(|r| r.operation.starts_with("Mutation."))
        {
            assert!(!rule.admits_anyone(), "{} admits anyone", rule.operation);
            assert!(
                decide(rule, &token(&[READ])).is_err(),
                "{} admits crm:read",
                rule.operation
            );
        }
    }

    #[test]
    fn the_markdown_has_a_row_per_rule() {
        let rows = markdown().lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, POLICY.len());
    }
}
