//! Execution: runs a query plan's fetches against the subgraphs and merges their answers into
//! one JSON tree. A fetch starts as soon as every fetch it depends on has been merged, so
//! independent fetches run concurrently. A failed fetch leaves its fields missing (the shaper
//! turns them into nulls) and adds an error naming the subgraph; it never fails the request.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::{Map, Value};

use crate::json::{Json, Object, Text};

use super::plan::{Fetch, FetchKind, QueryPlan, RENAMED_PREFIX};
use super::selection::{Selection, SelectionSet};
use crate::forwarded_headers::ForwardedHeaders;
use crate::json_text;
use crate::response::GraphQLError;
use crate::subgraph_client::{FetchError, SubgraphClient, SubgraphResponse};
use crate::supergraph::Supergraph;

pub struct ExecutionOutput {
    pub data: Json,
    pub errors: Vec<GraphQLError>,
}

pub struct ExecutionContext<'a> {
    pub supergraph: &'a Supergraph,
    pub client: &'a SubgraphClient,
    pub variables: &'a Map<String, Value>,
    /// The client's headers that go with every fetch.
    pub forwarded: &'a ForwardedHeaders,
}

/// Where the entities of one representation live in `data` (several objects may share one
/// representation, e.g. the same product reviewed twice: it is fetched once).
type Targets = Vec<Vec<Vec<Step>>>;

/// A step from the root of the merged data to an entity: cheap to copy (a response key is a
/// reference-counted name), because every entity of every batch gets its own path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(apollo_compiler::Name),
    Index(usize),
}

impl Step {
    pub fn to_json(&self) -> Value {
        match self {
            Step::Key(key) => Value::String(key.to_string()),
            Step::Index(i) => Value::from(*i),
        }
    }
}

/// Runs the plan. `root`, when given, is the answer to fetch 0 (a root fetch) obtained
/// elsewhere, e.g. a subscription event; it is merged first and fetch 0 is not sent.
pub async fn execute(
    plan: &QueryPlan,
    ctx: &ExecutionContext<'_>,
    root: Option<SubgraphResponse>,
) -> ExecutionOutput {
    let mut execution = Execution::new(plan, ctx, root);
    while execution.step(|_| true).await.is_some() {}
    execution.into_output()
}

type Running<'a> = Pin<
    Box<dyn Future<Output = (usize, Targets, Result<SubgraphResponse, FetchError>)> + Send + 'a>,
>;

/// A plan being executed, one finished fetch at a time: a query with `@defer` runs the
/// fetches its first payload needs, answers, and then runs the rest.
pub struct Execution<'a> {
    plan: &'a QueryPlan,
    ctx: &'a ExecutionContext<'a>,
    data: Json,
    errors: Vec<GraphQLError>,
    started: Vec<bool>,
    finished: Vec<bool>,
    running: FuturesUnordered<Running<'a>>,
    /// Reads may share an identical in-flight request; a mutation's fetches never do.
    shareable: bool,
}

impl<'a> Execution<'a> {
    pub fn new(
        plan: &'a QueryPlan,
        ctx: &'a ExecutionContext<'a>,
        root: Option<SubgraphResponse>,
    ) -> Self {
        let count = plan.fetches.len();
        let mut execution = Execution {
            plan,
            ctx,
            data: Json::Object(Object::new()),
            errors: Vec::new(),
            started: vec![false; count],
            finished: vec![false; count],
            running: FuturesUnordered::new(),
            shareable: plan.operation_type != apollo_compiler::ast::OperationType::Mutation,
        };
        if let (Some(response), Some(first)) = (root, plan.fetches.first()) {
            merge(
                first,
                response,
                Vec::new(),
                &mut execution.data,
                &mut execution.errors,
                ctx,
            );
            execution.started[0] = true;
            execution.finished[0] = true;
        }
        execution
    }

