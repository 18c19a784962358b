//! PostgreSQL backend: one writer connection that commits each batch in one transaction
//! (the reports as a single multi-row upsert, then the rollup updates, each set of rows as
//! one statement), and a connection pool for reads. Connections are recycled by deadpool,
//! so after the server comes back a later batch gets a fresh connection.

mod queries;
mod users;
mod writer;

use std::sync::Arc;

use chrono::NaiveDate;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, NoTls, Row};

use crate::batch::{self, Counters, Job};
use crate::maintenance::Writer;
use crate::migrations;
use crate::url::PgTarget;
use crate::{InsertOutcome, NewReport, ReportStore, StoreError, StoreStats, StoredReport};

const READ_POOL_SIZE: usize = 8;

macro_rules! select_reports {
    ($tail:literal) => {
        concat!(
            "SELECT uuid, cluster_uuid, day, received_at, emqx_version, os_name, os_version,
                edition, node_count, format, raw FROM reports ",
            $tail
        )
    };
}
pub(crate) use select_reports;

const GET: &str = select_reports!("WHERE day = $1 AND uuid = $2");
const LIST: &str = select_reports!("WHERE day BETWEEN $1 AND $2 ORDER BY day, uuid");

pub(crate) struct PostgresStore {
    db: String,
    readers: Pool,
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl PostgresStore {
    pub(crate) async fn open(target: PgTarget) -> Result<Self, StoreError> {
        let PgTarget {
            config,
            schema,
            redacted: db,
        } = target;
        let writer = pool(writer_config(&config), 1, &db)?;
        migrate(&writer, schema.as_deref(), &db).await?;
        let readers = pool(config, READ_POOL_SIZE, &db)?;
        let (queue, jobs) = batch::queue();
        let counters = Arc::new(Counters::default());
        let lock_key = format!("beacon-store writer {}", schema.as_deref().unwrap_or(""));
        let writer = writer::PgWriter {
            pool: writer,
            db: db.clone(),
            lock_key,
        };
        tokio::spawn(writer.run(jobs, Arc::clone(&counters)));
        crate::pending::spawn_ticker(&queue, crate::pending::MAX_LAG);
        Ok(Self {
            db,
            readers,
            queue,
            counters,
        })
    }

    async fn reader(&self, op: &'static str) -> Result<Object, StoreError> {
        self.readers
            .get()
            .await
            .map_err(StoreError::pool(&self.db, op))
    }
}

impl Writer for PostgresStore {
    fn queue(&self) -> &mpsc::Sender<Job> {
        &self.queue
    }
}

#[async_trait::async_trait]
impl ReportStore for PostgresStore {
    async fn insert(&self, report: NewReport) -> Result<InsertOutcome, StoreError> {
        batch::submit(&self.queue, report).await
    }

    async fn get(&self, uuid: &str, day: NaiveDate) -> Result<Option<StoredReport>, StoreError> {
        let op = "read report";
        let client = self.reader(op).await?;
        let row = query_cached(&client, GET, &[&day, &uuid])
            .await
            .map_err(StoreError::postgres(&self.db, op))?
            .into_iter()
            .next();
        row.map(|row| from_row(&row))
            .transpose()
            .map_err(StoreError::postgres(&self.db, op))
    }

    async fn list(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<StoredReport>, StoreError> {
        let op = "list reports";
        let client = self.reader(op).await?;
        let rows = query_cached(&client, LIST, &[&from, &to])
            .await
            .map_err(StoreError::postgres(&self.db, op))?;
        rows.iter()
            .map(from_row)
            .collect::<Result<_, _>>()
            .map_err(StoreError::postgres(&self.db, op))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let op = "count reports";
        let client = self.reader(op).await?;
        let count: i64 = client
            .query_one("SELECT count(*) FROM reports", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(StoreError::postgres(&self.db, op))?;
        u64::try_from(count).map_err(|_| StoreError::Decode {
            db: self.db.clone(),
            column: "count",
            reason: format!("negative row count {count}"),
        })
    }

    async fn health(&self) -> Result<(), StoreError> {
        if self.queue.is_closed() {
            return Err(StoreError::Closed);
        }
        let op = "health check";
        let client = self.reader(op).await?;
        client
            .batch_execute("SELECT 1")
            .await
            .map_err(StoreError::postgres(&self.db, op))
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

pub(crate) async fn query_cached(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query(&statement, params).await
}

pub(crate) fn from_row(row: &Row) -> Result<StoredReport, tokio_postgres::Error> {
    Ok(StoredReport {
        uuid: row.try_get("uuid")?,
        cluster_uuid: row.try_get("cluster_uuid")?,
        day: row.try_get("day")?,
        received_at: row.try_get("received_at")?,
        emqx_version: row.try_get("emqx_version")?,
        os_name: row.try_get("os_name")?,
        os_version: row.try_get("os_version")?,
        edition: row.try_get("edition")?,
        node_count: row.try_get("node_count")?,
        format: row.try_get("format")?,
        raw: row.try_get("raw")?,
    })
}

/// The writer insists on durable commits whatever the server's default is, because an
/// insert's success promises that the report is stored.
fn writer_config(config: &Config) -> Config {
    let durable = "-c synchronous_commit=on";
    let options = match config.get_options() {
        Some(options) => format!("{options} {durable}"),
        None => durable.to_owned(),
    };
    let mut config = config.clone();
    config.options(options);
    config
}

fn pool(config: Config, size: usize, db: &str) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|error| StoreError::Setup {
            db: db.to_owned(),
            reason: format!("connection pool: {error}"),
        })
}

async fn migrate(pool: &Pool, schema: Option<&str>, db: &str) -> Result<(), StoreError> {
    let mut client = pool
        .get()
        .await
        .map_err(StoreError::pool(db, "connect for migration"))?;
    let tx = client
        .transaction()
        .await
        .map_err(StoreError::postgres(db, "begin migration"))?;
    // Collectors starting together take turns here; the lock ends with the transaction.
    let lock_key = format!("beacon-store migrations {}", schema.unwrap_or(""));
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&lock_key])
        .await
        .map_err(StoreError::postgres(db, "lock for migration"))?;
    if let Some(schema) = schema {
        // The name was checked to be a plain lowercase identifier when the URL was parsed.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(StoreError::postgres(db, "create schema"))?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(StoreError::postgres(db, "create schema_migrations"))?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await
        .and_then(|row| row.try_get(0))
        .map_err(StoreError::postgres(db, "read schema version"))?;
    let pending = migrations::pending(migrations::POSTGRES, current)?;
    for migration in pending {
        let applied = async {
            tx.batch_execute(migration.sql).await?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[&migration.version, &migration.name],
            )
            .await
        };
        applied.await.map_err(|error| StoreError::Migration {
            version: migration.version,
            reason: format!("postgres `{db}`: {error}"),
        })?;
    }
    tx.commit()
        .await
        .map_err(StoreError::postgres(db, "commit migration"))?;
    if let Some(last) = pending.last() {
        tracing::info!(
            db,
            from = current,
            to = last.version,
            "postgres schema migrated"
        );
    }
    Ok(())
}
