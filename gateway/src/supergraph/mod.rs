//! The supergraph: the composed schema plus the join-spec metadata that says which subgraph
//! can resolve which type and field. The planner asks this module every routing question, so it
//! precomputes the answers once at startup into plain maps.

mod api_schema;
pub mod compose;
mod introspection;
mod join;

use std::collections::HashMap;

use apollo_compiler::schema::{ExtendedType, Implementers};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};

use crate::error::GatewayError;
use crate::pipeline::selection::{Field, SelectionSet};

pub use api_schema::derive_api_schema;

/// Index of a subgraph in `Supergraph::subgraphs`.
pub type SubgraphId = usize;

#[derive(Debug, Clone)]
pub struct Subgraph {
    pub name: String,
    /// The `join__Graph` enum value naming this subgraph in join directives.
    pub enum_value: Name,
    pub url: String,
}

/// What `@join__type` says about a type in one subgraph.
#[derive(Debug, Clone)]
pub struct TypeInGraph {
    pub graph: SubgraphId,
    /// `@key` field sets usable to fetch this entity from the subgraph (resolvable keys only).
    pub keys: Vec<SelectionSet>,
}

/// What `@join__field` says about a field in one subgraph.
#[derive(Debug, Clone)]
pub struct FieldInGraph {
    pub graph: SubgraphId,
    pub requires: Option<SelectionSet>,
    pub provides: Option<SelectionSet>,
    pub external: bool,
    /// The subgraph still defines the field, but another subgraph took it over with `@override`.
    pub overridden: bool,
    /// The field's named type in this subgraph when it differs from the supergraph's
    /// (`@join__field(type:)`), e.g. `Book` where the supergraph says the union `Media`.
    pub named_type: Option<Name>,
    /// The subgraph declares the field with another type than the supergraph (`ID!` where
    /// the supergraph merged `ID`). Selected next to the same field of another type in one
    /// operation, it would fail the subgraph's validation, so the planner aliases it.
    pub type_differs: bool,
}

#[derive(Debug, Default)]
struct TypeMeta {
    graphs: Vec<TypeInGraph>,
    /// Whether any `@join__type` was present; a type without one lives in every subgraph.
    joined: bool,
    fields: HashMap<Name, Vec<FieldInGraph>>,
    /// For objects/interfaces: (subgraph, interface) from `@join__implements`.
    implements: Vec<(SubgraphId, Name)>,
    /// For unions: (subgraph, member) from `@join__unionMember`.
    members: Vec<(SubgraphId, Name)>,
    /// For interfaces: subgraphs that declare this interface as an object
    /// (`@join__type(isInterfaceObject: true)`, Federation's `@interfaceObject`). Such a
    /// subgraph resolves the interface's fields for every implementation without knowing
    /// the implementations: its objects all have the interface's name as `__typename`.
    interface_object_in: Vec<SubgraphId>,
    /// Fields marked `@join__field` without a graph: no subgraph resolves them on this type
    /// itself; an interface object of one of its interfaces does.
    unowned_fields: std::collections::HashSet<Name>,
}

pub struct Supergraph {
    /// The full supergraph schema, join machinery included.
    pub schema: Valid<Schema>,
    /// The schema clients see: what operations are validated against and introspection shows.
    pub api: Valid<Schema>,
    pub api_implementers: apollo_compiler::collections::HashMap<Name, Implementers>,
    /// The API schema as the introspection executor runs it (see `introspect`).
    introspection: introspection::ExecutionSchema,
    pub subgraphs: Vec<Subgraph>,
    types: HashMap<Name, TypeMeta>,
    /// Whether `@join__implements`/`@join__unionMember` are used at all (join v0.2 lacks them).
    has_membership_info: bool,
}

