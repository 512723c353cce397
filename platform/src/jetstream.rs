//! The bus at scale: NATS JetStream. Each service publishes its events to its own stream
//! (`ticketing.events.>` into `TICKETING_EVENTS`, …) with `Nats-Msg-Id` set to the event id,
//! so the relay's redeliveries (a crash between publish and mark, a lost ack) fall inside the
//! stream's duplicate window and are dropped. Internal systems read with durable pull
//! consumers: the server remembers what each acknowledged, so a consumer that restarts, or
//! runs as several instances, resumes where the group left off.
//!
//! The connection is made in the background and re-made forever: a service starts, and keeps
//! serving, while NATS is down; the outbox holds the backlog until it is back.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{OnceCell, watch};
use uuid::Uuid;

use crate::bus::{BusError, BusMessage, EventBus};

/// Where one service's events live in JetStream: the stream and the subjects it captures.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub name: String,
    /// `<prefix>.>`, e.g. `ticketing.events.>`.
    pub subjects: Vec<String>,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop repeats. It must outlast the
    /// longest time the relay may retry a message whose ack was lost, outages included.
    pub duplicate_window: Duration,
    /// Events older than this are dropped from the stream: a consumer away for longer
    /// resumes from the service's event log (GraphQL `after` cursor) instead.
    pub max_age: Duration,
}

/// Default retention of a service's stream.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Default duplicate window: generous, since an unacknowledged publish is retried for as
/// long as NATS is down, and a repeat after the window would be stored twice.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(30 * 60);

impl StreamSpec {
    /// The stream of a service's events, from their subject prefix: `ticketing.events` gives
    /// stream `TICKETING_EVENTS` over `ticketing.events.>`.
    pub fn for_prefix(prefix: &str) -> Self {
        Self {
            name: prefix.replace(['.', '-', ' '], "_").to_uppercase(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_age: DEFAULT_MAX_AGE,
        }
    }

    pub fn with_duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            duplicate_window: self.duplicate_window,
            max_age: self.max_age,
            storage: stream::StorageType::File,
            ..Default::default()
        }
    }
}

/// Connects to NATS in the background: returns at once, and the client keeps reconnecting
/// for as long as the process lives. Only a malformed URL is an error here.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, BusError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(url)
        .await
        .map_err(|e| BusError::Unavailable(format!("cannot connect to NATS at {url}: {e}")))
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(format!("{what}: {error}"))
}

/// Creates the stream when it is missing (first start, or a wiped server); leaves an existing
/// one as it is.
async fn ensure_stream(
    context: &jetstream::Context,
    spec: &StreamSpec,
) -> Result<stream::Stream, BusError> {
    context
        .get_or_create_stream(spec.config())
        .await
        .map_err(|e| unavailable(&format!("JetStream stream {}", spec.name), e))
}

/// Publishes to JetStream and waits for the stream's acknowledgement: a message counts as
/// published only once it is stored.
pub struct JetStreamBus {
    client: async_nats::Client,
    context: jetstream::Context,
    spec: StreamSpec,
    stream_ready: OnceCell<()>,
}

impl JetStreamBus {
    pub fn new(client: async_nats::Client, spec: StreamSpec) -> Self {
        let mut context = jetstream::new(client.clone());
        // Bounds each wait for an ack, so a relay notices an outage instead of hanging on it.
        context.set_timeout(Duration::from_secs(5));
        Self {
            client,
            context,
            spec,
            stream_ready: OnceCell::new(),
        }
    }

