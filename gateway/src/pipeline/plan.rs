//! Query planning: splits a normalised operation into subgraph fetches.
//!
//! Root fields are grouped per owning subgraph. When a field cannot be resolved by the subgraph
//! the current fetch talks to, the planner adds `__typename` and the entity key to the current
//! fetch and moves the field into a child `_entities` fetch on a subgraph that owns it. Child
//! fetches are shared per (parent fetch, subgraph, response path, type), so every entity found at
//! a path is resolved by one batched request. `@requires` fields are planned like client fields
//! in the parent context and the child waits for every fetch that produced them; `@provides`
//! lets a subgraph answer fields it otherwise marks `@external`.
//!
//! Interface objects (`@interfaceObject`) are entities whose subgraph knows the interface but
//! none of its implementations: fields they own are fetched with the interface's name as the
//! representation's `__typename`, and where the concrete type matters (`__typename`, fragments
//! on implementations) the objects hop to a subgraph that has the real interface.
//!
//! A shareable field may be resolved by any of its owners, and owners can disagree on the
//! members of the abstract type it returns (`union Action = Common | OnlyA` here, `Common |
//! OnlyB` there). Since any of the subgraphs that could serve a path may be the one answering,
//! only the object types every one of them can return there are selected below an abstract
//! type; an object of another type keeps just what its other selections and `__typename` say.

use std::collections::HashMap;

use apollo_compiler::Name;
use apollo_compiler::ast::{OperationType, Type};

use super::normalize::NormalizedOperation;
use super::selection::{Field, Fragment, Selection, SelectionSet};
use crate::supergraph::{SubgraphId, Supergraph};

#[derive(Debug)]
pub struct QueryPlan {
    pub operation_type: OperationType,
    pub fetches: Vec<Fetch>,
    /// Size of the last response shaped from this plan: the next one's buffer starts at that
    /// capacity instead of doubling its way up (a copy of everything written at each step).
    pub last_response_bytes: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, Clone)]
pub struct Fetch {
    pub subgraph: SubgraphId,
    /// Fetches that must have been merged before this one starts.
    pub depends_on: Vec<usize>,
    pub kind: FetchKind,
    /// The GraphQL operation sent to the subgraph.
    pub operation: String,
    /// `operation` as a JSON string literal, escaped once when planning rather than on every
    /// request that sends it.
    pub operation_json: String,
    /// Client variables the operation uses; only those are forwarded.
    pub variables: Vec<Name>,
    /// The operation aliases fields with `RENAMED_PREFIX`; their answers are renamed back.
    pub renames: bool,
    /// What the fetch selects (at the root, or in each entity): where its answer lands in the
    /// response, which tells a deferred fragment's fetches from the first payload's.
    pub selection: SelectionSet,
}

/// Prefix of the aliases the planner gives fields whose subgraph type differs from the
/// supergraph's; execution strips it from the subgraph's answer.
pub const RENAMED_PREFIX: &str = "_gw_typed_";

#[derive(Debug, Clone)]
pub enum FetchKind {
    Root,
    Entity {
        /// Response keys from the root of `data` to the entities; lists are walked through.
        /// Several paths when the same fetch is needed in several places (see
        /// `merge_identical_fetches`): their entities go in one request.
        paths: Vec<Vec<Name>>,
        /// Only objects whose `__typename` is (a subtype of) this type are sent.
        type_name: Name,
        /// The fields projected from each object into its representation.
        representation: SelectionSet,
        /// The `__typename` sent in representations (and the `_entities` fragment's type)
        /// when the subgraph knows `type_name` only as this interface object; each
        /// object's own `__typename` is then kept out of the merge, since the subgraph
        /// answers with the interface's name.
        representation_type: Option<Name>,
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
        retries: 0,
        client_aliases: HashMap::new(),
        // Root fields are reachable in every subgraph.
        candidates: (0..supergraph.subgraphs.len()).collect(),
    };
    collect_client_aliases(
        &operation.selection_set,
        &mut Vec::new(),
        &mut planner.client_aliases,
    );
    planner.plan_root(operation)?;
    Ok(QueryPlan {
        operation_type: operation.operation_type,
        fetches: merge_identical_fetches(planner.finish(operation)),
        last_response_bytes: std::sync::atomic::AtomicUsize::new(0),
    })
}