impl Supergraph {
    /// Reads a supergraph SDL as produced by composition (join spec v0.2 to v0.5).
    pub fn parse(sdl: &str) -> Result<Supergraph, GatewayError> {
        let mut schema = Schema::parse(sdl, "supergraph.graphql")
            .map_err(|e| GatewayError::InvalidSupergraph(e.errors.to_string()))?;
        // A supergraph may use `@oneOf` without declaring it, as it may `@deprecated`: the
        // spec makes it built-in, apollo-compiler 1.x does not.
        api_schema::declare_one_of(&mut schema);
        let schema = schema
            .validate()
            .map_err(|e| GatewayError::InvalidSupergraph(e.errors.to_string()))?;
        let api = derive_api_schema(&schema)?;
        let api_implementers = api.implementers_map();
        let introspection = introspection::ExecutionSchema::new(&api);
        let mut supergraph = Supergraph {
            schema,
            api,
            api_implementers,
            introspection,
            subgraphs: Vec::new(),
            types: HashMap::new(),
            has_membership_info: false,
        };
        join::read_join_metadata(&mut supergraph)?;
        Ok(supergraph)
    }

    /// Points subgraphs at other URLs (tests, local development, service discovery).
    pub fn override_urls(&mut self, overrides: &[(String, String)]) -> Result<(), GatewayError> {
        for (name, url) in overrides {
            let subgraph = self
                .subgraphs
                .iter_mut()
                .find(|s| &s.name == name)
                .ok_or_else(|| {
                    GatewayError::InvalidSupergraph(format!("no subgraph named '{name}'"))
                })?;
            subgraph.url = url.clone();
        }
        Ok(())
    }

    pub fn subgraph_named(&self, name: &str) -> Option<SubgraphId> {
        self.subgraphs.iter().position(|s| s.name == name)
    }

    pub fn is_abstract(&self, type_name: &str) -> bool {
        matches!(
            self.schema.types.get(type_name),
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
        )
    }

    pub fn is_object(&self, type_name: &str) -> bool {
        matches!(
            self.schema.types.get(type_name),
            Some(ExtendedType::Object(_))
        )
    }

    /// Whether `maybe_subtype` is `abstract_type` itself or one of its possible types.
    pub fn is_subtype(&self, abstract_type: &str, maybe_subtype: &str) -> bool {
        abstract_type == maybe_subtype || self.schema.is_subtype(abstract_type, maybe_subtype)
    }