    /// Starts every fetch that `allowed` admits and whose dependencies are merged, waits for
    /// one to answer and merges it; returns its index, or `None` once no admitted fetch is
    /// left running. Dropping the future between steps loses nothing merged so far.
    pub async fn step(&mut self, allowed: impl Fn(usize) -> bool) -> Option<usize> {
        let plan = self.plan;
        let ctx = self.ctx;
        // Start everything that is ready; a fetch with nothing to send finishes at once, which
        // can make others ready, hence the loop.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (index, fetch) in plan.fetches.iter().enumerate() {
                if self.started[index]
                    || !allowed(index)
                    || !fetch
                        .depends_on
                        .iter()
                        .all(|&d| self.finished.get(d).copied().unwrap_or(true))
                {
                    continue;
                }
                self.started[index] = true;
                match prepare(fetch, &self.data, ctx) {
                    Some((body, targets)) => {
                        let shareable = self.shareable;
                        self.running.push(Box::pin(async move {
                            let result = ctx
                                .client
                                .fetch(fetch.subgraph, body, ctx.forwarded, shareable)
                                .await;
                            (index, targets, result)
                        }));
                    }
                    None => {
                        self.finished[index] = true;
                        progressed = true;
                    }
                }
            }
        }
        let (index, targets, result) = self.running.next().await?;
        let fetch = &plan.fetches[index];
        match result {
            Ok(response) => merge(
                fetch,
                response,
                targets,
                &mut self.data,
                &mut self.errors,
                ctx,
            ),
            Err(error) => self
                .errors
                .push(fetch_failed(ctx.client.name(fetch.subgraph), &error)),
        }
        self.finished[index] = true;
        Some(index)
    }

    pub fn is_finished(&self, index: usize) -> bool {
        self.finished.get(index).copied().unwrap_or(true)
    }

    pub fn data(&self) -> &Json {
        &self.data
    }

    /// Errors recorded since `from` (an earlier `error_count`).
    pub fn errors_since(&self, from: usize) -> &[GraphQLError] {
        self.errors.get(from..).unwrap_or(&[])
    }

    pub fn error_count(&self) -> usize {
        self.errors.len()
    }

    pub fn into_output(self) -> ExecutionOutput {
        ExecutionOutput {
            data: self.data,
            errors: self.errors,
        }
    }
}

fn fetch_failed(service: &str, error: &FetchError) -> GraphQLError {
    GraphQLError::new(format!("HTTP fetch failed from '{service}': {error}"))
        .with_code("SUBGRAPH_REQUEST_FAILED")
        .with_extension("service", Value::String(service.to_string()))
}

/// Builds the request body; for entity fetches also collects the representations and where
/// their answers go. Returns `None` when there is nothing to fetch.
fn prepare(fetch: &Fetch, data: &Json, ctx: &ExecutionContext<'_>) -> Option<(Vec<u8>, Targets)> {
    let mut targets: Targets = Vec::new();
    // The body is written directly: the operation's JSON text comes from the plan, and each
    // representation is written once as JSON text, which serves both for spotting repeats and
    // as the body's bytes.
    let mut representations: Vec<Vec<u8>> = Vec::new();
    if let FetchKind::Entity {
        paths,
        type_name,
        representation,
        representation_type,
    } = &fetch.kind
    {
        let mut found = Vec::new();
        for path in paths {
            collect_targets(data, path, &mut Vec::new(), &mut found);
        }
        // Keyed by text that subgraph data decides, so the hash must be keyed (no crafted
        // collisions), but SipHash's cost showed on this path: ahash is both.
        let mut seen: HashMap<Vec<u8>, usize, ahash::RandomState> = HashMap::default();
        let mut rep = Vec::new();
        for (target_path, object) in found {
            let Some(Json::String(typename)) = object.get("__typename") else {
                continue;
            };
            if !ctx.supergraph.is_subtype(type_name, typename.as_str()) {
                continue;
            }
            rep.clear();
            if write_representation(
                object,
                representation,
                representation_type.as_deref(),
                ctx.supergraph,
                &mut rep,
            )
            .is_none()
            {
                continue;
            }
            // Fields are written in the selection's order, so equal entities write equally.
            match seen.get(&rep) {
                Some(&i) => targets[i].push(target_path),
                None => {
                    seen.insert(rep.clone(), representations.len());
                    representations.push(std::mem::take(&mut rep));
                    targets.push(vec![target_path]);
                }
            }
        }
        if representations.is_empty() {
            return None;
        }
    }
    let size = fetch.operation_json.len() + representations.iter().map(Vec::len).sum::<usize>();
    let mut body = Vec::with_capacity(size + 64 + representations.len());
    body.extend_from_slice(b"{\"query\":");
    body.extend_from_slice(fetch.operation_json.as_bytes());
    body.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    for name in &fetch.variables {
        if let Some(value) = ctx.variables.get(name.as_str()) {
            if !first {
                body.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut body, name.as_str()).ok()?;
            body.push(b':');
            serde_json::to_writer(&mut body, value).ok()?;
        }
    }
    if !representations.is_empty() {
        if !first {
            body.push(b',');
        }
        body.extend_from_slice(b"\"representations\":[");
        for (i, rep) in representations.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(rep);
        }
        body.push(b']');
    }
    body.extend_from_slice(b"}}");
    Some((body, targets))
}

