//! Embedded SQLite backend: one writer thread owning the write connection (group commit
//! into the ingest log `incoming`, where reports wait uncounted; chunks of them counted
//! into the indexed tables and rollups, see `counting`, planned under load by a thread
//! reading on its own connection, `plan`; maintenance; cached statements), and a few
//! read-only connections used through `spawn_blocking`. WAL mode lets those
//! readers run while the writer commits. A commit is answered only once the WAL holding it
//! is synced, by a thread of its own (`durable`), and WAL pages are copied back into the
//! database file by another (`checkpoint`), so that the writer never waits for the disk.

mod checkpoint;
mod count;
mod durable;
mod facts;
mod maintenance;
mod plan;
mod queries;
mod shared_reads;
mod uncounted;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use crate::batch::{self, Counters, Job, Task};
use crate::maintenance::WriterQueue;
use crate::migrations::{self, Migration};
use crate::{
    InsertOutcome, LegacyFacts, NewReport, ReportStore, StoreError, StoreStats, StoredReport,
    counting, rollup, rows, sql,
};

/// How long a statement waits for a lock held by another connection (another collector
/// process on the same file, or a checkpoint) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open between reads; more are opened under load and closed after.
const IDLE_READERS: usize = 4;
/// The writer's page cache, in KiB (SQLite's negative `cache_size`): the default 2 MiB
/// made every index update of a growing database read its page from the OS again, and
/// 64 MiB cost more than it saved. A B-tree page split parks a page at the lock-byte
/// page number for a moment (1 GiB / page size), so until the file reaches 1 GiB every
/// commit after a split scans the whole cache's hash table to drop pages past the end:
/// at 64 MiB that scan took a tenth of the writer's time (BENCHMARKS.md, session 10).
const WRITER_CACHE_KIB: i64 = -16_384;
/// WAL pages between automatic checkpoints (default 1,000; 120 MiB here): a page
/// rewritten by several chunks is copied back to the database once (see BENCHMARKS.md,
/// "Ingest"). The background checkpoint (`checkpoint`) runs well before this bound.
pub(super) const WAL_AUTOCHECKPOINT_PAGES: i64 = 30_000;

pub(crate) struct SqliteStore {
    readers: Arc<Readers>,
    shared_reads: Arc<shared_reads::SharedReads>,
    queue: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    _checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    pub(crate) async fn open(
        path: PathBuf,
        legacy: Option<LegacyFacts>,
    ) -> Result<Self, StoreError> {
        let db = path.display().to_string();
        let writer = {
            let (path, db) = (path.clone(), db.clone());
            tokio::task::spawn_blocking(move || open_writer(&path, &db, legacy))
                .await
                .map_err(|_| StoreError::Closed)??
        };
        let (queue, jobs) = batch::queue();
        let counters = Arc::new(Counters::default());
        writer::spawn(writer, &path, db.clone(), jobs, Arc::clone(&counters))?;
        counting::spawn_ticker(&queue, counting::QUIET / 2);
        let checkpointer = checkpoint::spawn(&path, &db)?;
        let readers = Arc::new(Readers {
            path,
            db,
            idle: Mutex::default(),
        });
        Ok(Self {
            readers,
            shared_reads: Arc::default(),
            queue,
            counters,
            _checkpointer: checkpointer,
        })
    }

    /// Reads `reports` once every report committed before the call is in it, not only
    /// uncounted in the ingest log.
    async fn read_reports<T, F>(&self, op: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        counting::settle(&self.queue).await?;
        self.read(op, read).await
    }