/// Entity fetches that ask the same subgraph the same thing, differing only in where their
/// entities sit (the same product type reached through two different fields, say), become
/// one fetch with several paths: one request instead of several, and an entity found in two
/// places is sent once. The merged fetch waits for what either waited for, so a fetch that
/// could start early may start a little later; in exchange the subgraphs get fewer, larger
/// requests, which is what costs them (and the gateway) least under load. Two fetches are
/// never merged when one leads to the other, which would make the merged fetch wait for
/// itself. Merging can make dependents identical in turn, hence the loop.
fn merge_identical_fetches(mut fetches: Vec<Fetch>) -> Vec<Fetch> {
    let same = |a: &Fetch, b: &Fetch| -> bool {
        let (
            FetchKind::Entity {
                type_name: a_type,
                representation: a_rep,
                representation_type: a_as,
                ..
            },
            FetchKind::Entity {
                type_name: b_type,
                representation: b_rep,
                representation_type: b_as,
                ..
            },
        ) = (&a.kind, &b.kind)
        else {
            return false;
        };
        a.subgraph == b.subgraph
            && a.operation == b.operation
            && a.variables == b.variables
            && a.renames == b.renames
            && a_type == b_type
            && a_rep == b_rep
            && a_as == b_as
    };
    loop {
        let pair = (0..fetches.len())
            .flat_map(|j| (0..j).map(move |i| (i, j)))
            .find(|&(i, j)| {
                same(&fetches[i], &fetches[j])
                    && !leads_to(&fetches, i, j)
                    && !leads_to(&fetches, j, i)
            });
        let Some((keep, gone)) = pair else {
            return fetches;
        };
        let removed = fetches.remove(gone);
        if let (FetchKind::Entity { paths, .. }, FetchKind::Entity { paths: more, .. }) =
            (&mut fetches[keep].kind, removed.kind)
        {
            paths.extend(more);
        }
        // Indices as before the removal: the loop below renumbers every list alike.
        fetches[keep].depends_on.extend(removed.depends_on);
        for fetch in &mut fetches {
            for dep in &mut fetch.depends_on {
                if *dep == gone {
                    *dep = keep;
                } else if *dep > gone {
                    *dep -= 1;
                }
            }
            fetch.depends_on.sort_unstable();
            fetch.depends_on.dedup();
        }
    }
}

/// Whether fetch `to` waits, directly or through others, for fetch `from`.
fn leads_to(fetches: &[Fetch], from: usize, to: usize) -> bool {
    let mut seen = vec![false; fetches.len()];
    let mut pending = vec![to];
    while let Some(at) = pending.pop() {
        for &dep in fetches.get(at).map_or(&[][..], |f| &f.depends_on) {
            if dep == from {
                return true;
            }
            if let Some(slot) = seen.get_mut(dep)
                && !*slot
            {
                *slot = true;
                pending.push(dep);
            }
        }
    }
    false
}

#[derive(Clone)]
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
    /// Hops re-planned item by item after a failure; bounded so that a pathological
    /// supergraph cannot make planning exponential.
    retries: usize,
    /// Per response path, the client's aliases that are not the aliased field's own name
    /// (`upc: name`). A key or required field of that name selected at the same path would
    /// collide with the client's field in the subgraph operation, so it gets an alias.
    client_aliases: HashMap<Vec<Name>, Vec<Name>>,
    /// The subgraphs that could serve the path being planned: the ones resolving every field
    /// on the way from the root, where an entity field may be reached in any owner by a hop.
    /// Below an abstract type, only object types all of them can return there are selected.
    candidates: Vec<SubgraphId>,
}

/// Prefix of the aliases given to key and required fields whose name a client alias uses.
pub const KEY_ALIAS_PREFIX: &str = "_gw_key_";

/// Planner state to return to when an attempted hop turns out unplannable.
struct Snapshot {
    drafts: Vec<Draft>,
    children: HashMap<ChildKey, usize>,
    touched: usize,
    out: SelectionSet,
}

