//! Batching entity fetches to one subgraph into one request.
//!
//! A plan often asks one subgraph for entities of different types, or at different places,
//! at the same depth (the public gateways benchmark's query asks the reviews subgraph for the
//! reviews of users and of top products). Each such fetch was a request of its own; here they
//! become one batch, sent as one request with an aliased `_entities` field per fetch (see
//! `execute`). Fewer requests cost the subgraph and the gateway less (connection work, HTTP
//! framing, parsing), at the price of a member waiting for what the others wait for.
//!
//! Members are entity fetches to the same subgraph at the same depth, the length of the
//! longest chain of fetches that leads to them. Depth keeps a batch free of cycles: what a
//! fetch waits for lies strictly shallower, so it can never wait for a member of its own
//! batch, directly or through others.

use std::collections::HashMap;

use super::{BATCH_PREFIX, Fetch, FetchKind};

pub(super) fn group_entity_fetches(mut fetches: Vec<Fetch>) -> Vec<Fetch> {
    let depths = depths(&fetches);
    let mut batches: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (index, fetch) in fetches.iter().enumerate() {
        let batchable = matches!(fetch.kind, FetchKind::Entity { .. })
            && !fetch
                .variables
                .iter()
                .any(|v| v.as_str().starts_with(BATCH_PREFIX));
        if batchable {
            batches
                .entry((fetch.subgraph, depths[index]))
                .or_default()
                .push(index);
        }
    }
    let mut batches: Vec<Vec<usize>> = batches.into_values().filter(|m| m.len() > 1).collect();
    // Numbered in plan order, so that the same plan always gets the same batches.
    batches.sort_unstable();
    for (batch, members) in batches.iter().enumerate() {
        let mut waits: Vec<usize> = members
            .iter()
            .flat_map(|&m| fetches[m].depends_on.iter().copied())
            .collect();
        waits.sort_unstable();
        waits.dedup();
        for &member in members {
            let fetch = &mut fetches[member];
            fetch.batch = Some(batch);
            fetch.batch_waits_for = waits
                .iter()
                .copied()
                .filter(|w| !fetch.depends_on.contains(w))
                .collect();
        }
    }
    fetches
}

/// Each fetch's depth: 0 for a fetch that waits for nothing, else one more than the deepest
/// fetch it waits for.
fn depths(fetches: &[Fetch]) -> Vec<usize> {
    fn depth(fetches: &[Fetch], index: usize, known: &mut [Option<usize>], guard: usize) -> usize {
        if let Some(depth) = known[index] {
            return depth;
        }
        // The planner never makes cycles; the guard only keeps a bug from recursing forever.
        let depth = if guard > fetches.len() {
            0
        } else {
            fetches[index]
                .depends_on
                .iter()
                .filter(|&&d| d < fetches.len())
                .map(|&d| depth(fetches, d, known, guard + 1) + 1)
                .max()
                .unwrap_or(0)
        };
        known[index] = Some(depth);
        depth
    }
    let mut known = vec![None; fetches.len()];
    (0..fetches.len())
        .map(|i| depth(fetches, i, &mut known, 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use apollo_compiler::Name;

    use super::*;
    use crate::pipeline::selection::SelectionSet;

    fn fetch(subgraph: usize, depends_on: Vec<usize>, entity: bool) -> Fetch {
        Fetch {
            subgraph,
            depends_on,
            kind: if entity {
                FetchKind::Entity {
                    paths: vec![vec![Name::new_unchecked("x")]],
                    type_name: Name::new_unchecked("Product"),
                    representation: SelectionSet::default(),
                    representation_type: None,
                }
            } else {
                FetchKind::Root
            },
            operation: String::new(),
            operation_json: String::new(),
            variables: Vec::new(),
            renames: false,
            selection: SelectionSet::default(),
            declarations: Vec::new(),
            entities_selection: String::new(),
            batch: None,
            batch_waits_for: Vec::new(),
        }
    }

    #[test]
    fn entity_fetches_to_one_subgraph_at_one_depth_form_a_batch() {
        // The benchmark's shape: two roots, then the reviews subgraph asked once under each.
        let plan = group_entity_fetches(vec![
            fetch(0, vec![], false),
            fetch(1, vec![], false),
            fetch(2, vec![0], true),
            fetch(2, vec![1], true),
            fetch(1, vec![2], true),
            fetch(3, vec![3], true),
        ]);
        assert_eq!(plan[2].batch, Some(0));
        assert_eq!(plan[3].batch, Some(0));
        assert_eq!(plan[2].batch_waits_for, [1]);
        assert_eq!(plan[3].batch_waits_for, [0]);
        // Alone at their depth and subgraph, and roots are never batched.
        assert!(
            plan.iter()
                .enumerate()
                .all(|(i, f)| (i == 2 || i == 3) == f.batch.is_some())
        );
    }

    #[test]
    fn a_fetch_and_what_it_waits_for_are_never_in_one_batch() {
        let plan = group_entity_fetches(vec![
            fetch(0, vec![], false),
            fetch(1, vec![0], true),
            fetch(1, vec![1], true),
            fetch(1, vec![0], true),
        ]);
        assert_eq!(plan[1].batch, plan[3].batch);
        assert!(plan[1].batch.is_some());
        assert_eq!(plan[2].batch, None);
        assert!(plan[1].batch_waits_for.is_empty());
    }

    #[test]
    fn a_fetch_using_a_variable_named_like_the_batch_ones_stays_alone() {
        let mut odd = fetch(1, vec![0], true);
        odd.variables = vec![Name::new_unchecked("_gw_batch_r0")];
        let plan =
            group_entity_fetches(vec![fetch(0, vec![], false), odd, fetch(1, vec![0], true)]);
        assert!(plan.iter().all(|f| f.batch.is_none()));
    }
}
