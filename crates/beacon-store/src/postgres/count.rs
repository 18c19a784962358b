//! Counting on PostgreSQL (see `counting`): each collector runs one counter task beside
//! its ingest writer, on a connection of its own. A **pass** counts every key marked in
//! `rollup_pending` (by any collector), in key order, one chunk per transaction; a chunk
//! loads the snapshots it touches, writes the changed ones and the counter deltas (each
//! set as one statement, rows in key order, the statements in one round trip), and
//! clears its keys.
//!
//! Every chunk first takes an advisory lock per schema, so that the counters of several
//! collectors never update one snapshot from two stale reads: counting is serialized,
//! ingest is not. A reader that settles waits for one whole pass that started after it
//! asked, which counts everything committed before (by this collector or another one).
//! Passes otherwise start when a batch was committed (at most every [`PACE`]) and on the
//! ticker, which finds what other collectors committed; such a pass, which nobody waits
//! for, only *tries* the lock: while another collector counts (its pass counts this
//! collector's reports too) it does not queue behind it, and looks again after [`PACE`].

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::columns::{ClusterWeekColumns, DeltaColumns, NodeColumns, NodeWeekColumns};
use super::uncounted::{self, MARK_COUNTED, READ_TAKEN, TAKE_FIRST, TAKE_NEXT};
use super::writer::Context;
use crate::batch::{self, Job, MaintenanceTask, Reply, Task};
use crate::counting::{CHUNK, MAX_LAG};
use crate::rollup::{self, Changes, Loaded, Wanted};
use crate::{NewReport, StoreError, rows, sql};

/// Taken by every count and by maintenance that changes snapshots: counting is one at a
/// time per schema, whichever collector does it. Counts need not be durable at once (a
/// lost one leaves its keys marked, counted again), so they commit asynchronously.
pub(super) const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";
const LOCK_FOR_COUNT: &str = "SELECT set_config('synchronous_commit', 'off', true),
    pg_advisory_xact_lock(hashtext($1))";
const TRY_LOCK_FOR_COUNT: &str = "SELECT set_config('synchronous_commit', 'off', true),
    pg_try_advisory_xact_lock(hashtext($1))";

/// At least this long between two passes that only committed batches ask for: fewer,
/// larger chunks under load, each adding to a counter once for more reports (a chunk's
/// counter upsert costs about the same for 400 reports as for 1,600; 30 s at 64
/// connections: 3,070-3,210 reports/s at 50 ms, 3,100-3,660 at 200 ms, settles alike).
/// A reader that settles does not wait for it.
const PACE: Duration = Duration::from_millis(200);

const GET_NODES: &str = "SELECT uuid, first_day, first_at, version, os
    FROM nodes WHERE uuid = ANY($1::text[])";
const GET_NODE_WEEKS: &str = "SELECT w.uuid, w.week, w.received_at, w.version, w.os
    FROM node_weeks w JOIN unnest($1::text[], $2::date[]) AS k (uuid, week)
        ON w.uuid = k.uuid AND w.week = k.week";
const GET_CLUSTER_WEEKS: &str =
    "SELECT w.cluster_key, w.week, w.received_at, w.version, w.os, w.profile
    FROM cluster_weeks w JOIN unnest($1::text[], $2::date[]) AS k (cluster_key, week)
        ON w.cluster_key = k.cluster_key AND w.week = k.week";
const PUT_NODES: &str = sql::upsert!(
    nodes,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])"
);
const PUT_NODE_WEEKS: &str = sql::upsert!(
    node_weeks,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[])"
);
const PUT_CLUSTER_WEEKS: &str = sql::upsert!(
    cluster_weeks,
    "SELECT * FROM unnest($1::text[], $2::date[], $3::timestamptz[], $4::text[], $5::text[],
        $6::text[])"
);
const ADD_DELTAS: &str = sql::upsert!(
    rollups,
    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[],
        $6::text[], $7::int8[])"
);
/// Counters back at zero are dropped so that queries never read them; only a counter a
/// chunk lowered can have reached zero, so only those keys are looked at (the key columns
/// of [`DeltaColumns`]).
const DROP_EMPTIED: &str = "DELETE FROM rollups r
    USING unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[])
        AS k (version, os, kind, week, k1, k2)
    WHERE r.version = k.version AND r.os = k.os AND r.kind = k.kind AND r.week = k.week
        AND r.k1 = k.k1 AND r.k2 = k.k2 AND r.n = 0";

/// Keys counted after which the counter vacuums `rollup_pending` itself. The table is a
/// queue (each report's key inserted once, deleted once when counted), so it is mostly
/// dead rows that every take walks until a vacuum removes them; with autovacuum off (as on
/// the test machines) or behind, a settle on a freshly seeded 10^6-report schema took
/// 12 ms instead of 1.6 (BENCHMARKS.md, "Analytics").
const VACUUM_EVERY: usize = 4 * CHUNK;
/// Another collector's vacuum of the queue is as good: skipped rather than waited for.
const VACUUM_QUEUE: &str = "VACUUM (SKIP_LOCKED) rollup_pending";

