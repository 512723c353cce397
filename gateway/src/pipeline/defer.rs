//! Incremental delivery of queries with `@defer`, in the format Apollo Client and Apollo
//! Router speak (`deferSpec=20220824`: a first payload `{"data", "hasNext": true}`, then
//! payloads `{"incremental": [{"data", "path", "label"?, "errors"?}], "hasNext"}`) or in
//! graphql-js 17's (`incrementalSpec=v0.2`: the first payload lists what is `pending`, by id
//! and path; later ones carry `incremental: [{"id", "data"}]` and `completed: [{"id"}]`).
//!
//! The query is planned whole, deferred fragments included, so it shares its plan with the
//! same query without `@defer`. What changes is the order of work: the fetches the first
//! payload needs run first (a fetch is needed when it writes a field the non-deferred
//! selection shows, or a needed fetch waits for it); the first payload goes out; then the
//! rest run, and each deferred fragment is sent as soon as every fetch writing into it has
//! answered. A deferred field served by the same fetch as the first payload's fields (same
//! subgraph, same request) comes in the first increment, right after.

use apollo_compiler::Name;
use serde_json::Value;

use super::execute::{Execution, Step, value_at_steps};
use super::normalize::Deferred;
use super::plan::{FetchKind, KEY_ALIAS_PREFIX, QueryPlan, RENAMED_PREFIX};
use super::selection::{Selection, SelectionSet};
use super::shape;
use crate::json::Json;
use crate::response::GraphQLError;
use crate::supergraph::Supergraph;

/// Which fetches of `plan` write into `selection` placed at response path `at`, together
/// with every fetch those wait for. Errs on the side of "needed": a fetch counted needed
/// only makes a payload wait for it; a fetch missed would leave its fields out.
pub fn needs(plan: &QueryPlan, at: &[Name], selection: &SelectionSet) -> Vec<bool> {
    let mut needed: Vec<bool> = plan
        .fetches
        .iter()
        .map(|fetch| {
            let root = [Vec::new()];
            let locations: &[Vec<Name>] = match &fetch.kind {
                FetchKind::Root => &root,
                FetchKind::Entity { paths, .. } => paths,
            };
            locations
                .iter()
                .any(|location| writes_into(&fetch.selection, location, at, selection))
        })
        .collect();
    // What a needed fetch waits for is needed too.
    let mut pending: Vec<usize> = (0..needed.len()).filter(|&i| needed[i]).collect();
    while let Some(index) = pending.pop() {
        for &dependency in &plan.fetches[index].depends_on {
            if let Some(slot) = needed.get_mut(dependency)
                && !*slot
            {
                *slot = true;
                pending.push(dependency);
            }
        }
    }
    needed
}

/// Whether a fetch answering `written` at `location` writes a field of `selection` at `at`.
fn writes_into(
    written: &SelectionSet,
    location: &[Name],
    at: &[Name],
    selection: &SelectionSet,
) -> bool {
    if let Some(below) = location.strip_prefix(at) {
        // The fetch answers inside the selection: does it answer a field selected there?
        let targets = sets_at(vec![selection], below);
        return !targets.is_empty() && keys_overlap(written, &targets);
    }
    if let Some(rest) = at.strip_prefix(location)
        && let Some(next) = rest.first()
    {
        // The fetch answers above the selection: it matters if it writes the way there.
        let mut found = false;
        each_field(written, &mut |field| {
            found |= landing_key(field.response_key()) == Some(next.as_str());
        });
        return found;
    }
    false
}

/// The response key a fetch's field lands under once merged; `None` for the planner's own
/// fields (keys under a private alias, `__typename`), which no client selection shows.
fn landing_key(key: &str) -> Option<&str> {
    if key == "__typename" || key.starts_with(KEY_ALIAS_PREFIX) {
        return None;
    }
    Some(key.strip_prefix(RENAMED_PREFIX).unwrap_or(key))
}

/// Calls `visit` with every field of `set`, fragments looked through.
fn each_field<'s>(set: &'s SelectionSet, visit: &mut impl FnMut(&'s super::selection::Field)) {
    for item in &set.items {
        match item {
            Selection::Field(field) => visit(field),
            Selection::Fragment(fragment) => each_field(&fragment.selection_set, visit),
        }
    }
}

/// The selection sets under `path` (response keys) from `sets`, whatever the type
/// conditions on the way.
fn sets_at<'s>(sets: Vec<&'s SelectionSet>, path: &[Name]) -> Vec<&'s SelectionSet> {
    let mut current = sets;
    for key in path {
        let mut next = Vec::new();
        for set in &current {
            each_field(set, &mut |field| {
                if field.response_key() == key {
                    next.push(&field.selection_set);
                }
            });
        }
        if next.is_empty() {
            return next;
        }
        current = next;
    }
    current
}

fn keys_overlap(written: &SelectionSet, targets: &[&SelectionSet]) -> bool {
    let mut found = false;
    each_field(written, &mut |field| {
        if found {
            return;
        }
        if let Some(key) = landing_key(field.response_key()) {
            for target in targets {
                each_field(target, &mut |wanted| {
                    found |= wanted.response_key().as_str() == key;
                });
            }
        }
    });
    found
}

