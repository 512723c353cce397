//! Derives the API schema from the supergraph: the schema clients see. Composition machinery
//! (`@link`, `join__*`, `link__*` and other spec types and directives) and everything marked
//! `@inaccessible` is removed, so validation and introspection only know the public contract.

use apollo_compiler::ast::{DirectiveDefinition, FieldDefinition, Type};
use apollo_compiler::schema::{Component, DirectiveList, DirectiveLocation, ExtendedType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Node, Schema, name};

use crate::error::GatewayError;

/// Directive applications that stay in the API schema: they mean something to clients.
const KEPT_DIRECTIVES: &[&str] = &["deprecated", "specifiedBy", "oneOf"];

fn is_machinery_name(name: &str) -> bool {
    name.starts_with("join__")
        || name.starts_with("link__")
        || name.starts_with("core__")
        || name.starts_with("federation__")
        || matches!(
            name,
            "link" | "core" | "inaccessible" | "tag" | "_Any" | "_Entity" | "_Service"
        )
}

fn is_executable_location(location: &DirectiveLocation) -> bool {
    use DirectiveLocation::*;
    matches!(
        location,
        Query
            | Mutation
            | Subscription
            | Field
            | FragmentDefinition
            | FragmentSpread
            | InlineFragment
            | VariableDefinition
    )
}

fn strip(directives: &mut DirectiveList) {
    directives.retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
}

pub fn derive_api_schema(supergraph: &Valid<Schema>) -> Result<Valid<Schema>, GatewayError> {
    let mut api: Schema = supergraph.as_ref().clone();
    api.schema_definition
        .make_mut()
        .directives
        .retain(|_| false);
    // Executable directives (usable in operations) stay; type-system-only ones are composition's,
    // except `@oneOf`, which tells clients how to fill an input.
    api.directive_definitions.retain(|name, def| {
        def.is_built_in()
            || name == "oneOf"
            || (!is_machinery_name(name) && def.locations.iter().any(is_executable_location))
    });
    add_one_of_support(&mut api);
    declare_defer(&mut api);
    api.types.retain(|name, ty| {
        ty.is_built_in() || (!is_machinery_name(name) && !ty.directives().has("inaccessible"))
    });

    let kept: std::collections::HashSet<apollo_compiler::Name> =
        api.types.keys().cloned().collect();
    let type_kept = |ty: &apollo_compiler::ast::Type| kept.contains(ty.inner_named_type());

    for ty in api.types.values_mut() {
        if ty.is_built_in() {
            continue;
        }
        match ty {
            ExtendedType::Object(o) => {
                let o = o.make_mut();
                strip(&mut o.directives);
                o.implements_interfaces.retain(|i| kept.contains(&i.name));
                o.fields
                    .retain(|_, f| !f.directives.has("inaccessible") && type_kept(&f.ty));
                for f in o.fields.values_mut() {
                    let f = f.make_mut();
                    f.directives
                        .retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
                    f.arguments
                        .retain(|a| !a.directives.has("inaccessible") && type_kept(&a.ty));
                    for a in &mut f.arguments {
                        a.make_mut()
                            .directives
                            .retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
                    }
                }
            }
            ExtendedType::Interface(i) => {
                let i = i.make_mut();
                strip(&mut i.directives);
                i.implements_interfaces.retain(|n| kept.contains(&n.name));
                i.fields
                    .retain(|_, f| !f.directives.has("inaccessible") && type_kept(&f.ty));
                for f in i.fields.values_mut() {
                    let f = f.make_mut();
                    f.directives
                        .retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
                    f.arguments
                        .retain(|a| !a.directives.has("inaccessible") && type_kept(&a.ty));
                    for a in &mut f.arguments {
                        a.make_mut()
                            .directives
                            .retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
                    }
                }
            }
            ExtendedType::Union(u) => {
                let u = u.make_mut();
                strip(&mut u.directives);
                u.members.retain(|m| kept.contains(&m.name));
            }
            ExtendedType::Enum(e) => {
                let e = e.make_mut();
                strip(&mut e.directives);
                e.values.retain(|_, v| !v.directives.has("inaccessible"));
                for v in e.values.values_mut() {
                    v.make_mut()
                        .directives
                        .retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
                }
            }
            ExtendedType::InputObject(io) => {
                let io = io.make_mut();
                strip(&mut io.directives);
                io.fields
                    .retain(|_, f| !f.directives.has("inaccessible") && type_kept(&f.ty));
                for f in io.fields.values_mut() {
                    f.make_mut()
                        .directives
                        .retain(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()));
                }
            }
            ExtendedType::Scalar(s) => strip(&mut s.make_mut().directives),
        }
    }

    // Root operation types can disappear (e.g. a Mutation made only of inaccessible fields).
    let schema_def = api.schema_definition.make_mut();
    for root in [
        &mut schema_def.query,
        &mut schema_def.mutation,
        &mut schema_def.subscription,
    ] {
        let Some(name) = root.as_ref().map(|r| r.name.clone()) else {
            continue;
        };
        let empty = api
            .types
            .get(&name)
            .is_none_or(|t| matches!(t, ExtendedType::Object(o) if o.fields.is_empty()));
        if empty {
            *root = None;
            api.types.shift_remove(&name);
        }
    }

    check_one_of_types(&api)?;
    api.validate().map_err(|e| {
        GatewayError::InvalidSupergraph(format!("derived API schema is invalid: {}", e.errors))
    })
}

