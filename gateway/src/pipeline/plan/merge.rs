//! Merging identical fetches once the plan is complete.

use super::{Fetch, FetchKind};

/// Entity fetches that ask the same subgraph the same thing, differing only in where their
/// entities sit (the same product type reached through two different fields, say), become
/// one fetch with several paths: one request instead of several, and an entity found in two
/// places is sent once. The merged fetch waits for what either waited for, so a fetch that
/// could start early may start a little later; in exchange the subgraphs get fewer, larger
/// requests, which is what costs them (and the gateway) least under load. Two fetches are
/// never merged when one leads to the other, which would make the merged fetch wait for
/// itself. Merging can make dependents identical in turn, hence the loop.
pub(super) fn merge_identical_fetches(mut fetches: Vec<Fetch>) -> Vec<Fetch> {
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

#[cfg(test)]
mod tests {
    use apollo_compiler::Name;

    use super::*;
    use crate::pipeline::selection::SelectionSet;

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
            declarations: Vec::new(),
            entities_selection: String::new(),
            batch: None,
            batch_waits_for: Vec::new(),
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
