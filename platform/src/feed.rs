//! The resumable event feed behind `Subscription.<service>Events(after)`.
//!
//! One tail task per process reads the event log in position order and broadcasts what it
//! reads. A subscriber first joins the broadcast, then replays the log after its cursor from
//! the database, then takes live events, skipping any position it has already sent. Joining
//! before replaying is what makes the hand-over gap-free: everything the tail sends after the
//! join is live, everything before it was committed before the replay began. A subscriber
//! that falls behind the broadcast buffer simply replays from the database again, so a slow
//! client costs itself time, never correctness.
//!
//! The tail reads the database, not only in-process wake-ups: with several instances on one
//! database, an event committed through another instance reaches this one's subscribers at
//! the next poll, in log order, once.
//!
//! When the service shuts down, every subscription stream ends (the client gets `complete`),
//! so a client reconnects elsewhere with its last cursor instead of seeing a cut socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

/// Anything with a strictly increasing position in its log.
pub trait Positioned: Send + Sync + 'static {
    fn position(&self) -> i64;
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("event log unavailable: {0}")]
pub struct FeedError(pub String);

#[async_trait]
pub trait EventLogReader<E>: Send + Sync {
    /// Events with a position greater than `after`, oldest first, at most `limit`.
    async fn read_after(&self, after: i64, limit: i64) -> Result<Vec<E>, FeedError>;
    /// The highest committed position (0 when the log is empty).
    async fn head(&self) -> Result<i64, FeedError>;
}

/// Rung by the storage layer after each commit that wrote events, so the tail task and the
/// outbox relay wake at once instead of waiting for their poll interval.
#[derive(Clone)]
pub struct CommitSignal {
    sender: Arc<watch::Sender<u64>>,
}

impl CommitSignal {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(0);
        Self {
            sender: Arc::new(sender),
        }
    }

    pub fn notify(&self) {
        self.sender.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

impl Default for CommitSignal {
    fn default() -> Self {
        Self::new()
    }
}

/// How many subscriptions are open in this process, so shutdown can wait for them to close.
#[derive(Clone, Default)]
pub struct OpenSubscriptions(Arc<AtomicUsize>);

impl OpenSubscriptions {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn enter(&self, service: &'static str) -> SubscriptionGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!(crate::telemetry::names::SUBSCRIPTIONS, "service" => service)
            .increment(1.0);
        SubscriptionGuard {
            open: self.clone(),
            service,
        }
    }
}

struct SubscriptionGuard {
    open: OpenSubscriptions,
    service: &'static str,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.open.0.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!(crate::telemetry::names::SUBSCRIPTIONS, "service" => self.service)
            .decrement(1.0);
    }
}

const PAGE: i64 = 500;

pub struct EventFeed<E> {
    reader: Arc<dyn EventLogReader<E>>,
    live: broadcast::Sender<Arc<E>>,
    shutdown: watch::Receiver<bool>,
    open: OpenSubscriptions,
    service: &'static str,
}

/// Where a feed runs: its service's name (for metrics), the shutdown flag that ends its
/// tail and its subscriptions, and the process's count of open subscriptions.
pub struct FeedContext {
    pub service: &'static str,
    pub shutdown: watch::Receiver<bool>,
    pub open: OpenSubscriptions,
}

impl<E: Positioned> EventFeed<E> {
    /// Starts the tail task from the current head of the log. It stops when `shutdown`
    /// flips to true or the feed is dropped.
    pub async fn start(
        reader: Arc<dyn EventLogReader<E>>,
        commits: CommitSignal,
        poll_interval: Duration,
        buffer: usize,
        context: FeedContext,
    ) -> Result<Arc<Self>, FeedError> {
        let head = reader.head().await?;
        let (live, _) = broadcast::channel(buffer.max(16));
        let feed = Arc::new(Self {
            reader,
            live,
            shutdown: context.shutdown.clone(),
            open: context.open,
            service: context.service,
        });
        tokio::spawn(tail(
            Arc::downgrade(&feed),
            head,
            commits,
            poll_interval,
            context.shutdown,
        ));
        Ok(feed)
    }

    /// Every event after `after`, then every new one as it is committed, each exactly once
    /// and in order. The stream ends with an error item if the log cannot be read.
    pub fn subscribe(
        self: &Arc<Self>,
        after: i64,
    ) -> impl Stream<Item = Result<Arc<E>, FeedError>> + Send + use<E> {
        let feed = Arc::clone(self);
        let receiver = self.live.subscribe();
        let guard = self.open.enter(self.service);
        let shutdown = self.shutdown.clone();
        futures_util::stream::unfold(
            SubscriberState {
                feed,
                receiver,
                shutdown,
                _guard: guard,
                last: after,
                pending: std::collections::VecDeque::new(),
                replaying: true,
                failed: false,
            },
            |mut state| async move {
                let item = state.next().await?;
                Some((item, state))
            },
        )
    }
}

struct SubscriberState<E> {
    feed: Arc<EventFeed<E>>,
    receiver: broadcast::Receiver<Arc<E>>,
    shutdown: watch::Receiver<bool>,
    _guard: SubscriptionGuard,
    last: i64,
    pending: std::collections::VecDeque<Arc<E>>,
    replaying: bool,
    failed: bool,
}

impl<E: Positioned> SubscriberState<E> {
    async fn next(&mut self) -> Option<Result<Arc<E>, FeedError>> {
        if self.failed || *self.shutdown.borrow() {
            return None;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.last = event.position();
                return Some(Ok(event));
            }
            if self.replaying {
                match self.feed.reader.read_after(self.last, PAGE).await {
                    Ok(batch) => {
                        self.replaying = batch.len() as i64 == PAGE;
                        self.pending.extend(batch.into_iter().map(Arc::new));
                        continue;
                    }
                    Err(error) => {
                        self.failed = true;
                        return Some(Err(error));
                    }
                }
            }
            let received = tokio::select! {
                received = self.receiver.recv() => received,
                // Shutting down: end the stream so the client hears `complete`.
                _ = self.shutdown.changed() => return None,
            };
            match received {
                Ok(event) if event.position() <= self.last => continue,
                Ok(event) => {
                    self.last = event.position();
                    return Some(Ok(event));
                }
                // Fell behind the buffer: the database still has everything.
                Err(broadcast::error::RecvError::Lagged(_)) => self.replaying = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn tail<E: Positioned>(
    feed: std::sync::Weak<EventFeed<E>>,
    mut last: i64,
    commits: CommitSignal,
    poll_interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut commits = commits.subscribe();
    loop {
        let Some(strong) = feed.upgrade() else { return };
        let mut full_page = false;
        match strong.reader.read_after(last, PAGE).await {
            Ok(batch) => {
                full_page = batch.len() as i64 == PAGE;
                for event in batch {
                    last = event.position();
                    // No receiver is fine: nobody is subscribed right now.
                    let _ = strong.live.send(Arc::new(event));
                }
            }
            Err(error) => tracing::warn!(%error, "event feed could not read the log"),
        }
        drop(strong);
        if full_page {
            continue;
        }
        tokio::select! {
            _ = commits.changed() => {}
            _ = tokio::time::sleep(poll_interval) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
