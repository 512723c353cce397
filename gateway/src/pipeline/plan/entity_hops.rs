//! Entity hops: a field the current subgraph cannot resolve moves to an `_entities` fetch on
//! a subgraph that owns it, with the key (and `@requires` fields) added to the parent fetch.

use apollo_compiler::Name;

use super::{
    ChildKey, FetchKind, KEY_ALIAS_PREFIX, MAX_RETRIES, PlanError, Planner, RENAMED_PREFIX, dedup,
    extend, typename_field,
};
use crate::pipeline::selection::{Field, Selection, SelectionSet};
use crate::supergraph::SubgraphId;

impl<'a> Planner<'a> {
    /// Hops to an owner of `field`. When no single owner can serve the whole sub-selection
    /// (a shared value type whose fields are spread over its owners, some reachable only
    /// through one of them), each item of the sub-selection goes to the first owner that
    /// can plan it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan_entity_hop(
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
    pub(super) fn plan_entity_hop_once(
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
    pub(super) fn avoid_client_aliases(&self, set: &SelectionSet, path: &[Name]) -> SelectionSet {
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
    pub(super) fn open_entity_fetch(
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
    pub(super) fn plan_through_entity_interface(
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
    pub(super) fn subgraph_field(&self, parent: &Name, field: &Field, graph: SubgraphId) -> Field {
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
    pub(super) fn plan_below(
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
}
