//! Subscription deduplication: identical client subscriptions share one upstream
//! subscription, and each event is planned, enriched and shaped once for all of them.
//!
//! Two subscriptions are identical when their normalised operation, their variables (the
//! cursor variable aside, see below) and the headers forwarded to subgraphs (credentials
//! first) are equal, so nothing is ever shared across credentials. Such a *group* runs one
//! task: it holds the upstream subscription, runs every event through the rest of the plan and
//! sends the serialised result to a broadcast channel every subscriber reads from.
//!
//! **Resuming.** Event streams like `ticketEvents(after:)` take a cursor, and each subscriber
//! may bring a different one (the last event it saw). The cursor argument (`after` by default)
//! is left out of the group key: the group starts upstream at its first subscriber's cursor
//! and keeps its most recent events with their cursors (the value of the `cursor` field the
//! operation selects). A subscriber that joins later with cursor *c*
//! - gets the kept events after *c* and then the live ones, when *c* is among them (or is the
//!   cursor the kept events start after);
//! - otherwise catches up on an upstream subscription of its own that replays from *c*, while
//!   it also listens to the group; as soon as the group has passed the last event it sent, it
//!   drops its own upstream and continues with the group's events after that one. No event is
//!   skipped or sent twice because both sides read the same ordered log.
//!
//! A subscriber without a cursor receives the group's events from the moment it joins. An
//! operation that passes the cursor as a literal, uses the cursor variable anywhere else, or
//! resumes from a cursor without selecting the cursor field, is not shared: it runs alone.
//!
//! **Distinct credentials.** Viewers with different tokens form different groups, one
//! upstream subscription and one enrichment fetch per event each, and these are not merged
//! further on purpose: `graphql-transport-ws` binds credentials to the connection
//! (`connection_init` and the upgrade request), so operations under different tokens cannot
//! share a socket, and a subgraph fetch carries one `Authorization` header, so enrichment for
//! two tokens cannot travel in one request without the gateway deciding what each token may
//! see, which is the subgraphs' job. The cost therefore grows with the number of distinct
//! tokens watching, not with the number of viewers.
//!
//! **Backpressure.** The broadcast channel keeps the last `buffer` events for everyone; a
//! subscriber that falls further behind than that (its client reads too slowly) is cut off
//! with [`Delivery::FellBehind`] instead of holding memory or the others back. The transport
//! tells the client, which resubscribes from the last cursor it received.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use apollo_compiler::Name;
use apollo_compiler::ast::Value as AstValue;
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use super::{Delivery, EventLoop, OpenUpstream, ResponseStream, subscribe_alone};
use crate::forwarded_headers::ForwardedHeaders;
use crate::metrics::ActiveSubscription;
use crate::pipeline::selection::{Selection, SelectionSet};
use crate::pipeline::{Pipeline, Prepared};
use crate::response::{GraphQLError, Response};

/// How subscriptions are shared; see the module documentation.
#[derive(Debug, Clone)]
pub struct SharingSettings {
    /// The root field argument that says where an event stream resumes.
    pub cursor_argument: String,
    /// The field of each event that holds its cursor.
    pub cursor_field: String,
    /// Events a subscriber may fall behind before it is cut off; also how many recent events
    /// a group keeps for subscribers that join late.
    pub buffer: usize,
}

impl Default for SharingSettings {
    fn default() -> Self {
        SharingSettings {
            cursor_argument: "after".into(),
            cursor_field: "cursor".into(),
            buffer: 128,
        }
    }
}

