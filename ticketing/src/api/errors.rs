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

/// Gives the errors async-graphql raises itself an `extensions.code`, as the gateway does
/// for the same errors: a value that does not fit its type (an `Int` over 2^31 - 1, a
/// fraction where `MinorUnits` are expected), in the query or in the variables, is
/// `BAD_USER_INPUT`; other validation failures `GRAPHQL_VALIDATION_FAILED`; unparsable
/// documents `GRAPHQL_PARSE_FAILED`. Errors that already carry a code keep it.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

fn has_code(error: &async_graphql::ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

fn set_code(error: &mut async_graphql::ServerError, code: &str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

/// The code of an input value that does not fit its type, by the messages async-graphql
/// words them with (argument validation and input coercion).
fn is_bad_input_value(error: &async_graphql::ServerError) -> bool {
    error.message.starts_with("Invalid value for argument")
        || error.message.starts_with("Failed to parse")
}

fn code_execution_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        if !has_code(error) && is_bad_input_value(error) {
            set_code(error, "BAD_USER_INPUT");
        }
    }
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        query: &str,
        variables: &async_graphql::Variables,
        next: async_graphql::extensions::NextParseQuery<'_>,
    ) -> async_graphql::ServerResult<async_graphql::parser::types::ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut error| {
            if !has_code(&error) {
                set_code(&mut error, "GRAPHQL_PARSE_FAILED");
            }
            error
        })
    }

    async fn validation(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextValidation<'_>,
    ) -> Result<async_graphql::ValidationResult, Vec<async_graphql::ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for error in &mut errors {
                if !has_code(error) {
                    let code = if is_bad_input_value(error) {
                        "BAD_USER_INPUT"
                    } else {
                        "GRAPHQL_VALIDATION_FAILED"
                    };
                    set_code(error, code);
                }
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: async_graphql::extensions::NextExecute<'_>,
    ) -> async_graphql::Response {
        let mut response = next.run(ctx, operation_name).await;
        code_execution_errors(&mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures_util::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures_util::stream::BoxStream<'s, async_graphql::Response> {
        use futures_util::StreamExt;
        next.run(ctx, stream)
            .map(|mut response| {
                code_execution_errors(&mut response);
                response
            })
            .boxed()
    }
}
