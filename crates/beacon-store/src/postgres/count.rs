//! Counting on PostgreSQL (see `counting`): each collector runs one counter task beside
//! its ingest writer, on connections of its own. A **pass** counts the keys marked in
//! `rollup_pending` (by any collector), in key order, one chunk per transaction; a chunk
//! locks and loads the snapshots it touches, writes the changed ones (each set as one
//! statement, rows in key order), logs its counter deltas for a later fold (`fold`), and
//! clears its keys, the statements in one round trip.
//!
//! The counters of several collectors count side by side: a chunk skips the keys another
//! holds ([`Take::SkipLocked`]), and locks the snapshot rows it reads (`FOR NO KEY
//! UPDATE`, in key order), so that two chunks never update one snapshot from two stale
//! reads: the second waits for the first and reads what it wrote. A snapshot row that did
//! not exist when read may be created by another chunk meanwhile; the chunk sees that its
//! upsert updated a row it meant to insert, rolls back and counts again ([`RACES`] times,
//! then alone). Chunks never write the counters: folds do, one at a time.
//!
//! A reader that settles waits for a pass that starts when it asks (beside the pass in
//! progress, if there is one: [`PASSES`]): it counts what no other count holds, then
//! waits for the keys others hold ([`Take::WaitLocked`]), so it leaves nothing committed
//! before it uncounted (by this collector or another one), and waits for about one chunk
//! rather than for the pass in progress and one more. It takes only the keys marked
//! before it started ([`uncounted::LAST_MARK`]): under load, new marks arrive all over the
//! key order, and a pass that took them too counted for longer than the backlog it found.
//! Passes otherwise start when a batch was committed (at most every [`PACE`], one at a
//! time) and on the ticker, which finds what other collectors committed. Maintenance that
//! changes snapshots holds the schema's counting lock exclusively, every chunk holds it
//! shared: a pass nobody waits for only *tries* it, giving way to maintenance on another
//! collector instead of queueing behind it.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::columns::{ClusterWeekColumns, NodeColumns, NodeWeekColumns};
use super::fold::LOG_DELTAS;
use super::uncounted::{self, LAST_MARK, MARK_COUNTED, READ_TAKEN, Take};
use super::writer::Context;
use crate::batch::{self, Job, MaintenanceTask, Reply, Task};
use crate::counting::{CHUNK, FOLD, MAX_LAG};
use crate::rollup::{self, Changes, Loaded, Wanted};
use crate::{NewReport, StoreError, rows, sql};

/// A count's settings, for its transaction only: an asynchronous commit (see below), and
/// its lookups through the key indexes (see `key_lookups`).
macro_rules! count_settings {
    () => {
        concat!(
            "set_config('synchronous_commit', 'off', true), ",
            super::key_lookups!()
        )
    };
}
/// Taken exclusively by maintenance that changes snapshots (and by a chunk that raced
/// [`RACES`] times), shared by every other chunk: counts of several collectors run side by
/// side, never beside such maintenance. Counts need not be durable at once (a lost one
/// leaves its keys marked, counted again), so they commit asynchronously.
pub(super) const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";
const LOCK_FOR_COUNT: &str = concat!(
    "SELECT pg_advisory_xact_lock(hashtext($1)), ",
    count_settings!()
);
const SHARE_FOR_COUNT: &str = concat!(
    "SELECT pg_advisory_xact_lock_shared(hashtext($1)), ",
    count_settings!()
);
const TRY_SHARE_FOR_COUNT: &str = concat!(
    "SELECT pg_try_advisory_xact_lock_shared(hashtext($1)), ",
    count_settings!()
);
/// Times a chunk is counted again after racing another collector's chunk for a snapshot
/// row both created; the next attempt counts it alone ([`Lock::Alone`]). A race needs one
/// new node (or cluster) in the chunks of two collectors at once, and a retry reads the
/// row the other created, so one retry nearly always does.
const RACES: usize = 3;

/// At least this long between two passes that only committed batches ask for: fewer,
/// larger chunks under load, each adding to a counter once for more reports (a chunk's
/// counter upsert costs about the same for 400 reports as for 1,600; 30 s at 64
/// connections: 3,070-3,210 reports/s at 50 ms, 3,100-3,660 at 200 ms, settles alike).
/// A reader that settles does not wait for it.
const PACE: Duration = Duration::from_millis(200);

