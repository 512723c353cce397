//! The walk through the client's selection: each field is placed in the fetch of a subgraph
//! that can resolve it where it is, or handed to an entity hop; `finish` writes the fetches'
//! operations.

use std::collections::HashMap;

use apollo_compiler::Name;
use apollo_compiler::ast::OperationType;

use super::{
    Draft, Fetch, FetchKind, MAX_PLAN_DEPTH, PlanError, Planner, RENAMED_PREFIX, Snapshot,
    collect_root_fields, extend, provided_field, typename_field,
};
use crate::pipeline::normalize::NormalizedOperation;
use crate::pipeline::selection::{Field, Fragment, Selection, SelectionSet};
use crate::supergraph::SubgraphId;

impl<'a> Planner<'a> {
    pub(super) fn plan_root(&mut self, operation: &NormalizedOperation) -> Result<(), PlanError> {
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
    pub(super) fn place_shared_field(
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

    pub(super) fn new_draft(
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
    pub(super) fn plan_set(
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

    pub(super) fn plan_set_inner(
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

    pub(super) fn plan_field(
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
    pub(super) fn split_to_other_owners(
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

    pub(super) fn snapshot(&self, out: &SelectionSet) -> Snapshot {
        Snapshot {
            drafts: self.drafts.clone(),
            children: self.children.clone(),
            touched: self.touched.len(),
            out: out.clone(),
        }
    }

    pub(super) fn restore(&mut self, snapshot: Snapshot, out: &mut SelectionSet) {
        self.drafts = snapshot.drafts;
        self.children = snapshot.children;
        self.touched.truncate(snapshot.touched);
        *out = snapshot.out;
    }

    pub(super) fn finish(self, operation: &NormalizedOperation) -> Vec<Fetch> {
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
                let mut entities_selection = String::new();
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
                        entities_selection.push_str("{ ... on ");
                        entities_selection.push_str(type_name);
                        entities_selection.push(' ');
                        draft.selection.write_to(&mut entities_selection);
                        entities_selection.push_str(" }");
                        text.push_str("query($representations: [_Any!]!");
                        for declaration in &declarations {
                            text.push_str(", ");
                            text.push_str(declaration);
                        }
                        text.push_str(") { _entities(representations: $representations) ");
                        text.push_str(&entities_selection);
                        text.push_str(" }");
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
                    declarations,
                    entities_selection,
                    batch: None,
                    batch_waits_for: Vec::new(),
                }
            })
            .collect()
    }
}
