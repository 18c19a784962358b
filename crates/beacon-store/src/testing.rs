//! Store URLs for tests, in this crate and in crates that use a store.
//!
//! PostgreSQL tests use the server at `TEST_DATABASE_URL`, each in a schema of its own.
//! Without that variable they fail, saying how to set it, unless `BEACON_SKIP_POSTGRES=1`
//! asks to skip them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

use crate::StoreError;
use crate::url::{self, StoreUrl};

const HOW_TO: &str = "TEST_DATABASE_URL is not set: PostgreSQL tests need a server, e.g. \
     `export TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test`; \
     to skip them instead, set BEACON_SKIP_POSTGRES=1";

/// A `sqlite://` URL for a database file inside `dir`.
pub async fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("collector.db").display())
}

/// A `postgres://` URL whose `schema` parameter names a schema no other test uses, or
/// `None` (after printing a note) when `BEACON_SKIP_POSTGRES=1`.
///
/// The schema is created when the store is opened; remove it with
/// [`drop_postgres_schema`] when the test ends.
///
/// # Panics
/// When `TEST_DATABASE_URL` is unset and skipping was not asked for: a missing database
/// must fail the run, not pass it silently.
pub async fn postgres_url() -> Option<String> {
    if std::env::var("BEACON_SKIP_POSTGRES").is_ok_and(|skip| skip == "1") {
        eprintln!("note: BEACON_SKIP_POSTGRES=1, skipping the PostgreSQL half of this test");
        return None;
    }
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        panic!("{HOW_TO}");
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}schema={}", unique_schema()))
}

/// Drops the schema named by `url`'s `schema` parameter and everything in it.
pub async fn drop_postgres_schema(url: &str) -> Result<(), StoreError> {
    let target = match url::parse(url)? {
        StoreUrl::Postgres(target) => *target,
        StoreUrl::Sqlite(_) => return Err(not_a_test_schema(url)),
    };
    let Some(schema) = target.schema else {
        return Err(not_a_test_schema(url));
    };
    let db = target.redacted;
    let (client, connection) = target
        .config
        .connect(NoTls)
        .await
        .map_err(StoreError::postgres(&db, "connect to drop test schema"))?;
    let connection = tokio::spawn(connection);
    // The name was checked to be a plain lowercase identifier when the URL was parsed.
    let sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    // A store dropped just before still applies its last rollups in the background; the
    // server may pick the drop as the victim of that deadlock, so it is tried again.
    let mut attempts = 0;
    let dropped = loop {
        attempts += 1;
        match client.batch_execute(&sql).await {
            Err(error)
                if attempts < 5
                    && error.code()
                        == Some(&tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            result => break result.map_err(StoreError::postgres(&db, "drop test schema")),
        }
    };
    drop(client);
    let _ = connection.await;
    dropped
}

fn not_a_test_schema(url: &str) -> StoreError {
    StoreError::BadUrl {
        url_redacted: url::redact(url),
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
