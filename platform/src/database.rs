//! Opening a service's own database: the pools a URL names, created and migrated as needed.
//! Each service owns its schema and statements; what they share is how a connection is made,
//! so SQLite gets the same durability and locking settings everywhere.
//!
//! Migrations stay in the service: `sqlx::migrate!` embeds the directory of the crate that
//! invokes it, so each service hands its own [`Migrations`] in.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Postgres, Sqlite};

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
                .connect_with(options.clone())
                .await?;
            migrations.sqlite.run(&writer).await?;
            let reader = SqlitePoolOptions::new()
                .max_connections(max_connections.max(2))
                .connect_with(options.read_only(true))
                .await?;
            Ok(Self::Sqlite(Pools { writer, reader }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
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
}
