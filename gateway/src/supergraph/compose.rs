//! A small composition: builds a join-spec supergraph SDL from subgraph SDLs (as served at
//! `_service { sdl }`), so the gateway can start from `--subgraph NAME=URL` alone.
//!
//! It covers the federation directives the planner uses (`@key` with `resolvable`, `@external`,
//! `@requires`, `@provides`, `@override`, `@inaccessible`, `@extends`/`extend type`) and merges
//! types by name. It does not run composition's satisfiability checks: a supergraph file from a
//! real composition tool remains the way to catch composition errors before deploying.
//!
//! Descriptions (of types, fields, arguments, enum values and input fields) are carried over
//! so that clients introspecting the gateway see the subgraphs' documentation. Where subgraphs
//! describe the same element differently, the first non-blank description in subgraph order
//! wins: composition must not depend on anything but its inputs and their order.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write;

use apollo_compiler::ast::{
    Definition, DirectiveList, Document, FieldDefinition, InputValueDefinition, OperationType,
};
use apollo_compiler::{Name, Node};

use crate::error::GatewayError;

pub struct SubgraphSdl {
    pub name: String,
    pub url: String,
    pub sdl: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Interface,
    Union,
    Enum,
    Input,
    Scalar,
}

struct FieldInGraph {
    graph: usize,
    external: bool,
    requires: Option<String>,
    provides: Option<String>,
    override_from: Option<String>,
}

struct FieldAcc {
    definition: Node<FieldDefinition>,
    definition_is_external: bool,
    /// Chosen across subgraphs, independently of which one supplies `definition`.
    description: Option<Node<str>>,
    /// Per argument name, the first non-blank description any subgraph gives it.
    argument_descriptions: Vec<(Name, Node<str>)>,
    graphs: Vec<FieldInGraph>,
    inaccessible: bool,
}

/// A `@key`: its field set and whether the subgraph resolves the entity by it.
type Key = (String, bool);

/// The type in one subgraph: (graph, keys, defined as an extension).
type TypeInGraph = (usize, Vec<Key>, bool);

/// An enum value: its name, whether it is `@inaccessible`, its description.
type EnumValue = (Name, bool, Option<Node<str>>);

struct TypeAcc {
    kind: Kind,
    description: Option<Node<str>>,
    graphs: Vec<TypeInGraph>,
    field_order: Vec<Name>,
    fields: HashMap<Name, FieldAcc>,
    implements: Vec<(usize, Name)>,
    members: Vec<(usize, Name)>,
    values: Vec<EnumValue>,
    inputs: Vec<Node<InputValueDefinition>>,
    inaccessible: bool,
    /// For input objects: whether the first subgraph defining it marks it `@oneOf`.
    one_of: Option<bool>,
}

fn is_federation_type(name: &str) -> bool {
    name.starts_with("link__")
        || name.starts_with("federation__")
        || name.starts_with("join__")
        || matches!(
            name,
            "_Service" | "_Any" | "_Entity" | "_FieldSet" | "FieldSet" | "link__Import"
        )
}

fn graph_enum_value(name: &str) -> String {
    let mut value: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        value.insert(0, '_');
    }
    value
}

fn string_arg(directives: &DirectiveList, directive: &str, arg: &str) -> Option<String> {
    directives
        .get(directive)?
        .specified_argument_by_name(arg)?
        .as_str()
        .map(str::to_string)
}

/// Whether a description says something: a blank one would hide a later subgraph's text.
fn is_blank(description: Option<&Node<str>>) -> bool {
    description.is_none_or(|d| d.trim().is_empty())
}

/// Keeps the first non-blank description seen (subgraphs are visited in order), so the
/// supergraph does not depend on which subgraph happens to be merged last.
fn adopt_description(current: &mut Option<Node<str>>, candidate: Option<&Node<str>>) {
    if is_blank(current.as_ref()) && !is_blank(candidate) {
        *current = candidate.cloned();
    }
}

/// The description of a type definition; extensions cannot carry one.
fn type_description(definition: &Definition) -> Option<&Node<str>> {
    match definition {
        Definition::ObjectTypeDefinition(d) => d.description.as_ref(),
        Definition::InterfaceTypeDefinition(d) => d.description.as_ref(),
        Definition::UnionTypeDefinition(d) => d.description.as_ref(),
        Definition::EnumTypeDefinition(d) => d.description.as_ref(),
        Definition::InputObjectTypeDefinition(d) => d.description.as_ref(),
        Definition::ScalarTypeDefinition(d) => d.description.as_ref(),
        _ => None,
    }
}