    async fn read<T, F>(&self, op: &'static str, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(op, read))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Queues a rollup read to be read together with those that arrive with it (see
    /// `shared_reads`), and waits for its answer.
    async fn read_shared<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection, &[rollup::Delta]) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let queued = self.shared_reads.queue(Box::new(move |shared| {
            let _ = reply.send(shared.and_then(|(conn, uncounted)| read(conn, uncounted)));
        }));
        if queued {
            let (shared, readers) = (Arc::clone(&self.shared_reads), Arc::clone(&self.readers));
            drop(tokio::task::spawn_blocking(move || shared.run(&readers)));
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl WriterQueue for SqliteStore {
    fn queue(&self) -> &mpsc::Sender<Job> {
        &self.queue
    }
}

#[async_trait::async_trait]
impl ReportStore for SqliteStore {
    async fn insert(&self, report: NewReport) -> Result<InsertOutcome, StoreError> {
        batch::submit(&self.queue, report).await
    }

    async fn get(&self, uuid: &str, day: NaiveDate) -> Result<Option<StoredReport>, StoreError> {
        let uuid = uuid.to_owned();
        self.read_reports("read report", move |conn| {
            let mut statement = conn.prepare_cached(sql::GET_REPORT)?;
            statement
                .query_row(params![day, uuid], |row| rows::report(row))
                .optional()
        })
        .await
    }

    async fn list(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<StoredReport>, StoreError> {
        self.read_reports("list reports", move |conn| {
            let mut statement = conn.prepare_cached(sql::LIST_REPORTS)?;
            let rows = statement.query_map(params![from, to], |row| rows::report(row))?;
            rows.collect()
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .read_reports("count reports", |conn| {
                conn.query_row(sql::COUNT_REPORTS, [], |row| row.get(0))
            })
            .await?;
        u64::try_from(count).map_err(|_| StoreError::Decode {
            db: self.readers.db.clone(),
            column: "count",
            reason: format!("negative row count {count}"),
        })
    }

    async fn settle(&self) -> Result<(), StoreError> {
        counting::settle(&self.queue).await.map(drop)
    }

    async fn close(&self) -> Result<(), StoreError> {
        batch::run_task(&self.queue, |reply| Task::Close { reply }).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        if self.queue.is_closed() {
            return Err(StoreError::Closed);
        }
        // Reads work on a full disk; what cannot be written cannot be ingested.
        self.counters.write_health()?;
        self.read("health check", |conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
        })
        .await
    }

    fn stats(&self) -> StoreStats {
        self.counters.snapshot()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

/// Read-only connections, reused so that a read does not pay for opening the file.
struct Readers {
    path: PathBuf,
    db: String,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(
        &self,
        op: &'static str,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = match self.idle().pop() {
            Some(conn) => conn,
            None => self
                .open()
                .map_err(StoreError::sqlite(&self.db, "open reader"))?,
        };
        let result = read(&conn).map_err(StoreError::sqlite(&self.db, op));
        let mut idle = self.idle();
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// The list stays valid whatever a panicking holder did, so poisoning is ignored.
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }
}

fn open_writer(
    path: &Path,
    db: &str,
    legacy: Option<LegacyFacts>,
) -> Result<Connection, StoreError> {
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|error| StoreError::Io {
            op: "create the database directory",
            path: parent.to_owned(),
            error: Arc::new(error),
        })?;
    }
    let mut conn = Connection::open(path).map_err(StoreError::sqlite(db, "open"))?;
    configure_writer(&conn, db)?;
    migrate(&mut conn, db)?;
    facts::backfill(&mut conn, db, legacy)?;
    Ok(conn)
}

fn configure_writer(conn: &Connection, db: &str) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(StoreError::sqlite(db, "set busy timeout"))?;
    let mode = set_wal(conn).map_err(StoreError::sqlite(db, "set journal_mode=WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Setup {
            db: db.to_owned(),
            reason: format!("journal_mode stays `{mode}`, WAL is required"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite(db, "set synchronous=FULL"))?;
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
        .map_err(StoreError::sqlite(db, "set cache_size"))?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(StoreError::sqlite(db, "set wal_autocheckpoint"))
}

/// Switches to WAL. Two collectors opening a new file together can find it locked while
/// the other switches, and SQLite answers that at once instead of waiting its busy
/// timeout, so the switch is retried for as long as that timeout.
fn set_wal(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn migrate(conn: &mut Connection, db: &str) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock first, so two collectors opening the same file apply
    // the migrations one after the other.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite(db, "begin migration"))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .map_err(StoreError::sqlite(db, "create schema_migrations"))?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(StoreError::sqlite(db, "read schema version"))?;
    let unapplied = migrations::unapplied(migrations::SQLITE, current)?;
    for migration in unapplied {
        apply(&tx, migration).map_err(|error| StoreError::Migration {
            version: migration.version,
            reason: format!("sqlite `{db}`: {error}"),
        })?;
    }
    tx.commit()
        .map_err(StoreError::sqlite(db, "commit migration"))?;
    if let Some(last) = unapplied.last() {
        tracing::info!(
            db,
            from = current,
            to = last.version,
            "sqlite schema migrated"
        );
    }
    Ok(())
}

fn apply(conn: &Connection, migration: &Migration) -> rusqlite::Result<()> {
    conn.execute_batch(migration.sql)?;
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
        params![migration.version, migration.name, Utc::now()],
    )?;
    Ok(())
}
