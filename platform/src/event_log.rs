//! A service's event log as the shared plumbing sees it. Each service stores its own events
//! in its own tables and says what its events are ([`EventKind`]) and how to read them
//! ([`EventStorage`]); from that this module makes the live feed's reader and the relay's
//! outbox, so neither adapter is written again per service.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::bus::EventBus;
use crate::cursor::Cursor;
use crate::feed::{CommitSignal, EventFeed, EventLogReader, FeedContext, FeedError, Positioned};
use crate::outbox::{Outbox, OutboxError, OutboxMessage, OutboxRelay, RelayLease};
use crate::server::{Background, Probe};

/// What happens in a service: its own enum, adjacently tagged
/// (`#[serde(tag = "type", content = "data")]`) so that the type name and what the event is
/// about can be stored in separate columns and sent as separate fields.
pub trait EventKind: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind tag of the log's opaque cursors, e.g. `ticket-event`. Read with the dash as a
    /// space, it also names the cursor in error messages ("a ticket event cursor").
    const CURSOR_KIND: &'static str;
    /// Bus subjects are `<SUBJECT_PREFIX>.<event type>`, e.g. `ticketing.events`.
    const SUBJECT_PREFIX: &'static str;

    /// The type name consumers dispatch on, e.g. `TicketPurchaseCreated`.
    fn event_type(&self) -> &'static str;

    /// Splits into the stored `(event_type, data)` pair.
    fn to_stored(&self) -> Result<(&'static str, serde_json::Value), serde_json::Error> {
        let mut value = serde_json::to_value(self)?;
        let data = value
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or(serde_json::Value::Null);
        Ok((self.event_type(), data))
    }

    fn from_stored(event_type: &str, data: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
    }
}

/// An event as committed to a service's log: where, when and which, around the service's
/// own [`EventKind`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent<K> {
    pub position: i64,
    /// Unique per event; bus consumers deduplicate by it.
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub kind: K,
}

impl<K: EventKind> LoggedEvent<K> {
    /// Where a reader resumes right after this event.
    pub fn cursor(&self) -> String {
        Cursor::encode_position(K::CURSOR_KIND, self.position)
    }

    pub fn subject(&self) -> String {
        format!("{}.{}", K::SUBJECT_PREFIX, self.kind.event_type())
    }

    /// The message internal systems receive on the bus: the same envelope from every service.
    pub fn bus_payload(&self) -> serde_json::Value {
        let data = self
            .kind
            .to_stored()
            .map(|(_, d)| d)
            .unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "id": self.id,
            "type": self.kind.event_type(),
            "position": self.position,
            "occurredAt": self.occurred_at,
            "data": data,
        })
    }
}

impl<K: EventKind> Positioned for LoggedEvent<K> {
    fn position(&self) -> i64 {
        self.position
    }
}

/// Reading a service's event log and keeping the relay's place in it.
#[async_trait]
pub trait EventStorage: Send + Sync {
    type Kind: EventKind;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Events with a position greater than `after`, oldest first, at most `limit`.
    async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent<Self::Kind>>, Self::Error>;
    /// The highest committed position (0 when the log is empty).
    async fn event_head(&self) -> Result<i64, Self::Error>;
    /// The position up to which the relay has published.
    async fn outbox_offset(&self) -> Result<i64, Self::Error>;
    /// Moves the relay's position forward (never back).
    async fn set_outbox_offset(&self, position: i64) -> Result<(), Self::Error>;
    /// Asks to be the one relay of this log among the instances sharing the database;
    /// `None` while another holds the lease. Without an override every relay leads.
    async fn lead_relay(&self) -> Result<Option<RelayLease>, Self::Error> {
        Ok(Some(RelayLease::unconditional()))
    }
    /// Proves the service can commit a write right now (`/ready`): begins a write transaction
    /// and rolls it back. Runs to completion even when its caller stops waiting.
    async fn probe_writer(&self) -> Result<(), Self::Error>;
}

/// The storage seen as an event log, for the live feed.
pub struct StoreEventLog<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: EventStorage + ?Sized> EventLogReader<LoggedEvent<S::Kind>> for StoreEventLog<S> {
    async fn read_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent<S::Kind>>, FeedError> {
        self.0
            .events_after(after, limit)
            .await
            .map_err(|e| FeedError(e.to_string()))
    }

    async fn head(&self) -> Result<i64, FeedError> {
        self.0
            .event_head()
            .await
            .map_err(|e| FeedError(e.to_string()))
    }
}

/// The storage seen as an outbox, for the bus relay.
pub struct StoreOutbox<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: EventStorage + ?Sized> Outbox for StoreOutbox<S> {
    async fn unpublished(&self, limit: i64) -> Result<Vec<OutboxMessage>, OutboxError> {
        let err = |e: S::Error| OutboxError(e.to_string());
        let offset = self.0.outbox_offset().await.map_err(err)?;
        let events = self.0.events_after(offset, limit).await.map_err(err)?;
        Ok(events
            .into_iter()
            .map(|e| OutboxMessage {
                position: e.position,
                id: e.id,
                subject: e.subject(),
                payload: e.bus_payload(),
            })
            .collect())
    }

