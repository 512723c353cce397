//! Parse and validate client operations against the API schema, and enforce the gateway's
//! operation limits (depth, aliases) before anything reaches a subgraph.

use apollo_compiler::ExecutableDocument;
use apollo_compiler::Schema;
use apollo_compiler::validation::Valid;

use super::Limits;
use super::normalize::NormalizedOperation;
use super::selection::{Selection, SelectionSet};
use crate::response::GraphQLError;

pub fn parse_and_validate(
    api: &Valid<Schema>,
    query: &str,
) -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>> {
    ExecutableDocument::parse_and_validate(api, query, "operation.graphql").map_err(|with_errors| {
        with_errors
            .errors
            .iter()
            .map(|diagnostic| {
                GraphQLError::from_compiler(diagnostic.to_json())
                    .with_code("GRAPHQL_VALIDATION_FAILED")
            })
            .collect()
    })
}

pub fn check_limits(operation: &NormalizedOperation, limits: &Limits) -> Result<(), GraphQLError> {
    let depth = depth(&operation.selection_set);
    if depth > limits.max_depth {
        return Err(GraphQLError::new(format!(
            "Operation depth {depth} exceeds the maximum of {}.",
            limits.max_depth
        ))
        .with_code("MAX_DEPTH_EXCEEDED"));
    }
    let aliases = aliases(&operation.selection_set);
    if aliases > limits.max_aliases {
        return Err(GraphQLError::new(format!(
            "Operation uses {aliases} aliases, more than the maximum of {}.",
            limits.max_aliases
        ))
        .with_code("MAX_ALIASES_EXCEEDED"));
    }
    Ok(())
}

fn depth(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match item {
            Selection::Field(f) => 1 + depth(&f.selection_set),
            Selection::Fragment(fr) => depth(&fr.selection_set),
        })
        .max()
        .unwrap_or(0)
}

fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match item {
            Selection::Field(f) => usize::from(f.alias.is_some()) + aliases(&f.selection_set),
            Selection::Fragment(fr) => aliases(&fr.selection_set),
        })
        .sum()
}
