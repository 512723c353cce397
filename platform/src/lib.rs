//! Plumbing the Conference Tools services share and that carries no domain knowledge:
//! bearer-token auth, the event bus (in-process or NATS JetStream), the outbox relay, the
//! resumable event feed, the GraphQL transport, server start-up with readiness and graceful
//! shutdown, logs and metrics, and opening a database. Each service keeps its own
//! domain, storage and schema; nothing in here knows what a ticket or a sponsor is.

pub mod auth;
pub mod bus;
pub mod cursor;
pub mod database;
pub mod event_log;
pub mod feed;
pub mod graphql;
pub mod jetstream;
pub mod outbox;
pub mod page;
pub mod server;
pub mod telemetry;

pub use auth::{AuthError, JwtKeys, Principal};
pub use bus::{BusError, BusMessage, EventBus, InProcessBus};
pub use cursor::Cursor;
pub use event_log::{EventKind, EventStorage, LoggedEvent};
pub use feed::{CommitSignal, EventFeed, EventLogReader, FeedError, OpenSubscriptions, Positioned};
pub use outbox::{Outbox, OutboxError, OutboxMessage, OutboxRelay, RelayLease};
pub use page::Page;
