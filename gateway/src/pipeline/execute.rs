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

use super::plan::{BATCH_PREFIX, Fetch, FetchKind, QueryPlan, RENAMED_PREFIX};
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

/// A request in flight: the fetches it answers (one, or a batch's members that started
/// together) with where each one's entities go.
type Running<'a> = Pin<
    Box<
        dyn Future<Output = (Vec<(usize, Targets)>, Result<SubgraphResponse, FetchError>)>
            + Send
            + 'a,
    >,
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
    /// one request to answer and merges it; returns the index of a fetch it answered, or
    /// `None` once no admitted fetch is left running. Dropping the future between steps loses
    /// nothing merged so far.
    pub async fn step(&mut self, allowed: impl Fn(usize) -> bool) -> Option<usize> {
        let plan = self.plan;
        let ctx = self.ctx;
        // Start everything that is ready; a fetch with nothing to send finishes at once, which
        // can make others ready, hence the loop.
        let mut progressed = true;
        while progressed {
            progressed = false;
            // Members of one batch that start now, with their representations.
            let mut batches: Vec<(usize, Vec<ReadyFetch>)> = Vec::new();
            for (index, fetch) in plan.fetches.iter().enumerate() {
                if self.started[index] || !allowed(index) || !self.ready(fetch, &allowed) {
                    continue;
                }
                self.started[index] = true;
                let Some(prepared) = prepare(index, fetch, &self.data, ctx) else {
                    self.finished[index] = true;
                    progressed = true;
                    continue;
                };
                match fetch.batch {
                    Some(batch) => match batches.iter_mut().find(|(b, _)| *b == batch) {
                        Some((_, members)) => members.push(prepared),
                        None => batches.push((batch, vec![prepared])),
                    },
                    None => self.send(vec![prepared]),
                }
            }
            for (_, members) in batches {
                self.send(members);
            }
        }
        let (answered, result) = self.running.next().await?;
        let first = answered.first().map(|(index, _)| *index);
        match result {
            Ok(response) if answered.len() == 1 => {
                if let Some((index, targets)) = answered.into_iter().next() {
                    merge(
                        &plan.fetches[index],
                        response,
                        targets,
                        &mut self.data,
                        &mut self.errors,
                        ctx,
                    );
                    self.finished[index] = true;
                }
            }
            Ok(response) => {
                let parts = split_batch_response(response, answered.len());
                for ((index, targets), part) in answered.into_iter().zip(parts) {
                    merge(
                        &plan.fetches[index],
                        part,
                        targets,
                        &mut self.data,
                        &mut self.errors,
                        ctx,
                    );
                    self.finished[index] = true;
                }
            }
            Err(error) => {
                // One request failed: one error, whatever number of fetches it carried.
                if let Some(index) = first {
                    let service = ctx.client.name(plan.fetches[index].subgraph);
                    self.errors.push(fetch_failed(service, &error));
                }
                for (index, _) in answered {
                    self.finished[index] = true;
                }
            }
        }
        first
    }

    /// Whether everything `fetch` waits for has been merged: its dependencies, and what the
    /// rest of its batch waits for among the fetches allowed to run now.
    fn ready(&self, fetch: &Fetch, allowed: &impl Fn(usize) -> bool) -> bool {
        let done = |d: usize| self.finished.get(d).copied().unwrap_or(true);
        fetch.depends_on.iter().all(|&d| done(d))
            && fetch
                .batch_waits_for
                .iter()
                .all(|&d| done(d) || !allowed(d))
    }

    /// Sends one request for `members`: one fetch as its own operation, several as one
    /// operation with an aliased `_entities` field each.
    fn send(&mut self, members: Vec<ReadyFetch>) {
        let ctx = self.ctx;
        let fetch = &self.plan.fetches[members[0].index];
        let body = match members.as_slice() {
            [one] => single_body(fetch, &one.representations, ctx),
            _ => batch_body(self.plan, &members, ctx),
        };
        let answered: Vec<(usize, Targets)> =
            members.into_iter().map(|m| (m.index, m.targets)).collect();
        let Some(body) = body else {
            // Nothing a variable could not be written for reaches a subgraph.
            for (index, _) in answered {
                self.finished[index] = true;
            }
            return;
        };
        let shareable = self.shareable;
        self.running.push(Box::pin(async move {
            let result = ctx
                .client
                .fetch(fetch.subgraph, body, ctx.forwarded, shareable)
                .await;
            (answered, result)
        }));
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

/// A fetch about to be sent: its representations (none for a root fetch), each written once
/// as JSON text, and where their answers go.
struct ReadyFetch {
    index: usize,
    representations: Vec<Vec<u8>>,
    targets: Targets,
}

/// Collects an entity fetch's representations and where their answers go. Returns `None`
/// when there is nothing to fetch.
fn prepare(
    index: usize,
    fetch: &Fetch,
    data: &Json,
    ctx: &ExecutionContext<'_>,
) -> Option<ReadyFetch> {
    let mut targets: Targets = Vec::new();
    // Each representation is written once as JSON text, which serves both for spotting
    // repeats and as the body's bytes.
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
    Some(ReadyFetch {
        index,
        representations,
        targets,
    })
}

/// Writes the client variables `names` (those the request has) into a `variables` object
/// being written; `first` says whether nothing was written in it yet.
fn write_variables<'n>(
    body: &mut Vec<u8>,
    names: impl IntoIterator<Item = &'n apollo_compiler::Name>,
    ctx: &ExecutionContext<'_>,
    first: &mut bool,
) -> Option<()> {
    for name in names {
        if let Some(value) = ctx.variables.get(name.as_str()) {
            if !*first {
                body.push(b',');
            }
            *first = false;
            serde_json::to_writer(&mut *body, name.as_str()).ok()?;
            body.push(b':');
            serde_json::to_writer(&mut *body, value).ok()?;
        }
    }
    Some(())
}

