//! OneOf Input Objects in operations (September 2025 spec): the rules apollo-compiler 1.x does
//! not know, so that a value the spec refuses is refused here, with a request error, instead of
//! reaching a subgraph.
//!
//! - Validation ("Values of Correct Type", "All Variable Usages Are Allowed"): an object literal
//!   of a OneOf type names exactly one field, not with the `null` literal; a variable given as
//!   that field must be of a non-null type, unless it has a non-null default value.
//! - Variable coercion: a OneOf value in a variable has exactly one entry, not null; and the one
//!   case validation lets through, a nullable variable with a default sent as an explicit null
//!   where a OneOf field wants a value, is refused as well.

use std::collections::HashSet;

use apollo_compiler::ast::{Argument, DirectiveList, InputValueDefinition, Type, Value};
use apollo_compiler::executable::{Operation, Selection, SelectionSet};
use apollo_compiler::parser::SourceSpan;
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::{ExtendedType, InputObjectType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Name, Node, Schema};

use crate::response::GraphQLError;

/// Finds the OneOf violations of every operation of a valid document.
pub fn validate(api: &Schema, document: &Valid<ExecutableDocument>) -> Vec<GraphQLError> {
    let mut errors: Vec<GraphQLError> = Vec::new();
    for operation in document.operations.iter() {
        let mut report = |message: String, at: &Node<Value>| {
            let error = GraphQLError::from_compiler(apollo_compiler::response::GraphQLError::new(
                message,
                at.location(),
                &document.sources,
            ))
            .with_code("GRAPHQL_VALIDATION_FAILED");
            // A fragment used by two operations would report its literals twice. The cap keeps
            // a document made of thousands of bad literals cheap to refuse.
            if errors.len() < super::MAX_ERRORS && !errors.contains(&error) {
                errors.push(error);
            }
        };
        let mut visit = |found: Found<'_>| match found {
            Found::Literal { ty, fields, at } => {
                if let Some(message) = literal_violation(ty, fields) {
                    report(message, at);
                }
            }
            Found::Member {
                ty,
                variable,
                field,
                at,
            } => {
                let allowed = operation
                    .variables
                    .iter()
                    .find(|v| v.name == *variable)
                    .is_none_or(|definition| {
                        definition.ty.is_non_null()
                            || definition
                                .default_value
                                .as_ref()
                                .is_some_and(|default| !default.is_null())
                    });
                if !allowed {
                    report(
                        format!(
                            "Variable \"${variable}\" must be non-nullable to be used for the \
                             field \"{field}\" of OneOf Input Object \"{}\".",
                            ty.name
                        ),
                        at,
                    );
                }
            }
        };
        for definition in &operation.variables {
            if let Some(default) = &definition.default_value {
                walk_value(api, default, &definition.ty, &mut visit);
            }
        }
        Walk::new(api, document).operation(operation, &mut visit);
    }
    errors
}

/// Checks the coerced variables of `operation` against the OneOf rules (see the module
/// documentation). The error is a request error for the client's variables.
pub fn check_variables(
    api: &Schema,
    document: &Valid<ExecutableDocument>,
    operation: &Operation,
    variables: &Valid<JsonMap>,
) -> Result<(), GraphQLError> {
    let refuse = |message: String, at: Option<SourceSpan>| {
        GraphQLError::from_compiler(apollo_compiler::response::GraphQLError::new(
            message,
            at,
            &document.sources,
        ))
        .with_code("BAD_USER_INPUT")
    };
    let mut explicit_nulls: Vec<&Name> = Vec::new();
    for definition in &operation.variables {
        let Some(value) = variables.get(definition.name.as_str()) else {
            continue;
        };
        let mut path = definition.name.to_string();
        if let Err(message) = check_json(api, value, &definition.ty, &mut path) {
            return Err(refuse(
                format!(
                    "Variable \"${}\" got an invalid value: {message}",
                    definition.name
                ),
                definition.location(),
            ));
        }
        if value.is_null() && definition.default_value.is_some() {
            explicit_nulls.push(&definition.name);
        }
    }
    if explicit_nulls.is_empty() {
        return Ok(());
    }
    // Only where a nullable variable with a default is sent as null: the operation is walked
    // for its uses as OneOf fields, a cost no other request pays.
    let mut refused = None;
    Walk::new(api, document).operation(operation, &mut |found| {
        if let Found::Member {
            ty,
            variable,
            field,
            at,
        } = found
            && refused.is_none()
            && explicit_nulls.contains(&variable)
        {
            refused = Some(refuse(
                format!(
                    "Variable \"${variable}\" is null, but it is the field \"{field}\" of OneOf \
                     Input Object \"{}\", which must not be null.",
                    ty.name
                ),
                at.location(),
            ));
        }
    });
    refused.map_or(Ok(()), Err)
}

/// What the walk reports.
enum Found<'a> {
    /// An object literal of a OneOf type.
    Literal {
        ty: &'a InputObjectType,
        fields: &'a [(Name, Node<Value>)],
        at: &'a Node<Value>,
    },
    /// A variable given as a field of a OneOf object literal.
    Member {
        ty: &'a InputObjectType,
        variable: &'a Name,
        field: &'a Name,
        at: &'a Node<Value>,
    },
}