    /// Concrete object types an abstract type can resolve to, in the supergraph.
    pub fn possible_types(&self, type_name: &str) -> Vec<Name> {
        match self.schema.types.get(type_name) {
            Some(ExtendedType::Object(o)) => vec![o.name.clone()],
            Some(ExtendedType::Union(u)) => u.members.iter().map(|m| m.name.clone()).collect(),
            Some(ExtendedType::Interface(_)) => self
                .schema
                .types
                .values()
                .filter_map(|t| match t {
                    ExtendedType::Object(o) if o.implements_interfaces.contains(type_name) => {
                        Some(o.name.clone())
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn type_in_graph(&self, type_name: &str, graph: SubgraphId) -> bool {
        match self.types.get(type_name) {
            Some(meta) if meta.joined => meta.graphs.iter().any(|g| g.graph == graph),
            _ => true,
        }
    }

    /// Whether subgraph `graph` can return `object` where it returns `abstract_type`.
    pub fn possible_in_graph(&self, abstract_type: &str, object: &str, graph: SubgraphId) -> bool {
        if !self.type_in_graph(object, graph) || !self.is_subtype(abstract_type, object) {
            return false;
        }
        if abstract_type == object || !self.has_membership_info {
            return true;
        }
        match self.schema.types.get(abstract_type) {
            Some(ExtendedType::Union(_)) => self.types.get(abstract_type).is_none_or(|m| {
                m.members
                    .iter()
                    .any(|(g, member)| *g == graph && member == object)
            }),
            Some(ExtendedType::Interface(_)) => self.types.get(object).is_none_or(|m| {
                m.implements
                    .iter()
                    .any(|(g, iface)| *g == graph && iface == abstract_type)
            }),
            _ => true,
        }
    }

    fn field_entries(&self, type_name: &str, field: &str) -> &[FieldInGraph] {
        self.types
            .get(type_name)
            .and_then(|m| m.fields.get(field))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// What the subgraph says about the field: its own `@join__field`, or, for an object it
    /// only knows through an interface object, the interface field's.
    pub fn field_in_graph(
        &self,
        type_name: &str,
        field: &str,
        graph: SubgraphId,
    ) -> Option<&FieldInGraph> {
        self.field_entries(type_name, field)
            .iter()
            .find(|f| f.graph == graph)
            .or_else(|| {
                let iface = self.interface_object_of(type_name, graph)?;
                self.field_entries(iface, field)
                    .iter()
                    .find(|f| f.graph == graph)
            })
    }

    /// Whether the subgraph declares the interface `type_name` as an object
    /// (`@interfaceObject`).
    pub fn is_interface_object(&self, type_name: &str, graph: SubgraphId) -> bool {
        self.types
            .get(type_name)
            .is_some_and(|m| m.interface_object_in.contains(&graph))
    }

    /// The interface through which the subgraph knows the object `type_name`, when it does
    /// not define the object itself but one of its interfaces as an interface object.
    pub fn interface_object_of(&self, type_name: &str, graph: SubgraphId) -> Option<&Name> {
        let Some(ExtendedType::Object(object)) = self.schema.types.get(type_name) else {
            return None;
        };
        if self
            .types
            .get(type_name)
            .is_some_and(|m| m.joined && m.graphs.iter().any(|g| g.graph == graph))
        {
            return None;
        }
        object
            .implements_interfaces
            .iter()
            .map(|i| &i.name)
            .find(|iface| self.is_interface_object(iface, graph))
    }

    /// The `__typename` the subgraph expects in a representation of a `type_name` entity: the
    /// interface's name when it only knows the type as an interface object.
    pub fn representation_type(&self, type_name: &str, graph: SubgraphId) -> Option<Name> {
        if self.is_interface_object(type_name, graph) {
            return Name::new(type_name).ok();
        }
        self.interface_object_of(type_name, graph).cloned()
    }

    /// A subgraph that has the interface as a real interface with a resolvable key: asked for
    /// `__typename` through `_entities`, it tells an interface object's concrete type.
    pub fn entity_interface_graphs(&self, iface: &str) -> Vec<SubgraphId> {
        self.types
            .get(iface)
            .map(|m| {
                m.graphs
                    .iter()
                    .filter(|g| !m.interface_object_in.contains(&g.graph) && !g.keys.is_empty())
                    .map(|g| g.graph)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Subgraphs resolving `object.field` through an interface object of one of the object's
    /// interfaces.
    fn interface_object_owners(&self, object: &str, field: &str) -> Vec<SubgraphId> {
        let Some(ExtendedType::Object(def)) = self.schema.types.get(object) else {
            return Vec::new();
        };
        let mut owners = Vec::new();
        for iface in &def.implements_interfaces {
            let Some(meta) = self.types.get(&iface.name) else {
                continue;
            };
            for &graph in &meta.interface_object_in {
                let owns = match meta.fields.get(field) {
                    Some(entries) => entries
                        .iter()
                        .any(|f| f.graph == graph && !f.external && !f.overridden),
                    None => self.field_is_declared(&iface.name, field),
                };
                if owns && !owners.contains(&graph) {
                    owners.push(graph);
                }
            }
        }
        owners
    }

    fn field_is_declared(&self, type_name: &str, field: &str) -> bool {
        match self.schema.types.get(type_name) {
            Some(ExtendedType::Interface(i)) => i.fields.contains_key(field),
            Some(ExtendedType::Object(o)) => o.fields.contains_key(field),
            _ => false,
        }
    }

    fn is_unowned(&self, type_name: &str, field: &str) -> bool {
        self.types
            .get(type_name)
            .is_some_and(|m| m.unowned_fields.contains(field))
    }

    /// Whether the subgraph's schema has the field at all (resolvable or `@external`).
    pub fn field_defined_in_graph(&self, type_name: &str, field: &str, graph: SubgraphId) -> bool {
        let entries = self.field_entries(type_name, field);
        if entries.is_empty() {
            self.type_in_graph(type_name, graph)
        } else {
            entries.iter().any(|f| f.graph == graph)
        }
    }

    /// The named type a field returns in one subgraph: the supergraph's, unless
    /// `@join__field(type:)` says the subgraph declares something narrower.
    pub fn field_type_in_graph<'f>(
        &'f self,
        type_name: &str,
        field: &'f Field,
        graph: SubgraphId,
    ) -> &'f Name {
        self.field_in_graph(type_name, &field.name, graph)
            .and_then(|e| e.named_type.as_ref())
            .unwrap_or_else(|| field.ty.inner_named_type())
    }

    /// Subgraphs that resolve the field themselves, in supergraph order.
    pub fn field_owners(&self, type_name: &str, field: &str) -> Vec<SubgraphId> {
        let mut owners = self.own_field_owners(type_name, field);
        for graph in self.interface_object_owners(type_name, field) {
            if !owners.contains(&graph) {
                owners.push(graph);
            }
        }
        owners
    }

    fn own_field_owners(&self, type_name: &str, field: &str) -> Vec<SubgraphId> {
        if self.is_unowned(type_name, field) {
            return Vec::new();
        }
        let entries = self.field_entries(type_name, field);
        if entries.is_empty() {
            match self.types.get(type_name) {
                Some(meta) if meta.joined => meta.graphs.iter().map(|g| g.graph).collect(),
                _ => (0..self.subgraphs.len()).collect(),
            }
        } else {
            entries
                .iter()
                .filter(|f| !f.external && !f.overridden)
                .map(|f| f.graph)
                .collect()
        }
    }

    /// Whether the subgraph resolves the field with nothing but its parent object, so the
    /// field can stay in the current fetch. Fields with `@requires` need an entity fetch that
    /// carries the required fields, even to the same subgraph.
    pub fn resolves_locally(&self, type_name: &str, field: &str, graph: SubgraphId) -> bool {
        if self.is_unowned(type_name, field) {
            return false;
        }
        let entries = self.field_entries(type_name, field);
        if entries.is_empty() {
            return self.type_in_graph(type_name, graph);
        }
        // `@external` means the subgraph cannot produce the field, key fields included:
        // composition (Apollo's and `compose`) already drops the Federation 1 `@external`
        // on key fields of type extensions, so one still in the supergraph is meant.
        entries
            .iter()
            .any(|f| f.graph == graph && !f.external && !f.overridden && f.requires.is_none())
    }

    /// Every resolvable `@key` of the type in the subgraph, in supergraph order.
    /// An object known to the subgraph only through an interface object has that
    /// interface's keys there.
    pub fn entity_keys(&self, type_name: &str, graph: SubgraphId) -> &[SelectionSet] {
        let type_name = self
            .interface_object_of(type_name, graph)
            .map(Name::as_str)
            .unwrap_or(type_name);
        self.types
            .get(type_name)
            .and_then(|meta| meta.graphs.iter().find(|g| g.graph == graph))
            .map(|g| g.keys.as_slice())
            .unwrap_or(&[])
    }

    /// The first resolvable `@key` of the type in the subgraph.
    pub fn entity_key(&self, type_name: &str, graph: SubgraphId) -> Option<&SelectionSet> {
        self.types
            .get(type_name)?
            .graphs
            .iter()
            .find(|g| g.graph == graph)?
            .keys
            .first()
    }
}
