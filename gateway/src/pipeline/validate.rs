//! Parse and validate client operations against the API schema, and enforce the gateway's
//! operation limits (depth, aliases) before anything reaches a subgraph.

use apollo_compiler::parser::Parser;
use apollo_compiler::validation::{DiagnosticList, Valid};
use apollo_compiler::{ExecutableDocument, Schema, ast};
use platform::document_text::TextLimits;

use super::Limits;
use super::normalize::NormalizedOperation;
use super::selection::{Selection, SelectionSet};
use crate::response::GraphQLError;

mod defer;
mod one_of;

pub use one_of::check_variables as check_one_of_variables;

/// Limits on the document itself, checked while and right after parsing, before validation:
/// a refusal costs a bounded parse and one error object.
#[derive(Debug, Clone)]
pub struct DocumentLimits {
    /// Lexical tokens; parsing stops at the limit instead of reading a huge document whole.
    pub max_tokens: usize,
    /// Directive uses anywhere in the document (validation would otherwise answer one error
    /// per unknown directive: 5,000 of them for 5,000).
    pub max_directives: usize,
    /// Aliases as written (checked again on the operation once fragments are expanded).
    pub max_aliases: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits {
            max_tokens: 15_000,
            max_directives: 50,
            max_aliases: 64,
        }
    }
}

/// Validation errors returned at most; the rest are summed up in the last one.
const MAX_ERRORS: usize = 100;
/// Nesting the parser follows before giving up (selection sets, lists, objects).
const MAX_PARSER_RECURSION: usize = 256;

pub fn parse_and_validate(
    api: &Valid<Schema>,
    query: &str,
) -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>> {
    parse_within(api, query, &DocumentLimits::default())
}

pub fn parse_within(
    api: &Valid<Schema>,
    query: &str,
    limits: &DocumentLimits,
) -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>> {
    prescan(query, limits)?;
    let mut parser = Parser::new()
        .token_limit(limits.max_tokens.saturating_add(1))
        .recursion_limit(MAX_PARSER_RECURSION);
    let parsed = parser.parse_ast(query, "operation.graphql");
    if parser.tokens_reached() > limits.max_tokens {
        return Err(vec![
            GraphQLError::new(format!(
                "The document has more than {} tokens.",
                limits.max_tokens
            ))
            .with_code("TOKEN_LIMIT_EXCEEDED"),
        ]);
    }
    let document = match parsed {
        Ok(document) => document,
        // The first syntax error says what is wrong; the ones after it are mostly echoes of
        // the parser's recovery.
        Err(with_errors) => {
            let mut errors = errors(&with_errors.errors, "GRAPHQL_PARSE_FAILED");
            errors.truncate(1);
            return Err(errors);
        }
    };
    let directives = directive_uses(&document);
    if directives > limits.max_directives {
        return Err(vec![
            GraphQLError::new(format!(
                "The document uses {directives} directives, more than the maximum of {}.",
                limits.max_directives
            ))
            .with_code("DIRECTIVE_LIMIT_EXCEEDED"),
        ]);
    }
    let document = document
        .to_executable_validate(api)
        .map_err(|with_errors| errors(&with_errors.errors, "GRAPHQL_VALIDATION_FAILED"))?;
    let mut refusals = one_of::validate(api, &document);
    refusals.extend(defer::validate(&document));
    if refusals.is_empty() {
        Ok(document)
    } else {
        Err(refusals)
    }
}

fn errors(diagnostics: &DiagnosticList, code: &str) -> Vec<GraphQLError> {
    let mut errors: Vec<GraphQLError> = diagnostics
        .iter()
        .take(MAX_ERRORS)
        .map(|diagnostic| GraphQLError::from_compiler(diagnostic.to_json()).with_code(code))
        .collect();
    if diagnostics.len() > MAX_ERRORS {
        errors.push(
            GraphQLError::new(format!(
                "{} more errors not shown.",
                diagnostics.len() - MAX_ERRORS
            ))
            .with_code(code),
        );
    }
    errors
}

/// Counts tokens, directives and written aliases with the lexer the services use too,
/// stopping at the first limit, so that a huge document is refused before the parser builds
/// anything (parsing 15,000 tokens into a syntax tree cost ~5 ms of CPU; this costs
/// microseconds). The parser's own token limit, which also counts commas, stays as the
/// backstop.
fn prescan(query: &str, limits: &DocumentLimits) -> Result<(), Vec<GraphQLError>> {
    let text = TextLimits {
        max_tokens: limits.max_tokens,
        max_directives: limits.max_directives,
        max_aliases: limits.max_aliases,
    };
    platform::document_text::check(query, &text)
        .map(|_| ())
        .map_err(|refused| vec![GraphQLError::new(refused.message).with_code(refused.code)])
}

/// Every directive written in the document.
fn directive_uses(document: &ast::Document) -> usize {
    fn in_selections(selections: &[ast::Selection]) -> usize {
        selections
            .iter()
            .map(|selection| match selection {
                ast::Selection::Field(field) => {
                    field.directives.len() + in_selections(&field.selection_set)
                }
                ast::Selection::FragmentSpread(spread) => spread.directives.len(),
                ast::Selection::InlineFragment(fragment) => {
                    fragment.directives.len() + in_selections(&fragment.selection_set)
                }
            })
            .sum()
    }
    document
        .definitions
        .iter()
        .map(|definition| match definition {
            ast::Definition::OperationDefinition(operation) => {
                operation.directives.len()
                    + operation
                        .variables
                        .iter()
                        .map(|v| v.directives.len())
                        .sum::<usize>()
                    + in_selections(&operation.selection_set)
            }
            ast::Definition::FragmentDefinition(fragment) => {
                fragment.directives.len() + in_selections(&fragment.selection_set)
            }
            _ => 0,
        })
        .sum()
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
    let root_fields = root_fields(&operation.selection_set);
    if root_fields > limits.max_root_fields {
        return Err(GraphQLError::new(format!(
            "Operation selects {root_fields} root fields, more than the maximum of {}.",
            limits.max_root_fields
        ))
        .with_code("ROOT_FIELD_LIMIT_EXCEEDED"));
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

fn root_fields(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match item {
            Selection::Field(_) => 1,
            Selection::Fragment(fr) => root_fields(&fr.selection_set),
        })
        .sum()
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

#[cfg(test)]
mod tests {
    use super::{DocumentLimits, prescan};

    #[test]
    fn the_prescan_counts_tokens_and_directives_outside_strings_and_comments() {
        let limits = DocumentLimits {
            max_tokens: 13,
            max_directives: 1,
            max_aliases: 1,
        };
        // 13 tokens ({ a ( s : "…" t : """…""" ) @ include }) and one directive: what strings
        // and the comment hold does not count.
        let ok = "{ a(s: \"@x @y \\\" @z\", t: \"\"\"@b\"\"\") @include # @c @d\n }";
        assert!(prescan(ok, &limits).is_ok());
        let code = |query: &str| {
            prescan(query, &limits)
                .err()
                .and_then(|e| serde_json::to_value(&e[0]).ok())
                .map(|e| e["extensions"]["code"].clone())
        };
        assert_eq!(code("{ a @x @y }"), Some("DIRECTIVE_LIMIT_EXCEEDED".into()));
        assert_eq!(
            code("{ a b c d e f g h i j k l m }"),
            Some("TOKEN_LIMIT_EXCEEDED".into())
        );
    }
}
