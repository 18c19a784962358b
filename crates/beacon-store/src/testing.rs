//! Test databases, for the tests of this crate and of the crates that use a store (only
//! with the `testing` feature, which only dev-dependencies turn on).
//!
//! A [`TestDb`] is an SQLite file in a temporary directory, or a PostgreSQL schema of its
//! own on the server at `TEST_DATABASE_URL`; dropping it removes the file or the schema,
//! also when the test panics. Without `TEST_DATABASE_URL` the PostgreSQL half fails,
//! saying how to set it, unless `BEACON_SKIP_POSTGRES=1` asks to skip it.
//! [`sample_report`] is a report to store when its contents do not matter.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use tempfile::TempDir;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::url::{self, PgTarget, StoreUrl};
use crate::{Facts, NewReport, StoreError};

const HOW_TO: &str = "TEST_DATABASE_URL is not set: PostgreSQL tests need a server, e.g. \
     `export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test`; \
     to skip them instead, set BEACON_SKIP_POSTGRES=1";

/// How long the schema drop waits for a lock before it ends the sessions that hold one.
const LOCK_WAIT: &str = "500ms";
const DROP_ATTEMPTS: u32 = 10;

/// A database that lives as long as the test holds it.
///
/// Open the store with [`TestDb::url`], and drop the store before the `TestDb` (declare it
/// after), so that the store's sessions are done when the schema goes.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    /// The PostgreSQL schema dropped with the value; `None` for SQLite.
    schema: Option<String>,
    dir: Option<TempDir>,
}

impl TestDb {
    /// An SQLite file in a temporary directory of its own.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for the test database");
        Self {
            url: format!("sqlite://{}", dir.path().join("collector.db").display()),
            schema: None,
            dir: Some(dir),
        }
    }

    /// A schema no other test uses on the server at `TEST_DATABASE_URL` (created when a
    /// store opens the URL), or `None`, after a note, when `BEACON_SKIP_POSTGRES=1`.
    ///
    /// # Panics
    /// When `TEST_DATABASE_URL` is unset and skipping was not asked for: a missing database
    /// must fail the run, not pass it silently.
    pub fn postgres() -> Option<Self> {
        if std::env::var("BEACON_SKIP_POSTGRES").is_ok_and(|skip| skip == "1") {
            eprintln!("note: BEACON_SKIP_POSTGRES=1, skipping the PostgreSQL half of this test");
            return None;
        }
        let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
            panic!("{HOW_TO}");
        };
        let schema = unique_schema();
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(Self {
            url: format!("{base}{separator}schema={schema}"),
            schema: Some(schema),
            dir: None,
        })
    }

    /// SQLite, then PostgreSQL unless skipped: the backends every store test runs on.
    pub fn each() -> Vec<Self> {
        let mut all = vec![Self::sqlite()];
        all.extend(Self::postgres());
        all
    }

    /// The store URL: `sqlite://FILE`, or `postgres://...?schema=NAME`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory of the SQLite file (removed with the value); `None` for PostgreSQL.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// `"sqlite"` or `"postgres"`, as the store's `backend()` names it.
    pub fn backend(&self) -> &'static str {
        if self.schema.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// Drops the PostgreSQL schema now, under an open store (a test of what the store does
    /// when its tables vanish); does nothing for SQLite.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        match url::parse(&self.url)? {
            StoreUrl::Postgres(target) => drop_schema_of(*target).await,
            StoreUrl::Sqlite(_) => Ok(()),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.schema.is_none() {
            return;
        }
        let url = self.url.clone();
        // Drop cannot await, and the test's runtime may have a single thread: the drop runs
        // on a thread of its own, with a runtime of its own, and is waited for.
        let error = match std::thread::spawn(move || drop_schema_blocking(&url)).join() {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => "the thread dropping the schema panicked".to_owned(),
        };
        let db = url::redact(&self.url);
        // A second panic would abort the test run and hide the first one.
        if std::thread::panicking() {
            eprintln!("test database {db}: {error}");
        } else {
            panic!("test database {db}: {error}");
        }
    }
}

/// A valid 5.x report of node `uuid` on `day`, with every column set (no analytics facts).
pub fn sample_report(uuid: &str, day: NaiveDate) -> NewReport {
    let received_at = day
        .and_hms_micro_opt(12, 34, 56, 789_012)
        .expect("a valid time")
        .and_utc();
    NewReport {
        uuid: uuid.into(),
        cluster_uuid: Some("9A3B6F2C-1D4E-4F5A-8B7C-0D1E2F3A4B5C".into()),
        day,
        received_at,
        emqx_version: "5.0.9".into(),
        os_name: Some("Ubuntu".into()),
        os_version: Some("22.04".into()),
        edition: Some("opensource".into()),
        node_count: 3,
        format: 5,
        raw: format!(r#"{{"uuid":"{uuid}","emqx_version":"5.0.9","extra":{{"kept":true}}}}"#),
        analytics: Facts::default(),
    }
}

/// [`drop_schema_of`] the schema `url` names, on a runtime of the calling thread's own.
fn drop_schema_blocking(url: &str) -> Result<(), StoreError> {
    let StoreUrl::Postgres(target) = url::parse(url)? else {
        return Ok(());
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the schema drop")
        .block_on(drop_schema_of(*target))
}

/// Drops the schema named by the URL's `schema` parameter and everything in it.
async fn drop_schema_of(target: PgTarget) -> Result<(), StoreError> {
    let Some(schema) = target.schema else {
        return Err(not_a_test_schema(&target.redacted));
    };
    let db = target.redacted;
    let (client, connection) = target
        .config
        .connect(NoTls)
        .await
        .map_err(StoreError::postgres(&db, "connect to drop test schema"))?;
    let connection = tokio::spawn(connection);
    // The name was checked to be a plain lowercase identifier when the URL was parsed.
    let sql = format!("SET lock_timeout = '{LOCK_WAIT}'; DROP SCHEMA IF EXISTS {schema} CASCADE");
    let mut attempts = 0;
    let dropped = loop {
        attempts += 1;
        match client.batch_execute(&sql).await {
            // A store dropped just before may still be inside a transaction, run by a task
            // of a runtime that is now blocked on this drop or gone with a panic: its
            // session would never let go, so it is ended.
            Err(error)
                if attempts < DROP_ATTEMPTS
                    && matches!(
                        error.code(),
                        Some(&SqlState::LOCK_NOT_AVAILABLE | &SqlState::T_R_DEADLOCK_DETECTED)
                    ) =>
            {
                end_sessions_locking(&client, &schema)
                    .await
                    .map_err(StoreError::postgres(
                        &db,
                        "end the sessions locking the schema",
                    ))?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            result => break result.map_err(StoreError::postgres(&db, "drop test schema")),
        }
    };
    drop(client);
    let _ = connection.await;
    dropped
}

async fn end_sessions_locking(
    client: &tokio_postgres::Client,
    schema: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
             JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
            &[&schema],
        )
        .await
        .map(drop)
}

fn not_a_test_schema(url_redacted: &str) -> StoreError {
    StoreError::BadUrl {
        url_redacted: url_redacted.to_owned(),
        reason: "not a PostgreSQL URL with a `schema` parameter".into(),
    }
}

fn unique_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!(
        "beacon_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