fn collect_targets<'v>(
    value: &'v Json,
    path: &[apollo_compiler::Name],
    current: &mut Vec<Step>,
    out: &mut Vec<(Vec<Step>, &'v Object)>,
) {
    match value {
        Json::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                current.push(Step::Index(i));
                collect_targets(item, path, current, out);
                current.pop();
            }
        }
        Json::Object(map) => match path.split_first() {
            None => out.push((current.clone(), map)),
            Some((key, rest)) => {
                if let Some(child) = map.get(key.as_str()) {
                    current.push(Step::Key(key.clone()));
                    collect_targets(child, rest, current, out);
                    current.pop();
                }
            }
        },
        _ => {}
    }
}

/// Writes the representation fields of an object as JSON text; `None` if a field is missing
/// (the entity cannot be identified, e.g. its parent fetch failed). `typename`, when given,
/// replaces the object's `__typename` (an interface object is asked for by the interface).
fn write_representation(
    object: &Object,
    selection: &SelectionSet,
    typename: Option<&str>,
    sg: &Supergraph,
    out: &mut Vec<u8>,
) -> Option<()> {
    out.push(b'{');
    let mut written: Vec<&str> = Vec::new();
    write_fields(object, selection, typename, sg, out, &mut written)?;
    if let Some(typename) = typename
        && !written.contains(&"__typename")
    {
        if !written.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"__typename\":");
        json_text::write_str(out, typename);
    }
    out.push(b'}');
    Some(())
}

fn write_fields<'s>(
    object: &Object,
    selection: &'s SelectionSet,
    typename: Option<&str>,
    sg: &Supergraph,
    out: &mut Vec<u8>,
    written: &mut Vec<&'s str>,
) -> Option<()> {
    for item in &selection.items {
        match item {
            Selection::Field(field) => {
                let value = object.get(field.response_key().as_str())?;
                // A field selected twice (directly and in a fragment) is written once.
                if written.contains(&field.name.as_str()) {
                    continue;
                }
                if !written.is_empty() {
                    out.push(b',');
                }
                written.push(field.name.as_str());
                json_text::write_str(out, &field.name);
                out.push(b':');
                match (typename, field.name.as_str()) {
                    (Some(typename), "__typename") => json_text::write_str(out, typename),
                    _ if field.selection_set.is_empty() => json_text::write_json(out, value),
                    _ => write_projected(value, &field.selection_set, sg, out)?,
                }
            }
            Selection::Fragment(fragment) => {
                let applies = match object.get("__typename") {
                    Some(Json::String(t)) => sg.is_subtype(&fragment.type_condition, t.as_str()),
                    _ => false,
                };
                if applies {
                    write_fields(object, &fragment.selection_set, typename, sg, out, written)?;
                }
            }
        }
    }
    Some(())
}

fn write_projected(
    value: &Json,
    selection: &SelectionSet,
    sg: &Supergraph,
    out: &mut Vec<u8>,
) -> Option<()> {
    match value {
        Json::Object(map) => {
            out.push(b'{');
            write_fields(map, selection, None, sg, out, &mut Vec::new())?;
            out.push(b'}');
        }
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_projected(item, selection, sg, out)?;
            }
            out.push(b']');
        }
        other => json_text::write_json(out, other),
    }
    Some(())
}

