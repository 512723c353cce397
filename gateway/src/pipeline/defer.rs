//! Incremental delivery of queries with `@defer`, in the format Apollo Client and Apollo
//! Router speak (`deferSpec=20220824`): a first payload `{"data", "hasNext": true}`, then
//! payloads `{"incremental": [{"data", "path", "label"?, "errors"?}], "hasNext"}`.
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

use super::execute::Execution;
use super::json::Json;
use super::normalize::{Deferred, DeferredFragment};
use super::plan::{FetchKind, KEY_ALIAS_PREFIX, QueryPlan, RENAMED_PREFIX};
use super::selection::{Selection, SelectionSet};
use super::shape::{self, Step};
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

/// What a deferred query's execution has to say: the payloads, each as JSON text.
pub struct Payloads<'a> {
    supergraph: &'a Supergraph,
    deferred: &'a Deferred,
    /// Per fragment, the fetches it waits for.
    needs: Vec<Vec<bool>>,
    sent: Vec<bool>,
    /// The first payload's data, read back: which positions a fragment fills (a position
    /// nulled there gets nothing).
    shown: Value,
    /// Errors of the execution already sent.
    errors_sent: usize,
}

impl<'a> Payloads<'a> {
    pub fn new(
        supergraph: &'a Supergraph,
        plan: &QueryPlan,
        deferred: &'a Deferred,
        initial: &[bool],
        shown: &[u8],
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
        Payloads {
            supergraph,
            deferred,
            needs,
            sent: vec![false; deferred.fragments.len()],
            shown: serde_json::from_slice(shown).unwrap_or(Value::Null),
            errors_sent,
        }
    }

    pub fn is_done(&self) -> bool {
        self.sent.iter().all(|&sent| sent)
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
        let mut fetch_errors = execution.errors_since(self.errors_sent).to_vec();
        self.errors_sent = execution.error_count();
        let mut items = Vec::new();
        for k in ready {
            self.sent[k] = true;
            let fragment = &self.deferred.fragments[k];
            // A subgraph's error already explains a null; the shaper does not add its own.
            let report_nulls = fetch_errors.is_empty();
            self.increments(fragment, execution.data(), report_nulls, &mut items);
        }
        // A subgraph's error goes with the increment it explains; one no increment claims
        // goes with the first.
        for error in fetch_errors.drain(..) {
            let owner = error.path.as_ref().and_then(|path| {
                items
                    .iter()
                    .position(|item: &Increment| path.starts_with(&item.path))
            });
            match (owner, items.first_mut()) {
                (Some(i), _) => items[i].errors.push(error),
                (None, Some(first)) => first.errors.push(error),
                (None, None) => items.push(Increment {
                    data: None,
                    path: Vec::new(),
                    label: None,
                    errors: vec![error],
                }),
            }
        }
        let has_next = !self.is_done();
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"hasNext\":");
        out.extend_from_slice(if has_next { b"true" } else { b"false" });
        if !items.is_empty() {
            out.extend_from_slice(b",\"incremental\":[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                item.write(&mut out);
            }
            out.push(b']');
        }
        out.push(b'}');
        Some(out)
    }

    /// One increment per object the fragment applies to, in response order.
    fn increments(
        &self,
        fragment: &'a DeferredFragment,
        data: &Json,
        report_nulls: bool,
        out: &mut Vec<Increment>,
    ) {
        let mut positions = Vec::new();
        positions_at(&self.shown, &fragment.path, &mut Vec::new(), &mut positions);
        let condition = fragment.selection.items.iter().find_map(|item| match item {
            Selection::Fragment(f) => Some(&f.type_condition),
            Selection::Field(_) => None,
        });
        for position in positions {
            let Some(Json::Object(object)) = json_at(data, &position) else {
                continue;
            };
            let runtime = match object.get("__typename") {
                Some(Json::String(t)) => t.as_str(),
                _ => fragment.parent_type.as_str(),
            };
            if let Some(condition) = condition
                && !self.supergraph.is_subtype(condition, runtime)
            {
                continue;
            }
            let steps: Vec<Step<'_>> = position
                .iter()
                .map(|step| match step {
                    Position::Key(key) => Step::Key(key),
                    Position::Index(i) => Step::Index(*i),
                })
                .collect();
            let mut errors = Vec::new();
            let data = shape::shape_deferred(
                self.supergraph,
                fragment.parent_type.as_str(),
                &fragment.selection,
                object,
                steps,
                report_nulls,
                &mut errors,
            );
            out.push(Increment {
                data: Some(data),
                path: position.iter().map(Position::to_json).collect(),
                label: fragment.label.clone(),
                errors,
            });
        }
    }
}

/// One entry of `incremental`.
struct Increment {
    /// `Some(None)`: the fragment's data is null (a non-null field in it was).
    data: Option<Option<Vec<u8>>>,
    path: Vec<Value>,
    label: Option<String>,
    errors: Vec<GraphQLError>,
}

impl Increment {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        if let Some(data) = &self.data {
            key(out, "data");
            match data {
                Some(text) => out.extend_from_slice(text),
                None => out.extend_from_slice(b"null"),
            }
        }
        key(out, "path");
        write_value(out, &self.path);
        if let Some(label) = &self.label {
            key(out, "label");
            write_value(out, label);
        }
        if !self.errors.is_empty() {
            key(out, "errors");
            write_value(out, &self.errors);
        }
        out.push(b'}');
    }
}

fn write_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        // Strings, numbers and errors always serialise; stay valid JSON if one ever does not.
        out.extend_from_slice(b"null");
    }
}

/// The first payload: `{"data", "errors"?, "hasNext": true}`.
pub fn initial_payload(data: &[u8], errors: &[GraphQLError]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    out.extend_from_slice(b"{\"data\":");
    out.extend_from_slice(data);
    if !errors.is_empty() {
        out.extend_from_slice(b",\"errors\":");
        write_value(&mut out, errors);
    }
    out.extend_from_slice(b",\"hasNext\":true}");
    out
}

/// A step of a position in the response.
#[derive(Debug, Clone)]
enum Position {
    Key(Name),
    Index(usize),
}

impl Position {
    fn to_json(&self) -> Value {
        match self {
            Position::Key(key) => Value::String(key.to_string()),
            Position::Index(i) => Value::from(*i),
        }
    }
}

/// The positions of the objects at `path` in the shaped response, lists walked through.
fn positions_at(
    value: &Value,
    path: &[Name],
    current: &mut Vec<Position>,
    out: &mut Vec<Vec<Position>>,
) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                current.push(Position::Index(i));
                positions_at(item, path, current, out);
                current.pop();
            }
        }
        Value::Object(map) => match path.split_first() {
            None => out.push(current.clone()),
            Some((key, rest)) => {
                if let Some(child) = map.get(key.as_str()) {
                    current.push(Position::Key(key.clone()));
                    positions_at(child, rest, current, out);
                    current.pop();
                }
            }
        },
        _ => {}
    }
}

fn json_at<'v>(mut value: &'v Json, position: &[Position]) -> Option<&'v Json> {
    for step in position {
        value = match (value, step) {
            (Json::Object(map), Position::Key(key)) => map.get(key.as_str())?,
            (Json::Array(items), Position::Index(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}
