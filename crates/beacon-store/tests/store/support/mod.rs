//! Shared by the storage test files: each test runs on a real SQLite file in a temporary
//! directory, then on the real PostgreSQL at `TEST_DATABASE_URL` in a schema of its own.

use std::future::Future;
use std::sync::Arc;

use beacon_store::testing::TestDb;
use beacon_store::{Store, open_store};

/// One test database; dropping it removes the database, also when the test panics.
pub struct Backend {
    pub name: &'static str,
    pub url: String,
    _db: TestDb,
}

impl From<TestDb> for Backend {
    fn from(db: TestDb) -> Self {
        Self {
            name: db.backend(),
            url: db.url().to_owned(),
            _db: db,
        }
    }
}

/// Runs `test` on SQLite, then on PostgreSQL.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(Backend) -> Fut,
    Fut: Future<Output = ()>,
{
    for db in TestDb::each() {
        test(Backend::from(db)).await;
    }
}

/// A store on the test database. On PostgreSQL its sessions are named after the test's
/// schema, so that [`wait_closed`] can tell when they have ended.
pub async fn open(backend: &Backend) -> Arc<dyn Store> {
    let url = match schema(backend) {
        Some(schema) => format!("{}&application_name={schema}", backend.url),
        None => backend.url.clone(),
    };
    match open_store(&url).await {
        Ok(store) => store,
        Err(error) => panic!("{}: open failed: {error}", backend.name),
    }
}

/// Waits until the PostgreSQL sessions of the stores [`open`] made are gone: a store
/// dropped a moment ago still runs its last count, which must not see what a test changes
/// behind it next. (SQLite's writer stops with the store.)
pub async fn wait_closed(backend: &Backend) {
    let Some(schema) = schema(backend) else {
        return;
    };
    let client = postgres_admin(backend).await;
    for _ in 0..200 {
        let open: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&schema],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if open == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the sessions of the stores on {schema} are still open after 10 s");
}

/// The PostgreSQL schema of the test; `None` on SQLite.
pub fn schema(backend: &Backend) -> Option<&str> {
    let (_, schema) = backend.url.rsplit_once("schema=")?;
    Some(schema)
}

/// Runs a query returning one integer beside the store, as an operator would.
pub async fn admin_i64(backend: &Backend, sql: &str) -> i64 {
    if backend.name == "sqlite" {
        sqlite_admin(backend)
            .query_row(sql, [], |row| row.get(0))
            .expect("sqlite admin query")
    } else {
        let client = postgres_admin(backend).await;
        let row = client
            .query_one(sql, &[])
            .await
            .expect("postgres admin query");
        row.get(0)
    }
}

/// Runs statements beside the store, as an operator (or a crash) would change the data.
pub async fn admin_execute(backend: &Backend, sql: &str) {
    if backend.name == "sqlite" {
        let conn = sqlite_admin(backend);
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute_batch(sql).expect("sqlite admin statements");
    } else {
        postgres_admin(backend)
            .await
            .batch_execute(sql)
            .await
            .expect("postgres admin statements");
    }
}

pub fn sqlite_admin(backend: &Backend) -> rusqlite::Connection {
    let path = backend.url.strip_prefix("sqlite://").expect("a sqlite URL");
    rusqlite::Connection::open(path).expect("open the sqlite file")
}

pub async fn postgres_admin(backend: &Backend) -> tokio_postgres::Client {
    let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let schema = schema(backend).expect("a schema parameter");
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("set search_path");
    client
}
