//! The request pipeline, one module per stage:
//! parse + validate (`validate`) → normalise (`normalize`) → plan (`plan`, cached in
//! `plan_cache`) → execute (`execute`) → shape (`shape`).

pub mod execute;
pub mod normalize;
pub mod plan;
pub mod plan_cache;
pub mod selection;
pub mod shape;
pub mod validate;

use std::sync::Arc;

use apollo_compiler::ast::OperationType;
use apollo_compiler::response::JsonMap;
use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::response::{GraphQLError, Response};
use crate::subgraph_client::SubgraphClient;
use crate::supergraph::Supergraph;
use execute::ExecutionContext;
use plan_cache::PlanCache;

/// A GraphQL-over-HTTP request body (or GET parameters).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphQLRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<serde_json::Value>,
    pub extensions: Option<serde_json::Value>,
}

/// Limits that protect the gateway and the subgraphs from abusive operations.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_depth: usize,
    pub max_aliases: usize,
    pub introspection: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Get,
    Post,
}

/// What the HTTP layer needs to pick a status code.
#[derive(Debug)]
pub enum Outcome {
    /// Execution ran (possibly with field errors).
    Executed(Response),
    /// The request was rejected before execution; the response has no `data`.
    Rejected(Response),
    /// A mutation was sent over GET.
    MethodNotAllowed(Response),
}

pub struct Pipeline {
    supergraph: Arc<Supergraph>,
    client: SubgraphClient,
    plans: PlanCache,
    limits: Limits,
}

fn rejected(message: impl Into<String>, code: &str) -> Outcome {
    Outcome::Rejected(Response::request_error(vec![
        GraphQLError::new(message).with_code(code),
    ]))
}

impl Pipeline {
    pub fn new(
        supergraph: Arc<Supergraph>,
        client: SubgraphClient,
        limits: Limits,
        plan_cache_size: usize,
    ) -> Self {
        Pipeline {
            supergraph,
            client,
            plans: PlanCache::new(plan_cache_size),
            limits,
        }
    }

    pub fn supergraph(&self) -> &Supergraph {
        &self.supergraph
    }

    /// Number of cached query plans (observability, tests).
    pub fn cached_plans(&self) -> usize {
        self.plans.len()
    }

    pub async fn handle(
        &self,
        request: GraphQLRequest,
        transport: Transport,
        authorization: Option<&HeaderValue>,
    ) -> Outcome {
        let sg = &*self.supergraph;
        let Some(query) = request.query.as_deref() else {
            return rejected("Must provide query string.", "BAD_REQUEST");
        };
        let document = match validate::parse_and_validate(&sg.api, query) {
            Ok(document) => document,
            Err(errors) => return Outcome::Rejected(Response::request_error(errors)),
        };
        let operation = match document.operations.get(request.operation_name.as_deref()) {
            Ok(operation) => operation,
            Err(error) => {
                return Outcome::Rejected(Response::request_error(vec![
                    GraphQLError::from_compiler(error.to_graphql_error(&document.sources))
                        .with_code("GRAPHQL_VALIDATION_FAILED"),
                ]));
            }
        };
        match operation.operation_type {
            OperationType::Mutation if transport == Transport::Get => {
                return Outcome::MethodNotAllowed(Response::request_error(vec![
                    GraphQLError::new("Mutations cannot be sent with GET; use POST.")
                        .with_code("METHOD_NOT_ALLOWED"),
                ]));
            }
            OperationType::Subscription => {
                return rejected(
                    "Subscriptions are not supported yet.",
                    "OPERATION_NOT_SUPPORTED",
                );
            }
            _ => {}
        }

        let raw_variables: JsonMap = match request.variables {
            None | Some(serde_json::Value::Null) => JsonMap::new(),
            Some(value @ serde_json::Value::Object(_)) => match serde_json::from_value(value) {
                Ok(map) => map,
                Err(e) => return rejected(format!("Invalid variables: {e}"), "BAD_REQUEST"),
            },
            Some(_) => return rejected("Variables must be an object.", "BAD_REQUEST"),
        };
        let variables = match apollo_compiler::request::coerce_variable_values(
            &sg.api,
            operation,
            &raw_variables,
        ) {
            Ok(variables) => variables,
            Err(error) => {
                return Outcome::Rejected(Response::request_error(vec![
                    GraphQLError::from_compiler(error.to_graphql_error(&document.sources))
                        .with_code("BAD_USER_INPUT"),
                ]));
            }
        };

        let has_introspection = operation
            .root_fields(&document)
            .any(|f| f.name == "__schema" || f.name == "__type");
        if has_introspection && !self.limits.introspection {
            return rejected(
                "GraphQL introspection has been disabled on this gateway.",
                "INTROSPECTION_DISABLED",
            );
        }

        let normalized = match normalize::normalize(&sg.api, &document, operation, &variables) {
            Ok(normalized) => normalized,
            Err(error) => return rejected(error.to_string(), "OPERATION_TOO_LARGE"),
        };
        if let Err(error) = validate::check_limits(&normalized, &self.limits) {
            return Outcome::Rejected(Response::request_error(vec![error]));
        }

        let introspection = if has_introspection {
            if let Err(error) =
                apollo_compiler::introspection::check_max_depth(&document, operation)
            {
                return Outcome::Rejected(Response::request_error(vec![
                    GraphQLError::from_compiler(error.to_graphql_error(&document.sources)),
                ]));
            }
            match apollo_compiler::introspection::partial_execute(
                &sg.api,
                &sg.api_implementers,
                &document,
                operation,
                &variables,
            ) {
                Ok(response) => Some(response),
                Err(error) => {
                    return Outcome::Rejected(Response::request_error(vec![
                        GraphQLError::from_compiler(error.to_graphql_error(&document.sources)),
                    ]));
                }
            }
        } else {
            None
        };

        let plan = match self
            .plans
            .get_or_plan(&normalized, || plan::plan(sg, &normalized))
        {
            Ok(plan) => plan,
            Err(error) => return rejected(error.to_string(), "QUERY_PLANNING_FAILED"),
        };

        let variables_json = match serde_json::to_value(&*variables) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let ctx = ExecutionContext {
            supergraph: sg,
            client: &self.client,
            variables: &variables_json,
            authorization,
        };
        let output = execute::execute(&plan, &ctx).await;
        let mut errors = output.errors;
        let introspection_data = introspection.as_ref().and_then(|r| r.data.as_ref());
        if let Some(response) = &introspection {
            errors.extend(
                response
                    .errors
                    .iter()
                    .cloned()
                    .map(GraphQLError::from_compiler),
            );
        }
        let data = shape::shape(
            sg,
            &normalized,
            &output.data,
            introspection_data,
            &mut errors,
        );
        Outcome::Executed(Response {
            errors,
            data: Some(data),
        })
    }
}
