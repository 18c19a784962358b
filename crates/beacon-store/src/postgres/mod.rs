//! PostgreSQL backend: an ingest writer that commits each batch in one transaction (the
//! reports as a single multi-row upsert, their keys marked uncounted in `rollup_pending`),
//! a few batches at once on connections of its own (`writer`); a counter beside it that
//! counts what any collector on the database left uncounted and runs maintenance
//! (`count`, see `counting`); and a connection pool for reads. Any number of collectors
//! may share one database (see ARCHITECTURE.md). Connections are recycled by deadpool, so
//! after the server comes back a later batch gets a fresh connection.

mod columns;
mod count;
mod facts;
mod fold;
mod ingest;
mod maintenance;
mod queries;
mod uncounted;
mod users;
mod writer;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use chrono::NaiveDate;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio::sync::{Notify, mpsc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, NoTls, Row};

use crate::batch::{self, Counters, Job, Task};
use crate::counting;
use crate::maintenance::WriterQueue;
use crate::migrations;
use crate::url::PgTarget;
use crate::{
    InsertOutcome, LegacyFacts, NewReport, ReportStore, StoreError, StoreStats, StoredReport, rows,
    sql,
};

const READ_POOL_SIZE: usize = 8;

/// Settings for one transaction that looks rows up by a batch of keys (a count's chunk, the
/// back-fill's queue) in tables of any size: every lookup goes through the key index. The
/// planner goes by statistics that may be far behind a growing table (or never taken, with
/// autovacuum off or behind: a new table then looks empty), and so read whole tables: a
/// sequential scan and a hash join per lookup, costing more with every report stored (a
/// tenth of PostgreSQL's time under load, BENCHMARKS.md). A plan with a path turned off
/// costs billions, which would also make PostgreSQL compile it (JIT, some 300 ms): off too.
/// The queue `rollup_pending` is looked up in a fixed order besides (`uncounted`), since
/// statistics taken while it was empty make it look empty however long it grows.
macro_rules! key_lookups {
    () => {
        "set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
        set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)"
    };
}
use key_lookups;