/// The incremental delivery format a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `deferSpec=20220824`: Apollo Client's default and Apollo Router's; each increment
    /// carries its `path` and `label`.
    Defer20220824,
    /// `incrementalSpec=v0.2`: graphql-js 17 (alpha 9 on): the first payload announces each
    /// deferred fragment as `pending` with an id, increments name that id, `completed` ends
    /// it.
    GraphQL17Alpha9,
}

/// One deferred fragment at one object of the response: what a client waits for.
struct Pending {
    fragment: usize,
    id: usize,
    position: Vec<Step>,
}

/// What a deferred query's execution has to say after its data: the payloads, each as JSON
/// text.
pub struct Payloads<'a> {
    supergraph: &'a Supergraph,
    deferred: &'a Deferred,
    format: Format,
    /// Per fragment, the fetches it waits for.
    needs: Vec<Vec<bool>>,
    sent: Vec<bool>,
    pending: Vec<Pending>,
    /// Errors of the execution already sent.
    errors_sent: usize,
}

impl<'a> Payloads<'a> {
    /// `shown` is the first payload's data: a position nulled there gets nothing. `data` is
    /// what the execution merged so far (the objects' runtime types).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        supergraph: &'a Supergraph,
        plan: &QueryPlan,
        deferred: &'a Deferred,
        format: Format,
        initial: &[bool],
        shown: &[u8],
        data: &Json,
        errors_sent: usize,
    ) -> Self {
        let needs = deferred
            .fragments
            .iter()
            .map(|fragment| {
                let mut needs = needs(plan, &fragment.path, &fragment.selection);
                // What the first payload needed has run.
                for (need, done) in needs.iter_mut().zip(initial) {
                    *need &= !done;
                }
                needs
            })
            .collect();
        let shown: Value = serde_json::from_slice(shown).unwrap_or(Value::Null);
        let mut pending = Vec::new();
        let mut sent = vec![false; deferred.fragments.len()];
        for (k, fragment) in deferred.fragments.iter().enumerate() {
            let mut positions = Vec::new();
            positions_at(&shown, &fragment.path, &mut Vec::new(), &mut positions);
            let condition = fragment.selection.items.iter().find_map(|item| match item {
                Selection::Fragment(f) => Some(&f.type_condition),
                Selection::Field(_) => None,
            });
            for position in positions {
                let Some(Json::Object(object)) = value_at_steps(data, &position) else {
                    continue;
                };
                let runtime = match object.get("__typename") {
                    Some(Json::String(t)) => t.as_str(),
                    _ => fragment.parent_type.as_str(),
                };
                if condition.is_none_or(|c| supergraph.is_subtype(c, runtime)) {
                    let id = pending.len();
                    pending.push(Pending {
                        fragment: k,
                        id,
                        position,
                    });
                }
            }
            // A fragment that applies nowhere has nothing to send.
            sent[k] = !pending.iter().any(|p| p.fragment == k);
        }
        Payloads {
            supergraph,
            deferred,
            format,
            needs,
            sent,
            pending,
            errors_sent,
        }
    }

    pub fn is_done(&self) -> bool {
        self.sent.iter().all(|&sent| sent)
    }

    /// The first payload: `{"data", "errors"?, "pending"?, "hasNext"}`.
    pub fn initial(&self, data: &[u8], errors: &[GraphQLError]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        out.extend_from_slice(b"{\"data\":");
        out.extend_from_slice(data);
        if !errors.is_empty() {
            out.extend_from_slice(b",\"errors\":");
            write_value(&mut out, errors);
        }
        if self.format == Format::GraphQL17Alpha9 && !self.pending.is_empty() {
            out.extend_from_slice(b",\"pending\":[");
            for (i, pending) in self.pending.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"id\":");
                write_value(&mut out, &pending.id.to_string());
                out.extend_from_slice(b",\"path\":");
                write_value(&mut out, &json_path(&pending.position));
                if let Some(label) = &self.deferred.fragments[pending.fragment].label {
                    out.extend_from_slice(b",\"label\":");
                    write_value(&mut out, label);
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"hasNext\":");
        out.extend_from_slice(if self.is_done() { b"false" } else { b"true" });
        out.push(b'}');
        out
    }

    /// The next subsequent payload, if a fragment not yet sent has all its data (or
    /// `everything_ran`: no fetch is left to wait for).
    pub fn next(&mut self, execution: &Execution<'_>, everything_ran: bool) -> Option<Vec<u8>> {
        let ready: Vec<usize> = (0..self.sent.len())
            .filter(|&k| {
                !self.sent[k]
                    && (everything_ran
                        || self.needs[k]
                            .iter()
                            .enumerate()
                            .all(|(i, &need)| !need || execution.is_finished(i)))
            })
            .collect();
        if ready.is_empty() {
            return None;
        }
        let fetch_errors = execution.errors_since(self.errors_sent).to_vec();
        self.errors_sent = execution.error_count();
        // A subgraph's error already explains a null; the shaper does not add its own.
        let report_nulls = fetch_errors.is_empty();
        let mut entries = Vec::new();
        for &k in &ready {
            self.sent[k] = true;
        }
        for pending in self.pending.iter().filter(|p| ready.contains(&p.fragment)) {
            entries.push(self.entry(pending, execution.data(), report_nulls));
        }
        // A subgraph's error goes with the increment it explains; one no increment claims
        // goes with the first (every ready fragment has one: see `new`).
        for error in fetch_errors {
            let owner = error.path.as_ref().and_then(|path| {
                entries
                    .iter()
                    .position(|entry: &Entry| path.starts_with(&entry.path))
            });
            if let Some(entry) = owner.or((!entries.is_empty()).then_some(0)) {
                entries[entry].errors.push(error);
            }
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"hasNext\":");
        out.extend_from_slice(if self.is_done() { b"false" } else { b"true" });
        match self.format {
            Format::Defer20220824 => {
                write_list(&mut out, "incremental", &entries, |out, entry| {
                    entry.write_2022(out)
                });
            }
            Format::GraphQL17Alpha9 => {
                let with_data: Vec<&Entry> = entries.iter().filter(|e| e.data.is_some()).collect();
                write_list(&mut out, "incremental", &with_data, |out, entry| {
                    entry.write_alpha9_data(out)
                });
                write_list(&mut out, "completed", &entries, |out, entry| {
                    entry.write_alpha9_completed(out)
                });
            }
        }
        out.push(b'}');
        Some(out)
    }

    /// The fragment's data at the pending position.
    fn entry(&self, pending: &Pending, data: &Json, report_nulls: bool) -> Entry {
        let fragment = &self.deferred.fragments[pending.fragment];
        let mut errors = Vec::new();
        let shaped = match value_at_steps(data, &pending.position) {
            Some(Json::Object(object)) => {
                let steps: Vec<shape::Step<'_>> = pending
                    .position
                    .iter()
                    .map(|step| match step {
                        Step::Key(key) => shape::Step::Key(key),
                        Step::Index(i) => shape::Step::Index(*i),
                    })
                    .collect();
                shape::shape_deferred(
                    self.supergraph,
                    fragment.parent_type.as_str(),
                    &fragment.selection,
                    object,
                    steps,
                    report_nulls,
                    &mut errors,
                )
            }
            _ => None,
        };
        Entry {
            id: pending.id,
            data: shaped,
            path: json_path(&pending.position),
            label: fragment.label.clone(),
            errors,
        }
    }
}

