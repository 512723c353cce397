//! GraphQL over WebSocket on `/graphql`: `graphql-transport-ws` (the graphql-ws library's
//! protocol) and the legacy `graphql-ws` of subscriptions-transport-ws, chosen by subprotocol.
//!
//! One task reads client messages and answers them; each operation runs in a task of its own
//! that writes its results to the socket itself, so `complete`/`stop` aborts exactly one
//! operation and an event reaches a viewer with one task woken, not two (with thousands of
//! viewers per event, that hand-over was a large part of the gateway's cost). Writers take
//! turns on the socket's sink; a message is queued whole before it is written, so turns never
//! interleave frames. A slow client slows only its own operations: a subscriber that falls too
//! far behind a shared subscription is closed with 1013 (Try Again Later), on which graphql-ws
//! clients retry and resubscribe from their last cursor; one that stops reading altogether is
//! dropped when a write has waited longer than the send timeout.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response as HttpResponse;
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::task::AbortHandle;

use super::{Delivery, execute_stream};
use crate::forwarded_headers::{ClientAddress, ForwardedHeaders};
use crate::pipeline::{GraphQLRequest, Pipeline, Transport};
use crate::response::GraphQLError;

const TRANSPORT_WS: &str = "graphql-transport-ws";
const LEGACY_WS: &str = "graphql-ws";

/// Legacy protocol keep-alive (`ka`), which its clients use to detect dead connections.
const LEGACY_KEEP_ALIVE: Duration = Duration::from_secs(12);
/// Bytes read from a client socket at a time.
const READ_BUFFER: usize = 4096;
/// Notices from operations to their connection buffered before an operation waits.
const NOTICE_BUFFER: usize = 16;
/// Messages an operation queues while its previous write is under way; past it, the
/// operation stops reading its results until the client has taken some.
const OUTGOING_BUFFER: usize = 64;
/// Results that are ready written with one flush at most.
const WRITE_BATCH: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    TransportWs,
    Legacy,
}

/// WebSocket connections open per client address, so that one address cannot hold every
/// descriptor the gateway has.
#[derive(Debug)]
pub struct OpenSockets {
    counts: Mutex<HashMap<IpAddr, usize>>,
    max_per_address: usize,
}

/// One open connection of an address, counted until dropped.
#[derive(Debug)]
pub struct OpenSocket {
    sockets: Arc<OpenSockets>,
    address: IpAddr,
}

