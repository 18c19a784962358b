use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in the store.
///
/// Messages are self-contained (they carry the underlying error's text) so that one log
/// line names the database, the operation and the cause. Passwords never appear: URLs are
/// shown redacted. Causes are kept behind `Arc` so that one failed batch can hand the same
/// error to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store URL cannot be used.
    #[error("bad store URL `{url_redacted}`: {reason}")]
    BadUrl {
        url_redacted: String,
        reason: String,
    },
    /// A report field breaks a column rule; nothing was written.
    #[error("report field `{field}` rejected by the store: {reason}")]
    InvalidReport { field: &'static str, reason: String },
    /// An analytics query cannot be answered as asked; nothing was read.
    #[error("analytics query field `{field}` rejected: {reason}")]
    InvalidQuery { field: &'static str, reason: String },
    /// An SQLite call failed.
    #[error("sqlite `{db}`: {op}: {error}")]
    Sqlite {
        db: String,
        op: &'static str,
        error: Arc<rusqlite::Error>,
    },
    /// A PostgreSQL call failed.
    #[error("postgres `{db}`: {op}: {}", chain(&**error))]
    Postgres {
        db: String,
        op: &'static str,
        error: Arc<tokio_postgres::Error>,
    },
    /// No PostgreSQL connection could be had from the pool.
    #[error("postgres `{db}`: {op}: no connection: {}", chain(&**error))]
    PostgresPool {
        db: String,
        op: &'static str,
        error: Arc<deadpool_postgres::PoolError>,
    },
    /// A stored value cannot be turned back into a report column.
    #[error("`{db}`: column `{column}`: {reason}")]
    Decode {
        db: String,
        column: &'static str,
        reason: String,
    },
    /// The database cannot be put in the mode the store needs.
    #[error("`{db}`: cannot be set up: {reason}")]
    Setup { db: String, reason: String },
    /// A schema migration could not be applied; the transaction was rolled back.
    #[error("schema migration {version} failed: {reason}")]
    Migration { version: i64, reason: String },
    /// A PostgreSQL count kept racing other collectors' counts for new snapshot rows, even
    /// counted alone; its reports stay uncounted, for the next pass.
    #[error("postgres `{db}`: counting raced other collectors' counts {races} times")]
    Raced { db: String, races: usize },
    /// The writer has stopped (the store is shutting down or its writer thread died).
    #[error("report store is closed: its writer has stopped")]
    Closed,
    /// A file-system operation on the SQLite database's location failed.
    #[error("{op} `{}`: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: Arc<std::io::Error>,
    },
}

/// The error's message followed by those of its causes: tokio-postgres keeps the server's
/// message in a cause and shows only "db error" itself.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let message = inner.to_string();
        if !text.ends_with(&message) {
            text = format!("{text}: {message}");
        }
        cause = inner.source();
    }
    text
}

impl StoreError {
    /// The database's disk (or PostgreSQL's) is full: nothing can be committed until space
    /// is freed. SQLite says `SQLITE_FULL`, PostgreSQL `disk_full` (53100).
    pub fn is_full(&self) -> bool {
        match self {
            Self::Sqlite { error, .. } => {
                error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            Self::Postgres { error, .. } => {
                error.code() == Some(&tokio_postgres::error::SqlState::DISK_FULL)
            }
            Self::Io { error, .. } => error.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }

    pub(crate) fn sqlite(db: &str, op: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |error| Self::Sqlite {
            db: db.to_owned(),
            op,
            error: Arc::new(error),
        }
    }

    pub(crate) fn postgres(
        db: &str,
        op: &'static str,
    ) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |error| Self::Postgres {
            db: db.to_owned(),
            op,
            error: Arc::new(error),
        }
    }

    pub(crate) fn pool(
        db: &str,
        op: &'static str,
    ) -> impl FnOnce(deadpool_postgres::PoolError) -> Self {
        move |error| Self::PostgresPool {
            db: db.to_owned(),
            op,
            error: Arc::new(error),
        }
    }
}
