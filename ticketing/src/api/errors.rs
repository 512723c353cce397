//! Turns refusals into GraphQL errors with a stable `extensions.code`. Database failures are
//! logged with their cause and shown to the client only as an internal error.

use async_graphql::ErrorExtensions;
use platform::graphql::coded_error;

use crate::domain::DomainError;
use crate::store::StoreError;

pub fn domain_error(error: &DomainError) -> async_graphql::Error {
    let message = error.to_string();
    match error {
        DomainError::InvalidInput(_) => coded_error("BAD_USER_INPUT", message),
        DomainError::NotFound(_) => coded_error("NOT_FOUND", message),
        DomainError::SoldOut {
            ticket_type,
            remaining,
        } => coded_error("SOLD_OUT", message).extend_with(|_, e| {
            e.set("ticketTypeId", ticket_type.to_string());
            e.set("remaining", *remaining);
        }),
        DomainError::SaleClosed(_) => coded_error("SALE_CLOSED", message),
        DomainError::IdempotencyKeyReused => coded_error("IDEMPOTENCY_KEY_REUSED", message),
        DomainError::DuplicateExternalReference { purchase_id, .. } => {
            coded_error("DUPLICATE_EXTERNAL_REFERENCE", message)
                .extend_with(|_, e| e.set("ticketPurchaseId", purchase_id.to_string()))
        }
        DomainError::TooManyUnpaidSeatsInPurchase { max, .. } => {
            coded_error("UNPAID_SEAT_LIMIT", message).extend_with(|_, e| {
                e.set("scope", "PURCHASE");
                e.set("limit", *max);
            })
        }
        DomainError::UnpaidSeatLimit { max, held, .. } => coded_error("UNPAID_SEAT_LIMIT", message)
            .extend_with(|_, e| {
                e.set("scope", "BUYER");
                e.set("limit", *max);
                e.set("held", *held);
            }),
        DomainError::InvalidState(_) => coded_error("INVALID_STATE", message),
        DomainError::Forbidden(_) => coded_error("FORBIDDEN", message),
        // Whether to say more is the policy's call (`policy::conceal`); by default an object
        // out of the caller's reach is one that does not exist.
        DomainError::NotYours(what) => coded_error("NOT_FOUND", format!("{what} does not exist")),
    }
}

pub fn store_error(error: StoreError) -> async_graphql::Error {
    match error {
        StoreError::Domain(e) => domain_error(&e),
        other => {
            tracing::error!(error = %other, "ticketing storage failed");
            coded_error(
                "INTERNAL_SERVER_ERROR",
                "ticketing could not complete the request; it has been logged",
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

pub fn bad_id(what: &str, value: &str) -> async_graphql::Error {
    coded_error(
        "BAD_USER_INPUT",
        format!("{value:?} is not a valid {what} id"),
    )
}

pub fn parse_id(what: &str, id: &async_graphql::ID) -> async_graphql::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| bad_id(what, id.as_str()))
}