    async fn mark_published(&self, up_to_position: i64) -> Result<(), OutboxError> {
        self.0
            .set_outbox_offset(up_to_position)
            .await
            .map_err(|e| OutboxError(e.to_string()))
    }

    async fn lead(&self) -> Result<Option<RelayLease>, OutboxError> {
        self.0
            .lead_relay()
            .await
            .map_err(|e| OutboxError(e.to_string()))
    }

    async fn lag(&self) -> Result<i64, OutboxError> {
        let err = |e: S::Error| OutboxError(e.to_string());
        let offset = self.0.outbox_offset().await.map_err(err)?;
        let head = self.0.event_head().await.map_err(err)?;
        Ok((head - offset).max(0))
    }
}

/// How many events the live feed keeps for subscribers that are momentarily behind.
const FEED_BUFFER: usize = 4096;

/// Starts the live feed over the log and the relay that publishes it to the bus; both stop
/// with `background`, which also learns how to tell whether the database and the bus are
/// reachable (`/ready`).
pub async fn start_event_log<S>(
    storage: Arc<S>,
    bus: Arc<dyn EventBus>,
    commits: CommitSignal,
    poll_interval: Duration,
    background: &mut Background,
) -> Result<Arc<EventFeed<LoggedEvent<S::Kind>>>, FeedError>
where
    S: EventStorage + ?Sized + 'static,
{
    let service = crate::telemetry::service_of_prefix(S::Kind::SUBJECT_PREFIX);
    let log = Arc::new(StoreEventLog(Arc::clone(&storage)));
    let feed = EventFeed::start(
        Arc::clone(&log) as Arc<dyn EventLogReader<LoggedEvent<S::Kind>>>,
        commits.clone(),
        poll_interval,
        FEED_BUFFER,
        FeedContext {
            service,
            shutdown: background.shutdown_flag(),
            open: background.open_subscriptions(),
        },
    )
    .await?;
    background.add_probe(
        "database",
        Arc::new(DatabaseProbe {
            storage: Arc::clone(&storage),
            running: Arc::default(),
        }),
    );
    background.add_probe("bus", Arc::new(BusProbe(Arc::clone(&bus))));
    let relay = OutboxRelay::new(
        Arc::new(StoreOutbox(storage)),
        bus,
        commits,
        poll_interval,
        service,
    );
    background.spawn(|shutdown| relay.run(shutdown));
    Ok(feed)
}

/// The database is ready when the log's head can be read and a write transaction can begin:
/// a writer wedged inside a transaction, or a database that refuses writes, fails it.
struct DatabaseProbe<S: ?Sized> {
    storage: Arc<S>,
    /// Held by the probe in flight. `/ready` stops waiting after a timeout but the probe runs
    /// on; while it does, a load balancer polling every second starts no second one.
    running: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait]
impl<S: EventStorage + ?Sized + 'static> Probe for DatabaseProbe<S> {
    async fn probe(&self) -> Result<(), String> {
        let Ok(in_flight) = Arc::clone(&self.running).try_lock_owned() else {
            return Err("the previous write probe has not finished".into());
        };
        let storage = Arc::clone(&self.storage);
        let probe = tokio::spawn(async move {
            let _in_flight = in_flight;
            storage.event_head().await.map_err(|e| e.to_string())?;
            storage.probe_writer().await.map_err(|e| e.to_string())
        });
        probe
            .await
            .unwrap_or_else(|_| Err("the write probe did not finish".into()))
    }
}

struct BusProbe(Arc<dyn EventBus>);

#[async_trait]
impl Probe for BusProbe {
    async fn probe(&self) -> Result<(), String> {
        self.0.ready().await.map_err(|e| e.to_string())
    }
}