/// Passes of one counter at once (and its connections, with one more for folds): a pass
/// that readers wait for starts beside one in progress rather than after it.
pub(super) const PASSES: usize = 2;

/// The snapshots a chunk touches, locked in key order (see the module doc).
const GET_NODES: &str = "SELECT uuid, first_day, first_at, version, os
    FROM nodes WHERE uuid = ANY($1::text[]) ORDER BY uuid FOR NO KEY UPDATE";
const GET_NODE_WEEKS: &str = "SELECT w.uuid, w.week, w.received_at, w.version, w.os
    FROM node_weeks w JOIN unnest($1::text[], $2::date[]) AS k (uuid, week)
        ON w.uuid = k.uuid AND w.week = k.week
    ORDER BY w.week, w.uuid FOR NO KEY UPDATE OF w";
const GET_CLUSTER_WEEKS: &str =
    "SELECT w.cluster_key, w.week, w.received_at, w.version, w.os, w.profile
    FROM cluster_weeks w JOIN unnest($1::text[], $2::date[]) AS k (cluster_key, week)
        ON w.cluster_key = k.cluster_key AND w.week = k.week
    ORDER BY w.week, w.cluster_key FOR NO KEY UPDATE OF w";
/// A snapshot upsert answers how many rows it inserted (`xmax = 0`, as in `ingest`).
macro_rules! counting_inserts {
    ($upsert:expr) => {
        concat!(
            "WITH w AS (",
            $upsert,
            " RETURNING xmax = 0 AS inserted) SELECT count(*) FILTER (WHERE inserted) FROM w"
        )
    };
}
const PUT_NODES: &str = counting_inserts!(sql::upsert!(
    nodes,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])"
));
const PUT_NODE_WEEKS: &str = counting_inserts!(sql::upsert!(
    node_weeks,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])"
));
const PUT_CLUSTER_WEEKS: &str = counting_inserts!(sql::upsert!(
    cluster_weeks,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[],
        $6::text[])"
));
/// Marked keys one chunk takes at most: fewer than [`CHUNK`]. A chunk holds the row locks
/// of its keys and snapshots until it commits, and a settle, like the chunks of
/// other collectors, waits for them. A counter that fell behind took 4,096 keys at once,
/// its passes took 0.5-3 s under load, and reads waited that long; with 1,024 the reads'
/// p99 under load was about halved and the rate did not fall (BENCHMARKS.md, session 15).
/// A counter that keeps up takes fewer anyway (a pass every [`PACE`]).
const TAKE: usize = 1024;

/// Keys counted after which the counter vacuums `rollup_pending` (and `counter_deltas`)
/// itself. The table is a queue (each report's key inserted once, deleted once when
/// counted), so it is mostly dead rows that every take walks until a vacuum removes them;
/// with autovacuum off (as on the test machines) or behind, a settle on a freshly seeded
/// 10^6-report schema took 12 ms instead of 1.6 (BENCHMARKS.md, "Analytics").
const VACUUM_EVERY: usize = 4 * CHUNK;
/// Another collector's vacuum of the queues is as good: skipped rather than waited for.
/// `counter_deltas` is a queue too: a text (out of line, in TOAST rows) per chunk, each
/// deleted by the next fold. A queue's empty tail pages are kept: giving them back takes
/// the table's exclusive lock, which a vacuum retries for up to 5 s while others use the
/// queue, and while it holds it no batch commits and no chunk counts (two collectors:
/// 0.45-0.65 s per vacuum instead of 25 ms, BENCHMARKS.md).
const VACUUM_QUEUE: &str = "VACUUM (SKIP_LOCKED, TRUNCATE false) rollup_pending, counter_deltas";

type Key = (NaiveDate, String);

/// How a chunk takes the counting lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Somebody waits for this pass (a settle, a task, the stop): wait for the lock, shared.
    Wait,
    /// Nobody waits: give way to maintenance that holds it.
    Try,
    /// A chunk that raced [`RACES`] times: wait for the lock, exclusively.
    Alone,
}

