//! Query planning: splits a normalised operation into subgraph fetches.
//!
//! Root fields are grouped per owning subgraph. When a field cannot be resolved by the subgraph
//! the current fetch talks to, the planner adds `__typename` and the entity key to the current
//! fetch and moves the field into a child `_entities` fetch on a subgraph that owns it. Child
//! fetches are shared per (parent fetch, subgraph, response path, type), so every entity found at
//! a path is resolved by one batched request. `@requires` fields are planned like client fields
//! in the parent context and the child waits for every fetch that produced them; `@provides`
//! lets a subgraph answer fields it otherwise marks `@external`.

use std::collections::HashMap;

use apollo_compiler::Name;
use apollo_compiler::ast::{OperationType, Type};

use super::normalize::NormalizedOperation;
use super::selection::{Field, Fragment, Selection, SelectionSet};
use crate::supergraph::{SubgraphId, Supergraph};

#[derive(Debug, Clone)]
pub struct QueryPlan {
    pub operation_type: OperationType,
    pub fetches: Vec<Fetch>,
}

#[derive(Debug, Clone)]
pub struct Fetch {
    pub subgraph: SubgraphId,
    /// Fetches that must have been merged before this one starts.
    pub depends_on: Vec<usize>,
    pub kind: FetchKind,
    /// The GraphQL operation sent to the subgraph.
    pub operation: String,
    /// Client variables the operation uses; only those are forwarded.
    pub variables: Vec<Name>,
}

#[derive(Debug, Clone)]
pub enum FetchKind {
    Root,
    Entity {
        /// Response keys from the root of `data` to the entities; lists are walked through.
        path: Vec<Name>,
        /// Only objects whose `__typename` is (a subtype of) this type are sent.
        type_name: Name,
        /// The fields projected from each object into its representation.
        representation: SelectionSet,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no subgraph can resolve field `{type_name}.{field}`")]
    Unresolvable { type_name: Name, field: Name },
    #[error("the operation is nested too deeply to plan")]
    TooDeep,
}

/// Bounds recursion through entity hops (key fields that themselves need a hop, and so on).
const MAX_PLAN_DEPTH: usize = 128;

pub fn plan(
    supergraph: &Supergraph,
    operation: &NormalizedOperation,
) -> Result<QueryPlan, PlanError> {
    let mut planner = Planner {
        supergraph,
        drafts: Vec::new(),
        children: HashMap::new(),
        touched: Vec::new(),
        depth: 0,
        hopping: Vec::new(),
    };
    planner.plan_root(operation)?;
    Ok(QueryPlan {
        operation_type: operation.operation_type,
        fetches: planner.finish(operation),
    })
}

struct Draft {
    subgraph: SubgraphId,
    depends_on: Vec<usize>,
    kind: FetchKind,
    selection: SelectionSet,
}

#[derive(Hash, PartialEq, Eq)]
struct ChildKey {
    parent: usize,
    subgraph: SubgraphId,
    path: Vec<Name>,
    type_name: Name,
    requires: String,
}

struct Planner<'a> {
    supergraph: &'a Supergraph,
    drafts: Vec<Draft>,
    children: HashMap<ChildKey, usize>,
    /// Every entity fetch created or reused, in order; a slice of it since a mark tells which
    /// fetches produced the fields planned in between.
    touched: Vec<usize>,
    depth: usize,
    /// Hops being planned (type, field, from subgraph): seeing one again means the key fields
    /// cannot be obtained anywhere, which would otherwise recurse forever.
    hopping: Vec<(Name, Name, SubgraphId)>,
}

fn typename_field() -> Selection {
    Selection::Field(Field::typename(Type::NonNullNamed(
        Name::new_static_unchecked("String"),
    )))
}

