//! Ownership: which subgraph can serve a field or a type where the walk is.

use apollo_compiler::Name;

use super::{Planner, provided_field};
use crate::pipeline::selection::{Selection, SelectionSet};
use crate::supergraph::SubgraphId;

impl<'a> Planner<'a> {
    /// Whether every candidate subgraph that knows `abstract_type` can return `object` there.
    /// A subgraph holding the interface as an interface object knows no implementation at
    /// all, and leaves the concrete type to the subgraphs that do: it restricts nothing.
    pub(super) fn possible_in_candidates(&self, abstract_type: &Name, object: &Name) -> bool {
        let sg = self.supergraph;
        self.candidates.iter().all(|&g| {
            !sg.type_in_graph(abstract_type, g)
                || sg.is_interface_object(abstract_type, g)
                || sg.possible_in_graph(abstract_type, object, g)
        })
    }

    /// Whether draft `fetch` waits, directly or not, for draft `on`.
    pub(super) fn depends_transitively(&self, fetch: usize, on: usize) -> bool {
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
    pub(super) fn membership_differs(
        &self,
        parent: &Name,
        condition: &Name,
        subgraph: SubgraphId,
    ) -> bool {
        let sg = self.supergraph;
        sg.possible_types(condition).iter().any(|object| {
            sg.is_subtype(parent, object)
                && sg.possible_in_graph(parent, object, subgraph)
                && !sg.possible_in_graph(condition, object, subgraph)
        })
    }

    /// How many fields of `set` (nested ones included) `subgraph` selects without a hop.
    pub(super) fn local_score(
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
    pub(super) fn available_locally(
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
}