impl Lock {
    fn sql(self) -> &'static str {
        match self {
            Lock::Wait => SHARE_FOR_COUNT,
            Lock::Try => TRY_SHARE_FOR_COUNT,
            Lock::Alone => LOCK_FOR_COUNT,
        }
    }
}

/// What a pass did: counted this many reports, or gave way to maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Counted(usize),
    GaveWay,
}

pub(super) struct PgCounter {
    /// [`PASSES`] connections and one for a fold, durable commits unless a count turns
    /// them off.
    pub(super) pool: Pool,
    pub(super) db: String,
    /// The advisory lock of counting, per schema.
    pub(super) lock_key: String,
    /// The advisory lock of retention, per schema, only ever tried.
    pub(super) retention_key: String,
    /// The advisory lock folds take turns on, per schema (see `fold`).
    pub(super) fold_key: String,
    /// Counter deltas this collector's chunks logged since its last fold; starts at one,
    /// so that what a stop left unfolded is folded once the counter is idle.
    pub(super) unfolded: AtomicUsize,
    /// Where the reports of a bulk load go (they reach the counter's queue, which the
    /// shared maintenance code writes to); weak, so that the writer stops with the store.
    pub(super) ingest: mpsc::WeakSender<Job>,
}

/// What the counter has been asked for since its last pass.
#[derive(Default)]
struct Asked {
    settled: Vec<Reply<()>>,
    tasks: Vec<MaintenanceTask>,
    /// Something may be uncounted: a batch was committed, or the ticker fired.
    dirty: bool,
    /// The store is closing: answered once the counter has stopped.
    closing: Option<Reply<()>>,
}

impl PgCounter {
    /// Runs until every sender of `jobs` is gone or the store is closed (the ingest writer
    /// sends the close once it has committed its last batch), then, once its passes and
    /// folds have ended, counts and folds once more.
    pub(super) async fn run(
        self: Arc<Self>,
        mut jobs: mpsc::Receiver<Job>,
        committed: Arc<Notify>,
    ) {
        // What a stop left uncounted is counted first.
        let mut asked = Asked {
            dirty: true,
            ..Asked::default()
        };
        let mut next = Instant::now();
        let mut since_vacuum = 0;
        // Passes run as tasks of their own, so that they go on while this loop waits.
        let mut running = JoinSet::new();
        // One fold at a time, beside the passes: a reader never waits for a fold.
        let mut folding = JoinSet::new();
        let mut open = true;
        while open || !running.is_empty() || !folding.is_empty() {
            tokio::select! {
                biased;
                Some(folded) = folding.join_next() => {
                    if let Err(error) = folded {
                        tracing::error!(%error, "a fold panicked; retried");
                    }
                }
                Some(done) = running.join_next() => {
                    let (started, result) = done.unwrap_or_else(|error| {
                        tracing::error!(%error, "a counting pass panicked; retried");
                        (Instant::now(), Err(()))
                    });
                    // Paced also when it counted nothing: the keys may all be held by
                    // other collectors' passes, and a commit every few milliseconds would
                    // otherwise start an empty pass each time.
                    (asked.dirty, next) = match result {
                        Ok(Pass::Counted(0)) => (asked.dirty, started + PACE),
                        Ok(_) => (true, started + PACE),
                        Err(()) => (true, started + MAX_LAG),
                    };
                    if let Ok(Pass::Counted(counted)) = result {
                        since_vacuum += counted;
                    }
                    if folding.is_empty() && self.fold_due(result) {
                        folding.spawn(Arc::clone(&self).logged_fold());
                    }
                    if since_vacuum >= VACUUM_EVERY {
                        self.vacuum_queue().await;
                        since_vacuum = 0;
                    }
                }
                job = jobs.recv(), if open => match job {
                    Some(job) => self.take(job, &mut asked).await,
                    None => open = false,
                },
                () = tokio::time::sleep_until(next), if asked.dirty && running.is_empty() => {}
                () = committed.notified(), if !asked.dirty => asked.dirty = true,
            }
            while asked.closing.is_none() {
                let Ok(job) = jobs.try_recv() else { break };
                self.take(job, &mut asked).await;
            }
            if asked.closing.is_some() && open {
                jobs.close();
                open = false;
            }
            let waiting = !asked.settled.is_empty() || !asked.tasks.is_empty();
            if waiting && running.len() < PASSES {
                // Beside a pass in progress: what that pass holds is waited for, not
                // counted again, so a reader waits for about one chunk, not two passes.
                let settled = std::mem::take(&mut asked.settled);
                let tasks = std::mem::take(&mut asked.tasks);
                running.spawn(Arc::clone(&self).counted(Lock::Wait, settled, tasks));
                asked.dirty = false;
            } else if running.is_empty() && asked.dirty && Instant::now() >= next && open {
                running.spawn(Arc::clone(&self).counted(Lock::Try, Vec::new(), Vec::new()));
                asked.dirty = false;
            }
        }
        let counted = self.pass(Lock::Wait).await;
        if let Err(error) = &counted {
            tracing::error!(%error, "counting failed at shutdown; done at the next start");
        }
        if let Err(error) = self.fold().await {
            tracing::error!(%error, "folding failed at shutdown; done after the next start");
        }
        tracing::debug!(db = self.db, "postgres counter stopped");
        if let Some(reply) = asked.closing {
            batch::reply(reply, counted.map(drop));
        }
    }