fn literal_violation(ty: &InputObjectType, fields: &[(Name, Node<Value>)]) -> Option<String> {
    match fields {
        [(field, value)] if value.is_null() => Some(format!(
            "Field \"{}.{field}\" of a OneOf Input Object must not be null.",
            ty.name
        )),
        [_] => None,
        _ => Some(format!(
            "OneOf Input Object \"{}\" must specify exactly one field; {} given.",
            ty.name,
            fields.len()
        )),
    }
}

fn one_of_type<'a>(api: &'a Schema, ty: &Type) -> Option<&'a InputObjectType> {
    match api.types.get(ty.inner_named_type()) {
        Some(ExtendedType::InputObject(input)) => Some(input),
        _ => None,
    }
}

/// Visits the object literals of input object types in `value`, expected of type `ty`.
fn walk_value<'a>(
    api: &'a Schema,
    value: &'a Node<Value>,
    ty: &Type,
    visit: &mut impl FnMut(Found<'a>),
) {
    match value.as_ref() {
        Value::List(items) if ty.is_list() => {
            for item in items {
                walk_value(api, item, ty.item_type(), visit);
            }
        }
        // Input coercion makes a single value a list of one.
        _ if ty.is_list() => walk_value(api, value, ty.item_type(), visit),
        Value::Object(fields) => {
            let Some(input) = one_of_type(api, ty) else {
                return;
            };
            let one_of = input.directives.has("oneOf");
            if one_of {
                visit(Found::Literal {
                    ty: input,
                    fields,
                    at: value,
                });
            }
            for (name, field_value) in fields {
                if one_of && let Value::Variable(variable) = field_value.as_ref() {
                    visit(Found::Member {
                        ty: input,
                        variable,
                        field: name,
                        at: field_value,
                    });
                }
                if let Some(definition) = input.fields.get(name) {
                    walk_value(api, field_value, &definition.ty, visit);
                }
            }
        }
        _ => {}
    }
}

/// Walks an operation's arguments, through the fragments it uses (each once).
struct Walk<'a> {
    api: &'a Schema,
    document: &'a ExecutableDocument,
    fragments_seen: HashSet<&'a Name>,
}

impl<'a> Walk<'a> {
    fn new(api: &'a Schema, document: &'a ExecutableDocument) -> Self {
        Walk {
            api,
            document,
            fragments_seen: HashSet::new(),
        }
    }

    fn operation(mut self, operation: &'a Operation, visit: &mut impl FnMut(Found<'a>)) {
        self.directives(&operation.directives, visit);
        self.selection_set(&operation.selection_set, visit);
    }

    fn arguments(
        &self,
        arguments: &'a [Node<Argument>],
        definitions: &'a [Node<InputValueDefinition>],
        visit: &mut impl FnMut(Found<'a>),
    ) {
        for argument in arguments {
            if let Some(definition) = definitions.iter().find(|d| d.name == argument.name) {
                walk_value(self.api, &argument.value, &definition.ty, visit);
            }
        }
    }

    fn directives(&self, directives: &'a DirectiveList, visit: &mut impl FnMut(Found<'a>)) {
        for directive in directives.iter() {
            if let Some(definition) = self.api.directive_definitions.get(&directive.name) {
                self.arguments(&directive.arguments, &definition.arguments, visit);
            }
        }
    }

    fn selection_set(&mut self, set: &'a SelectionSet, visit: &mut impl FnMut(Found<'a>)) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    self.arguments(&field.arguments, &field.definition.arguments, visit);
                    self.directives(&field.directives, visit);
                    self.selection_set(&field.selection_set, visit);
                }
                Selection::InlineFragment(fragment) => {
                    self.directives(&fragment.directives, visit);
                    self.selection_set(&fragment.selection_set, visit);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.directives, visit);
                    if !self.fragments_seen.insert(&spread.fragment_name) {
                        continue;
                    }
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        self.directives(&fragment.directives, visit);
                        self.selection_set(&fragment.selection_set, visit);
                    }
                }
            }
        }
    }
}

/// Checks a variable's coerced JSON value of type `ty`; `path` names the place for the message.
fn check_json(api: &Schema, value: &JsonValue, ty: &Type, path: &mut String) -> Result<(), String> {
    match value {
        JsonValue::Array(items) if ty.is_list() => {
            let length = path.len();
            for (index, item) in items.iter().enumerate() {
                path.push_str(&format!("[{index}]"));
                check_json(api, item, ty.item_type(), path)?;
                path.truncate(length);
            }
            Ok(())
        }
        _ if ty.is_list() => check_json(api, value, ty.item_type(), path),
        JsonValue::Object(map) => {
            let Some(input) = one_of_type(api, ty) else {
                return Ok(());
            };
            if input.directives.has("oneOf") {
                let mut entries = map.iter();
                match (entries.next(), entries.next()) {
                    (Some((field, field_value)), None) if field_value.is_null() => {
                        return Err(format!(
                            "at \"{path}\", field \"{}.{}\" of a OneOf Input Object must not \
                             be null.",
                            input.name,
                            field.as_str()
                        ));
                    }
                    (Some(_), None) => {}
                    _ => {
                        return Err(format!(
                            "at \"{path}\", OneOf Input Object \"{}\" must specify exactly one \
                             field; {} given.",
                            input.name,
                            map.len()
                        ));
                    }
                }
            }
            let length = path.len();
            for (field, field_value) in map.iter() {
                let Some(definition) = input.fields.get(field.as_str()) else {
                    continue;
                };
                path.push('.');
                path.push_str(field.as_str());
                check_json(api, field_value, &definition.ty, path)?;
                path.truncate(length);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