impl<'a> Planner<'a> {
    fn plan_root(&mut self, operation: &NormalizedOperation) -> Result<(), PlanError> {
        let root = &operation.root_type;
        let mut fields = Vec::new();
        collect_root_fields(&operation.selection_set, &mut fields);
        let mut per_subgraph: HashMap<SubgraphId, usize> = HashMap::new();
        let mut last: Option<usize> = None;
        for field in fields {
            // Meta fields are answered by the gateway itself.
            if field.name.starts_with("__") {
                continue;
            }
            let owners = self.supergraph.field_owners(root, &field.name);
            let Some(&first) = owners.first() else {
                return Err(PlanError::Unresolvable {
                    type_name: root.clone(),
                    field: field.name.clone(),
                });
            };
            let fetch = match operation.operation_type {
                // Mutation fields run one after the other, in order; consecutive fields of one
                // subgraph still share a request, where the subgraph runs them in order.
                OperationType::Mutation => match last {
                    Some(id) if owners.contains(&self.drafts[id].subgraph) => id,
                    _ => {
                        let id = self.new_draft(first, last.into_iter().collect(), FetchKind::Root);
                        last = Some(id);
                        id
                    }
                },
                _ => {
                    let subgraph = owners
                        .iter()
                        .copied()
                        .find(|g| per_subgraph.contains_key(g))
                        .unwrap_or(first);
                    match per_subgraph.get(&subgraph) {
                        Some(&id) => id,
                        None => {
                            let id = self.new_draft(subgraph, Vec::new(), FetchKind::Root);
                            per_subgraph.insert(subgraph, id);
                            id
                        }
                    }
                }
            };
            let single = SelectionSet {
                items: vec![Selection::Field(field.clone())],
            };
            let selection = self.plan_set(fetch, root, &single, &[], None)?;
            self.drafts[fetch].selection.merge(selection);
        }
        Ok(())
    }

    fn new_draft(
        &mut self,
        subgraph: SubgraphId,
        depends_on: Vec<usize>,
        kind: FetchKind,
    ) -> usize {
        self.drafts.push(Draft {
            subgraph,
            depends_on,
            kind,
            selection: SelectionSet::default(),
        });
        self.drafts.len() - 1
    }

    /// Plans `client` (selections on `parent`) inside fetch `fetch`, returning what that fetch
    /// must select; fields it cannot resolve go to child fetches.
    fn plan_set(
        &mut self,
        fetch: usize,
        parent: &Name,
        client: &SelectionSet,
        path: &[Name],
        provided: Option<&SelectionSet>,
    ) -> Result<SelectionSet, PlanError> {
        self.depth += 1;
        if self.depth > MAX_PLAN_DEPTH {
            return Err(PlanError::TooDeep);
        }
        let result = self.plan_set_inner(fetch, parent, client, path, provided);
        self.depth -= 1;
        result
    }