fn write_representations(body: &mut Vec<u8>, representations: &[Vec<u8>]) {
    body.push(b'[');
    for (i, rep) in representations.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(rep);
    }
    body.push(b']');
}

/// The body of a request for one fetch. The operation's JSON text comes from the plan.
fn single_body(
    fetch: &Fetch,
    representations: &[Vec<u8>],
    ctx: &ExecutionContext<'_>,
) -> Option<Vec<u8>> {
    let size = fetch.operation_json.len() + representations.iter().map(Vec::len).sum::<usize>();
    let mut body = Vec::with_capacity(size + 64 + representations.len());
    body.extend_from_slice(b"{\"query\":");
    body.extend_from_slice(fetch.operation_json.as_bytes());
    body.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    write_variables(&mut body, &fetch.variables, ctx, &mut first)?;
    if !representations.is_empty() {
        if !first {
            body.push(b',');
        }
        body.extend_from_slice(b"\"representations\":");
        write_representations(&mut body, representations);
    }
    body.extend_from_slice(b"}}");
    Some(body)
}

/// The alias of member `i`'s `_entities` field in a batch request, and its variable's name.
fn batch_alias(i: usize) -> String {
    format!("{BATCH_PREFIX}e{i}")
}

fn batch_variable(i: usize) -> String {
    format!("{BATCH_PREFIX}r{i}")
}