type Key = (NaiveDate, String);

/// How a pass takes the counting lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Somebody waits for this pass (a settle, a task, the stop): wait for the lock.
    Wait,
    /// Nobody waits: give way to another collector that holds it.
    Try,
}

/// What a pass did: counted this many reports, or gave way to another collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Counted(usize),
    GaveWay,
}

pub(super) struct PgCounter {
    /// One connection, durable commits unless a count turns them off.
    pub(super) pool: Pool,
    pub(super) db: String,
    /// The advisory lock of counting, per schema.
    pub(super) lock_key: String,
    /// The advisory lock of retention, per schema, only ever tried.
    pub(super) retention_key: String,
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
}

impl PgCounter {
    /// Runs until every sender of `jobs` is gone (the ingest writer's last one goes when it
    /// has committed its last batch), then counts once more.
    pub(super) async fn run(self, mut jobs: mpsc::Receiver<Job>, committed: Arc<Notify>) {
        // What a stop left uncounted is counted first.
        let mut asked = Asked {
            dirty: true,
            ..Asked::default()
        };
        let mut next = Instant::now();
        let mut since_vacuum = 0;
        loop {
            let job = if asked.dirty {
                tokio::select! {
                    biased;
                    job = jobs.recv() => Some(job),
                    () = tokio::time::sleep_until(next) => None,
                }
            } else {
                tokio::select! {
                    biased;
                    job = jobs.recv() => Some(job),
                    () = committed.notified() => {
                        asked.dirty = true;
                        continue;
                    }
                }
            };
            match job {
                Some(None) => break,
                Some(Some(job)) => self.take(job, &mut asked).await,
                None => {}
            }
            while let Ok(job) = jobs.try_recv() {
                self.take(job, &mut asked).await;
            }
            let due = asked.dirty && Instant::now() >= next;
            if !due && asked.settled.is_empty() && asked.tasks.is_empty() {
                continue;
            }
            let lock = if asked.settled.is_empty() && asked.tasks.is_empty() {
                Lock::Try
            } else {
                Lock::Wait
            };
            let started = Instant::now();
            let result = self.pass(lock).await;
            tracing::debug!(
                took_ms = started.elapsed().as_millis(),
                ?result,
                settles = asked.settled.len(),
                "counting pass"
            );
            (asked.dirty, next) = match &result {
                Ok(Pass::Counted(0)) => (false, started),
                Ok(_) => (true, started + PACE),
                Err(error) => {
                    tracing::error!(%error, "counting failed; retried");
                    (true, started + MAX_LAG)
                }
            };
            for reply in asked.settled.drain(..) {
                batch::reply(reply, result.clone().map(drop));
            }
            for task in asked.tasks.drain(..) {
                match &result {
                    Ok(_) => self.run_task(task).await,
                    Err(error) => task.fail(error.clone()),
                }
            }
            if let Ok(Pass::Counted(counted)) = result {
                since_vacuum += counted;
            }
            if since_vacuum >= VACUUM_EVERY {
                self.vacuum_queue().await;
                since_vacuum = 0;
            }
        }
        if let Err(error) = self.pass(Lock::Wait).await {
            tracing::error!(%error, "counting failed at shutdown; done at the next start");
        }
        tracing::debug!(db = self.db, "postgres counter stopped");
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
            Job::Task(Task::Maintenance(task)) => asked.tasks.push(task),
        }
    }

    /// Counts chunks in key order until one is not full; answers how many keys it took.
    /// With [`Lock::Try`] it stops at the first chunk whose lock another collector holds.
    async fn pass(&self, lock: Lock) -> Result<Pass, StoreError> {
        let mut after = None;
        let mut taken = 0;
        loop {
            let Some((chunk, last)) = self.count_chunk(after.as_ref(), lock).await? else {
                return Ok(Pass::GaveWay);
            };
            taken += chunk;
            if chunk < CHUNK {
                return Ok(Pass::Counted(taken));
            }
            after = last;
        }
    }

    /// Counts the next marked keys after `after` (from the first without), in one
    /// transaction; answers how many it took, and the last (`None`: the lock was only
    /// tried, and is held).
    async fn count_chunk(
        &self,
        after: Option<&Key>,
        lock: Lock,
    ) -> Result<Option<(usize, Option<Key>)>, StoreError> {
        const OP: &str = "update rollups";
        let db = self.db.as_str();
        let mut client = self.pool.get().await.map_err(StoreError::pool(db, OP))?;
        let tx = client.transaction().await.context(db, OP)?;
        let Some(keys) = take(&tx, &self.lock_key, after, lock)
            .await
            .context(db, OP)?
        else {
            return Ok(None);
        };
        let Some(last) = keys.last().cloned() else {
            return Ok(Some((0, None)));
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
        let loaded = load(&tx, &rollup::wanted(&reports), db).await?;
        let changes = in_key_order(rollup::apply(loaded, &reports));
        write_changes(&tx, &changes, &days, &uuids)
            .await
            .context(db, OP)?;
        tx.commit().await.context(db, OP)?;
        Ok(Some((keys.len(), Some(last))))
    }
}