impl OpenSockets {
    pub fn new(max_per_address: usize) -> Arc<Self> {
        Arc::new(OpenSockets {
            counts: Mutex::new(HashMap::new()),
            max_per_address,
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more connection from `address`, or says the limit when it has them all.
    pub fn open(self: &Arc<Self>, address: IpAddr) -> Result<OpenSocket, usize> {
        let mut counts = self.counts();
        let count = counts.entry(address).or_insert(0);
        if *count >= self.max_per_address {
            return Err(self.max_per_address);
        }
        *count += 1;
        Ok(OpenSocket {
            sockets: Arc::clone(self),
            address,
        })
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        let mut counts = self.sockets.counts();
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

pub fn upgrade(
    pipeline: Arc<Pipeline>,
    ws: WebSocketUpgrade,
    headers: &HeaderMap,
    client: ClientAddress,
    socket_count: Option<OpenSocket>,
) -> HttpResponse {
    // Until `connection_init` says otherwise, the upgrade request's headers are forwarded.
    let upgrade_headers = pipeline.forwarded_headers(headers);
    // Client messages are small; tungstenite's default 128 KiB read buffer is zeroed before
    // every read, which with thousands of viewers was a third of the gateway's CPU and most
    // of its memory. Messages are bounded like request bodies.
    let max_message = pipeline.limits().max_body_bytes;
    let ws = ws
        .read_buffer_size(READ_BUFFER)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols([TRANSPORT_WS, LEGACY_WS]);
    // A client naming no subprotocol gets the current one.
    let protocol = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(LEGACY_WS) => Protocol::Legacy,
        _ => Protocol::TransportWs,
    };
    ws.on_upgrade(move |socket| async move {
        let streams = Arc::clone(&pipeline);
        let connection = Connection {
            pipeline,
            protocol,
            forwarded: upgrade_headers,
            client,
            initialised: false,
            operations: HashMap::new(),
            generation: 0,
        };
        // Live viewers' traffic runs where streams run, apart from queries and purchases.
        let _ = streams
            .spawn_stream(async move {
                let _counted = socket_count;
                connection.serve(socket).await;
            })
            .await;
    })
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
}

#[derive(Serialize)]
struct ServerMessage<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<P>,
}

fn encode<P: Serialize>(kind: &str, id: Option<&str>, payload: Option<P>) -> Message {
    let text = serde_json::to_string(&ServerMessage { kind, id, payload }).unwrap_or_else(|e| {
        tracing::error!("cannot serialise a WebSocket message: {e}");
        String::from(r#"{"type":"error"}"#)
    });
    Message::text(text)
}

/// The start of an operation's `next`/`data` messages, up to its payload: built once per
/// operation, so that a delivery is one copy of the result's JSON text (which subscribers of
/// a shared subscription all share) between this and a closing brace.
fn result_envelope(kind: &str, id: &str) -> String {
    // The id is the client's own string; a string always serialises.
    let id = serde_json::to_string(id).unwrap_or_else(|_| String::from("null"));
    format!("{{\"type\":\"{kind}\",\"id\":{id},\"payload\":")
}

fn encode_result(envelope: &str, result: &str) -> Message {
    let mut text = String::with_capacity(envelope.len() + result.len() + 1);
    text.push_str(envelope);
    text.push_str(result);
    text.push('}');
    Message::text(text)
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// What operation tasks tell the connection task.
enum Notice {
    /// The operation is over; its id may be used again. The generation tells a late notice of
    /// an aborted operation from the end of a newer one with the same id.
    Finished(String, u64),
    /// A write failed, timed out or closed the socket: the connection is over.
    Gone,
}

/// The socket's sending half, shared by the connection task and its operations.
#[derive(Clone)]
struct Writer {
    sink: Arc<AsyncMutex<SplitSink<WebSocket, Message>>>,
    /// How long a write may wait for a client that reads nothing before it counts as gone.
    send_timeout: Duration,
    pipeline: Arc<Pipeline>,
}

/// Why a write did not go out: the connection is over either way.
struct WriteFailed;

impl Writer {
    /// Writes `messages` with one flush. A client that reads nothing lets writes wait for
    /// ever: past the send timeout it counts as gone, and dropping the connection frees what
    /// its operations hold.
    async fn write(&self, messages: impl IntoIterator<Item = Message>) -> Result<(), WriteFailed> {
        let write = async {
            // Usually nobody else is writing: taking the lock then needs no waiting future.
            let mut sink = match self.sink.try_lock() {
                Ok(sink) => sink,
                Err(_) => self.sink.lock().await,
            };
            for message in messages {
                sink.feed(message).await?;
            }
            sink.flush().await
        };
        let mut write = std::pin::pin!(write);
        // Most writes finish at once (the socket has room); only one that has to wait is
        // timed, which spares a timer per message at 100,000 messages a second.
        let written = match futures_util::poll!(write.as_mut()) {
            Poll::Ready(written) => written,
            Poll::Pending => match tokio::time::timeout(self.send_timeout, write).await {
                Ok(written) => written,
                Err(_) => {
                    tracing::debug!("WebSocket client stopped reading; closing");
                    self.pipeline.metrics().subscriber_cut_off();
                    return Err(WriteFailed);
                }
            },
        };
        written.map_err(|_| WriteFailed)
    }
}

struct Connection {
    pipeline: Arc<Pipeline>,
    protocol: Protocol,
    /// Sent on with every operation's subgraph requests.
    forwarded: ForwardedHeaders,
    /// Told to subgraphs with mutations.
    client: ClientAddress,
    initialised: bool,
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
}

fn fell_behind() -> Message {
    close(
        1013,
        "Fell behind the live events; resubscribe from the last cursor",
    )
}

/// What handling one client message asks the connection to do.
enum Next {
    Continue,
    Reply(Message),
    Close(Message),
}

impl Connection {
    async fn serve(mut self, socket: WebSocket) {
        let (sink, mut source) = socket.split();
        let writer = Writer {
            sink: Arc::new(AsyncMutex::new(sink)),
            send_timeout: self.pipeline.limits().websocket_send_timeout,
            pipeline: Arc::clone(&self.pipeline),
        };
        let (notices, mut noticed) = mpsc::channel::<Notice>(NOTICE_BUFFER);
        let init_deadline = tokio::time::sleep(self.pipeline.limits().websocket_init_timeout);
        tokio::pin!(init_deadline);
        let mut keep_alive = tokio::time::interval(LEGACY_KEEP_ALIVE);
        loop {
            let next = tokio::select! {
                incoming = source.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        self.on_message(text.as_str(), &writer, &notices)
                    }
                    Some(Ok(Message::Binary(_))) if self.protocol == Protocol::TransportWs => {
                        Next::Close(close(4400, "Binary messages are not supported"))
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    // axum answers pings itself.
                    Some(Ok(_)) => Next::Continue,
                },
                Some(notice) = noticed.recv() => match notice {
                    Notice::Finished(id, generation) => {
                        self.finished(&id, generation);
                        Next::Continue
                    }
                    Notice::Gone => break,
                },
                () = &mut init_deadline, if !self.initialised
                    && self.protocol == Protocol::TransportWs => {
                    Next::Close(close(4408, "Connection initialisation timeout"))
                }
                _ = keep_alive.tick(), if self.initialised && self.protocol == Protocol::Legacy => {
                    Next::Reply(encode::<()>("ka", None, None))
                }
            };
            match next {
                Next::Continue => {}
                Next::Reply(message) => {
                    if writer.write([message]).await.is_err() {
                        break;
                    }
                }
                Next::Close(message) => {
                    let _ = writer.write([message]).await;
                    break;
                }
            }
        }
        for (_, (_, operation)) in self.operations.drain() {
            operation.abort();
        }
    }

    fn finished(&mut self, id: &str, generation: u64) {
        if self
            .operations
            .get(id)
            .is_some_and(|(g, _)| *g == generation)
        {
            self.operations.remove(id);
        }
    }

    fn on_message(&mut self, text: &str, writer: &Writer, notices: &mpsc::Sender<Notice>) -> Next {
        let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
            return self.invalid("Invalid message received");
        };
        match (self.protocol, message.kind.as_str()) {
            (_, "connection_init") => {
                if self.initialised {
                    return Next::Close(close(4429, "Too many initialisation requests"));
                }
                self.initialised = true;
                self.forwarded = self
                    .pipeline
                    .header_propagation()
                    .from_init(message.payload.as_ref(), &self.forwarded);
                // The payload's token is the socket's credential: an invalid one ends it, as
                // the services do, rather than leaving an anonymous socket open.
                if self
                    .pipeline
                    .bearer_tokens()
                    .check(self.forwarded.get(&axum::http::header::AUTHORIZATION))
                    .is_err()
                {
                    return Next::Close(close(4403, "Forbidden"));
                }
                Next::Reply(encode::<()>("connection_ack", None, None))
            }
            (Protocol::TransportWs, "ping") => Next::Reply(encode("pong", None, message.payload)),
            (Protocol::TransportWs, "pong") => Next::Continue,
            (Protocol::TransportWs, "subscribe") | (Protocol::Legacy, "start") => {
                if !self.initialised && self.protocol == Protocol::TransportWs {
                    return Next::Close(close(4401, "Unauthorized"));
                }
                let Some(id) = message.id else {
                    return self.invalid("Operation message without an id");
                };
                let Some(request) = message
                    .payload
                    .and_then(|p| serde_json::from_value::<GraphQLRequest>(p).ok())
                else {
                    return self.invalid("Invalid subscribe payload");
                };
                if self.operations.len() >= self.pipeline.limits().max_operations_per_socket
                    && !self.operations.contains_key(&id)
                {
                    let error = GraphQLError::new(format!(
                        "This connection already runs {} operations, the most one connection may; complete one first.",
                        self.operations.len()
                    ))
                    .with_code("TOO_MANY_OPERATIONS");
                    return Next::Reply(encode("error", Some(&id), Some(&[error][..])));
                }
                if self.operations.contains_key(&id) {
                    return match self.protocol {
                        Protocol::TransportWs => {
                            Next::Close(close(4409, &format!("Subscriber for {id} already exists")))
                        }
                        // The legacy protocol has no such rule; its servers ignore a duplicate.
                        Protocol::Legacy => Next::Continue,
                    };
                }
                self.start(id, request, writer, notices);
                Next::Continue
            }
            (Protocol::TransportWs, "complete") | (Protocol::Legacy, "stop") => {
                if let Some((_, operation)) = message.id.and_then(|id| self.operations.remove(&id))
                {
                    operation.abort();
                }
                Next::Continue
            }
            (Protocol::Legacy, "connection_terminate") => {
                Next::Close(close(1000, "Normal Closure"))
            }
            _ => self.invalid("Invalid message received"),
        }
    }

    /// graphql-transport-ws closes on a protocol violation; the legacy protocol answers it.
    fn invalid(&self, reason: &str) -> Next {
        match self.protocol {
            Protocol::TransportWs => Next::Close(close(4400, reason)),
            Protocol::Legacy => Next::Reply(encode(
                "connection_error",
                None,
                Some(serde_json::json!({ "message": reason })),
            )),
        }
    }

    fn start(
        &mut self,
        id: String,
        request: GraphQLRequest,
        writer: &Writer,
        notices: &mpsc::Sender<Notice>,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let pipeline = self.pipeline.clone();
        let forwarded = self.forwarded.clone();
        let client = self.client.clone();
        let writer = writer.clone();
        let notices = notices.clone();
        let protocol = self.protocol;
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let id = task_id;
            let notice = match run_operation(
                &id, protocol, pipeline, request, forwarded, &client, &writer,
            )
            .await
            {
                Ok(()) => Notice::Finished(id, generation),
                Err(WriteFailed) => Notice::Gone,
            };
            let _ = notices.send(notice).await;
        });
        self.operations
            .insert(id, (generation, task.abort_handle()));
    }
}

/// Runs one operation and writes its messages; `Err` when the connection is over.
async fn run_operation(
    id: &str,
    protocol: Protocol,
    pipeline: Arc<Pipeline>,
    request: GraphQLRequest,
    forwarded: ForwardedHeaders,
    client: &ClientAddress,
    writer: &Writer,
) -> Result<(), WriteFailed> {
    let (next, complete) = match protocol {
        Protocol::TransportWs => ("next", "complete"),
        Protocol::Legacy => ("data", "complete"),
    };
    let mut deliveries =
        match execute_stream(pipeline, request, Transport::Stream, forwarded, client).await {
            Ok(deliveries) => deliveries,
            Err(errors) => {
                // The operation failed before producing results: `error` ends it (graphql-
                // transport-ws sends no `complete` after `error`).
                let error = encode::<&[GraphQLError]>("error", Some(id), Some(&errors));
                return match protocol {
                    Protocol::Legacy => {
                        writer
                            .write([error, encode::<()>(complete, Some(id), None)])
                            .await
                    }
                    Protocol::TransportWs => writer.write([error]).await,
                };
            }
        };
    let envelope = result_envelope(next, id);
    // Results wait here while a write is under way, so that reading the subscription never
    // waits for the client: a viewer is cut off for falling behind the live events only when
    // this queue is full too, not because one write was slow.
    let mut queue: VecDeque<Message> = VecDeque::new();
    let mut writing: Option<Write> = None;
    let mut end: Option<End> = None;
    loop {
        if writing.is_none() && !queue.is_empty() {
            let batch: Vec<Message> = queue.drain(..queue.len().min(WRITE_BATCH)).collect();
            let writer = writer.clone();
            writing = Some(Box::pin(async move { writer.write(batch).await }));
        }
        match (&writing, end) {
            (None, Some(End::Complete)) => return Ok(()),
            (None, Some(End::CutOff)) => return Err(WriteFailed),
            _ => {}
        }
        let step = tokio::select! {
            biased;
            written = async {
                match writing.as_mut() {
                    Some(write) => write.await,
                    None => std::future::pending().await,
                }
            } => Step::Written(written),
            delivery = deliveries.next(), if end.is_none() && queue.len() < OUTGOING_BUFFER => {
                Step::Delivery(delivery)
            }
        };
        let mut delivery = match step {
            Step::Written(written) => {
                writing = None;
                written?;
                continue;
            }
            Step::Delivery(delivery) => delivery,
        };
        loop {
            match delivery {
                Some(Delivery::Result(result)) => {
                    queue.push_back(encode_result(&envelope, &result));
                }
                Some(Delivery::FellBehind) => {
                    queue.push_back(fell_behind());
                    end = Some(End::CutOff);
                }
                None => {
                    queue.push_back(encode::<()>(complete, Some(id), None));
                    end = Some(End::Complete);
                }
            }
            // Results already waiting (a burst of events, or a viewer a few events behind)
            // join the same write: one system call instead of one per message. Polling once
            // never loses a result: a pending one stays in the stream.
            if end.is_some() || queue.len() >= WRITE_BATCH {
                break;
            }
            match deliveries.next().now_or_never() {
                Some(more) => delivery = more,
                None => break,
            }
        }
    }
}

/// A write of queued messages under way; kept across polls, since dropping it halfway would
/// lose what it had not yet handed to the socket.
type Write = Pin<Box<dyn Future<Output = Result<(), WriteFailed>> + Send>>;

/// What an operation's messages end with, once all are written.
#[derive(Clone, Copy)]
enum End {
    Complete,
    CutOff,
}

/// What woke an operation.
enum Step {
    Written(Result<(), WriteFailed>),
    Delivery(Option<Delivery>),
}
