//! Plumbing the Conference Tools services share and that carries no domain knowledge:
//! bearer-token auth, the event bus (in-process or NATS JetStream), the outbox relay, the
//! resumable event feed, the GraphQL transport with its limits per client, server start-up with readiness and graceful
//! shutdown, logs and metrics, and opening a database. Each service keeps its own
//! domain, storage and schema; nothing in here knows what a ticket or a sponsor is.

pub mod auth;
pub mod signal;
pub use auth::{AuthError, JwtKeys, Principal};

// The gateway uses `auth`, `signal` and the `edge` modules alone (`default-features = false`,
// feature `edge`): the HTTP edge, the document lexer, client addresses and rate limits; the
// services use everything.
#[cfg(feature = "service")]
pub mod bus;
#[cfg(feature = "edge")]
pub mod client_address;
#[cfg(feature = "service")]
pub mod cursor;
#[cfg(feature = "service")]
pub mod database;
#[cfg(feature = "edge")]
pub mod document_text;
#[cfg(feature = "edge")]
pub mod edge;
#[cfg(feature = "service")]
pub mod event_log;
#[cfg(feature = "service")]
pub mod feed;
#[cfg(feature = "service")]
pub mod graphql;
#[cfg(feature = "service")]
pub mod jetstream;
#[cfg(feature = "edge")]
pub mod memory;
#[cfg(feature = "service")]
pub mod operation_limits;
#[cfg(feature = "service")]
pub mod outbox;
#[cfg(feature = "service")]
pub mod page;
#[cfg(feature = "edge")]
pub mod rate_limit;
#[cfg(feature = "service")]
pub mod server;
#[cfg(feature = "service")]
pub mod telemetry;
#[cfg(feature = "service")]
pub mod text;

#[cfg(feature = "service")]
pub use bus::{BusError, BusMessage, EventBus, InProcessBus};
#[cfg(feature = "service")]
pub use cursor::Cursor;
#[cfg(feature = "service")]
pub use event_log::{EventKind, EventStorage, LoggedEvent};
#[cfg(feature = "service")]
pub use feed::{CommitSignal, EventFeed, EventLogReader, FeedError, OpenSubscriptions, Positioned};
#[cfg(feature = "service")]
pub use outbox::{Outbox, OutboxError, OutboxMessage, OutboxRelay, RelayLease};
#[cfg(feature = "service")]
pub use page::Page;