    /// A pass, then its readers answered and its tasks run; answers when it started and
    /// what it did.
    async fn counted(
        self: Arc<Self>,
        lock: Lock,
        settled: Vec<Reply<()>>,
        tasks: Vec<MaintenanceTask>,
    ) -> (Instant, Result<Pass, ()>) {
        let started = Instant::now();
        let result = self.pass(lock).await;
        tracing::debug!(
            took_ms = started.elapsed().as_millis(),
            ?result,
            settles = settled.len(),
            "counting pass"
        );
        if let Err(error) = &result {
            tracing::error!(%error, "counting failed; retried");
        }
        for reply in settled {
            batch::reply(reply, result.clone().map(drop));
        }
        // A bulk load's `Optimize` then vacuums the counters the fold wrote.
        if !tasks.is_empty() {
            Arc::clone(&self).logged_fold().await;
        }
        for task in tasks {
            match &result {
                Ok(_) => self.run_task(task).await,
                Err(error) => task.fail(error.clone()),
            }
        }
        (started, result.map_err(drop))
    }

    /// A fold whose failure is only logged: the deltas stay logged, for the next one.
    async fn logged_fold(self: Arc<Self>) {
        if let Err(error) = self.fold().await {
            tracing::error!(%error, "folding the counter deltas failed; retried");
        }
    }

    /// Whether to fold after a pass: once [`FOLD`] deltas wait, or when the pass found
    /// nothing to count.
    fn fold_due(&self, pass: Result<Pass, ()>) -> bool {
        let unfolded = self.unfolded.load(Ordering::Relaxed);
        unfolded >= FOLD || (unfolded > 0 && pass == Ok(Pass::Counted(0)))
    }

