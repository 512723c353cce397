//! The `@defer` rules apollo-compiler 1.x leaves to the server (incremental delivery RFC):
//! a label is a literal string, not a variable, and unique in the document, since clients
//! tell payloads apart by it.

use apollo_compiler::ExecutableDocument;
use apollo_compiler::ast::Value;
use apollo_compiler::executable::{DirectiveList, Selection, SelectionSet};
use apollo_compiler::validation::Valid;

use crate::response::GraphQLError;

pub fn validate(document: &Valid<ExecutableDocument>) -> Vec<GraphQLError> {
    let mut labels: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    let sets = document
        .operations
        .iter()
        .map(|operation| &operation.selection_set)
        .chain(document.fragments.values().map(|f| &f.selection_set));
    for set in sets {
        walk(set, &mut labels, &mut errors);
    }
    errors
}

fn walk(set: &SelectionSet, labels: &mut Vec<String>, errors: &mut Vec<GraphQLError>) {
    for selection in &set.selections {
        match selection {
            Selection::Field(field) => walk(&field.selection_set, labels, errors),
            Selection::InlineFragment(fragment) => {
                check(&fragment.directives, labels, errors);
                walk(&fragment.selection_set, labels, errors);
            }
            Selection::FragmentSpread(spread) => check(&spread.directives, labels, errors),
        }
    }
}

fn check(directives: &DirectiveList, labels: &mut Vec<String>, errors: &mut Vec<GraphQLError>) {
    let Some(label) = directives
        .get("defer")
        .and_then(|defer| defer.specified_argument_by_name("label"))
    else {
        return;
    };
    let refused = |message: String| message_error(message);
    match label.as_ref() {
        Value::String(text) => {
            if labels.iter().any(|seen| seen == text.as_str()) {
                errors.push(refused(format!(
                    "The `@defer` label \"{}\" is used more than once; labels must be unique.",
                    text.as_str()
                )));
            } else {
                labels.push(text.as_str().to_owned());
            }
        }
        Value::Null => {}
        _ => errors.push(refused(
            "A `@defer` label must be a literal string, not a variable.".to_owned(),
        )),
    }
}

fn message_error(message: String) -> GraphQLError {
    GraphQLError::new(message).with_code("GRAPHQL_VALIDATION_FAILED")
}