/// The groups of identical subscriptions running now.
pub struct SubscriptionGroups {
    groups: Mutex<HashMap<Arc<GroupKey>, Weak<Group>>>,
    settings: SharingSettings,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GroupKey {
    /// The normalised operation's canonical text.
    operation: String,
    /// The variables without the cursor, as JSON.
    variables: String,
    forwarded: ForwardedHeaders,
}

/// One event as every subscriber of a group receives it.
#[derive(Debug, Clone)]
struct SharedEvent {
    /// The event's cursor as JSON text, when the operation selects it.
    cursor: Option<Arc<str>>,
    json: Arc<str>,
}

#[derive(Debug, Clone)]
enum GroupMessage {
    Event(SharedEvent),
    /// The upstream subscription ended; a final error to pass on, if it ended with one.
    End(Option<Arc<str>>),
}

impl GroupMessage {
    fn cursor(&self) -> Option<&Arc<str>> {
        match self {
            GroupMessage::Event(event) => event.cursor.as_ref(),
            GroupMessage::End(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
enum Start {
    Pending,
    Running,
    Failed(Vec<GraphQLError>),
}

/// What subscribers hold: the last one to go stops the group's task.
struct Group {
    key: Arc<GroupKey>,
    core: Arc<GroupCore>,
    groups: Weak<SubscriptionGroups>,
    task: AbortHandle,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(groups) = self.groups.upgrade() {
            groups.forget(&self.key, None);
        }
    }
}

/// What the group's task and its subscribers share.
struct GroupCore {
    buffer: usize,
    cursor: Option<CursorReader>,
    recent: Mutex<Recent>,
    sender: broadcast::Sender<GroupMessage>,
    started: watch::Sender<Start>,
}

/// The group's most recent events, for subscribers that join late.
struct Recent {
    events: VecDeque<SharedEvent>,
    /// The cursor the kept events start right after: the first subscriber's cursor, then the
    /// cursor of each event that was let go. `None` when unknown.
    before: Option<Arc<str>>,
    ended: bool,
}

/// Where a joining subscriber starts.
enum Position {
    /// These kept events, then the live ones.
    Known(VecDeque<GroupMessage>),
    /// Its cursor is not among the kept events: it catches up on its own, comparing what it
    /// receives with these kept events and the live ones.
    Unknown(VecDeque<GroupMessage>),
}

impl GroupCore {
    fn recent(&self) -> MutexGuard<'_, Recent> {
        // The lock guards plain data no panic can leave half-written.
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, event: SharedEvent) {
        let mut recent = self.recent();
        if recent.events.len() >= self.buffer
            && let Some(old) = recent.events.pop_front()
        {
            recent.before = old.cursor;
        }
        recent.events.push_back(event.clone());
        // Sent under the lock: a joining subscriber sees each event either among the kept
        // ones or on its receiver, never both or neither.
        let _ = self.sender.send(GroupMessage::Event(event));
    }

    fn end(&self, last: Option<Arc<str>>) {
        let mut recent = self.recent();
        recent.ended = true;
        let _ = self.sender.send(GroupMessage::End(last));
    }

    /// Subscribes to the live events and says where a subscriber with cursor `after` starts.
    fn join(&self, after: Option<&Arc<str>>) -> (broadcast::Receiver<GroupMessage>, Position) {
        let recent = self.recent();
        let receiver = self.sender.subscribe();
        let Some(after) = after else {
            return (receiver, Position::Known(VecDeque::new()));
        };
        let messages = |from: usize| {
            recent
                .events
                .iter()
                .skip(from)
                .cloned()
                .map(GroupMessage::Event)
                .collect::<VecDeque<_>>()
        };
        let position = if recent.before.as_ref() == Some(after) {
            Position::Known(messages(0))
        } else if let Some(index) = recent
            .events
            .iter()
            .position(|e| e.cursor.as_ref() == Some(after))
        {
            Position::Known(messages(index + 1))
        } else {
            Position::Unknown(messages(0))
        };
        (receiver, position)
    }
}

/// Reads an event's cursor out of its shaped result.
#[derive(Debug, Clone)]
struct CursorReader {
    /// The root field's response key.
    root: Name,
    /// Response keys of the cursor field in the root field's selection.
    keys: Vec<Name>,
}

impl CursorReader {
    fn read(&self, response: &Response) -> Option<Arc<str>> {
        let data: Value = serde_json::from_slice(response.data.as_ref()?.as_bytes()).ok()?;
        let event = data.get(self.root.as_str())?;
        self.keys
            .iter()
            .filter_map(|key| event.get(key.as_str()))
            .find(|cursor| !cursor.is_null())
            .map(|cursor| cursor.to_string().into())
    }
}

/// Whether and how a prepared subscription can be shared.
enum Sharing {
    Alone,
    Shared {
        variables: String,
        /// Where this subscriber resumes, as JSON text.
        after: Option<Arc<str>>,
        cursor: Option<CursorReader>,
    },
}

fn sharing(prepared: &Prepared, settings: &SharingSettings) -> Sharing {
    let selection = &prepared.normalized.selection_set;
    // Validation allows a subscription one root field; normalisation keeps it a field.
    let [Selection::Field(root)] = selection.items.as_slice() else {
        return Sharing::Alone;
    };
    let mut cursor_variable = None;
    if let Some(argument) = root
        .arguments
        .iter()
        .find(|a| a.name == settings.cursor_argument.as_str())
    {
        match argument.value.as_ref() {
            AstValue::Null => {}
            AstValue::Variable(name) => cursor_variable = Some(name.clone()),
            // A literal cursor replays from a fixed point: what a subscriber gets would
            // depend on when it joined.
            _ => return Sharing::Alone,
        }
    }
    let mut variables = prepared.variables.clone();
    let mut after = None;
    if let Some(name) = &cursor_variable {
        if variable_uses(selection, name) != 1 {
            return Sharing::Alone;
        }
        after = variables
            .remove(name.as_str())
            .filter(|value| !value.is_null())
            .map(|value| Arc::<str>::from(value.to_string()));
    }
    let mut keys = Vec::new();
    cursor_keys(&root.selection_set, &settings.cursor_field, &mut keys);
    let cursor = (!keys.is_empty()).then(|| CursorReader {
        root: root.response_key().clone(),
        keys,
    });
    if after.is_some() && cursor.is_none() {
        return Sharing::Alone;
    }
    Sharing::Shared {
        variables: Value::Object(variables).to_string(),
        after,
        cursor,
    }
}

fn cursor_keys(set: &SelectionSet, field: &str, keys: &mut Vec<Name>) {
    for item in &set.items {
        match item {
            Selection::Field(f) if f.name == field => keys.push(f.response_key().clone()),
            Selection::Field(_) => {}
            Selection::Fragment(fragment) => cursor_keys(&fragment.selection_set, field, keys),
        }
    }
}

/// How often `variable` is used in the arguments of the selection.
fn variable_uses(set: &SelectionSet, variable: &Name) -> usize {
    fn in_value(value: &AstValue, variable: &Name) -> usize {
        match value {
            AstValue::Variable(name) => usize::from(name == variable),
            AstValue::List(items) => items.iter().map(|v| in_value(v, variable)).sum(),
            AstValue::Object(fields) => fields.iter().map(|(_, v)| in_value(v, variable)).sum(),
            _ => 0,
        }
    }
    set.items
        .iter()
        .map(|item| match item {
            Selection::Field(f) => {
                f.arguments
                    .iter()
                    .map(|a| in_value(&a.value, variable))
                    .sum::<usize>()
                    + variable_uses(&f.selection_set, variable)
            }
            Selection::Fragment(fragment) => variable_uses(&fragment.selection_set, variable),
        })
        .sum()
}

impl SubscriptionGroups {
    pub fn new(settings: SharingSettings) -> Arc<Self> {
        Arc::new(SubscriptionGroups {
            groups: Mutex::new(HashMap::new()),
            settings: SharingSettings {
                buffer: settings.buffer.max(1),
                ..settings
            },
        })
    }

    fn table(&self) -> MutexGuard<'_, HashMap<Arc<GroupKey>, Weak<Group>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the group of `key` if it is `group` (when given) or has no subscribers left.
    fn forget(&self, key: &GroupKey, group: Option<&Weak<Group>>) {
        let mut table = self.table();
        let gone = table.get(key).is_some_and(|entry| match group {
            Some(group) => entry.ptr_eq(group),
            None => entry.strong_count() == 0,
        });
        if gone {
            table.remove(key);
        }
    }

    /// Subscribes through the group of identical subscriptions, starting it if there is none.
    pub async fn subscribe(
        self: Arc<Self>,
        pipeline: Arc<Pipeline>,
        prepared: Prepared,
        forwarded: ForwardedHeaders,
        active: ActiveSubscription,
    ) -> Result<ResponseStream, Vec<GraphQLError>> {
        let Sharing::Shared {
            variables,
            after,
            cursor,
        } = sharing(&prepared, &self.settings)
        else {
            return subscribe_alone(pipeline, prepared, forwarded, active).await;
        };
        let key = GroupKey {
            operation: prepared.normalized.cache_key(),
            variables,
            forwarded: forwarded.clone(),
        };
        let (group, receiver, position, prepared) =
            self.join_or_start(key, after, cursor.clone(), &pipeline, &forwarded, prepared);

        let mut started = group.core.started.subscribe();
        let start = started
            .wait_for(|s| !matches!(s, Start::Pending))
            .await
            .map(|s| s.clone());
        match start {
            Ok(Start::Running) => {}
            Ok(Start::Failed(errors)) => return Err(errors),
            Ok(Start::Pending) | Err(_) => {
                return Err(vec![
                    GraphQLError::new("The shared subscription stopped before it started.")
                        .with_code("SUBSCRIPTION_UPSTREAM_FAILED"),
                ]);
            }
        }

        let state = match (position, prepared) {
            (Position::Known(backlog), _) => State::Live { receiver, backlog },
            (Position::Unknown(pending), Some(prepared)) => {
                let upstream = OpenUpstream::start(&pipeline, &prepared, &forwarded).await?;
                State::CatchingUp {
                    receiver,
                    pending,
                    own: own_next(EventLoop::new(
                        pipeline.clone(),
                        prepared,
                        forwarded,
                        upstream,
                    )),
                    last: None,
                }
            }
            // The subscriber that started the group always knows its position.
            (Position::Unknown(_), None) => State::Done,
        };
        let member = Member {
            group: Some(group),
            state,
            cursor,
            buffer: self.settings.buffer,
            pipeline,
            _active: active,
        };
        Ok(stream::unfold(member, Member::next).boxed())
    }

    /// Joins the running group for `key`, or starts one with this subscriber's `prepared`
    /// (which then comes back `None`).
    #[allow(clippy::type_complexity)]
    fn join_or_start(
        self: &Arc<Self>,
        key: GroupKey,
        after: Option<Arc<str>>,
        cursor: Option<CursorReader>,
        pipeline: &Arc<Pipeline>,
        forwarded: &ForwardedHeaders,
        prepared: Prepared,
    ) -> (
        Arc<Group>,
        broadcast::Receiver<GroupMessage>,
        Position,
        Option<Prepared>,
    ) {
        // Declared before the table's guard so that it is dropped after it: the last handle
        // on a group takes the group off the table, which needs the lock.
        let _stale: Option<Arc<Group>>;
        let mut table = self.table();
        match table.get(&key).and_then(Weak::upgrade) {
            Some(group) if !group.core.recent().ended => {
                let (receiver, position) = group.core.join(after.as_ref());
                return (group, receiver, position, Some(prepared));
            }
            group => _stale = group,
        }
        let key = Arc::new(key);
        let (sender, receiver) = broadcast::channel(self.settings.buffer);
        let core = Arc::new(GroupCore {
            buffer: self.settings.buffer,
            cursor,
            recent: Mutex::new(Recent {
                events: VecDeque::new(),
                before: after,
                ended: false,
            }),
            sender,
            started: watch::Sender::new(Start::Pending),
        });
        let group = Arc::new_cyclic(|me: &Weak<Group>| {
            let task = pipeline.spawn_stream(run_group(
                Arc::clone(&core),
                GroupHandle {
                    groups: Arc::downgrade(self),
                    key: Arc::clone(&key),
                    me: me.clone(),
                },
                Arc::clone(pipeline),
                prepared,
                forwarded.clone(),
            ));
            Group {
                key: Arc::clone(&key),
                core,
                groups: Arc::downgrade(self),
                task: task.abort_handle(),
            }
        });
        table.insert(key, Arc::downgrade(&group));
        (group, receiver, Position::Known(VecDeque::new()), None)
    }
}

/// What a group's task needs to take its group off the table when it ends.
struct GroupHandle {
    groups: Weak<SubscriptionGroups>,
    key: Arc<GroupKey>,
    me: Weak<Group>,
}

impl GroupHandle {
    fn forget(&self) {
        if let Some(groups) = self.groups.upgrade() {
            groups.forget(&self.key, Some(&self.me));
        }
    }
}

/// The group's task: one upstream subscription, one execution per event.
async fn run_group(
    core: Arc<GroupCore>,
    handle: GroupHandle,
    pipeline: Arc<Pipeline>,
    prepared: Prepared,
    forwarded: ForwardedHeaders,
) {
    let upstream = match OpenUpstream::start(&pipeline, &prepared, &forwarded).await {
        Ok(upstream) => upstream,
        Err(errors) => {
            // Off the table first, so a retry starts afresh instead of joining a failure.
            handle.forget();
            core.end(None);
            core.started.send_replace(Start::Failed(errors));
            return;
        }
    };
    core.started.send_replace(Start::Running);
    let mut events = EventLoop::new(pipeline, prepared, forwarded, upstream);
    while let Some(response) = events.next().await {
        let json: Arc<str> = response.to_json_string().into();
        if events.is_done() {
            handle.forget();
            core.end(Some(json));
            return;
        }
        let cursor = core.cursor.as_ref().and_then(|c| c.read(&response));
        core.publish(SharedEvent { cursor, json });
        // Subscribers woken by this event run before the group takes the next one, even
        // when a burst of events is already waiting: only a subscriber that really cannot
        // write falls behind.
        tokio::task::yield_now().await;
    }
    handle.forget();
    core.end(None);
}

type OwnNext = Pin<Box<dyn Future<Output = (EventLoop, Option<Response>)> + Send>>;

/// The next result of a subscriber's own upstream subscription, as a future that can be
/// polled across several waits: dropping it halfway would lose the event it is enriching.
fn own_next(mut events: EventLoop) -> OwnNext {
    Box::pin(async move {
        let response = events.next().await;
        (events, response)
    })
}

enum State {
    /// Reads the group's events.
    Live {
        receiver: broadcast::Receiver<GroupMessage>,
        backlog: VecDeque<GroupMessage>,
    },
    /// Replays on its own upstream until the group has passed the last event sent.
    CatchingUp {
        receiver: broadcast::Receiver<GroupMessage>,
        /// The group's events, oldest first, since joining.
        pending: VecDeque<GroupMessage>,
        own: OwnNext,
        /// Cursor of the last event sent.
        last: Option<Arc<str>>,
    },
    /// Could not keep up with the group while catching up: stays on its own upstream.
    Alone(OwnNext),
    Done,
}

/// One subscriber of a group.
struct Member {
    /// Keeps the group running while this subscriber is.
    group: Option<Arc<Group>>,
    state: State,
    cursor: Option<CursorReader>,
    buffer: usize,
    pipeline: Arc<Pipeline>,
    _active: ActiveSubscription,
}

impl Member {
    async fn next(mut self) -> Option<(Delivery, Self)> {
        loop {
            match std::mem::replace(&mut self.state, State::Done) {
                State::Done => return None,
                State::Live {
                    mut receiver,
                    mut backlog,
                } => {
                    let message = match backlog.pop_front() {
                        Some(message) => message,
                        None => match receiver.recv().await {
                            Ok(message) => message,
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                self.pipeline.metrics().subscriber_cut_off();
                                return Some((Delivery::FellBehind, self));
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        },
                    };
                    match message {
                        GroupMessage::Event(event) => {
                            self.state = State::Live { receiver, backlog };
                            return Some((Delivery::Result(event.json), self));
                        }
                        GroupMessage::End(last) => {
                            return last.map(|l| (Delivery::Result(l), self));
                        }
                    }
                }
                State::CatchingUp {
                    mut receiver,
                    mut pending,
                    mut own,
                    last,
                } => {
                    // Caught up when the group has passed the last event this subscriber got:
                    // from there on the group's events are the ones it still needs.
                    let caught_up = last
                        .as_ref()
                        .and_then(|c| pending.iter().position(|m| m.cursor() == Some(c)));
                    if let Some(index) = caught_up {
                        let backlog = pending.split_off(index + 1);
                        self.state = State::Live { receiver, backlog };
                        continue;
                    }
                    tokio::select! {
                        biased;
                        message = receiver.recv() => match message {
                            // The kept events it joined with, plus up to a buffer's worth.
                            Ok(message) if pending.len() < 2 * self.buffer => {
                                pending.push_back(message);
                                self.state = State::CatchingUp { receiver, pending, own, last };
                            }
                            // The replay is longer than the group's buffer: it finishes alone.
                            _ => {
                                self.group = None;
                                self.state = State::Alone(own);
                            }
                        },
                        (events, response) = &mut own => {
                            let response = response?;
                            let last = self.cursor.as_ref().and_then(|c| c.read(&response));
                            let done = events.is_done();
                            if !done {
                                self.state = State::CatchingUp {
                                    receiver,
                                    pending,
                                    own: own_next(events),
                                    last,
                                };
                            }
                            return Some((Delivery::of(&response), self));
                        }
                    }
                }
                State::Alone(own) => {
                    let (events, response) = own.await;
                    let response = response?;
                    if !events.is_done() {
                        self.state = State::Alone(own_next(events));
                    }
                    return Some((Delivery::of(&response), self));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(cursor: &str) -> SharedEvent {
        SharedEvent {
            cursor: Some(Arc::from(format!("\"{cursor}\""))),
            json: Arc::from(format!(
                "{{\"data\":{{\"e\":{{\"cursor\":\"{cursor}\"}}}}}}"
            )),
        }
    }

    fn core(buffer: usize, before: Option<&str>) -> GroupCore {
        let (sender, _) = broadcast::channel(buffer);
        GroupCore {
            buffer,
            cursor: None,
            recent: Mutex::new(Recent {
                events: VecDeque::new(),
                before: before.map(|b| Arc::from(format!("\"{b}\""))),
                ended: false,
            }),
            sender,
            started: watch::Sender::new(Start::Running),
        }
    }

    fn cursors(messages: &VecDeque<GroupMessage>) -> Vec<String> {
        messages
            .iter()
            .filter_map(|m| m.cursor().map(|c| c.to_string()))
            .collect()
    }

    fn quoted(c: &str) -> Arc<str> {
        Arc::from(format!("\"{c}\""))
    }

    #[test]
    fn a_late_subscriber_starts_after_its_cursor() {
        let core = core(3, Some("a0"));
        for c in ["a1", "a2", "a3"] {
            core.publish(event(c));
        }
        let (_, Position::Known(backlog)) = core.join(Some(&quoted("a1"))) else {
            panic!("a1 is kept");
        };
        assert_eq!(cursors(&backlog), ["\"a2\"", "\"a3\""]);
        let (_, Position::Known(backlog)) = core.join(Some(&quoted("a0"))) else {
            panic!("a0 is where the kept events start");
        };
        assert_eq!(backlog.len(), 3);
        let (_, Position::Known(backlog)) = core.join(None) else {
            panic!("no cursor: live");
        };
        assert!(backlog.is_empty());

        // One more event lets a1 go: a0 is no longer known, a1 now is the start.
        core.publish(event("a4"));
        assert!(matches!(
            core.join(Some(&quoted("a0"))).1,
            Position::Unknown(_)
        ));
        let (_, Position::Known(backlog)) = core.join(Some(&quoted("a1"))) else {
            panic!("a1 is where the kept events start now");
        };
        assert_eq!(cursors(&backlog), ["\"a2\"", "\"a3\"", "\"a4\""]);
    }

    #[test]
    fn an_event_is_either_kept_or_received_by_a_joiner() {
        let core = core(8, None);
        core.publish(event("b1"));
        let (mut receiver, position) = core.join(Some(&quoted("b1")));
        assert!(matches!(position, Position::Known(ref b) if b.is_empty()));
        core.publish(event("b2"));
        let Ok(GroupMessage::Event(next)) = receiver.try_recv() else {
            panic!("b2 arrives live");
        };
        assert_eq!(next.cursor.as_deref(), Some("\"b2\""));
        assert!(receiver.try_recv().is_err());
    }
}