/// Declares `directive @oneOf on INPUT_OBJECT` in `schema` unless it is there already.
///
/// The September 2025 spec makes `@oneOf` a built-in directive, but apollo-compiler 1.x does not
/// know it: a supergraph (or API schema) must declare it before any input object can carry it,
/// and introspection lists it among `__schema.directives` only when it is declared.
pub(crate) fn declare_one_of(schema: &mut Schema) {
    schema
        .directive_definitions
        .entry(name!("oneOf"))
        .or_insert_with(|| {
            Node::new(DirectiveDefinition {
                description: Some(
                    "Indicates an Input Object is a OneOf Input Object: exactly one of its fields \
                     must be provided, and its value must not be null."
                        .into(),
                ),
                name: name!("oneOf"),
                arguments: Vec::new(),
                repeatable: false,
                locations: vec![DirectiveLocation::InputObject],
            })
        });
}

/// `@defer`, which the gateway honours in queries (`pipeline::defer`): declared so that
/// operations using it validate and clients' code generators find it by introspection.
fn declare_defer(api: &mut Schema) {
    const DEFER: &str = r#"
        "Delivers this fragment's fields after the rest of the response, to a client that accepts incremental delivery (multipart/mixed)."
        directive @defer(
          "Names the fragment in the payload that delivers it."
          label: String
          "Defers only when true."
          if: Boolean! = true
        ) on FRAGMENT_SPREAD | INLINE_FRAGMENT
    "#;
    let Ok(document) = apollo_compiler::ast::Document::parse(DEFER, "defer.graphql") else {
        return;
    };
    for definition in document.definitions {
        if let apollo_compiler::ast::Definition::DirectiveDefinition(defer) = definition {
            api.directive_definitions
                .entry(defer.name.clone())
                .or_insert(defer);
        }
    }
}

/// What clients need to see OneOf Input Objects: the directive, and `__Type.isOneOf: Boolean`
/// (September 2025 spec), which the introspection types of apollo-compiler 1.x lack. Without
/// the field, validation refuses graphql-js's introspection query (`oneOf: true`);
/// `supergraph::introspection` resolves it.
fn add_one_of_support(api: &mut Schema) {
    declare_one_of(api);
    if let Some(ExtendedType::Object(introspection_type)) = api.types.get_mut("__Type") {
        introspection_type
            .make_mut()
            .fields
            .entry(name!("isOneOf"))
            .or_insert_with(|| {
                Component::new(FieldDefinition {
                    description: None,
                    name: name!("isOneOf"),
                    arguments: Vec::new(),
                    ty: Type::Named(name!("Boolean")),
                    directives: Default::default(),
                })
            });
    }
}

/// The spec's type rules for a OneOf Input Object, which apollo-compiler 1.x does not check:
/// every field nullable and without a default, or "exactly one non-null field" could not hold
/// (a non-null field would have to be given in every value, a default would add a second one).
fn check_one_of_types(api: &Schema) -> Result<(), GatewayError> {
    for ty in api.types.values() {
        let ExtendedType::InputObject(input) = ty else {
            continue;
        };
        if !input.directives.has("oneOf") {
            continue;
        }
        for field in input.fields.values() {
            if field.ty.is_non_null() {
                return Err(GatewayError::InvalidSupergraph(format!(
                    "OneOf input field {}.{} must be nullable",
                    input.name, field.name
                )));
            }
            if field.default_value.is_some() {
                return Err(GatewayError::InvalidSupergraph(format!(
                    "OneOf input field {}.{} cannot have a default value",
                    input.name, field.name
                )));
            }
        }
    }
    Ok(())
}