/// The three tables every service's event log lives in.
#[derive(Debug, Clone, Copy)]
pub struct EventTables {
    /// `position, id, event_type, payload, occurred_at`
    pub events: &'static str,
    /// One row: the last position handed out.
    pub head: &'static str,
    /// One row: how far the outbox relay has published.
    pub outbox_offset: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored event could not be read: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// The event-log reads and the outbox offset update, the same statements for every service
/// and both dialects; a service names its tables and picks the pool (reader or writer).
#[async_trait]
pub trait EventLogPool {
    async fn logged_events_after<K: EventKind>(
        &self,
        tables: &EventTables,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LoggedEvent<K>>, EventLogError>;
    async fn logged_head(&self, tables: &EventTables) -> Result<i64, EventLogError>;
    async fn logged_outbox_offset(&self, tables: &EventTables) -> Result<i64, EventLogError>;
    async fn advance_outbox_offset(
        &self,
        tables: &EventTables,
        position: i64,
    ) -> Result<(), EventLogError>;
    /// Begins a write transaction, takes the lock every write needs, and rolls back; see
    /// [`EventStorage::probe_writer`]. Run it to completion (it holds a transaction).
    async fn probe_writer(&self, tables: &EventTables) -> Result<(), EventLogError>;
}

macro_rules! event_log_pool_for {
    ($db:ty) => {
        #[async_trait]
        impl EventLogPool for sqlx::Pool<$db> {
            async fn logged_events_after<K: EventKind>(
                &self,
                tables: &EventTables,
                after: i64,
                limit: i64,
            ) -> Result<Vec<LoggedEvent<K>>, EventLogError> {
                use sqlx::Row;
                let rows = sqlx::query(&format!(
                    "SELECT position, id, event_type, payload, occurred_at FROM {} WHERE position > $1 ORDER BY position LIMIT $2",
                    tables.events
                ))
                .bind(after)
                .bind(limit.clamp(1, 1000))
                .fetch_all(self)
                .await?;
                rows.iter()
                    .map(|row| {
                        let event_type: String = row.try_get("event_type")?;
                        let sqlx::types::Json(data): sqlx::types::Json<serde_json::Value> =
                            row.try_get("payload")?;
                        Ok(LoggedEvent {
                            position: row.try_get("position")?,
                            id: row.try_get("id")?,
                            occurred_at: row.try_get("occurred_at")?,
                            kind: K::from_stored(&event_type, data)?,
                        })
                    })
                    .collect()
            }

            async fn logged_head(&self, tables: &EventTables) -> Result<i64, EventLogError> {
                Ok(
                    sqlx::query_scalar(&format!("SELECT position FROM {}", tables.head))
                        .fetch_one(self)
                        .await?,
                )
            }

            async fn logged_outbox_offset(
                &self,
                tables: &EventTables,
            ) -> Result<i64, EventLogError> {
                Ok(
                    sqlx::query_scalar(&format!("SELECT position FROM {}", tables.outbox_offset))
                        .fetch_one(self)
                        .await?,
                )
            }

            async fn probe_writer(&self, tables: &EventTables) -> Result<(), EventLogError> {
                // The write path's own first step and its hot lock: SQLite's database write
                // lock (BEGIN IMMEDIATE), PostgreSQL's lock on the head row, which every write
                // transaction takes and a wedged one keeps. A row lock also needs a transaction
                // id, which a read-only or recovering server refuses. Nothing is written.
                let sqlite = <$db as sqlx::Database>::NAME == "SQLite";
                let mut tx = if sqlite {
                    self.begin_with("BEGIN IMMEDIATE").await?
                } else {
                    self.begin().await?
                };
                let lock = if sqlite { "" } else { " FOR UPDATE" };
                sqlx::query(&format!("SELECT position FROM {}{lock}", tables.head))
                    .fetch_one(&mut *tx)
                    .await?;
                tx.rollback().await?;
                Ok(())
            }

            async fn advance_outbox_offset(
                &self,
                tables: &EventTables,
                position: i64,
            ) -> Result<(), EventLogError> {
                // Never backwards: a slow relay instance cannot undo a faster one's progress.
                sqlx::query(&format!(
                    "UPDATE {} SET position = $1 WHERE position < $1",
                    tables.outbox_offset
                ))
                .bind(position)
                .execute(self)
                .await?;
                Ok(())
            }
        }
    };
}

event_log_pool_for!(sqlx::Sqlite);
event_log_pool_for!(sqlx::Postgres);

/// One relay per log among the instances sharing a PostgreSQL database: a session-level
/// advisory lock held on a connection of its own, outside the pool, so it lasts exactly as
/// long as that session. A crashed instance's session ends and the lock with it. SQLite has no
/// such lock; there every relay leads and the bus drops the repeats by event id.
#[async_trait]
pub trait RelayLeasing {
    async fn lead_relay(&self, tables: &EventTables) -> Result<Option<RelayLease>, EventLogError>;
}

#[async_trait]
impl RelayLeasing for sqlx::Pool<sqlx::Sqlite> {
    async fn lead_relay(&self, _: &EventTables) -> Result<Option<RelayLease>, EventLogError> {
        Ok(Some(RelayLease::unconditional()))
    }
}

#[async_trait]
impl RelayLeasing for sqlx::Pool<sqlx::Postgres> {
    async fn lead_relay(&self, tables: &EventTables) -> Result<Option<RelayLease>, EventLogError> {
        use sqlx::Connection;
        let options = self.connect_options();
        let mut connection = sqlx::PgConnection::connect_with(&options).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(relay_lock_key(tables))
            .fetch_one(&mut connection)
            .await?;
        if locked {
            Ok(Some(RelayLease::held_by(connection)))
        } else {
            let _ = connection.close().await;
            Ok(None)
        }
    }
}

/// The advisory lock key of a log's relay: FNV-1a of its offset table's name, the same in
/// every instance and every build (std's hasher promises neither).
fn relay_lock_key(tables: &EventTables) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in tables.outbox_offset.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_log_has_its_own_stable_relay_lock() {
        let tables = |offset| EventTables {
            events: "e",
            head: "h",
            outbox_offset: offset,
        };
        let ticketing = relay_lock_key(&tables("ticket_outbox_offset"));
        assert_eq!(ticketing, relay_lock_key(&tables("ticket_outbox_offset")));
        assert_ne!(ticketing, relay_lock_key(&tables("sponsor_outbox_offset")));
    }
}