    fn plan_set_inner(
        &mut self,
        fetch: usize,
        parent: &Name,
        client: &SelectionSet,
        path: &[Name],
        provided: Option<&SelectionSet>,
    ) -> Result<SelectionSet, PlanError> {
        let sg = self.supergraph;
        let subgraph = self.drafts[fetch].subgraph;
        let mut out = SelectionSet::default();
        for item in &client.items {
            match item {
                Selection::Field(field) => {
                    self.plan_field(fetch, parent, field, path, provided, &mut out)?
                }
                Selection::Fragment(fragment) => {
                    let condition = &fragment.type_condition;
                    if sg.is_object(parent) {
                        // On an object the fragment either always or never applies.
                        if sg.is_subtype(condition, parent) {
                            let sub = self.plan_set(
                                fetch,
                                parent,
                                &fragment.selection_set,
                                path,
                                provided,
                            )?;
                            out.merge(sub);
                        }
                    } else if sg.is_object(condition) || !sg.type_in_graph(condition, subgraph) {
                        // Split per concrete type the subgraph can return here; types it never
                        // returns need no selection at all.
                        for object in sg.possible_types(condition) {
                            if !sg.is_subtype(parent, &object)
                                || !sg.possible_in_graph(parent, &object, subgraph)
                            {
                                continue;
                            }
                            let sub = self.plan_set(
                                fetch,
                                &object,
                                &fragment.selection_set,
                                path,
                                provided,
                            )?;
                            if !sub.is_empty() {
                                out.add(Selection::Fragment(Fragment {
                                    type_condition: object,
                                    selection_set: sub,
                                }));
                            }
                        }
                    } else {
                        let sub = self.plan_set(
                            fetch,
                            condition,
                            &fragment.selection_set,
                            path,
                            provided,
                        )?;
                        if !sub.is_empty() {
                            out.add(Selection::Fragment(Fragment {
                                type_condition: condition.clone(),
                                selection_set: sub,
                            }));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn plan_field(
        &mut self,
        fetch: usize,
        parent: &Name,
        field: &Field,
        path: &[Name],
        provided: Option<&SelectionSet>,
        out: &mut SelectionSet,
    ) -> Result<(), PlanError> {
        let sg = self.supergraph;
        let subgraph = self.drafts[fetch].subgraph;
        if field.name == "__typename" {
            out.add(Selection::Field(field.without_selections()));
            return Ok(());
        }
        let provided_here = provided.and_then(|p| p.field_named(&field.name));
        let local = provided_here.is_some() || sg.resolves_locally(parent, &field.name, subgraph);

        if !local && sg.is_abstract(parent) {
            // The subgraph cannot resolve the field on the interface as a whole: resolve it per
            // implementation, each of which may be an entity owned elsewhere.
            let single = SelectionSet {
                items: vec![Selection::Field(field.clone())],
            };
            for object in sg.possible_types(parent) {
                if !sg.possible_in_graph(parent, &object, subgraph) {
                    continue;
                }
                let sub = self.plan_set(fetch, &object, &single, path, provided)?;
                if !sub.is_empty() {
                    out.add(Selection::Fragment(Fragment {
                        type_condition: object,
                        selection_set: sub,
                    }));
                }
            }
            return Ok(());
        }

        if local {
            let mut planned = field.without_selections();
            if !field.selection_set.is_empty() {
                let child_type = field.ty.inner_named_type();
                let child_provided = match provided_here {
                    Some(p) if !p.selection_set.is_empty() => Some(&p.selection_set),
                    _ => sg
                        .field_in_graph(parent, &field.name, subgraph)
                        .and_then(|e| e.provides.as_ref()),
                };
                let child_path = extend(path, field.response_key());
                let mut sub = self.plan_set(
                    fetch,
                    child_type,
                    &field.selection_set,
                    &child_path,
                    child_provided,
                )?;
                if sg.is_abstract(child_type) {
                    // The shaper needs the runtime type to apply the client's fragments.
                    sub.add(typename_field());
                }
                planned.selection_set = sub;
            }
            out.add(Selection::Field(planned));
            return Ok(());
        }

        let hop = (parent.clone(), field.name.clone(), subgraph);
        if self.hopping.contains(&hop) {
            return Err(PlanError::Unresolvable {
                type_name: parent.clone(),
                field: field.name.clone(),
            });
        }
        self.hopping.push(hop);
        let result = self.plan_entity_hop(fetch, parent, field, path, provided, out);
        self.hopping.pop();
        result
    }

    fn plan_entity_hop(
        &mut self,
        fetch: usize,
        parent: &Name,
        field: &Field,
        path: &[Name],
        provided: Option<&SelectionSet>,
        out: &mut SelectionSet,
    ) -> Result<(), PlanError> {
        let sg = self.supergraph;
        let subgraph = self.drafts[fetch].subgraph;
        let unresolvable = || PlanError::Unresolvable {
            type_name: parent.clone(),
            field: field.name.clone(),
        };
        let requires_of = |g: SubgraphId| {
            sg.field_in_graph(parent, &field.name, g)
                .and_then(|e| e.requires.as_ref())
        };
        let target = sg
            .field_owners(parent, &field.name)
            .into_iter()
            .find(|&g| {
                (g != subgraph || requires_of(g).is_some()) && sg.entity_key(parent, g).is_some()
            })
            .ok_or_else(unresolvable)?;
        let key = sg.entity_key(parent, target).ok_or_else(unresolvable)?;
        let requires = requires_of(target);

        // Key and required fields are selected in the current fetch (or in fetches it leads
        // to); the child waits for all of those.
        let mark = self.touched.len();
        out.add(typename_field());
        let key_selection = self.plan_set(fetch, parent, key, path, provided)?;
        out.merge(key_selection);
        let mut representation = SelectionSet::default();
        representation.add(typename_field());
        representation.merge(key.clone());
        if let Some(requires) = requires {
            let required = self.plan_set(fetch, parent, requires, path, provided)?;
            out.merge(required);
            representation.merge(requires.clone());
        }
        let mut depends_on = vec![fetch];
        depends_on.extend(self.touched[mark..].iter().copied());

        let child_key = ChildKey {
            parent: fetch,
            subgraph: target,
            path: path.to_vec(),
            type_name: parent.clone(),
            requires: requires.map(|r| r.to_string()).unwrap_or_default(),
        };
        let child = match self.children.get(&child_key) {
            Some(&id) => {
                for dep in depends_on {
                    if dep != id && !self.drafts[id].depends_on.contains(&dep) {
                        self.drafts[id].depends_on.push(dep);
                    }
                }
                id
            }
            None => {
                let kind = FetchKind::Entity {
                    path: path.to_vec(),
                    type_name: parent.clone(),
                    representation,
                };
                let id = self.new_draft(target, dedup(depends_on), kind);
                self.children.insert(child_key, id);
                id
            }
        };
        self.touched.push(child);

        let mut planned = field.without_selections();
        if !field.selection_set.is_empty() {
            let child_type = field.ty.inner_named_type();
            let child_provided = sg
                .field_in_graph(parent, &field.name, target)
                .and_then(|e| e.provides.as_ref());
            let child_path = extend(path, field.response_key());
            let mut sub = self.plan_set(
                child,
                child_type,
                &field.selection_set,
                &child_path,
                child_provided,
            )?;
            if sg.is_abstract(child_type) {
                sub.add(typename_field());
            }
            planned.selection_set = sub;
        }
        self.drafts[child].selection.add(Selection::Field(planned));
        Ok(())
    }

    fn finish(self, operation: &NormalizedOperation) -> Vec<Fetch> {
        self.drafts
            .into_iter()
            .map(|draft| {
                let mut variables = Vec::new();
                draft.selection.collect_variables(&mut variables);
                let declarations: Vec<String> = variables
                    .iter()
                    .filter_map(|name| {
                        operation
                            .variables
                            .iter()
                            .find(|v| &v.name == name)
                            .map(|v| format!("${}: {}", v.name, v.ty))
                    })
                    .collect();
                let mut text = String::with_capacity(256);
                match &draft.kind {
                    FetchKind::Root => {
                        text.push_str(operation.operation_type.name());
                        if !declarations.is_empty() {
                            text.push('(');
                            text.push_str(&declarations.join(", "));
                            text.push(')');
                        }
                        text.push(' ');
                        draft.selection.write_to(&mut text);
                    }
                    FetchKind::Entity { type_name, .. } => {
                        text.push_str("query($representations: [_Any!]!");
                        for declaration in &declarations {
                            text.push_str(", ");
                            text.push_str(declaration);
                        }
                        text.push_str(") { _entities(representations: $representations) { ... on ");
                        text.push_str(type_name);
                        text.push(' ');
                        draft.selection.write_to(&mut text);
                        text.push_str(" } }");
                    }
                }
                Fetch {
                    subgraph: draft.subgraph,
                    depends_on: draft.depends_on,
                    kind: draft.kind,
                    operation: text,
                    variables,
                }
            })
            .collect()
    }
}

fn collect_root_fields<'s>(set: &'s SelectionSet, out: &mut Vec<&'s Field>) {
    for item in &set.items {
        match item {
            Selection::Field(f) => out.push(f),
            Selection::Fragment(fr) => collect_root_fields(&fr.selection_set, out),
        }
    }
}

fn extend(path: &[Name], key: &Name) -> Vec<Name> {
    let mut child = Vec::with_capacity(path.len() + 1);
    child.extend_from_slice(path);
    child.push(key.clone());
    child
}

fn dedup(mut ids: Vec<usize>) -> Vec<usize> {
    ids.sort_unstable();
    ids.dedup();
    ids
}
