//! Reads the join spec directives (`@join__graph`, `@join__type`, `@join__field`,
//! `@join__implements`, `@join__unionMember`) into the supergraph's routing maps.

use apollo_compiler::ast::{Directive, Value};
use apollo_compiler::executable::FieldSet;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node};

use super::{FieldInGraph, Subgraph, SubgraphId, Supergraph, TypeInGraph, TypeMeta};
use crate::error::GatewayError;
use crate::pipeline::normalize::from_field_set;
use std::hash::{Hash, Hasher};

use crate::pipeline::selection::{Selection, SelectionSet};

const GRAPH_ENUM: &str = "join__Graph";

pub(super) fn read_join_metadata(supergraph: &mut Supergraph) -> Result<(), GatewayError> {
    supergraph.subgraphs = read_graphs(supergraph)?;
    let schema = &supergraph.schema;
    let graph_of = |directive: &Directive| -> Result<Option<SubgraphId>, GatewayError> {
        let Some(value) = directive.specified_argument_by_name("graph") else {
            return Ok(None);
        };
        let Value::Enum(name) = value.as_ref() else {
            return Err(invalid(format!(
                "@{} graph must be an enum",
                directive.name
            )));
        };
        supergraph
            .subgraphs
            .iter()
            .position(|s| &s.enum_value == name)
            .map(Some)
            .ok_or_else(|| invalid(format!("unknown join__Graph value {name}")))
    };

    let mut types = std::collections::HashMap::new();
    let mut has_membership_info = false;
    for (type_name, ty) in &schema.types {
        if ty.is_built_in() {
            continue;
        }
        let mut meta = TypeMeta::default();
        for directive in ty.directives().get_all("join__type") {
            meta.joined = true;
            let Some(graph) = graph_of(directive)? else {
                continue;
            };
            let resolvable = bool_arg(directive, "resolvable").unwrap_or(true);
            if bool_arg(directive, "isInterfaceObject").unwrap_or(false)
                && !meta.interface_object_in.contains(&graph)
            {
                meta.interface_object_in.push(graph);
            }
            let keys = match string_arg(directive, "key") {
                Some(key) if resolvable => vec![parse_field_set(supergraph, type_name, key)?],
                _ => Vec::new(),
            };
            // One entry per graph; a type with several keys has one directive per key.
            if let Some(existing) = meta.graphs.iter_mut().find(|g| g.graph == graph) {
                existing.keys.extend(keys);
            } else {
                meta.graphs.push(TypeInGraph { graph, keys });
            }
        }
        for directive in ty.directives().get_all("join__implements") {
            has_membership_info = true;
            if let (Some(graph), Some(iface)) =
                (graph_of(directive)?, string_arg(directive, "interface"))
            {
                meta.implements
                    .push((graph, Name::new(iface).map_err(|e| invalid(e.to_string()))?));
            }
        }
        for directive in ty.directives().get_all("join__unionMember") {
            has_membership_info = true;
            if let (Some(graph), Some(member)) =
                (graph_of(directive)?, string_arg(directive, "member"))
            {
                meta.members.push((
                    graph,
                    Name::new(member).map_err(|e| invalid(e.to_string()))?,
                ));
            }
        }
        let fields = match ty {
            ExtendedType::Object(o) => Some(&o.fields),
            ExtendedType::Interface(i) => Some(&i.fields),
            _ => None,
        };
        for (field_name, field) in fields.into_iter().flatten() {
            let mut entries = Vec::new();
            let mut bare = false;
            for directive in field.directives.get_all("join__field") {
                let Some(graph) = graph_of(directive)? else {
                    // A bare `@join__field`: the type's subgraphs do not resolve the field
                    // (an interface object supplies it).
                    bare = true;
                    continue;
                };
                let field_type = field.ty.inner_named_type();
                let requires = string_arg(directive, "requires")
                    .map(|fs| parse_field_set(supergraph, type_name, fs))
                    .transpose()?
                    .map(alias_fields_with_arguments);
                let provides = string_arg(directive, "provides")
                    .map(|fs| parse_field_set(supergraph, field_type, fs))
                    .transpose()?;
                entries.push(FieldInGraph {
                    graph,
                    requires,
                    provides,
                    external: bool_arg(directive, "external").unwrap_or(false),
                    overridden: bool_arg(directive, "usedOverridden").unwrap_or(false),
                    type_differs: string_arg(directive, "type").is_some_and(|ty| {
                        // Only what makes two selections of the field unmergeable matters:
                        // list and non-null wrappers, and the type itself for leaves.
                        let wrappers = |t: &str| {
                            t.chars()
                                .filter(|c| matches!(c, '[' | ']' | '!'))
                                .collect::<String>()
                        };
                        let supergraph_type = field.ty.to_string();
                        let leaf = matches!(
                            schema.types.get(field_type),
                            Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_))
                        );
                        wrappers(ty) != wrappers(&supergraph_type)
                            || (leaf && ty != supergraph_type)
                    }),
                    named_type: string_arg(directive, "type")
                        .map(|ty| ty.trim_matches(|c| matches!(c, '[' | ']' | '!' | ' ')))
                        .filter(|ty| *ty != field_type.as_str())
                        .map(Name::new)
                        .transpose()
                        .map_err(|e| invalid(e.to_string()))?,
                });
            }
            if entries.is_empty() {
                if bare {
                    meta.unowned_fields.insert(field_name.clone());
                }
            } else {
                meta.fields.insert(field_name.clone(), entries);
            }
        }
        types.insert(type_name.clone(), meta);
    }
    supergraph.types = types;
    supergraph.has_membership_info = has_membership_info;
    Ok(())
}