fn merge(
    fetch: &Fetch,
    response: SubgraphResponse,
    targets: Targets,
    data: &mut Json,
    errors: &mut Vec<GraphQLError>,
    ctx: &ExecutionContext<'_>,
) {
    let service = ctx.client.name(fetch.subgraph);
    match &fetch.kind {
        FetchKind::Root => {
            if let Some(mut result) = response.data
                && result.is_object()
            {
                if fetch.renames {
                    unalias(&mut result);
                }
                data.merge(result);
            }
            for error in response.errors {
                errors.push(subgraph_error(error, service, |path| Some(path.to_vec())));
            }
        }
        FetchKind::Entity {
            representation_type,
            ..
        } => {
            let mut entities = match response.data {
                Some(Json::Object(mut map)) => match map.remove("_entities") {
                    Some(Json::Array(entities)) => entities,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            if representation_type.is_some() {
                // An interface object answers with the interface's name; the object's
                // concrete `__typename` (or the one still to be resolved) must stay.
                for entity in &mut entities {
                    if let Json::Object(map) = entity {
                        map.remove("__typename");
                    }
                }
            }
            for error in response.errors {
                for rebased in rebase_entity_error(error, service, &entities, &targets) {
                    errors.push(rebased);
                }
            }
            for (mut entity, paths) in entities.into_iter().zip(&targets) {
                if !entity.is_object() {
                    continue;
                }
                if fetch.renames {
                    unalias(&mut entity);
                }
                // Most entities have one place in the response: move it there, clone only
                // for the others.
                if let Some((last, others)) = paths.split_last() {
                    for path in others {
                        if let Some(target) = value_at_mut(data, path) {
                            target.merge(entity.clone());
                        }
                    }
                    if let Some(target) = value_at_mut(data, last) {
                        target.merge(entity);
                    }
                }
            }
        }
    }
}

/// `["_entities", i, ...rest]` points into the subgraph's answer: rebase it onto where entity
/// `i` sits in the client's response. Some subgraphs (async-graphql 7) leave the index out; then
/// the error is attached to every entity that came back null at `rest`, which is where the
/// failure must have happened.
fn rebase_entity_error(
    error: Value,
    service: &str,
    entities: &[Json],
    targets: &Targets,
) -> Vec<GraphQLError> {
    let path = match &error {
        Value::Object(map) => match map.get("path") {
            Some(Value::Array(path)) => path.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let rebase_onto = |i: usize, rest: &[Value]| -> Option<Vec<Value>> {
        let base = targets.get(i)?.first()?;
        Some(
            base.iter()
                .map(Step::to_json)
                .chain(rest.iter().cloned())
                .collect(),
        )
    };
    match path.as_slice() {
        [Value::String(root), Value::Number(i), rest @ ..] if root == "_entities" => {
            let index = i.as_u64().and_then(|i| usize::try_from(i).ok());
            vec![subgraph_error(error, service, |_| {
                index.and_then(|i| rebase_onto(i, rest))
            })]
        }
        [Value::String(root), rest @ ..] if root == "_entities" => {
            let failed: Vec<usize> = (0..targets.len())
                .filter(|&i| match entities.get(i) {
                    None | Some(Json::Null) => true,
                    Some(entity) => value_at(entity, rest).is_none_or(Json::is_null),
                })
                .collect();
            if failed.is_empty() {
                return vec![subgraph_error(error, service, |_| None)];
            }
            failed
                .into_iter()
                .map(|i| subgraph_error(error.clone(), service, |_| rebase_onto(i, rest)))
                .collect()
        }
        _ => vec![subgraph_error(error, service, |_| None)],
    }
}

fn value_at<'v>(mut value: &'v Json, path: &[Value]) -> Option<&'v Json> {
    for segment in path {
        value = match (value, segment) {
            (Json::Object(map), Value::String(key)) => map.get(key)?,
            (Json::Array(items), Value::Number(i)) => {
                items.get(usize::try_from(i.as_u64()?).ok()?)?
            }
            _ => return None,
        };
    }
    Some(value)
}

/// A subgraph error about a root field: its path already matches the client's response.
pub(crate) fn root_error(error: Value, service: &str) -> GraphQLError {
    subgraph_error(error, service, |path| Some(path.to_vec()))
}

fn subgraph_error(
    error: Value,
    service: &str,
    rebase: impl Fn(&[Value]) -> Option<Vec<Value>>,
) -> GraphQLError {
    let Value::Object(mut map) = error else {
        return GraphQLError::new(format!("subgraph '{service}' returned an invalid error"));
    };
    let message = match map.remove("message") {
        Some(Value::String(m)) => m,
        _ => format!("subgraph '{service}' returned an error without a message"),
    };
    let path = match map.remove("path") {
        Some(Value::Array(path)) => rebase(&path),
        _ => None,
    };
    let mut extensions = match map.remove("extensions") {
        Some(Value::Object(ext)) => ext,
        _ => Map::new(),
    };
    extensions
        .entry("service")
        .or_insert_with(|| Value::String(service.to_string()));
    GraphQLError {
        message,
        // Subgraph locations point into the subgraph operation, which the client never saw.
        locations: Vec::new(),
        path,
        extensions,
    }
}

/// The value at `path` in the merged data, if there is one.
pub fn value_at_steps<'v>(mut value: &'v Json, path: &[Step]) -> Option<&'v Json> {
    for step in path {
        value = match (value, step) {
            (Json::Object(map), Step::Key(key)) => map.get(key.as_str())?,
            (Json::Array(items), Step::Index(i)) => items.get(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

fn value_at_mut<'v>(mut value: &'v mut Json, path: &[Step]) -> Option<&'v mut Json> {
    for step in path {
        value = match (value, step) {
            (Json::Object(map), Step::Key(key)) => map.get_mut(key.as_str())?,
            (Json::Array(items), Step::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Renames the planner's type-disambiguating aliases back to the client's response keys.
fn unalias(value: &mut Json) {
    match value {
        Json::Object(map) => {
            let renamed: Vec<Text> = map
                .keys()
                .filter(|k| k.as_bytes().starts_with(RENAMED_PREFIX.as_bytes()))
                .cloned()
                .collect();
            for key in renamed {
                if let Some(v) = map.remove(key.as_str()) {
                    let client_key = &key.as_str()[RENAMED_PREFIX.len()..];
                    // The same field may also have been selected unaliased (as a key).
                    match map.get_mut(client_key) {
                        Some(existing) => existing.merge(v),
                        None => map.insert(Text::new(client_key), v),
                    }
                }
            }
            map.iter_mut().for_each(|(_, v)| unalias(v));
        }
        Json::Array(items) => items.iter_mut().for_each(unalias),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn targets() -> Targets {
        let top = || Step::Key(apollo_compiler::name!("topProducts"));
        vec![
            vec![vec![top(), Step::Index(0)]],
            vec![vec![top(), Step::Index(1)], vec![top(), Step::Index(2)]],
        ]
    }

    #[test]
    fn entity_error_with_index_is_rebased() {
        let error = json!({ "message": "boom", "path": ["_entities", 1, "reviews", 0, "body"] });
        let rebased = rebase_entity_error(error, "reviews", &[], &targets());
        assert_eq!(rebased.len(), 1);
        assert_eq!(
            rebased[0].path,
            Some(vec![
                json!("topProducts"),
                json!(1),
                json!("reviews"),
                json!(0),
                json!("body")
            ])
        );
        assert_eq!(rebased[0].extensions["service"], "reviews");
    }

    #[test]
    fn entity_error_without_index_goes_to_the_null_entities() {
        let error = json!({ "message": "boom", "path": ["_entities", "summary"] });
        let entities = [Json::from(json!({ "summary": "ok" })), Json::Null];
        let rebased = rebase_entity_error(error, "reviews", &entities, &targets());
        assert_eq!(rebased.len(), 1);
        assert_eq!(
            rebased[0].path,
            Some(vec![json!("topProducts"), json!(1), json!("summary")])
        );
    }

    #[test]
    fn renamed_fields_get_their_client_keys_back() {
        let mut value = Json::from(json!({ "accounts": [
            { "_gw_typed_id": "u1", "id": "u1", "similar": [{ "_gw_typed_id": "a1" }] }
        ]}));
        unalias(&mut value);
        assert_eq!(
            value,
            Json::from(json!({ "accounts": [{ "id": "u1", "similar": [{ "id": "a1" }] }] }))
        );
    }
}