/// One deferred fragment's delivery at one position.
struct Entry {
    id: usize,
    /// `None`: the fragment's data is null (a non-null field in it was).
    data: Option<Vec<u8>>,
    path: Vec<Value>,
    label: Option<String>,
    errors: Vec<GraphQLError>,
}

impl Entry {
    /// `{"data", "path", "label"?, "errors"?}`
    fn write_2022(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"data\":");
        match &self.data {
            Some(text) => out.extend_from_slice(text),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"path\":");
        write_value(out, &self.path);
        if let Some(label) = &self.label {
            out.extend_from_slice(b",\"label\":");
            write_value(out, label);
        }
        self.write_errors(out);
        out.push(b'}');
    }

    /// `{"id", "data", "errors"?}`
    fn write_alpha9_data(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        write_value(out, &self.id.to_string());
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(self.data.as_deref().unwrap_or(b"null"));
        self.write_errors(out);
        out.push(b'}');
    }

    /// `{"id", "errors"?}`: errors here only when the fragment has no data.
    fn write_alpha9_completed(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        write_value(out, &self.id.to_string());
        if self.data.is_none() {
            self.write_errors(out);
        }
        out.push(b'}');
    }

    fn write_errors(&self, out: &mut Vec<u8>) {
        if !self.errors.is_empty() {
            out.extend_from_slice(b",\"errors\":");
            write_value(out, &self.errors);
        }
    }
}

fn write_list<T>(out: &mut Vec<u8>, key: &str, items: &[T], write: impl Fn(&mut Vec<u8>, &T)) {
    if items.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn json_path(position: &[Step]) -> Vec<Value> {
    position.iter().map(Step::to_json).collect()
}

fn write_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        // Strings, numbers and errors always serialise; stay valid JSON if one ever does not.
        out.extend_from_slice(b"null");
    }
}

/// The positions of the objects at `path` in the shaped response, lists walked through.
fn positions_at(value: &Value, path: &[Name], current: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                current.push(Step::Index(i));
                positions_at(item, path, current, out);
                current.pop();
            }
        }
        Value::Object(map) => match path.split_first() {
            None => out.push(current.clone()),
            Some((key, rest)) => {
                if let Some(child) = map.get(key.as_str()) {
                    current.push(Step::Key(key.clone()));
                    positions_at(child, rest, current, out);
                    current.pop();
                }
            }
        },
        _ => {}
    }
}
