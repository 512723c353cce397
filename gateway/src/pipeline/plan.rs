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
        requiring: 0,
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

#[derive(Clone, Hash, PartialEq, Eq)]
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
    /// Nesting of `@requires` planning: fields planned for a requirement must not join an
    /// entity fetch that has requirements, which may be the very fetch waiting for them.
    requiring: usize,
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
            let parts = match operation.operation_type {
                // Mutation fields run one after the other, in order; consecutive fields of one
                // subgraph still share a request, where the subgraph runs them in order.
                OperationType::Mutation => {
                    let fetch = match last {
                        Some(id) if owners.contains(&self.drafts[id].subgraph) => id,
                        _ => {
                            let id =
                                self.new_draft(first, last.into_iter().collect(), FetchKind::Root);
                            last = Some(id);
                            id
                        }
                    };
                    vec![(fetch, field.clone())]
                }
                _ => self
                    .place_shared_field(root, field, &owners, &per_subgraph, operation)
                    .into_iter()
                    .map(|(subgraph, part)| {
                        let fetch = *per_subgraph.entry(subgraph).or_insert_with(|| {
                            self.drafts.push(Draft {
                                subgraph,
                                depends_on: Vec::new(),
                                kind: FetchKind::Root,
                                selection: SelectionSet::default(),
                            });
                            self.drafts.len() - 1
                        });
                        (fetch, part)
                    })
                    .collect(),
            };
            for (fetch, part) in parts {
                let single = SelectionSet {
                    items: vec![Selection::Field(part)],
                };
                let selection = self.plan_set(fetch, root, &single, &[], None)?;
                self.drafts[fetch].selection.merge(selection);
            }
        }
        Ok(())
    }

    /// Chooses the subgraph(s) for a root query field. A shareable field can come from any
    /// owner: prefer one that answers the whole selection itself (with its `@provides`), one
    /// already fetched from first. If none can, and the field's type is a value type no hop
    /// can reach, its selection is split between owners and the answers merge (the same
    /// `product` asked from each subgraph for the fields only that subgraph has).
    fn place_shared_field(
        &self,
        root: &Name,
        field: &Field,
        owners: &[SubgraphId],
        per_subgraph: &HashMap<SubgraphId, usize>,
        operation: &NormalizedOperation,
    ) -> Vec<(SubgraphId, Field)> {
        let sg = self.supergraph;
        let child_type = field.ty.inner_named_type();
        let provides = |g: SubgraphId| {
            sg.field_in_graph(root, &field.name, g)
                .and_then(|e| e.provides.as_ref())
        };
        let mut ordered: Vec<SubgraphId> = owners.to_vec();
        // Stable: already-used subgraphs first, otherwise supergraph order.
        ordered.sort_by_key(|g| !per_subgraph.contains_key(g));
        let first = ordered[0];
        if let Some(&g) = ordered
            .iter()
            .find(|&&g| self.available_locally(child_type, &field.selection_set, g, provides(g)))
        {
            return vec![(g, field.clone())];
        }
        let splittable = operation.operation_type == OperationType::Query
            && ordered.len() > 1
            && !field.selection_set.is_empty();
        if !splittable {
            return vec![(first, field.clone())];
        }
        let mut parts: Vec<(SubgraphId, SelectionSet)> = Vec::new();
        for item in &field.selection_set.items {
            let single = SelectionSet {
                items: vec![item.clone()],
            };
            let chosen: Vec<SubgraphId> = parts.iter().map(|(g, _)| *g).collect();
            let g = chosen
                .iter()
                .chain(&ordered)
                .copied()
                .find(|&g| self.available_locally(child_type, &single, g, provides(g)))
                .unwrap_or(first);
            match parts.iter_mut().find(|(p, _)| *p == g) {
                Some((_, set)) => set.items.push(item.clone()),
                None => parts.push((g, single)),
            }
        }
        parts
            .into_iter()
            .map(|(g, selection_set)| {
                let mut part = field.without_selections();
                part.selection_set = selection_set;
                (g, part)
            })
            .collect()
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
                    } else if sg.is_object(condition)
                        || !sg.type_in_graph(condition, subgraph)
                        || self.membership_differs(parent, condition, subgraph)
                    {
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
        let provided_here = provided.and_then(|p| provided_field(sg, p, parent, &field.name));
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

        if local
            && provided_here.is_none()
            && sg.is_object(parent)
            && self.split_to_other_owners(fetch, parent, field, path, provided, out)?
        {
            return Ok(());
        }

        if local {
            let mut planned = field.without_selections();
            if !field.selection_set.is_empty() {
                let child_type = sg.field_type_in_graph(parent, field, subgraph);
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
                if sg.is_abstract(child_type) || sg.is_abstract(field.ty.inner_named_type()) {
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
        let result = self.plan_entity_hop(fetch, parent, field, path, provided, out, None);
        self.hopping.pop();
        result
    }

    /// A field this subgraph resolves, whose sub-selection it cannot all answer: parts of it
    /// may be reachable only through another owner of the same field, when the child type is a
    /// value type there (no key to hop on). Those parts go to that owner through an entity
    /// fetch on `parent`, the rest stays here. Returns whether it split anything.
    fn split_to_other_owners(
        &mut self,
        fetch: usize,
        parent: &Name,
        field: &Field,
        path: &[Name],
        provided: Option<&SelectionSet>,
        out: &mut SelectionSet,
    ) -> Result<bool, PlanError> {
        let sg = self.supergraph;
        let subgraph = self.drafts[fetch].subgraph;
        if field.selection_set.is_empty() {
            return Ok(false);
        }
        let here_type = sg.field_type_in_graph(parent, field, subgraph);
        let here_provides = sg
            .field_in_graph(parent, &field.name, subgraph)
            .and_then(|e| e.provides.as_ref());
        if self.available_locally(here_type, &field.selection_set, subgraph, here_provides) {
            return Ok(false);
        }
        let others: Vec<SubgraphId> = sg
            .field_owners(parent, &field.name)
            .into_iter()
            .filter(|&g| {
                // Only owners reachable with a key this subgraph has: a key that needs a hop
                // of its own would plan this very field again.
                g != subgraph
                    && sg
                        .entity_keys(parent, g)
                        .iter()
                        .any(|key| self.available_locally(parent, key, subgraph, provided))
            })
            .collect();
        if others.is_empty() {
            return Ok(false);
        }
        let mut here = SelectionSet::default();
        let mut elsewhere: Vec<(SubgraphId, SelectionSet)> = Vec::new();
        for item in &field.selection_set.items {
            let single = SelectionSet {
                items: vec![item.clone()],
            };
            if self.available_locally(here_type, &single, subgraph, here_provides) {
                here.items.push(item.clone());
                continue;
            }
            let owner = others.iter().copied().find(|&g| {
                let provides = sg
                    .field_in_graph(parent, &field.name, g)
                    .and_then(|e| e.provides.as_ref());
                self.available_locally(
                    sg.field_type_in_graph(parent, field, g),
                    &single,
                    g,
                    provides,
                )
            });
            match owner {
                Some(g) => match elsewhere.iter_mut().find(|(o, _)| *o == g) {
                    Some((_, set)) => set.items.push(item.clone()),
                    None => elsewhere.push((g, single)),
                },
                // Nobody has it directly: keep it here, where it may still hop on its own.
                None => here.items.push(item.clone()),
            }
        }
        if elsewhere.is_empty() {
            return Ok(false);
        }
        if !here.is_empty() {
            let mut part = field.without_selections();
            part.selection_set = here;
            let mut planned = part.without_selections();
            let child_path = extend(path, field.response_key());
            let mut sub = self.plan_set(
                fetch,
                here_type,
                &part.selection_set,
                &child_path,
                here_provides,
            )?;
            if sg.is_abstract(here_type) || sg.is_abstract(field.ty.inner_named_type()) {
                sub.add(typename_field());
            }
            planned.selection_set = sub;
            out.add(Selection::Field(planned));
        }
        for (g, selection_set) in elsewhere {
            let mut part = field.without_selections();
            part.selection_set = selection_set;
            self.plan_entity_hop(fetch, parent, &part, path, provided, out, Some(g))?;
        }
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_entity_hop(
        &mut self,
        fetch: usize,
        parent: &Name,
        field: &Field,
        path: &[Name],
        provided: Option<&SelectionSet>,
        out: &mut SelectionSet,
        only: Option<SubgraphId>,
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
        // Every (owner, key) pair could serve; prefer one whose key fields the current
        // subgraph has itself, so the hop needs no extra hop to collect its key (an entity
        // keyed by `upc` here and by `id` there is reached through the `upc` owner).
        let owners = sg.field_owners(parent, &field.name);
        let candidates = owners
            .iter()
            .copied()
            .filter(|&g| only.is_none_or(|o| o == g))
            .filter(|&g| g != subgraph || requires_of(g).is_some())
            .flat_map(|g| sg.entity_keys(parent, g).iter().map(move |key| (g, key)));
        let mut first = None;
        let mut chosen = None;
        for (g, key) in candidates {
            first.get_or_insert((g, key));
            if self.available_locally(parent, key, subgraph, provided) {
                chosen = Some((g, key));
                break;
            }
        }
        let (target, key) = chosen.or(first).ok_or_else(unresolvable)?;
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
            self.requiring += 1;
            let required = self.plan_set(fetch, parent, requires, path, provided);
            self.requiring -= 1;
            out.merge(required?);
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
        // One entity fetch per (parent, subgraph, path, type) where possible: besides saving a
        // request, a subgraph may not expect the same entity twice in one operation. A field
        // without requirements joins any of them; one with requirements joins its own kind or
        // upgrades a plain one. Only different requirements (conflicting representations)
        // need fetches of their own.
        let same_place = |key: &ChildKey| {
            key.parent == child_key.parent
                && key.subgraph == child_key.subgraph
                && key.path == child_key.path
                && key.type_name == child_key.type_name
        };
        let requiring = self.requiring > 0;
        let existing = match requires {
            None => self
                .children
                .iter()
                .filter(|(key, _)| same_place(key) && (!requiring || key.requires.is_empty()))
                .map(|(_, &id)| id)
                .min(),
            Some(requires) => match self.children.get(&child_key) {
                Some(&id) => Some(id),
                None => {
                    // A plain fetch that helps produce the requirements cannot carry them.
                    let plain = self
                        .children
                        .iter()
                        .find(|&(key, &id)| {
                            same_place(key)
                                && key.requires.is_empty()
                                && depends_on
                                    .iter()
                                    .all(|&d| d != id && !self.depends_transitively(d, id))
                        })
                        .map(|(key, &id)| (key.requires.clone(), id));
                    plain.map(|(old_requires, id)| {
                        if let FetchKind::Entity { representation, .. } = &mut self.drafts[id].kind
                        {
                            representation.merge(requires.clone());
                        }
                        let old_key = ChildKey {
                            requires: old_requires,
                            ..child_key.clone()
                        };
                        self.children.remove(&old_key);
                        self.children.insert(child_key.clone(), id);
                        id
                    })
                }
            },
        };
        let child = match existing {
            Some(id) => {
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
            let child_type = sg.field_type_in_graph(parent, field, target);
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
            if sg.is_abstract(child_type) || sg.is_abstract(field.ty.inner_named_type()) {
                sub.add(typename_field());
            }
            planned.selection_set = sub;
        }
        self.drafts[child].selection.add(Selection::Field(planned));
        Ok(())
    }

    /// Whether draft `fetch` waits, directly or not, for draft `on`.
    fn depends_transitively(&self, fetch: usize, on: usize) -> bool {
        let mut stack = vec![fetch];
        let mut seen = vec![false; self.drafts.len()];
        while let Some(current) = stack.pop() {
            for &dep in &self.drafts[current].depends_on {
                if dep == on {
                    return true;
                }
                if !seen[dep] {
                    seen[dep] = true;
                    stack.push(dep);
                }
            }
        }
        false
    }

    /// Whether some object the subgraph returns for `parent` belongs to `condition` in the
    /// supergraph but not in the subgraph (`Oven` is a `Node` only elsewhere): a fragment on
    /// `condition` sent as is would select nothing on it, so it is split per object type.
    fn membership_differs(&self, parent: &Name, condition: &Name, subgraph: SubgraphId) -> bool {
        let sg = self.supergraph;
        sg.possible_types(condition).iter().any(|object| {
            sg.is_subtype(parent, object)
                && sg.possible_in_graph(parent, object, subgraph)
                && !sg.possible_in_graph(condition, object, subgraph)
        })
    }

    /// Whether `subgraph` can select all of `set` on `parent` without another hop.
    fn available_locally(
        &self,
        parent: &Name,
        set: &SelectionSet,
        subgraph: SubgraphId,
        provided: Option<&SelectionSet>,
    ) -> bool {
        let sg = self.supergraph;
        set.items.iter().all(|item| match item {
            Selection::Field(field) => {
                if field.name == "__typename" {
                    return true;
                }
                let provided_here =
                    provided.and_then(|p| provided_field(sg, p, parent, &field.name));
                if provided_here.is_none() && !sg.resolves_locally(parent, &field.name, subgraph) {
                    return false;
                }
                field.selection_set.is_empty()
                    || self.available_locally(
                        field.ty.inner_named_type(),
                        &field.selection_set,
                        subgraph,
                        provided_here.map(|p| &p.selection_set),
                    )
            }
            Selection::Fragment(fragment) => {
                let condition = &fragment.type_condition;
                // A type the subgraph never returns here needs nothing from it.
                if sg.is_abstract(parent)
                    && sg.is_object(condition)
                    && !sg.possible_in_graph(parent, condition, subgraph)
                {
                    return true;
                }
                self.available_locally(condition, &fragment.selection_set, subgraph, provided)
            }
        })
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
                            .map(|v| match &v.default_value {
                                // The default matters to the subgraph: with it, a nullable
                                // variable may fill a non-null argument.
                                Some(default) => format!("${}: {} = {}", v.name, v.ty, default),
                                None => format!("${}: {}", v.name, v.ty),
                            })
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

/// The field of a `@provides` set that applies on `parent`: a top-level one, or one inside a
/// fragment whose type condition covers `parent` (`... on Book { title }` provides nothing
/// on `Movie`).
fn provided_field<'p>(
    sg: &Supergraph,
    provided: &'p SelectionSet,
    parent: &str,
    name: &str,
) -> Option<&'p Field> {
    provided.items.iter().find_map(|item| match item {
        Selection::Field(f) if f.name == name => Some(f),
        Selection::Fragment(fragment) if sg.is_subtype(&fragment.type_condition, parent) => {
            provided_field(sg, &fragment.selection_set, parent, name)
        }
        _ => None,
    })
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