const MAX_RETRIES: usize = 256;

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
        // Stable: the owner that answers most of the selection itself first (a subgraph that
        // `@provides` the nested fields beats one that would need hops for them), then
        // already-used subgraphs, otherwise supergraph order.
        ordered.sort_by_key(|&g| {
            (
                std::cmp::Reverse(self.local_score(
                    child_type,
                    &field.selection_set,
                    g,
                    provides(g),
                )),
                !per_subgraph.contains_key(&g),
            )
        });
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
                    if sg.is_interface_object(parent, subgraph) {
                        // The subgraph has the interface as an object and knows no
                        // implementation: only a fragment on the interface itself applies
                        // here; others need the concrete type from another subgraph.
                        if condition == parent {
                            let sub = self.plan_set(
                                fetch,
                                parent,
                                &fragment.selection_set,
                                path,
                                provided,
                            )?;
                            out.merge(sub);
                        } else {
                            let single = SelectionSet {
                                items: vec![item.clone()],
                            };
                            self.plan_through_entity_interface(
                                fetch, parent, &single, path, provided, &mut out,
                            )?;
                        }
                    } else if sg.is_object(parent) {
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
                                || !self.possible_in_candidates(parent, &object)
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
        let interface_object = sg.is_interface_object(parent, subgraph);
        if field.name == "__typename" {
            out.add(Selection::Field(field.without_selections()));
            if interface_object {
                // The subgraph answers with the interface's name: ask one that knows.
                self.plan_through_entity_interface(
                    fetch,
                    parent,
                    &SelectionSet::default(),
                    path,
                    provided,
                    out,
                )?;
            }
            return Ok(());
        }
        let provided_here = provided.and_then(|p| provided_field(sg, p, parent, &field.name));
        let local = provided_here.is_some() || sg.resolves_locally(parent, &field.name, subgraph);

        // An interface field resolved by interface objects elsewhere is fetched on the
        // interface as a whole: one hop for every implementation.
        let via_interface_object = !local
            && !interface_object
            && sg.is_abstract(parent)
            && sg.field_owners(parent, &field.name).iter().any(|&g| {
                sg.is_interface_object(parent, g) && !sg.entity_keys(parent, g).is_empty()
            });

        // An interface field the subgraph has may still be taken from it for some
        // implementations (`@override` on one object type): those need their own route.
        let partly_local = local
            && provided_here.is_none()
            && !interface_object
            && sg.is_abstract(parent)
            && sg.possible_types(parent).iter().any(|object| {
                sg.possible_in_graph(parent, object, subgraph)
                    && !sg.resolves_locally(object, &field.name, subgraph)
            });

        if (!local || partly_local)
            && !interface_object
            && !via_interface_object
            && sg.is_abstract(parent)
        {
            let owners = sg.field_owners(parent, &field.name);
            if !owners.is_empty() && owners.iter().all(|&g| sg.is_interface_object(parent, g)) {
                // Only interface objects that cannot be reached (`resolvable: false`) have it.
                return Err(PlanError::Unresolvable {
                    type_name: parent.clone(),
                    field: field.name.clone(),
                });
            }
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
            let mut planned = self.subgraph_field(parent, field, subgraph);
            if !field.selection_set.is_empty() {
                let child_type = sg.field_type_in_graph(parent, field, subgraph);
                let child_provided = match provided_here {
                    Some(p) if !p.selection_set.is_empty() => Some(&p.selection_set),
                    _ => sg
                        .field_in_graph(parent, &field.name, subgraph)
                        .and_then(|e| e.provides.as_ref()),
                };
                let child_path = extend(path, field.response_key());
                let mut sub = self.plan_below(
                    fetch,
                    parent,
                    field,
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
            let mut sub = self.plan_below(
                fetch,
                parent,
                field,
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

    fn snapshot(&self, out: &SelectionSet) -> Snapshot {
        Snapshot {
            drafts: self.drafts.clone(),
            children: self.children.clone(),
            touched: self.touched.len(),
            out: out.clone(),
        }
    }

    fn restore(&mut self, snapshot: Snapshot, out: &mut SelectionSet) {
        self.drafts = snapshot.drafts;
        self.children = snapshot.children;
        self.touched.truncate(snapshot.touched);
        *out = snapshot.out;
    }

    /// Hops to an owner of `field`. When no single owner can serve the whole sub-selection
    /// (a shared value type whose fields are spread over its owners, some reachable only
    /// through one of them), each item of the sub-selection goes to the first owner that
    /// can plan it.
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
        let owners = self.supergraph.field_owners(parent, &field.name);
        let may_split = only.is_none()
            && owners.len() > 1
            && field.selection_set.items.len() > 1
            && self.retries < MAX_RETRIES;
        if !may_split {
            return self.plan_entity_hop_once(fetch, parent, field, path, provided, out, only);
        }
        let snapshot = self.snapshot(out);
        let error = match self.plan_entity_hop_once(fetch, parent, field, path, provided, out, None)
        {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        self.restore(snapshot, out);
        for item in &field.selection_set.items {
            let mut part = field.without_selections();
            part.selection_set = SelectionSet {
                items: vec![item.clone()],
            };
            let mut planned = false;
            for &owner in &owners {
                self.retries += 1;
                if self.retries > MAX_RETRIES {
                    return Err(error);
                }
                let snapshot = self.snapshot(out);
                match self.plan_entity_hop_once(
                    fetch,
                    parent,
                    &part,
                    path,
                    provided,
                    out,
                    Some(owner),
                ) {
                    Ok(()) => {
                        planned = true;
                        break;
                    }
                    Err(_) => self.restore(snapshot, out),
                }
            }
            if !planned {
                return Err(error);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_entity_hop_once(
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
        let child =
            self.open_entity_fetch(fetch, parent, target, key, requires, path, provided, out)?;

        let mut planned = self.subgraph_field(parent, field, target);
        if !field.selection_set.is_empty() {
            let child_type = sg.field_type_in_graph(parent, field, target);
            let child_provided = sg
                .field_in_graph(parent, &field.name, target)
                .and_then(|e| e.provides.as_ref());
            let child_path = extend(path, field.response_key());
            let mut sub = self.plan_below(
                child,
                parent,
                field,
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

    /// Aliases the top-level fields of a key or `@requires` set whose name the client uses as
    /// an alias at `path`. Representations are projected by response key and written by
    /// field name, so the alias never reaches the subgraph that receives them.
    fn avoid_client_aliases(&self, set: &SelectionSet, path: &[Name]) -> SelectionSet {
        let mut set = set.clone();
        let Some(aliases) = self.client_aliases.get(path) else {
            return set;
        };
        for item in &mut set.items {
            if let Selection::Field(field) = item
                && field.alias.is_none()
                && aliases.contains(&field.name)
            {
                // A prefix plus a valid name is a valid name.
                field.alias = Name::new(&format!("{KEY_ALIAS_PREFIX}{}", field.name)).ok();
            }
        }
        set
    }

    /// Finds or creates the `_entities` fetch to `target` for the `parent` objects at `path`,
    /// selecting its key (and `requires`) in the current fetch; returns the child fetch.
    #[allow(clippy::too_many_arguments)]
    fn open_entity_fetch(
        &mut self,
        fetch: usize,
        parent: &Name,
        target: SubgraphId,
        key: &SelectionSet,
        requires: Option<&SelectionSet>,
        path: &[Name],
        provided: Option<&SelectionSet>,
        out: &mut SelectionSet,
    ) -> Result<usize, PlanError> {
        let sg = self.supergraph;
        let key = &self.avoid_client_aliases(key, path);
        let requires = requires.map(|r| self.avoid_client_aliases(r, path));
        let requires = requires.as_ref();
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
                    paths: vec![path.to_vec()],
                    type_name: parent.clone(),
                    representation,
                    representation_type: sg.representation_type(parent, target),
                };
                let id = self.new_draft(target, dedup(depends_on), kind);
                self.children.insert(child_key, id);
                id
            }
        };
        self.touched.push(child);
        Ok(child)
    }

    /// Sends `selection` (on interface `iface`, which the current subgraph holds as an
    /// interface object) to a subgraph that knows the implementations: there the concrete
    /// `__typename` is resolved and fragments on implementations are planned as usual.
    /// Without such a subgraph the concrete type cannot be known, and nothing is selected.
    fn plan_through_entity_interface(
        &mut self,
        fetch: usize,
        iface: &Name,
        selection: &SelectionSet,
        path: &[Name],
        provided: Option<&SelectionSet>,
        out: &mut SelectionSet,
    ) -> Result<(), PlanError> {
        let sg = self.supergraph;
        let subgraph = self.drafts[fetch].subgraph;
        let candidates: Vec<(SubgraphId, &SelectionSet)> = sg
            .entity_interface_graphs(iface)
            .into_iter()
            .filter(|&g| g != subgraph)
            .flat_map(|g| sg.entity_keys(iface, g).iter().map(move |key| (g, key)))
            .collect();
        let Some(&(target, key)) = candidates
            .iter()
            .find(|(_, key)| self.available_locally(iface, key, subgraph, provided))
            .or(candidates.first())
        else {
            return Ok(());
        };
        let child = self.open_entity_fetch(fetch, iface, target, key, None, path, provided, out)?;
        let mut sub = self.plan_set(child, iface, selection, path, None)?;
        sub.add(typename_field());
        self.drafts[child].selection.merge(sub);
        Ok(())
    }

    /// The field as selected from `graph`: aliased when the subgraph's type for it differs
    /// from the supergraph's, so sibling fragments cannot conflict over it.
    fn subgraph_field(&self, parent: &Name, field: &Field, graph: SubgraphId) -> Field {
        let mut planned = field.without_selections();
        if self
            .supergraph
            .field_in_graph(parent, &field.name, graph)
            .is_some_and(|e| e.type_differs)
        {
            // A prefix plus a valid name is a valid name.
            planned.alias = Name::new(&format!("{RENAMED_PREFIX}{}", field.response_key())).ok();
        }
        planned
    }

    /// Plans the sub-selection of `parent.field` (of type `child_type` in the fetch's
    /// subgraph) with the subgraphs that could serve the field as candidates: the fetch's own,
    /// owners that could serve the parent object already, and owners an entity hop reaches.
    #[allow(clippy::too_many_arguments)]
    fn plan_below(
        &mut self,
        fetch: usize,
        parent: &Name,
        field: &Field,
        child_type: &Name,
        selection: &SelectionSet,
        child_path: &[Name],
        provided: Option<&SelectionSet>,
    ) -> Result<SelectionSet, PlanError> {
        let sg = self.supergraph;
        let subgraph = self.drafts[fetch].subgraph;
        let mut candidates = vec![subgraph];
        for g in sg.field_owners(parent, &field.name) {
            if !candidates.contains(&g)
                && (self.candidates.contains(&g) || !sg.entity_keys(parent, g).is_empty())
            {
                candidates.push(g);
            }
        }
        let outer = std::mem::replace(&mut self.candidates, candidates);
        let result = self.plan_set(fetch, child_type, selection, child_path, provided);
        // Restored on failure too: a failed hop may be retried in another way.
        self.candidates = outer;
        result
    }

    /// Whether every candidate subgraph that knows `abstract_type` can return `object` there.
    /// A subgraph holding the interface as an interface object knows no implementation at
    /// all, and leaves the concrete type to the subgraphs that do: it restricts nothing.
    fn possible_in_candidates(&self, abstract_type: &Name, object: &Name) -> bool {
        let sg = self.supergraph;
        self.candidates.iter().all(|&g| {
            !sg.type_in_graph(abstract_type, g)
                || sg.is_interface_object(abstract_type, g)
                || sg.possible_in_graph(abstract_type, object, g)
        })
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

    /// How many fields of `set` (nested ones included) `subgraph` selects without a hop.
    fn local_score(
        &self,
        parent: &Name,
        set: &SelectionSet,
        subgraph: SubgraphId,
        provided: Option<&SelectionSet>,
    ) -> usize {
        let sg = self.supergraph;
        set.items
            .iter()
            .map(|item| match item {
                Selection::Field(field) if field.name == "__typename" => 0,
                Selection::Field(field) => {
                    let provided_here =
                        provided.and_then(|p| provided_field(sg, p, parent, &field.name));
                    if provided_here.is_none()
                        && !sg.resolves_locally(parent, &field.name, subgraph)
                    {
                        return 0;
                    }
                    1 + self.local_score(
                        field.ty.inner_named_type(),
                        &field.selection_set,
                        subgraph,
                        provided_here.map(|p| &p.selection_set),
                    )
                }
                Selection::Fragment(fragment) => self.local_score(
                    &fragment.type_condition,
                    &fragment.selection_set,
                    subgraph,
                    provided,
                ),
            })
            .sum()
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
                    FetchKind::Entity {
                        type_name,
                        representation_type,
                        ..
                    } => {
                        let type_name = representation_type.as_ref().unwrap_or(type_name);
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
                    renames: text.contains(RENAMED_PREFIX),
                    subgraph: draft.subgraph,
                    depends_on: draft.depends_on,
                    kind: draft.kind,
                    // Serialising a string cannot fail.
                    operation_json: serde_json::to_string(&text).unwrap_or_default(),
                    operation: text,
                    variables,
                    selection: draft.selection,
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

fn collect_client_aliases(
    set: &SelectionSet,
    path: &mut Vec<Name>,
    out: &mut HashMap<Vec<Name>, Vec<Name>>,
) {
    for item in &set.items {
        match item {
            Selection::Field(field) => {
                if let Some(alias) = &field.alias
                    && *alias != field.name
                {
                    let aliases = out.entry(path.clone()).or_default();
                    if !aliases.contains(alias) {
                        aliases.push(alias.clone());
                    }
                }
                if !field.selection_set.is_empty() {
                    path.push(field.response_key().clone());
                    collect_client_aliases(&field.selection_set, path, out);
                    path.pop();
                }
            }
            Selection::Fragment(fragment) => {
                collect_client_aliases(&fragment.selection_set, path, out)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(depends_on: Vec<usize>, operation: &str, path: &str) -> Fetch {
        Fetch {
            subgraph: 1,
            depends_on,
            kind: if path.is_empty() {
                FetchKind::Root
            } else {
                FetchKind::Entity {
                    paths: vec![vec![Name::new_unchecked(path)]],
                    type_name: Name::new_unchecked("Product"),
                    representation: SelectionSet::default(),
                    representation_type: None,
                }
            },
            operation: operation.into(),
            operation_json: String::new(),
            variables: Vec::new(),
            renames: false,
            selection: SelectionSet::default(),
        }
    }

    fn paths(fetch: &Fetch) -> Vec<&str> {
        match &fetch.kind {
            FetchKind::Entity { paths, .. } => paths.iter().map(|p| p[0].as_str()).collect(),
            FetchKind::Root => Vec::new(),
        }
    }

    #[test]
    fn identical_fetches_merge_across_branches_but_never_into_their_own_dependents() {
        let fetches = vec![
            fetch(vec![], "{ a }", ""),
            fetch(vec![], "{ b }", ""),
            fetch(vec![0], "{ products }", "first"),
            // Same question, other branch: merged with 2, waiting for both roots.
            fetch(vec![1], "{ products }", "second"),
            // Same question, but only after 2 has answered: cannot join it.
            fetch(vec![2], "{ products }", "third"),
            // Waits for 3, which is now part of 2.
            fetch(vec![3], "{ other }", "fourth"),
        ];
        let merged = merge_identical_fetches(fetches);
        assert_eq!(merged.len(), 5);
        assert_eq!(paths(&merged[2]), ["first", "second"]);
        assert_eq!(merged[2].depends_on, [0, 1]);
        assert_eq!(paths(&merged[3]), ["third"]);
        assert_eq!(merged[3].depends_on, [2]);
        assert_eq!(paths(&merged[4]), ["fourth"]);
        assert_eq!(merged[4].depends_on, [2]);
    }
}
