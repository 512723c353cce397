//! Turns refusals into GraphQL errors with a stable `extensions.code`. Database failures are
//! logged with their cause and shown to the client only as an internal error.

use platform::graphql::coded_error;

use crate::domain::DomainError;
use crate::store::StoreError;
use crate::ticketing_client::TicketingError;

pub fn domain_error(error: &DomainError) -> async_graphql::Error {
    let message = error.to_string();
    match error {
        DomainError::InvalidInput(_) => coded_error("BAD_USER_INPUT", message),
        DomainError::NotFound(_) => coded_error("NOT_FOUND", message),
        DomainError::InvalidState(_) => coded_error("INVALID_STATE", message),
    }
}

pub fn store_error(error: StoreError) -> async_graphql::Error {
    match error {
        StoreError::Domain(e) => domain_error(&e),
        other => {
            tracing::error!(error = %other, "CRM storage failed");
            coded_error(
                "INTERNAL_SERVER_ERROR",
                "the CRM could not complete the request; it has been logged",
            )
        }
    }
}

/// `.or_gql()?` instead of `?`: async-graphql converts any `Display` error implicitly, which
/// would drop the code; this makes the mapping explicit at every call.
pub trait OrGraphQLError<T> {
    fn or_gql(self) -> async_graphql::Result<T>;
}

impl<T> OrGraphQLError<T> for Result<T, StoreError> {
    fn or_gql(self) -> async_graphql::Result<T> {
        self.map_err(store_error)
    }
}

impl<T> OrGraphQLError<T> for Result<T, DomainError> {
    fn or_gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| domain_error(&e))
    }
}

pub fn parse_id(what: &str, id: &async_graphql::ID) -> async_graphql::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| {
        coded_error(
            "BAD_USER_INPUT",
            format!("{:?} is not a valid {what} id", id.as_str()),
        )
    })
}

pub fn not_found(what: &str, id: uuid::Uuid) -> async_graphql::Error {
    coded_error("NOT_FOUND", format!("{what} {id} does not exist"))
}

/// What an admin is told when the CRM could not ask ticketing about a conference: ticketing's
/// own verdict where it has one (no such conference), otherwise that ticketing could not be
/// asked, with the cause. Nothing was written either way.
pub fn ticketing_lookup_error(
    conference_id: uuid::Uuid,
    error: &TicketingError,
) -> async_graphql::Error {
    match error.code() {
        Some("NOT_FOUND") => coded_error(
            "NOT_FOUND",
            format!("ticketing has no conference {conference_id}"),
        ),
        Some("BAD_USER_INPUT") => coded_error(
            "BAD_USER_INPUT",
            format!("ticketing refused conference id {conference_id}: {error}"),
        ),
        _ => {
            tracing::warn!(%error, conference = %conference_id, "could not look up a conference in ticketing");
            coded_error(
                "TICKETING_UNAVAILABLE",
                format!(
                    "the CRM could not check conference {conference_id} with ticketing: {error}"
                ),
            )
        }
    }
}