/// The body of one request for several entity fetches to one subgraph:
/// `query($_gw_batch_r0: [_Any!]!, $_gw_batch_r1: [_Any!]!, ...) { _gw_batch_e0:
/// _entities(representations: $_gw_batch_r0) { ... } _gw_batch_e1: ... }`. Which members
/// start together depends on the data (a member with no entities is left out), so the
/// operation is assembled per request from the parts the plan keeps.
fn batch_body(
    plan: &QueryPlan,
    members: &[ReadyFetch],
    ctx: &ExecutionContext<'_>,
) -> Option<Vec<u8>> {
    let fetches: Vec<&Fetch> = members.iter().map(|m| &plan.fetches[m.index]).collect();
    let mut declarations: Vec<&str> = Vec::new();
    let mut variables: Vec<&apollo_compiler::Name> = Vec::new();
    for fetch in &fetches {
        for declaration in &fetch.declarations {
            if !declarations.contains(&declaration.as_str()) {
                declarations.push(declaration);
            }
        }
        for name in &fetch.variables {
            if !variables.contains(&name) {
                variables.push(name);
            }
        }
    }
    let mut operation = String::with_capacity(
        64 + fetches
            .iter()
            .map(|f| f.entities_selection.len() + 96)
            .sum::<usize>(),
    );
    operation.push_str("query(");
    for i in 0..fetches.len() {
        if i > 0 {
            operation.push_str(", ");
        }
        operation.push('$');
        operation.push_str(&batch_variable(i));
        operation.push_str(": [_Any!]!");
    }
    for declaration in &declarations {
        operation.push_str(", ");
        operation.push_str(declaration);
    }
    operation.push_str(") {");
    for (i, fetch) in fetches.iter().enumerate() {
        operation.push(' ');
        operation.push_str(&batch_alias(i));
        operation.push_str(": _entities(representations: $");
        operation.push_str(&batch_variable(i));
        operation.push_str(") ");
        operation.push_str(&fetch.entities_selection);
    }
    operation.push_str(" }");

    let size = operation.len()
        + members
            .iter()
            .flat_map(|m| &m.representations)
            .map(Vec::len)
            .sum::<usize>();
    let mut body = Vec::with_capacity(size + 64 + 32 * members.len());
    body.extend_from_slice(b"{\"query\":");
    serde_json::to_writer(&mut body, &operation).ok()?;
    body.extend_from_slice(b",\"variables\":{");
    let mut first = true;
    write_variables(&mut body, variables, ctx, &mut first)?;
    for (i, member) in members.iter().enumerate() {
        if !first {
            body.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut body, &batch_variable(i)).ok()?;
        body.push(b':');
        write_representations(&mut body, &member.representations);
    }
    body.extend_from_slice(b"}}");
    Some(body)
}

/// Splits the answer to a batch request into one answer per member, each as if it had been
/// asked alone: its aliased field becomes `_entities`, and errors whose path starts at its
/// alias go with it. An error that names no member goes with the first; when the subgraph
/// returned no data at all, with every member, since none got its entities.
fn split_batch_response(response: SubgraphResponse, members: usize) -> Vec<SubgraphResponse> {
    let mut parts: Vec<SubgraphResponse> = (0..members)
        .map(|_| SubgraphResponse {
            data: None,
            errors: Vec::new(),
        })
        .collect();
    let aliases: Vec<String> = (0..members).map(batch_alias).collect();
    let no_data = match response.data {
        Some(Json::Object(mut data)) => {
            for (part, alias) in parts.iter_mut().zip(&aliases) {
                if let Some(entities) = data.remove(alias) {
                    let mut object = Object::new();
                    object.insert(Text::new("_entities"), entities);
                    part.data = Some(Json::Object(object));
                }
            }
            false
        }
        _ => true,
    };
    for mut error in response.errors {
        let member = error
            .get_mut("path")
            .and_then(Value::as_array_mut)
            .and_then(|path| {
                let first = path.first_mut()?;
                let member = aliases
                    .iter()
                    .position(|a| Some(a.as_str()) == first.as_str())?;
                *first = Value::String("_entities".to_owned());
                Some(member)
            });
        match member {
            Some(member) => parts[member].errors.push(error),
            None if no_data => {
                for part in &mut parts {
                    part.errors.push(error.clone());
                }
            }
            None => parts[0].errors.push(error),
        }
    }
    parts
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