pub(crate) struct PostgresStore {
    db: String,
    readers: Pool,
    /// The ingest writer's queue: report batches.
    ingest: mpsc::Sender<Job>,
    /// The counter's queue: settling, maintenance, and bulk loads (passed on to ingest).
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl PostgresStore {
    pub(crate) async fn open(
        target: PgTarget,
        legacy: Option<LegacyFacts>,
    ) -> Result<Self, StoreError> {
        let PgTarget {
            config,
            schema,
            redacted: db,
        } = target;
        let writers = pool(writer_config(&config), INGEST_PLANS, writer::PIPELINE, &db)?;
        let counting = pool(writer_config(&config), CUSTOM_PLANS, count::PASSES + 1, &db)?;
        // Not on the ingest writer's sessions: a migration copying a table would be planned
        // with sequential scans off.
        migrate(&counting, schema.as_deref(), &db).await?;
        facts::backfill(&writers, &db, legacy).await?;
        let readers = pool(config.clone(), CUSTOM_PLANS, READ_POOL_SIZE, &db)?;
        let (ingest, ingest_jobs) = batch::queue();
        let (queue, jobs) = batch::queue();
        let counters = Arc::new(Counters::default());
        let committed = Arc::new(Notify::new());
        let schema_name = schema.as_deref().unwrap_or("");
        let counter = count::PgCounter {
            pool: counting,
            db: db.clone(),
            lock_key: format!("beacon-store writer {schema_name}"),
            retention_key: format!("beacon-store retention {schema_name}"),
            fold_key: format!("beacon-store fold {schema_name}"),
            unfolded: AtomicUsize::new(1),
            ingest: ingest.downgrade(),
        };
        let writer = writer::PgWriter {
            pool: writers,
            db: db.clone(),
        };
        let ingest_side = (Arc::clone(&counters), queue.clone(), Arc::clone(&committed));
        tokio::spawn(writer.run(ingest_jobs, ingest_side.0, ingest_side.1, ingest_side.2));
        tokio::spawn(Arc::new(counter).run(jobs, committed));
        counting::spawn_ticker(&queue, counting::MAX_LAG);
        Ok(Self {
            db,
            readers,
            ingest,
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

    /// The rows of `sql` on a read connection, each decoded by `decode`.
    async fn query_rows<T>(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: impl Fn(&Row) -> Result<T, tokio_postgres::Error>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.reader(op).await?;
        let rows = query_cached(&client, sql, params)
            .await
            .map_err(StoreError::postgres(&self.db, op))?;
        rows.iter()
            .map(decode)
            .collect::<Result<_, _>>()
            .map_err(StoreError::postgres(&self.db, op))
    }
}

impl WriterQueue for PostgresStore {
    fn queue(&self) -> &mpsc::Sender<Job> {
        &self.queue
    }
}

#[async_trait::async_trait]
impl ReportStore for PostgresStore {
    async fn insert(&self, report: NewReport) -> Result<InsertOutcome, StoreError> {
        batch::submit(&self.ingest, report).await
    }

    async fn get(&self, uuid: &str, day: NaiveDate) -> Result<Option<StoredReport>, StoreError> {
        let params: [&(dyn ToSql + Sync); 2] = [&day, &uuid];
        let reports = self
            .query_rows("read report", sql::GET_REPORT, &params, rows::report)
            .await?;
        Ok(reports.into_iter().next())
    }

    async fn list(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<StoredReport>, StoreError> {
        let params: [&(dyn ToSql + Sync); 2] = [&from, &to];
        self.query_rows("list reports", sql::LIST_REPORTS, &params, rows::report)
            .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let counts = self
            .query_rows("count reports", sql::COUNT_REPORTS, &[], |row| {
                row.try_get::<_, i64>(0)
            })
            .await?;
        let count = counts.into_iter().next().unwrap_or_default();
        u64::try_from(count).map_err(|_| StoreError::Decode {
            db: self.db.clone(),
            column: "count",
            reason: format!("negative row count {count}"),
        })
    }

    async fn settle(&self) -> Result<(), StoreError> {
        counting::settle(&self.queue).await.map(drop)
    }

    /// Through the ingest writer, which commits what was queued before it, then hands it
    /// to the counter (see `writer`).
    async fn close(&self) -> Result<(), StoreError> {
        batch::run_task(&self.ingest, |reply| Task::Close { reply }).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        if self.ingest.is_closed() || self.queue.is_closed() {
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

/// The writer insists on durable commits whatever the server's default is, because an
/// insert's success promises that the report is stored.
fn writer_config(config: &Config) -> Config {
    with_option(config, "-c synchronous_commit=on")
}

/// `config` with one more server setting for every session it opens.
fn with_option(config: &Config, option: &str) -> Config {
    let options = match config.get_options() {
        Some(options) => format!("{options} {option}"),
        None => option.to_owned(),
    };
    let mut config = config.clone();
    config.options(options);
    config
}

/// Statements are prepared once per connection, and after five runs PostgreSQL would keep
/// a generic plan made from the statistics of that moment: on a new or fast-growing schema
/// (never analyzed yet), a sequential scan of `node_claims` or `nodes` for every batch,
/// which cost ingest 80% of its rate within a minute (BENCHMARKS.md). The readers' and the
/// counter's statements are planned for their own arguments instead.
const CUSTOM_PLANS: &str = "-c plan_cache_mode=force_custom_plan";
/// The ingest writer runs inserts, whose plans never depend on the tables, and one lookup
/// of claims by key: each is planned once per connection, with sequential scans turned off
/// so that a plan made while `node_claims` looked empty still looks claims up by key.
/// Planning every batch's statements anew cost PostgreSQL some 17 µs of CPU per report,
/// a tenth of its work, and more the smaller the batches (BENCHMARKS.md).
const INGEST_PLANS: &str = "-c plan_cache_mode=force_generic_plan -c enable_seqscan=off";

/// A session that stays inside a transaction this long without sending anything is ended
/// by the server, its transaction rolled back. A collector frozen in the middle of one (a
/// paused machine, a partition) would otherwise hold its rows, and with them the other
/// collectors' reports of the same nodes and their settles, until the server's TCP
/// keepalive gave up on it: hours by default. Between two statements Beacon's
/// transactions wait for nothing but the collector's own CPU.
const IDLE_IN_TRANSACTION: &str = "-c idle_in_transaction_session_timeout=10s";

fn pool(config: Config, plans: &str, size: usize, db: &str) -> Result<Pool, StoreError> {
    let config = with_option(&with_option(&config, plans), IDLE_IN_TRANSACTION);
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
    let unapplied = migrations::unapplied(migrations::POSTGRES, current)?;
    for migration in unapplied {
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
            reason: format!("postgres `{db}`: {}", crate::error::chain(&error)),
        })?;
    }
    tx.commit()
        .await
        .map_err(StoreError::postgres(db, "commit migration"))?;
    if let Some(last) = unapplied.last() {
        tracing::info!(
            db,
            from = current,
            to = last.version,
            "postgres schema migrated"
        );
    }
    Ok(())
}
