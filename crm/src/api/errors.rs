//! Turns refusals into GraphQL errors with a stable `extensions.code`. Database failures are
//! logged with their cause and shown to the client only as an internal error.

use platform::graphql::coded_error;

use crate::domain::DomainError;
use crate::store::StoreError;

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
