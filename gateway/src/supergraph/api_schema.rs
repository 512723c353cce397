//! Derives the API schema from the supergraph: the schema clients see. Composition machinery
//! (`@link`, `join__*`, `link__*` and other spec types and directives) and everything marked
//! `@inaccessible` is removed, so validation and introspection only know the public contract.

use apollo_compiler::Schema;
use apollo_compiler::schema::{DirectiveList, DirectiveLocation, ExtendedType};
use apollo_compiler::validation::Valid;

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
    // Executable directives (usable in operations) stay; type-system-only ones are composition's.
    api.directive_definitions.retain(|name, def| {
        def.is_built_in()
            || (!is_machinery_name(name) && def.locations.iter().any(is_executable_location))
    });
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

    api.validate().map_err(|e| {
        GatewayError::InvalidSupergraph(format!("derived API schema is invalid: {}", e.errors))
    })
}
