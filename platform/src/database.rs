//! Opening a service's own database: the pools a URL names, created and migrated as needed.
//! Each service owns its schema and statements; what they share is how a connection is made,
//! so SQLite gets the same durability and locking settings everywhere.
//!
//! Migrations stay in the service: `sqlx::migrate!` embeds the directory of the crate that
//! invokes it, so each service hands its own [`Migrations`] in.
//!
//! Writes that cannot be cut in half. sqlx's transactions are not safe to drop at every
//! `.await`: on SQLite a custom `BEGIN` (our `BEGIN IMMEDIATE`) is acknowledged by the
//! connection's worker and then awaits once more before the `Transaction` guard exists, so a
//! future dropped there returns the connection to the pool inside an open transaction that
//! nobody will end; on PostgreSQL `BEGIN` has a similar window (sqlx issue 4385). Requests
//! are dropped whenever their client goes away, so the services never let a request own a
//! transaction: [`run_to_completion`] runs each write in a task of its own that the request
//! only waits for, and the writer pools discard any connection that comes back still inside
//! a transaction ([`Database::open`]), whatever left it there.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Pool, Postgres, Sqlite};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(#[from] MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite:// or postgres://")]
    UnsupportedUrl(String),
}

/// A service's migrations for each dialect, e.g.
/// `static MIGRATIONS: Migrations = Migrations { sqlite: sqlx::migrate!("./migrations/sqlite"), postgres: sqlx::migrate!("./migrations/postgres") };`
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// Writes and reads go through separate pools so SQLite's single writer can queue in its
/// pool; on PostgreSQL both are the same pool.
#[derive(Debug)]
pub struct Pools<DB: sqlx::Database> {
    pub writer: Pool<DB>,
    pub reader: Pool<DB>,
}

/// The database a URL names, open and migrated.
#[derive(Debug)]
pub enum Database {
    Sqlite(Pools<Sqlite>),
    Postgres(Pools<Postgres>),
}

impl Database {
    /// Opens (creating and migrating as needed) the database the URL names: `sqlite:…`,
    /// `postgres:…` or `postgresql:…`.
    pub async fn open(
        url: &str,
        max_connections: u32,
        migrations: &Migrations,
    ) -> Result<Self, OpenError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL + NORMAL survives a process crash; only an OS crash can lose the last commits.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(parent) = options.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
            }
            // SQLite allows one writer at a time: a one-connection pool makes writers queue
            // here instead of failing with `SQLITE_BUSY`.
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(60))
                .after_release(|conn, meta| Box::pin(release_sqlite_writer(conn, meta)))
                .connect_with(options.clone())
                .await?;
            migrations.sqlite.run(&writer).await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(max_connections.max(2))
                .connect_with(options.read_only(true))
                .await?;
            Ok(Self::Sqlite(Pools { writer, reader }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?.options([
                // A writer waits for another's row lock as long as SQLite's busy timeout, then
                // fails instead of queueing every later request behind it.
                ("lock_timeout", "10s"),
                // The server ends a session left inside a transaction that nobody will finish
                // (the window in sqlx's BEGIN that the pool cannot see), freeing its locks.
                ("idle_in_transaction_session_timeout", "60s"),
            ]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                // sqlx queues the rollback of a dropped transaction and lowers the depth at
                // once, so a connection still counted inside one was lost mid-`BEGIN` or
                // mid-commit: close it rather than lend it out.
                .after_release(|conn, _| Box::pin(async move { Ok(!leaked_transaction(&*conn)) }))
                .connect_with(options)
                .await?;
            migrations.postgres.run(&pool).await?;
            Ok(Self::Postgres(Pools {
                writer: pool.clone(),
                reader: pool,
            }))
        } else {
            Err(OpenError::UnsupportedUrl(url.to_owned()))
        }
    }
}

/// A connection back in the pool still inside a transaction is closed, never lent out again:
/// the next borrower's statements would run inside it and its `BEGIN` would fail.
async fn release_sqlite_writer(
    conn: &mut sqlx::SqliteConnection,
    _: PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    // The worker thread runs commands in order and lowers the transaction depth when it runs
    // a dropped transaction's queued rollback: after a ping, the depth is the truth.
    conn.ping().await?;
    Ok(!leaked_transaction(conn))
}

fn leaked_transaction<C: Connection>(conn: &C) -> bool {
    let leaked = conn.is_in_transaction();
    if leaked {
        tracing::warn!("a database connection came back inside a transaction; it is closed");
    }
    leaked
}