fn read_graphs(supergraph: &Supergraph) -> Result<Vec<Subgraph>, GatewayError> {
    let Some(ExtendedType::Enum(graphs)) = supergraph.schema.types.get(GRAPH_ENUM) else {
        return Err(invalid("missing enum join__Graph".into()));
    };
    graphs
        .values
        .iter()
        .map(|(value, def)| {
            let directive = def
                .directives
                .get("join__graph")
                .ok_or_else(|| invalid(format!("join__Graph.{value} has no @join__graph")))?;
            let name = string_arg(directive, "name")
                .ok_or_else(|| invalid(format!("@join__graph on {value} has no name")))?;
            let url = string_arg(directive, "url").unwrap_or_default();
            Ok(Subgraph {
                name: name.to_string(),
                enum_value: value.clone(),
                url: url.to_string(),
            })
        })
        .collect()
}

fn parse_field_set(
    supergraph: &Supergraph,
    type_name: &Name,
    source: &str,
) -> Result<SelectionSet, GatewayError> {
    let field_set = FieldSet::parse(
        &supergraph.schema,
        type_name.clone(),
        source,
        "fieldset.graphql",
    )
    .map_err(|e| {
        invalid(format!(
            "field set \"{source}\" on {type_name}: {}",
            e.errors
        ))
    })?;
    Ok(from_field_set(&field_set.selection_set))
}

/// Gives every field with arguments in a `@requires` set an alias derived from its name and
/// arguments. Two requirements on the same object may ask for one field with different
/// arguments (`price(currency: "USD")` and `price(currency: "EUR")`), and the client may ask for
/// it with yet others; unaliased, they would conflict in one subgraph operation. The alias is
/// deterministic, so equal requirements still merge, and representations are projected from
/// it back to the field name the requiring subgraph expects.
fn alias_fields_with_arguments(mut set: SelectionSet) -> SelectionSet {
    for item in &mut set.items {
        match item {
            Selection::Field(field) => {
                if !field.arguments.is_empty() && field.alias.is_none() {
                    let mut printed = String::new();
                    SelectionSet {
                        items: vec![Selection::Field(field.without_selections())],
                    }
                    .write_to(&mut printed);
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    printed.hash(&mut hasher);
                    let alias = format!("_required_{}_{:x}", field.name, hasher.finish());
                    // A field name plus hex digits is always a valid GraphQL name.
                    field.alias = Name::new(&alias).ok();
                }
                let inner = std::mem::take(&mut field.selection_set);
                field.selection_set = alias_fields_with_arguments(inner);
            }
            Selection::Fragment(fragment) => {
                let inner = std::mem::take(&mut fragment.selection_set);
                fragment.selection_set = alias_fields_with_arguments(inner);
            }
        }
    }
    set
}

fn string_arg<'a>(directive: &'a Node<Directive>, name: &str) -> Option<&'a str> {
    directive.specified_argument_by_name(name)?.as_str()
}

fn bool_arg(directive: &Node<Directive>, name: &str) -> Option<bool> {
    directive.specified_argument_by_name(name)?.to_bool()
}

fn invalid(message: String) -> GatewayError {
    GatewayError::InvalidSupergraph(message)
}