/// Takes the counting lock, then locks the next [`CHUNK`] marked keys: in one round trip
/// when it waits for the lock; when it only tries, the keys are not locked unless the lock
/// was taken (`None` otherwise), as they may be the holder's.
async fn take(
    tx: &Transaction<'_>,
    lock_key: &str,
    after: Option<&Key>,
    lock: Lock,
) -> Result<Option<Vec<Key>>, tokio_postgres::Error> {
    let limit = CHUNK as i64;
    let lock_params: [&(dyn ToSql + Sync); 1] = [&lock_key];
    let (keys, params): (_, Vec<&(dyn ToSql + Sync)>) = match after {
        None => (tx.prepare_cached(TAKE_FIRST).await?, vec![&limit]),
        Some((day, uuid)) => (tx.prepare_cached(TAKE_NEXT).await?, vec![day, uuid, &limit]),
    };
    let rows = match lock {
        Lock::Wait => {
            let wait = tx.prepare_cached(LOCK_FOR_COUNT).await?;
            // The first error is the cause; a later one only says the transaction was
            // aborted.
            let (locked, rows) =
                tokio::join!(tx.execute(&wait, &lock_params), tx.query(&keys, &params));
            locked?;
            rows?
        }
        Lock::Try => {
            let try_lock = tx.prepare_cached(TRY_LOCK_FOR_COUNT).await?;
            let taken: bool = tx.query_one(&try_lock, &lock_params).await?.try_get(1)?;
            if !taken {
                return Ok(None);
            }
            tx.query(&keys, &params).await?
        }
    };
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Rows and deltas in key order: each statement then locks its rows in one order.
fn in_key_order(mut changes: Changes) -> Changes {
    changes.nodes.sort_unstable_by(|a, b| a.uuid.cmp(&b.uuid));
    changes
        .node_weeks
        .sort_unstable_by(|a, b| (&a.uuid, a.week).cmp(&(&b.uuid, b.week)));
    changes
        .cluster_weeks
        .sort_unstable_by(|a, b| (&a.key, a.week).cmp(&(&b.key, b.week)));
    changes.deltas.sort_unstable_by(|a, b| {
        (&a.version, &a.os, a.kind, a.week, &a.k1, &a.k2)
            .cmp(&(&b.version, &b.os, b.kind, b.week, &b.k1, &b.k2))
    });
    changes
}

/// The snapshots a chunk touches, read in one round trip.
async fn load(tx: &Transaction<'_>, wanted: &Wanted, db: &str) -> Result<Loaded, StoreError> {
    let loaded = async {
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
    };
    loaded.await.context(db, "read rollup snapshots")
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

/// The changed snapshots, the deltas, the emptied counters dropped and the chunk's keys
/// cleared, in one round trip.
async fn write_changes(
    tx: &Transaction<'_>,
    changes: &Changes,
    days: &[NaiveDate],
    uuids: &[&str],
) -> Result<(), tokio_postgres::Error> {
    let nodes = NodeColumns::of(&changes.nodes);
    let node_weeks = NodeWeekColumns::of(&changes.node_weeks);
    let cluster_weeks = ClusterWeekColumns::of(&changes.cluster_weeks);
    let deltas = DeltaColumns::of(&changes.deltas);
    let lowered: Vec<_> = changes.deltas.iter().filter(|d| d.n < 0).cloned().collect();
    let lowered_columns = DeltaColumns::of(&lowered);
    let keys: Vec<&(dyn ToSql + Sync)> = vec![&days, &uuids];
    let writes = [
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
        (ADD_DELTAS, !changes.deltas.is_empty(), deltas.params()),
        (
            DROP_EMPTIED,
            !lowered.is_empty(),
            lowered_columns.params()[..6].to_vec(),
        ),
        (MARK_COUNTED, true, keys),
    ];
    let mut statements = Vec::new();
    for (sql, needed, params) in writes {
        if needed {
            statements.push((tx.prepare_cached(sql).await?, params));
        }
    }
    let executions = statements
        .iter()
        .map(|(statement, params)| tx.execute(statement, params));
    // The first error in statement order is the cause.
    for result in futures::future::join_all(executions).await {
        result?;
    }
    Ok(())
}
