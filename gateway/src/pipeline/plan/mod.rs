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
//!
//! The planner is split by what each part decides: `walk` goes through the client's
//! selection and places each field in a fetch, `entity_hops` opens `_entities` fetches on
//! other subgraphs, `ownership` answers which subgraph can serve what where, and `merge`
//! joins identical fetches once the plan is complete.

mod batch;
mod entity_hops;
mod merge;
mod ownership;
mod walk;

use std::collections::HashMap;

use apollo_compiler::Name;
use apollo_compiler::ast::{OperationType, Type};

use super::normalize::NormalizedOperation;
use super::selection::{Field, Selection, SelectionSet};
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
    /// The fetch's client variables declared as in `operation` (`$first: Int = 5`).
    pub declarations: Vec<String>,
    /// For an entity fetch, what `_entities` selects (`{ ... on Product { name } }`): the part
    /// of `operation` that a request for several entity fetches repeats under aliases.
    pub entities_selection: String,
    /// Entity fetches to the same subgraph at the same depth of the plan form a batch (see
    /// `batch::group_entity_fetches`); members that start together go in one request.
    pub batch: Option<usize>,
    /// The fetches the rest of this fetch's batch waits for beyond its own `depends_on`: it
    /// waits for them too, so that the batch starts together. Execution waits for one of
    /// them only when it is allowed to run at the time (a fetch of a deferred fragment never
    /// holds back one of the first payload's).
    pub batch_waits_for: Vec<usize>,
}

/// Prefix of the aliases the planner gives fields whose subgraph type differs from the
/// supergraph's; execution strips it from the subgraph's answer.
pub const RENAMED_PREFIX: &str = "_gw_typed_";

/// Prefix of the variables and aliases of a request that carries several entity fetches
/// (`$_gw_batch_r0`, `_gw_batch_e0: _entities(...)`); a fetch using a client variable of that name is
/// never batched.
pub const BATCH_PREFIX: &str = "_gw_batch_";

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
        fetches: batch::group_entity_fetches(merge::merge_identical_fetches(
            planner.finish(operation),
        )),
        last_response_bytes: std::sync::atomic::AtomicUsize::new(0),
    })
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