/// Why a write run by [`run_to_completion`] has no result to give.
#[derive(Debug, thiserror::Error)]
pub enum WriteAborted {
    #[error("the write failed unexpectedly (a bug); its transaction was rolled back")]
    Panicked,
    #[error("the write was stopped because the service is shutting down")]
    ShuttingDown,
}

/// Runs a write in a task of its own and waits for its result. Dropping the returned future
/// (the client hung up, a timeout fired) stops only the waiting: the write still commits or
/// rolls back as a whole, and its connection returns to the pool outside any transaction.
/// Every service runs every write transaction through here.
pub async fn run_to_completion<T, E>(
    write: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<WriteAborted> + Send + 'static,
{
    match tokio::spawn(write).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => {
            // The panic itself was reported by the panic hook; a transaction open during it
            // was rolled back by its guard or is discarded with its connection.
            Err(WriteAborted::Panicked.into())
        }
        Err(_) => Err(WriteAborted::ShuttingDown.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn other_urls_are_refused() {
        static NONE: Migrations = Migrations {
            sqlite: Migrator::DEFAULT,
            postgres: Migrator::DEFAULT,
        };
        let error = Database::open("mysql://localhost/db", 2, &NONE)
            .await
            .unwrap_err();
        assert!(matches!(error, OpenError::UnsupportedUrl(_)));
    }

    static NONE: Migrations = Migrations {
        sqlite: Migrator::DEFAULT,
        postgres: Migrator::DEFAULT,
    };

    async fn sqlite_writer() -> (Pool<Sqlite>, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("platform-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}", path.display());
        match Database::open(&url, 2, &NONE).await.expect("open") {
            Database::Sqlite(pools) => (pools.writer, path),
            Database::Postgres(_) => unreachable!("a SQLite URL"),
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct TestError(String);

    impl From<WriteAborted> for TestError {
        fn from(e: WriteAborted) -> Self {
            Self(e.to_string())
        }
    }

    #[tokio::test]
    async fn a_write_whose_caller_stops_waiting_still_commits() {
        let (writer, path) = sqlite_writer().await;
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&writer)
            .await
            .expect("create");
        let pool = writer.clone();
        let waiting = run_to_completion(async move {
            let mut tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| TestError(e.to_string()))?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *tx)
                .await
                .map_err(|e| TestError(e.to_string()))?;
            tx.commit().await.map_err(|e| TestError(e.to_string()))
        });
        // The caller gives up long before the write ends, as a client that hangs up does.
        assert!(
            tokio::time::timeout(Duration::from_millis(5), waiting)
                .await
                .is_err()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&writer)
            .await
            .expect("count");
        assert_eq!(rows, 1);
        writer.close().await;
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_panicking_write_is_an_error_and_the_writer_keeps_working() {
        let (writer, path) = sqlite_writer().await;
        let pool = writer.clone();
        let outcome: Result<(), TestError> = run_to_completion(async move {
            let _tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(|e| TestError(e.to_string()))?;
            panic!("a bug inside a write transaction");
        })
        .await;
        assert!(outcome.is_err());
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .expect("the writer begins again");
        sqlx::query("SELECT 1")
            .execute(&mut *tx)
            .await
            .expect("select");
        tx.commit().await.expect("commit");
        writer.close().await;
        let _ = std::fs::remove_file(path);
    }

    /// What a request dropped inside sqlx's `BEGIN` leaves: a pooled connection inside a
    /// transaction that no guard will end. The pool must close it instead of lending it out.
    #[tokio::test]
    async fn a_connection_returned_inside_a_transaction_is_closed_not_reused() {
        let (writer, path) = sqlite_writer().await;
        {
            let mut conn = writer.acquire().await.expect("acquire");
            let tx = conn.begin_with("BEGIN IMMEDIATE").await.expect("begin");
            // No guard runs: the transaction stays open, as after the cancelled `BEGIN`.
            std::mem::forget(tx);
            assert!(conn.is_in_transaction());
        }
        // Before the fix this failed for good with "attempted to call begin_with at
        // non-zero transaction depth".
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut tx = loop {
            match writer.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => break tx,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    // The release runs in the background; the pool may not have closed the
                    // connection yet.
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("the writer never recovered: {error}"),
            }
        };
        sqlx::query("SELECT 1")
            .execute(&mut *tx)
            .await
            .expect("select");
        tx.commit().await.expect("commit");
        writer.close().await;
        let _ = std::fs::remove_file(path);
    }
}