    /// Vacuums `rollup_pending` (see [`VACUUM_EVERY`]); after the pass's readers are
    /// answered, so that none waits for it. A failure only leaves the dead rows to the next.
    async fn vacuum_queue(&self) {
        let vacuumed = match self.pool.get().await {
            Ok(client) => client
                .batch_execute(VACUUM_QUEUE)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = vacuumed {
            tracing::warn!(db = self.db, %error, "vacuuming the counted keys failed");
        }
    }

    async fn take(&self, job: Job, asked: &mut Asked) {
        match job {
            Job::Insert(insert) => match self.ingest.upgrade() {
                // Dropped if the writer is gone: the caller hears the store is closed.
                Some(ingest) => drop(ingest.send(Job::Insert(insert)).await),
                None => drop(insert),
            },
            Job::Task(Task::Tick) => asked.dirty = true,
            Job::Task(Task::Settle { reply }) => asked.settled.push(reply),
            Job::Task(Task::Close { reply }) => asked.closing = Some(reply),
            Job::Task(Task::Maintenance(task)) => asked.tasks.push(task),
        }
    }

    /// Counts what no other count holds, then (when somebody waits) what others held;
    /// answers how many keys it took. With [`Lock::Try`] it stops at the first chunk whose
    /// lock maintenance holds.
    async fn pass(&self, lock: Lock) -> Result<Pass, StoreError> {
        // A pass nobody waits for counts the marks committed while it runs too: fuller
        // chunks. One somebody waits for stops at the last mark made when it starts.
        let upto = match lock {
            Lock::Try => i64::MAX,
            Lock::Wait | Lock::Alone => self.last_mark().await?,
        };
        let Pass::Counted(skipping) = self.sweep(Take::SkipLocked, lock, upto).await? else {
            return Ok(Pass::GaveWay);
        };
        if lock == Lock::Try {
            return Ok(Pass::Counted(skipping));
        }
        match self.sweep(Take::WaitLocked, lock, upto).await? {
            Pass::Counted(waiting) => Ok(Pass::Counted(skipping + waiting)),
            Pass::GaveWay => Ok(Pass::GaveWay),
        }
    }

    /// The number of the last mark made (see [`uncounted::LAST_MARK`]).
    async fn last_mark(&self) -> Result<i64, StoreError> {
        const OP: &str = "read the last mark";
        let db = self.db.as_str();
        let client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let row = client.query_one(LAST_MARK, &[]).await.context(db, OP)?;
        row.try_get(0).context(db, OP)
    }

    /// Counts chunks of the keys marked up to `upto`, in key order, until one is not full.
    async fn sweep(&self, take: Take, lock: Lock, upto: i64) -> Result<Pass, StoreError> {
        let mut after = None;
        let mut taken = 0;
        loop {
            let Some((chunk, last)) = self.count_chunk(after.as_ref(), take, lock, upto).await?
            else {
                return Ok(Pass::GaveWay);
            };
            taken += chunk;
            if chunk < TAKE {
                return Ok(Pass::Counted(taken));
            }
            after = last;
        }
    }

    /// Counts the next marked keys after `after` (from the first without), again after a
    /// race (see the module doc); answers how many it took, and the last (`None`: the lock
    /// was only tried, and is held).
    async fn count_chunk(
        &self,
        after: Option<&Key>,
        take: Take,
        lock: Lock,
        upto: i64,
    ) -> Result<Option<(usize, Option<Key>)>, StoreError> {
        let mut lock = lock;
        for races in 0.. {
            match self.try_count_chunk(after, take, lock, upto).await? {
                Attempt::Counted(counted) => return Ok(counted),
                Attempt::Raced if lock == Lock::Alone => {
                    return Err(StoreError::Raced {
                        db: self.db.clone(),
                        races,
                    });
                }
                Attempt::Raced if races + 1 < RACES => {}
                Attempt::Raced => lock = Lock::Alone,
            }
            tracing::debug!(
                races = races + 1,
                "a chunk raced another collector's; counted again"
            );
        }
        unreachable!("the loop returns")
    }

    /// One attempt at [`Self::count_chunk`], in one transaction.
    async fn try_count_chunk(
        &self,
        after: Option<&Key>,
        take: Take,
        lock: Lock,
        upto: i64,
    ) -> Result<Attempt, StoreError> {
        const OP: &str = "update rollups";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        let Some(keys) = take_keys(&tx, &self.lock_key, after, take, lock, upto)
            .await
            .context(db, OP)?
        else {
            return Ok(Attempt::Counted(None));
        };
        let Some(last) = keys.last().cloned() else {
            return Ok(Attempt::Counted(Some((0, None))));
        };
        let (days, uuids): (Vec<NaiveDate>, Vec<&str>) =
            keys.iter().map(|(day, uuid)| (*day, uuid.as_str())).unzip();
        let reports = tx
            .query(READ_TAKEN, &[&days, &uuids])
            .await
            .context(db, OP)?
            .iter()
            .map(|row| uncounted::report(row, db))
            .collect::<Result<Vec<NewReport>, _>>()?;
        let wanted = rollup::wanted(&reports);
        let loaded = match load(&tx, &wanted).await {
            Err(error) if raced(&error) => return Ok(Attempt::Raced),
            loaded => loaded.context(db, "read rollup snapshots")?,
        };
        let found = Found::of(&loaded);
        let changes = in_key_order(rollup::apply(loaded, &reports));
        let inserted = match write_changes(&tx, &changes, &days, &uuids).await {
            Err(error) if raced(&error) => return Ok(Attempt::Raced),
            inserted => inserted.context(db, OP)?,
        };
        if inserted != found.inserts(&changes) {
            // Dropping the transaction rolls it back: the keys stay marked.
            return Ok(Attempt::Raced);
        }
        tx.commit().await.context(db, OP)?;
        self.unfolded
            .fetch_add(changes.deltas.len(), Ordering::Relaxed);
        Ok(Attempt::Counted(Some((keys.len(), Some(last)))))
    }
}

/// What one attempt at counting a chunk came to.
enum Attempt {
    /// Counted (see [`PgCounter::count_chunk`] for what it holds).
    Counted(Option<(usize, Option<Key>)>),
    /// Another collector's chunk created a snapshot row this one meant to create, or (should
    /// an unforeseen order of locks arise) PostgreSQL broke a deadlock by failing this one.
    Raced,
}

fn raced(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
}

/// The keys of the snapshot rows a chunk found (and locked), to tell which of its changes
/// are inserts.
struct Found {
    nodes: HashSet<String>,
    node_weeks: HashSet<(String, NaiveDate)>,
    cluster_weeks: HashSet<(String, NaiveDate)>,
}

impl Found {
    fn of(loaded: &Loaded) -> Found {
        Found {
            nodes: loaded.nodes.iter().map(|n| n.uuid.clone()).collect(),
            node_weeks: loaded
                .node_weeks
                .iter()
                .map(|w| (w.uuid.clone(), w.week))
                .collect(),
            cluster_weeks: loaded
                .cluster_weeks
                .iter()
                .map(|w| (w.key.clone(), w.week))
                .collect(),
        }
    }