/// Writes a description as a GraphQL string followed by `separator`.
fn write_description(out: &mut String, description: Option<&Node<str>>, separator: &str) {
    if let Some(description) = description.filter(|d| !d.trim().is_empty()) {
        out.push_str(&quote(description));
        out.push_str(separator);
    }
}

fn quote(s: &str) -> String {
    // JSON string escaping is valid GraphQL string escaping for these field sets and URLs.
    serde_json::Value::String(s.to_string()).to_string()
}

pub fn compose(subgraphs: &[SubgraphSdl]) -> Result<String, GatewayError> {
    let mut order: Vec<Name> = Vec::new();
    let mut types: HashMap<Name, TypeAcc> = HashMap::new();
    let mut roots: Vec<(OperationType, Name)> = Vec::new();

    for (graph, subgraph) in subgraphs.iter().enumerate() {
        let document = Document::parse(subgraph.sdl.as_str(), format!("{}.graphql", subgraph.name))
            .unwrap_or_else(|partial| partial.partial);
        // Root types may be renamed in a subgraph; the supergraph uses the standard names.
        let mut rename: HashMap<Name, Name> = HashMap::new();
        for definition in &document.definitions {
            let root_operations = match definition {
                Definition::SchemaDefinition(d) => &d.root_operations,
                Definition::SchemaExtension(d) => &d.root_operations,
                _ => continue,
            };
            for op in root_operations {
                let (operation_type, name) = &**op;
                let standard = Name::new_static_unchecked(match operation_type {
                    OperationType::Query => "Query",
                    OperationType::Mutation => "Mutation",
                    OperationType::Subscription => "Subscription",
                });
                rename.insert(name.clone(), standard);
            }
        }
        let renamed = |name: &Name| rename.get(name).cloned().unwrap_or_else(|| name.clone());

        for definition in &document.definitions {
            let (kind, name, directives, extension) = match definition {
                Definition::ObjectTypeDefinition(d) => {
                    (Kind::Object, &d.name, &d.directives, false)
                }
                Definition::ObjectTypeExtension(d) => (Kind::Object, &d.name, &d.directives, true),
                Definition::InterfaceTypeDefinition(d) => {
                    (Kind::Interface, &d.name, &d.directives, false)
                }
                Definition::InterfaceTypeExtension(d) => {
                    (Kind::Interface, &d.name, &d.directives, true)
                }
                Definition::UnionTypeDefinition(d) => (Kind::Union, &d.name, &d.directives, false),
                Definition::UnionTypeExtension(d) => (Kind::Union, &d.name, &d.directives, true),
                Definition::EnumTypeDefinition(d) => (Kind::Enum, &d.name, &d.directives, false),
                Definition::EnumTypeExtension(d) => (Kind::Enum, &d.name, &d.directives, true),
                Definition::InputObjectTypeDefinition(d) => {
                    (Kind::Input, &d.name, &d.directives, false)
                }
                Definition::InputObjectTypeExtension(d) => {
                    (Kind::Input, &d.name, &d.directives, true)
                }
                Definition::ScalarTypeDefinition(d) => {
                    (Kind::Scalar, &d.name, &d.directives, false)
                }
                _ => continue,
            };
            if is_federation_type(name) {
                continue;
            }
            let name = renamed(name);
            if matches!(name.as_str(), "Query" | "Mutation" | "Subscription") {
                let op = match name.as_str() {
                    "Query" => OperationType::Query,
                    "Mutation" => OperationType::Mutation,
                    _ => OperationType::Subscription,
                };
                if !roots.iter().any(|(o, _)| *o == op) {
                    roots.push((op, name.clone()));
                }
            }
            let acc = types.entry(name.clone()).or_insert_with(|| {
                order.push(name.clone());
                TypeAcc {
                    kind,
                    description: None,
                    graphs: Vec::new(),
                    field_order: Vec::new(),
                    fields: HashMap::new(),
                    implements: Vec::new(),
                    members: Vec::new(),
                    values: Vec::new(),
                    inputs: Vec::new(),
                    inaccessible: false,
                    one_of: None,
                }
            });
            if acc.kind != kind {
                return Err(GatewayError::Composition(format!(
                    "type {name} has different kinds in different subgraphs"
                )));
            }
            acc.inaccessible |= directives.has("inaccessible");
            if kind == Kind::Input {
                merge_one_of(&mut acc.one_of, &name, directives.has("oneOf"), extension)?;
            }
            adopt_description(&mut acc.description, type_description(definition));
            let extension = extension || directives.has("extends");
            let keys: Vec<Key> = directives
                .get_all("key")
                .filter_map(|key| {
                    let fields = key
                        .specified_argument_by_name("fields")?
                        .as_str()?
                        .to_string();
                    let resolvable = key
                        .specified_argument_by_name("resolvable")
                        .and_then(|v| v.to_bool())
                        .unwrap_or(true);
                    Some((fields, resolvable))
                })
                .collect();
            match acc.graphs.iter_mut().find(|(g, _, _)| *g == graph) {
                Some(entry) => {
                    entry.1.extend(keys);
                    entry.2 |= extension;
                }
                None => acc.graphs.push((graph, keys, extension)),
            }

            let (fields, implements): (&[Node<FieldDefinition>], &[Name]) = match definition {
                Definition::ObjectTypeDefinition(d) => (&d.fields, &d.implements_interfaces),
                Definition::ObjectTypeExtension(d) => (&d.fields, &d.implements_interfaces),
                Definition::InterfaceTypeDefinition(d) => (&d.fields, &d.implements_interfaces),
                Definition::InterfaceTypeExtension(d) => (&d.fields, &d.implements_interfaces),
                _ => (&[], &[]),
            };
            for interface in implements {
                acc.implements.push((graph, interface.clone()));
            }
            let key_fields: Vec<&str> = directives
                .get_all("key")
                .filter_map(|k| k.specified_argument_by_name("fields")?.as_str())
                .flat_map(|fields| {
                    fields.split(|c: char| c.is_whitespace() || c == '{' || c == '}')
                })
                .collect();
            for field in fields {
                if matches!(field.name.as_str(), "_service" | "_entities") {
                    continue;
                }
                // Federation 1 style extensions mark their key fields @external, yet the
                // subgraph can return them (it received them in the representation).
                let external =
                    field.directives.has("external") && !key_fields.contains(&field.name.as_str());
                let entry = FieldInGraph {
                    graph,
                    external,
                    requires: string_arg(&field.directives, "requires", "fields"),
                    provides: string_arg(&field.directives, "provides", "fields"),
                    override_from: string_arg(&field.directives, "override", "from"),
                };
                let inaccessible = field.directives.has("inaccessible");
                let existing = match acc.fields.entry(field.name.clone()) {
                    Entry::Occupied(occupied) => {
                        let existing = occupied.into_mut();
                        if existing.definition_is_external && !external {
                            existing.definition = field.clone();
                            existing.definition_is_external = false;
                        }
                        existing.inaccessible |= inaccessible;
                        existing.graphs.push(entry);
                        existing
                    }
                    Entry::Vacant(vacant) => {
                        acc.field_order.push(field.name.clone());
                        vacant.insert(FieldAcc {
                            definition: field.clone(),
                            definition_is_external: external,
                            description: None,
                            argument_descriptions: Vec::new(),
                            graphs: vec![entry],
                            inaccessible,
                        })
                    }
                };
                adopt_description(&mut existing.description, field.description.as_ref());
                for argument in &field.arguments {
                    let Some(description) = argument.description.as_ref() else {
                        continue;
                    };
                    if !is_blank(Some(description))
                        && !existing
                            .argument_descriptions
                            .iter()
                            .any(|(name, _)| *name == argument.name)
                    {
                        existing
                            .argument_descriptions
                            .push((argument.name.clone(), description.clone()));
                    }
                }
            }
            match definition {
                Definition::UnionTypeDefinition(d) => acc
                    .members
                    .extend(d.members.iter().map(|m| (graph, m.clone()))),
                Definition::UnionTypeExtension(d) => acc
                    .members
                    .extend(d.members.iter().map(|m| (graph, m.clone()))),
                Definition::EnumTypeDefinition(d) => {
                    for value in &d.values {
                        match acc.values.iter_mut().find(|(v, _, _)| *v == value.value) {
                            Some((_, _, description)) => {
                                adopt_description(description, value.description.as_ref())
                            }
                            None => acc.values.push((
                                value.value.clone(),
                                value.directives.has("inaccessible"),
                                value.description.clone(),
                            )),
                        }
                    }
                }
                Definition::InputObjectTypeDefinition(d) => {
                    for field in &d.fields {
                        match acc.inputs.iter_mut().find(|f| f.name == field.name) {
                            Some(existing) => {
                                if is_blank(existing.description.as_ref())
                                    && !is_blank(field.description.as_ref())
                                {
                                    existing.make_mut().description = field.description.clone();
                                }
                            }
                            None => acc.inputs.push(field.clone()),
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if !roots.iter().any(|(o, _)| *o == OperationType::Query) {
        return Err(GatewayError::Composition(
            "no subgraph defines a Query type".into(),
        ));
    }

    let graph_values: Vec<String> = subgraphs
        .iter()
        .map(|s| graph_enum_value(&s.name))
        .collect();
    let mut out = String::with_capacity(8 * 1024);
    out.push_str(SUPERGRAPH_PRELUDE);
    out.push_str("schema\n  @link(url: \"https://specs.apollo.dev/link/v1.0\")\n  @link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION)\n  @link(url: \"https://specs.apollo.dev/inaccessible/v0.2\", for: SECURITY)\n{\n");
    for (op, name) in &roots {
        let _ = writeln!(out, "  {}: {name}", op.name());
    }
    out.push_str("}\n\nenum join__Graph {\n");
    for (value, subgraph) in graph_values.iter().zip(subgraphs) {
        let _ = writeln!(
            out,
            "  {value} @join__graph(name: {}, url: {})",
            quote(&subgraph.name),
            quote(&subgraph.url)
        );
    }
    out.push_str("}\n\n");

    let inaccessible = |flag: bool| if flag { " @inaccessible" } else { "" };
    for name in &order {
        let Some(acc) = types.get(name) else { continue };
        let keyword = match acc.kind {
            Kind::Object => "type",
            Kind::Interface => "interface",
            Kind::Union => "union",
            Kind::Enum => "enum",
            Kind::Input => "input",
            Kind::Scalar => "scalar",
        };
        write_description(&mut out, acc.description.as_ref(), "\n");
        let _ = write!(out, "{keyword} {name}");
        if matches!(acc.kind, Kind::Object | Kind::Interface) {
            let mut interfaces: Vec<&Name> = Vec::new();
            for (_, interface) in &acc.implements {
                if !interfaces.contains(&interface) {
                    interfaces.push(interface);
                }
            }
            if !interfaces.is_empty() {
                let names: Vec<&str> = interfaces.iter().map(|n| n.as_str()).collect();
                let _ = write!(out, " implements {}", names.join(" & "));
            }
            for (graph, interface) in &acc.implements {
                let _ = write!(
                    out,
                    "\n  @join__implements(graph: {}, interface: {})",
                    graph_values[*graph],
                    quote(interface)
                );
            }
        }
        for (graph, keys, extension) in &acc.graphs {
            let extension = if *extension { ", extension: true" } else { "" };
            if keys.is_empty() || !matches!(acc.kind, Kind::Object | Kind::Interface) {
                let _ = write!(out, "\n  @join__type(graph: {})", graph_values[*graph]);
            }
            for (key, resolvable) in keys {
                let resolvable = if *resolvable {
                    ""
                } else {
                    ", resolvable: false"
                };
                let _ = write!(
                    out,
                    "\n  @join__type(graph: {}, key: {}{extension}{resolvable})",
                    graph_values[*graph],
                    quote(key)
                );
            }
        }
        out.push_str(inaccessible(acc.inaccessible));
        match acc.kind {
            Kind::Object | Kind::Interface => {
                out.push_str("\n{\n");
                let type_graphs: Vec<usize> = acc.graphs.iter().map(|(g, _, _)| *g).collect();
                for field_name in &acc.field_order {
                    let Some(field) = acc.fields.get(field_name) else {
                        continue;
                    };
                    write_field(&mut out, field, &type_graphs, &graph_values, subgraphs);
                    out.push_str(inaccessible(field.inaccessible));
                    out.push('\n');
                }
                out.push_str("}\n\n");
            }
            Kind::Union => {
                for (graph, member) in &acc.members {
                    let _ = write!(
                        out,
                        "\n  @join__unionMember(graph: {}, member: {})",
                        graph_values[*graph],
                        quote(member)
                    );
                }
                let mut members: Vec<&str> = Vec::new();
                for (_, member) in &acc.members {
                    if !members.contains(&member.as_str()) {
                        members.push(member);
                    }
                }
                let _ = write!(out, " = {}\n\n", members.join(" | "));
            }
            Kind::Enum => {
                out.push_str("\n{\n");
                for (value, hidden, description) in &acc.values {
                    out.push_str("  ");
                    write_description(&mut out, description.as_ref(), "\n  ");
                    let _ = writeln!(out, "{value}{}", inaccessible(*hidden));
                }
                out.push_str("}\n\n");
            }
            Kind::Input => {
                if acc.one_of == Some(true) {
                    out.push_str(" @oneOf");
                }
                out.push_str("\n{\n");
                for field in &acc.inputs {
                    out.push_str("  ");
                    write_input_value(&mut out, field, field.description.as_ref());
                    out.push('\n');
                }
                out.push_str("}\n\n");
            }
            Kind::Scalar => out.push_str("\n\n"),
        }
    }
    Ok(out)
}

/// Merges what one subgraph says about an input object being a OneOf Input Object.
///
/// Subgraphs must agree: were it `@oneOf` in one subgraph only, the gateway would either refuse
/// values that subgraph's peers accept or pass on values that subgraph refuses, depending on
/// which one an argument happens to be routed to. The spec forbids `@oneOf` on an extension.
fn merge_one_of(
    merged: &mut Option<bool>,
    name: &Name,
    one_of: bool,
    extension: bool,
) -> Result<(), GatewayError> {
    if extension {
        if one_of {
            return Err(GatewayError::Composition(format!(
                "input {name}: @oneOf cannot be added by a type extension"
            )));
        }
        return Ok(());
    }
    match *merged {
        None => *merged = Some(one_of),
        Some(earlier) if earlier != one_of => {
            return Err(GatewayError::Composition(format!(
                "input {name} is @oneOf in some subgraphs but not in others"
            )));
        }
        Some(_) => {}
    }
    Ok(())
}

fn write_input_value(
    out: &mut String,
    value: &InputValueDefinition,
    description: Option<&Node<str>>,
) {
    write_description(out, description, " ");
    let _ = write!(out, "{}: {}", value.name, value.ty);
    if let Some(default) = &value.default_value {
        let _ = write!(out, " = {default}");
    }
}

fn write_field(
    out: &mut String,
    field: &FieldAcc,
    type_graphs: &[usize],
    graph_values: &[String],
    subgraphs: &[SubgraphSdl],
) {
    let definition = &field.definition;
    out.push_str("  ");
    write_description(out, field.description.as_ref(), "\n  ");
    let _ = write!(out, "{}", definition.name);
    if !definition.arguments.is_empty() {
        out.push('(');
        for (i, argument) in definition.arguments.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let description = field
                .argument_descriptions
                .iter()
                .find(|(name, _)| *name == argument.name)
                .map(|(_, description)| description);
            write_input_value(out, argument, description);
        }
        out.push(')');
    }
    let _ = write!(out, ": {}", definition.ty);
    // Subgraphs that lost the field to an @override no longer resolve it.
    let overridden: Vec<usize> = field
        .graphs
        .iter()
        .filter_map(|g| g.override_from.as_deref())
        .filter_map(|from| subgraphs.iter().position(|s| s.name == from))
        .collect();
    let plain = field.graphs.len() == type_graphs.len()
        && field.graphs.iter().all(|g| {
            !g.external && g.requires.is_none() && g.provides.is_none() && g.override_from.is_none()
        });
    if plain {
        return;
    }
    for entry in &field.graphs {
        if overridden.contains(&entry.graph) {
            continue;
        }
        let _ = write!(out, " @join__field(graph: {}", graph_values[entry.graph]);
        if let Some(requires) = &entry.requires {
            let _ = write!(out, ", requires: {}", quote(requires));
        }
        if let Some(provides) = &entry.provides {
            let _ = write!(out, ", provides: {}", quote(provides));
        }
        if entry.external {
            out.push_str(", external: true");
        }
        if let Some(from) = &entry.override_from {
            let _ = write!(out, ", override: {}", quote(from));
        }
        out.push(')');
    }
}

pub(super) const SUPERGRAPH_PRELUDE: &str = r#"directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION
directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
directive @oneOf on INPUT_OBJECT
scalar join__FieldSet
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

"#;

/// Asks each subgraph for its SDL (`{ _service { sdl } }`).
pub async fn fetch_subgraph_sdls(
    subgraphs: &[(String, String)],
    timeout: std::time::Duration,
) -> Result<Vec<SubgraphSdl>, GatewayError> {
    let http = reqwest::Client::builder().timeout(timeout).build()?;
    let mut out = Vec::with_capacity(subgraphs.len());
    for (name, url) in subgraphs {
        let failed =
            |e: String| GatewayError::Composition(format!("subgraph '{name}' at {url}: {e}"));
        let response = http
            .post(url)
            .json(&serde_json::json!({ "query": "{ _service { sdl } }" }))
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let body: serde_json::Value = response.json().await.map_err(|e| failed(e.to_string()))?;
        let sdl = body["data"]["_service"]["sdl"]
            .as_str()
            .ok_or_else(|| failed(format!("no _service.sdl in response: {body}")))?;
        out.push(SubgraphSdl {
            name: name.clone(),
            url: url.clone(),
            sdl: sdl.to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supergraph::Supergraph;
    use apollo_compiler::schema::ExtendedType;

    fn subgraph(name: &str, sdl: &str) -> SubgraphSdl {
        SubgraphSdl {
            name: name.to_string(),
            url: format!("http://{name}.invalid/graphql"),
            sdl: sdl.to_string(),
        }
    }

    #[test]
    fn one_of_inputs_keep_the_directive_and_subgraphs_must_agree() {
        let by = |name: &str, one_of: &str| {
            subgraph(
                name,
                &format!(
                    "input TalkBy {one_of} {{ id: ID slug: String }}\n\
                     type Query {{ {name}(by: TalkBy!): Int }}"
                ),
            )
        };
        let sdl = compose(&[by("talks", "@oneOf"), by("rooms", "@oneOf")]).expect("composes");
        let supergraph = Supergraph::parse(&sdl).expect("valid supergraph");
        let ExtendedType::InputObject(talk_by) = &supergraph.api.types["TalkBy"] else {
            panic!("TalkBy is an input object");
        };
        assert!(talk_by.directives.has("oneOf"), "{sdl}");
        assert!(supergraph.api.directive_definitions.contains_key("oneOf"));
        let printed = supergraph.api.to_string();
        assert!(
            printed.contains("directive @oneOf on INPUT_OBJECT"),
            "{printed}"
        );
        assert!(printed.contains("input TalkBy @oneOf"), "{printed}");

        let plain = compose(&[by("talks", ""), by("rooms", "")]).expect("composes");
        let supergraph = Supergraph::parse(&plain).expect("valid supergraph");
        assert!(!supergraph.api.types["TalkBy"].directives().has("oneOf"));
        // The directive stays declared, as the spec's built-in directives are.
        assert!(supergraph.api.directive_definitions.contains_key("oneOf"));

        let error = compose(&[by("talks", "@oneOf"), by("rooms", "")]).err();
        assert!(
            matches!(&error, Some(GatewayError::Composition(m)) if m.contains("TalkBy")),
            "{error:?}"
        );
    }

    #[test]
    fn supergraphs_may_use_one_of_undeclared_but_not_on_non_null_fields() {
        let supergraph = |input: &str| {
            format!(
                "{SUPERGRAPH_PRELUDE}\n\
                 schema @link(url: \"https://specs.apollo.dev/link/v1.0\") \
                 @link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION) {{ query: Query }}\n\
                 enum join__Graph {{ A @join__graph(name: \"a\", url: \"http://a.invalid\") }}\n\
                 {input}\n\
                 type Query @join__type(graph: A) {{ talk(by: TalkBy!): Int }}"
            )
            .replace("directive @oneOf on INPUT_OBJECT\n", "")
        };
        let sg = Supergraph::parse(&supergraph(
            "input TalkBy @join__type(graph: A) @oneOf { id: ID slug: String }",
        ))
        .expect("valid supergraph");
        assert!(sg.api.types["TalkBy"].directives().has("oneOf"));

        for invalid in [
            "input TalkBy @join__type(graph: A) @oneOf { id: ID! slug: String }",
            "input TalkBy @join__type(graph: A) @oneOf { id: ID = 1 slug: String }",
        ] {
            let error = Supergraph::parse(&supergraph(invalid)).err();
            assert!(
                matches!(&error, Some(GatewayError::InvalidSupergraph(m)) if m.contains("TalkBy.id")),
                "{invalid}: {error:?}"
            );
        }
    }

    #[test]
    fn descriptions_reach_the_api_schema() {
        let talks = subgraph(
            "talks",
            r#"
            type Query {
              "Talks of the programme, \"accepted\" ones only."
              talks(
                "Only talks in this track."
                track: Track
                filter: TalkFilter
              ): [Talk!]!
            }

            """
            A talk: one speaker,
            one slot.
            """
            type Talk @key(fields: "id") {
              id: ID!
              "The title as printed in the programme."
              title: String!
            }

            "Where a talk happens."
            enum Track {
              "The big room."
              MAIN
              SIDE
            }

            input TalkFilter {
              "Case-insensitive substring of the title."
              titleContains: String
              speaker: String
            }
            "#,
        );
        // A second subgraph describing the same elements differently, or leaving out what the
        // first one describes: the first non-blank description in subgraph order wins, and
        // descriptions only it has fill the gaps.
        let rooms = subgraph(
            "rooms",
            r#"
            "Ignored: talks describes Talk first."
            type Talk @key(fields: "id") {
              id: ID!
              "Ignored too."
              title: String! @shareable
              "Room the talk is held in."
              room: String
            }

            "   "
            enum Track {
              MAIN
              "The small room."
              SIDE
            }

            input TalkFilter {
              titleContains: String
              "Exact speaker name."
              speaker: String
            }

            type Query {
              talks("Ignored." track: Track, "Described by rooms only." filter: TalkFilter): [Talk!]! @shareable
            }
            "#,
        );
        let sdl = compose(&[talks, rooms]).expect("composes");
        let supergraph = Supergraph::parse(&sdl).expect("valid supergraph");
        let api = &supergraph.api;

        let talk = api.get_object("Talk").expect("Talk");
        assert_eq!(
            talk.description.as_deref(),
            Some("A talk: one speaker,\none slot.")
        );
        assert_eq!(
            talk.fields["title"].description.as_deref(),
            Some("The title as printed in the programme.")
        );
        assert_eq!(
            talk.fields["room"].description.as_deref(),
            Some("Room the talk is held in.")
        );

        let talks = &api.get_object("Query").expect("Query").fields["talks"];
        assert_eq!(
            talks.description.as_deref(),
            Some("Talks of the programme, \"accepted\" ones only.")
        );
        let argument = |name: &str| {
            talks
                .arguments
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.description.as_deref())
        };
        assert_eq!(argument("track"), Some("Only talks in this track."));
        assert_eq!(argument("filter"), Some("Described by rooms only."));

        let track = &api.types["Track"];
        assert_eq!(
            track.description().map(|d| &**d),
            Some("Where a talk happens.")
        );
        let ExtendedType::Enum(track) = track else {
            panic!("Track is an enum");
        };
        assert_eq!(
            track.values["MAIN"].description.as_deref(),
            Some("The big room.")
        );
        assert_eq!(
            track.values["SIDE"].description.as_deref(),
            Some("The small room.")
        );

        let ExtendedType::InputObject(filter) = &api.types["TalkFilter"] else {
            panic!("TalkFilter is an input object");
        };
        assert_eq!(
            filter.fields["titleContains"].description.as_deref(),
            Some("Case-insensitive substring of the title.")
        );
        assert_eq!(
            filter.fields["speaker"].description.as_deref(),
            Some("Exact speaker name.")
        );

        // The printed API schema (what `schema.graphql` is made of) carries them too.
        let printed = api.to_string();
        assert!(
            printed.contains("The title as printed in the programme."),
            "{printed}"
        );
    }
}