    pub async fn connect(url: &str, spec: StreamSpec) -> Result<Self, BusError> {
        let client = connect(url, &format!("{}-relay", spec.name.to_lowercase())).await?;
        Ok(Self::new(client, spec))
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn spec(&self) -> &StreamSpec {
        &self.spec
    }

    async fn ensure_stream(&self) -> Result<(), BusError> {
        self.stream_ready
            .get_or_try_init(|| async {
                ensure_stream(&self.context, &self.spec).await.map(|_| ())
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl EventBus for JetStreamBus {
    async fn publish(&self, message: &BusMessage) -> Result<(), BusError> {
        self.ensure_stream().await?;
        let payload = serde_json::to_vec(&message.payload)
            .map_err(|e| unavailable("event payload could not be encoded", e))?;
        let ack = self
            .context
            .send_publish(
                message.subject.clone(),
                jetstream::message::PublishMessage::build()
                    .payload(payload.into())
                    .message_id(message.id.to_string()),
            )
            .await
            .map_err(|e| unavailable("JetStream publish", e))?;
        ack.await
            .map_err(|e| unavailable("JetStream did not acknowledge", e))?;
        Ok(())
    }

    async fn ready(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => self.ensure_stream().await,
            state => Err(BusError::Unavailable(format!("NATS connection is {state}"))),
        }
    }
}

/// The bus a service publishes its events (subjects `<prefix>.<Type>`) to: JetStream when a
/// NATS URL is given, else the in-process bus, the embedded default.
pub async fn event_bus(
    nats_url: Option<&str>,
    prefix: &str,
) -> Result<Arc<dyn EventBus>, BusError> {
    match nats_url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => {
            let bus = JetStreamBus::connect(url, StreamSpec::for_prefix(prefix)).await?;
            tracing::info!(url, stream = %bus.spec().name, "relaying events to NATS JetStream");
            Ok(Arc::new(bus))
        }
        None => Ok(Arc::new(crate::bus::InProcessBus::default())),
    }
}

/// An event as a consumer receives it from the bus: the envelope every service publishes
/// (`id`, `type`, `position`, `occurredAt`, `data`).
#[derive(Debug, Clone)]
pub struct ReceivedEvent {
    pub id: Uuid,
    pub subject: String,
    pub event_type: String,
    pub data: serde_json::Value,
    /// How many times JetStream has delivered this message (1 the first time).
    pub delivered: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth trying again later (the consumer's database is down, …): not acknowledged.
    #[error("transient: {0}")]
    Transient(String),
}

/// What a durable consumer does with each event. It must be idempotent by event id: delivery
/// is at-least-once (a crash between handling and acknowledging delivers again).
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandleError>;
}

/// A durable pull consumer on another service's stream: every instance that runs it with the
/// same name shares one position, and each message goes to one of them.
#[derive(Debug, Clone)]
pub struct DurableConsumer {
    pub stream: StreamSpec,
    pub durable_name: String,
    /// Only this subject (e.g. `ticketing.events.TicketPurchaseCancelled`); all when empty.
    pub filter_subject: String,
    /// The server forgets the consumer after this long without a reader; `None`: never.
    pub inactive_threshold: Option<Duration>,
}

impl DurableConsumer {
    fn config(&self) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.durable_name.clone()),
            filter_subject: self.filter_subject.clone(),
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            inactive_threshold: self.inactive_threshold.unwrap_or_default(),
            ..Default::default()
        }
    }

    /// Handles messages until `shutdown` turns true, reconnecting with backoff whenever NATS
    /// or the stream is unavailable. In-flight handling finishes before it returns.
    pub async fn run(
        self,
        client: async_nats::Client,
        handler: Arc<dyn EventHandler>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let context = jetstream::new(client);
        let mut backoff = Duration::from_millis(200);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.consume(&context, &handler, &mut shutdown).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, consumer = %self.durable_name, "bus consumer interrupted; retrying");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Returns `Ok` only on shutdown.
    async fn consume(
        &self,
        context: &jetstream::Context,
        handler: &Arc<dyn EventHandler>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), BusError> {
        let stream = ensure_stream(context, &self.stream).await?;
        let consumer: consumer::PullConsumer = stream
            .get_or_create_consumer(&self.durable_name, self.config())
            .await
            .map_err(|e| unavailable("JetStream consumer", e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("JetStream consumer stream", e))?;
        tracing::info!(consumer = %self.durable_name, stream = %self.stream.name, "bus consumer attached");
        loop {
            let next = tokio::select! {
                next = messages.next() => next,
                _ = shutdown.changed() => return Ok(()),
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => return Err(unavailable("JetStream delivery", error)),
                None => return Err(BusError::Unavailable("JetStream delivery ended".into())),
            };
            let delivered = message.info().map(|i| i.delivered).unwrap_or(1);
            let Some(event) = decode(&message.subject, &message.payload, delivered) else {
                // Retrying cannot make it readable: acknowledge so it does not block the rest.
                tracing::error!(subject = %message.subject, "undecodable message on the bus; skipped");
                let _ = message.ack().await;
                continue;
            };
            match handler.handle(&event).await {
                Ok(()) => {
                    if let Err(error) = message.ack().await {
                        // Redelivered after ack_wait; the handler is idempotent.
                        tracing::warn!(%error, event = %event.id, "ack failed");
                    }
                }
                Err(HandleError::Transient(reason)) => {
                    tracing::warn!(%reason, event = %event.id, "event handling failed; redelivering later");
                    let _ = message
                        .ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                }
            }
        }
    }
}

fn decode(subject: &str, payload: &[u8], delivered: i64) -> Option<ReceivedEvent> {
    let envelope: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let id = envelope.get("id")?.as_str()?.parse().ok()?;
    let event_type = envelope.get("type")?.as_str()?.to_owned();
    Some(ReceivedEvent {
        id,
        subject: subject.to_owned(),
        event_type,
        data: envelope.get("data").cloned().unwrap_or_default(),
        delivered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_prefix_names_its_stream_and_subjects() {
        let spec = StreamSpec::for_prefix("ticketing.events");
        assert_eq!(spec.name, "TICKETING_EVENTS");
        assert_eq!(spec.subjects, vec!["ticketing.events.>".to_owned()]);
    }

    #[test]
    fn the_envelope_is_decoded_and_garbage_is_not() {
        let id = Uuid::new_v4();
        let payload =
            serde_json::json!({ "id": id, "type": "X", "position": 3, "data": { "a": 1 } });
        let event = decode("s.X", payload.to_string().as_bytes(), 1).expect("decoded");
        assert_eq!(event.id, id);
        assert_eq!(event.event_type, "X");
        assert_eq!(event.data["a"], 1);
        assert!(decode("s.X", b"not json", 1).is_none());
    }
}