    /// How many rows the chunk's snapshot upserts must insert: those not found.
    fn inserts(&self, changes: &Changes) -> [i64; 3] {
        [
            not_in(&self.nodes, changes.nodes.iter().map(|n| n.uuid.clone())),
            not_in(
                &self.node_weeks,
                changes.node_weeks.iter().map(|w| (w.uuid.clone(), w.week)),
            ),
            not_in(
                &self.cluster_weeks,
                changes
                    .cluster_weeks
                    .iter()
                    .map(|w| (w.key.clone(), w.week)),
            ),
        ]
    }
}

fn not_in<K: Eq + Hash>(found: &HashSet<K>, keys: impl Iterator<Item = K>) -> i64 {
    let new = keys.filter(|key| !found.contains(key)).count();
    i64::try_from(new).unwrap_or(i64::MAX)
}

/// Takes the counting lock, then locks the next [`TAKE`] keys marked up to `upto`: in one
/// round trip when it waits for the lock; when it only tries, the keys are not locked
/// unless the lock was taken (`None` otherwise).
async fn take_keys(
    tx: &Transaction<'_>,
    lock_key: &str,
    after: Option<&Key>,
    take: Take,
    lock: Lock,
    upto: i64,
) -> Result<Option<Vec<Key>>, tokio_postgres::Error> {
    let limit = TAKE as i64;
    let lock_params: [&(dyn ToSql + Sync); 1] = [&lock_key];
    let keys = tx.prepare_cached(take.sql(after.is_some())).await?;
    let params: Vec<&(dyn ToSql + Sync)> = match after {
        None => vec![&limit, &upto],
        Some((day, uuid)) => vec![day, uuid, &limit, &upto],
    };
    let locking = tx.prepare_cached(lock.sql()).await?;
    let rows = if lock == Lock::Try {
        let taken: bool = tx.query_one(&locking, &lock_params).await?.try_get(0)?;
        if !taken {
            return Ok(None);
        }
        tx.query(&keys, &params).await?
    } else {
        // The first error is the cause; a later one only says the transaction was
        // aborted.
        let (locked, rows) =
            tokio::join!(tx.execute(&locking, &lock_params), tx.query(&keys, &params));
        locked?;
        rows?
    };
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Snapshot rows in key order: each statement then locks its rows in one order.
fn in_key_order(mut changes: Changes) -> Changes {
    changes.nodes.sort_unstable_by(|a, b| a.uuid.cmp(&b.uuid));
    changes
        .node_weeks
        .sort_unstable_by(|a, b| (a.week, &a.uuid).cmp(&(b.week, &b.uuid)));
    changes
        .cluster_weeks
        .sort_unstable_by(|a, b| (a.week, &a.key).cmp(&(b.week, &b.key)));
    changes
}

/// The snapshots a chunk touches, read and locked in one round trip.
async fn load(tx: &Transaction<'_>, wanted: &Wanted) -> Result<Loaded, tokio_postgres::Error> {
    let (uuids, weeks) = unzip(&wanted.node_weeks);
    let (keys, cluster_weeks) = unzip(&wanted.cluster_weeks);
    let statements = (
        tx.prepare_cached(GET_NODES).await?,
        tx.prepare_cached(GET_NODE_WEEKS).await?,
        tx.prepare_cached(GET_CLUSTER_WEEKS).await?,
    );
    let params: [&[&(dyn ToSql + Sync)]; 3] = [
        &[&wanted.nodes],
        &[&uuids, &weeks],
        &[&keys, &cluster_weeks],
    ];
    let (nodes, node_weeks, cluster_weeks) = tokio::join!(
        tx.query(&statements.0, params[0]),
        tx.query(&statements.1, params[1]),
        tx.query(&statements.2, params[2]),
    );
    Ok(Loaded {
        nodes: decode(&nodes?, rows::node)?,
        node_weeks: decode(&node_weeks?, rows::node_week)?,
        cluster_weeks: decode(&cluster_weeks?, rows::cluster_week)?,
    })
}

/// (key, week) pairs as the two arrays `unnest` takes.
fn unzip(keys: &[(String, NaiveDate)]) -> (Vec<&str>, Vec<NaiveDate>) {
    keys.iter().map(|(key, week)| (key.as_str(), *week)).unzip()
}

fn decode<T>(
    rows: &[Row],
    decode: fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, tokio_postgres::Error> {
    rows.iter().map(decode).collect()
}

/// The changed snapshots, the counter deltas logged (see `fold`) and the chunk's keys
/// cleared, in one round trip; answers how many rows each snapshot upsert inserted.
async fn write_changes(
    tx: &Transaction<'_>,
    changes: &Changes,
    days: &[NaiveDate],
    uuids: &[&str],
) -> Result<[i64; 3], tokio_postgres::Error> {
    let nodes = NodeColumns::of(&changes.nodes);
    let node_weeks = NodeWeekColumns::of(&changes.node_weeks);
    let cluster_weeks = ClusterWeekColumns::of(&changes.cluster_weeks);
    let deltas = rollup::encode(&changes.deltas);
    let keys: Vec<&(dyn ToSql + Sync)> = vec![&days, &uuids];
    let snapshots = [
        (PUT_NODES, !changes.nodes.is_empty(), nodes.params()),
        (
            PUT_NODE_WEEKS,
            !changes.node_weeks.is_empty(),
            node_weeks.params(),
        ),
        (
            PUT_CLUSTER_WEEKS,
            !changes.cluster_weeks.is_empty(),
            cluster_weeks.params(),
        ),
    ];
    let counters = [
        (LOG_DELTAS, !changes.deltas.is_empty(), vec![&deltas as _]),
        (MARK_COUNTED, true, keys),
    ];
    let mut upserts = Vec::new();
    for (sql, needed, params) in snapshots {
        upserts.push(match needed {
            true => Some((tx.prepare_cached(sql).await?, params)),
            false => None,
        });
    }
    let mut statements = Vec::new();
    for (sql, needed, params) in counters {
        if needed {
            statements.push((tx.prepare_cached(sql).await?, params));
        }
    }
    let inserting = upserts.iter().map(|upsert| async move {
        match upsert {
            Some((statement, params)) => tx.query_one(statement, params).await?.try_get(0),
            None => Ok(0),
        }
    });
    let executions = statements
        .iter()
        .map(|(statement, params)| tx.execute(statement, params));
    // Sent in this order, in one round trip; the first error in that order is the cause.
    let (inserted, executed) = tokio::join!(
        futures::future::join_all(inserting),
        futures::future::join_all(executions)
    );
    let mut counts = [0; 3];
    for (count, result) in counts.iter_mut().zip(inserted) {
        *count = result?;
    }
    for result in executed {
        result?;
    }
    Ok(counts)
}
