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

/// Gives the errors async-graphql raises itself an `extensions.code`, as ticketing and the
/// gateway do for the same errors: a value that does not fit its type (an `Int` over
/// 2^31 - 1, a fraction where `MinorUnits` are expected), in the query or in the variables,
/// is `BAD_USER_INPUT`; other validation failures `GRAPHQL_VALIDATION_FAILED`; unparsable
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

/// An input value that does not fit its type, by the words async-graphql uses for it
/// (argument validation and input coercion).
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
