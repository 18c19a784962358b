//! The SQLite writer thread: report batches appended to the `incoming` log, where they
//! wait uncounted; chunks of them counted (`count`: moved into `reports`, their counter
//! deltas logged and folded into the rollups many chunks at a time, see `counting`; under
//! load planned off this thread, `plan`); and maintenance (`maintenance`).
//!
//! An ingest commit only appends to `incoming`, a table without secondary indexes, so it
//! writes a few pages at the end of the file; a random page of every index for every
//! report is what capped ingest before (see BENCHMARKS.md). The chunk that moves the
//! reports into their indexed tables touches each index page once for many reports.

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::ToSql;
use rusqlite::{Connection, TransactionBehavior, params, params_from_iter};
use tokio::sync::mpsc;

use super::count::{
    recover_uncounted, report_columns, settle, try_count_chunk, try_fold, try_write_planned,
};
use super::durable::Syncer;
use super::maintenance::{delete_oldest_day, forget, prune_snapshots};
use super::plan::Planner;
use super::uncounted::UncountedLog;
use crate::batch::{self, Counters, Job, MaintenanceTask, Run, Task};
use crate::{InsertOutcome, NewReport, StoreError, claims, counting};

const EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM reports WHERE day = ?1 AND uuid = ?2)";
/// The log keeps each report's facts too, so that counting never reads its JSON.
pub(super) const LOG: &str = concat!(
    "INSERT INTO incoming (",
    report_columns!(),
    ", facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
);

pub(super) fn spawn(
    conn: Connection,
    path: &Path,
    db: String,
    jobs: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
) -> Result<(), StoreError> {
    // Commits are made durable by the sync thread before they are answered (`durable`).
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(StoreError::sqlite(&db, "set synchronous=NORMAL"))?;
    let syncer = Syncer::spawn(path, Arc::clone(&counters))?;
    let planner = Planner::spawn(path, &db)?;
    std::thread::Builder::new()
        .name("beacon-sqlite-writer".into())
        .spawn(move || run(conn, &db, jobs, &counters, &syncer, planner))
        .map(drop)
        .map_err(|error| StoreError::Io {
            op: "start the writer thread for",
            path: path.to_owned(),
            error: Arc::new(error),
        })
}

/// Runs until every sender is gone (the store is dropped) or the store is closed.
fn run(
    mut conn: Connection,
    db: &str,
    mut jobs: mpsc::Receiver<Job>,
    counters: &Counters,
    syncer: &Syncer,
    mut planner: Planner,
) {
    let mut uncounted = recover_uncounted(&conn).unwrap_or_else(|error| {
        tracing::error!(db, %error, "reading the ingest log failed; retried at the next start");
        UncountedLog::default()
    });
    let mut received = Vec::with_capacity(batch::BATCH_CAP);
    let mut closing = None;
    while jobs.blocking_recv_many(&mut received, batch::BATCH_CAP) > 0 {
        for run in batch::runs(received.drain(..)) {
            match run {
                Run::Inserts(inserts) => {
                    let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
                    let result = write_batch(&mut conn, &reports, &uncounted)
                        .map_err(StoreError::sqlite(db, "write report batch"));
                    let outcomes = match result {
                        Ok(outcomes) => outcomes,
                        Err(error) => {
                            batch::answer(inserts, Err(error), counters);
                            continue;
                        }
                    };
                    let logged = reports
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, outcome)| **outcome != InsertOutcome::HashMismatch);
                    uncounted.logged(logged.map(|(r, _)| (r.day, r.uuid.clone())));
                    syncer.acknowledge((inserts, outcomes), counters);
                }
                Run::Task(Task::Tick) => {}
                // What was queued after it is dropped, its callers told the store closed.
                Run::Task(Task::Close { reply }) => {
                    jobs.close();
                    closing = Some(reply);
                    break;
                }
                Run::Task(Task::Settle { reply }) => {
                    planner.outdate();
                    batch::reply(reply, settle(&mut conn, db, &mut uncounted));
                }
                Run::Task(Task::Maintenance(task)) => {
                    planner.outdate();
                    match settle(&mut conn, db, &mut uncounted) {
                        Ok(()) => run_task(&mut conn, db, task, syncer),
                        Err(error) => task.fail(error),
                    }
                }
            }
        }
        if closing.is_some() {
            break;
        }
        let mut counting = Counting {
            conn: &mut conn,
            db,
            uncounted: &mut uncounted,
            counters,
            planner: &mut planner,
        };
        counting.due(&jobs);
    }
    planner.outdate();
    let settled = settle(&mut conn, db, &mut uncounted);
    if let Err(error) = &settled {
        tracing::error!(%error, "counting the ingest log failed at shutdown; done at next start");
    }
    tracing::debug!(db, "sqlite writer stopped");
    if let Some(reply) = closing {
        batch::reply(reply, settled);
    }
}

/// What counting uses of the writer's state.
struct Counting<'a> {
    conn: &'a mut Connection,
    db: &'a str,
    uncounted: &'a mut UncountedLog,
    counters: &'a Counters,
    planner: &'a mut Planner,
}

impl Counting<'_> {
    /// Counts what is due after a round of jobs (see `counting`, lag bound). Under load,
    /// one step (a chunk sized to take [`counting::STEP`] of the writer) per round once a
    /// step's worth waits, planned off the writer (`plan`) and written here once ready:
    /// counting keeps the pace of ingest, the reports queued behind a step wait little,
    /// and what a reader's settle has to count stays small. [`counting::BEHIND`] steps
    /// behind, ingest waits for counting. A quiet moment counts the rest, until a job
    /// arrives. Then the counter deltas the chunks logged may be folded ([`fold_due`]).
    fn due(&mut self, jobs: &mpsc::Receiver<Job>) {
        let waiting = self.uncounted.len();
        if !self.write_planned(false) {
            return;
        }
        while self.uncounted.len() >= self.uncounted.step() * counting::BEHIND {
            if !self.count(self.uncounted.step()) {
                return;
            }
        }
        while self.uncounted.quiet() && jobs.is_empty() {
            if !self.count(counting::CHUNK) {
                return;
            }
        }
        // A plan reads neither the counters nor the deltas, so folding leaves it valid.
        let idle = self.uncounted.is_empty() && jobs.is_empty();
        let counted = self.uncounted.len() < waiting;
        if fold_due(self.uncounted.unfolded(), counted, idle) {
            try_fold(self.conn, self.db, self.uncounted, self.counters);
        }
    }

    /// Counts a chunk now: the plan on its way if there is one (it was asked for the
    /// oldest reports), else, or if that plan could not be written, on the writer itself
    /// (another collector on the file may commit all the time, and would outdate every
    /// plan).
    fn count(&mut self, limit: usize) -> bool {
        let waiting = self.uncounted.len();
        if self.planner.asked() {
            if !self.write_planned(true) {
                return false;
            }
            if self.uncounted.len() < waiting {
                return true;
            }
        }
        self.planner.outdate();
        try_count_chunk(self.conn, self.db, self.uncounted, self.counters, limit)
    }

    /// Writes the plan on its way if it is ready (with `wait`, once it is), then asks for
    /// the next one if a step's worth waits. False if a write failed.
    fn write_planned(&mut self, wait: bool) -> bool {
        let written = match self.planner.ready(wait) {
            None => true,
            Some(Ok(planned)) => {
                try_write_planned(self.conn, self.db, self.uncounted, self.counters, planned)
            }
            Some(Err(error)) => self.failed(StoreError::sqlite(self.db, "plan a count")(error)),
        };
        let step = self.uncounted.step();
        if self.uncounted.len() >= step
            && let Err(error) = self.planner.ask(self.conn, step)
        {
            return self.failed(StoreError::sqlite(self.db, "plan a count")(error));
        }
        written
    }

    fn failed(&self, error: StoreError) -> bool {
        self.counters
            .write_failed("counting the ingest log", &error);
        false
    }
}

/// Whether the `unfolded` counter deltas logged since the last fold are folded now: once
/// [`counting::FOLD`] wait, in a round that `counted` nothing (a fold takes about as long
/// as a step, and ingest would wait for both back to back: BENCHMARKS.md, session 18), or
/// at twice that; and whenever the writer is `idle`.
fn fold_due(unfolded: usize, counted: bool, idle: bool) -> bool {
    let bound = if counted {
        2 * counting::FOLD
    } else {
        counting::FOLD
    };
    unfolded >= bound || idle && unfolded > 0
}

/// Appends the reports to the log in one transaction. A report replaces an earlier one of
/// its node and day whether that one is counted, uncounted, or earlier in this batch; one
/// whose deletion hash is not its node's claimed one is not written (see `claims`).
fn write_batch(
    conn: &mut Connection,
    reports: &[&NewReport],
    uncounted: &UncountedLog,
) -> rusqlite::Result<Vec<InsertOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut exists = tx.prepare_cached(EXISTS)?;
    let mut log = tx.prepare_cached(LOG)?;
    let mut claim = tx.prepare_cached(claims::CLAIM)?;
    let mut claimed = tx.prepare_cached(claims::CLAIMED)?;
    let mut in_batch = std::collections::HashSet::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    for r in reports {
        let presented = claims::presented(r);
        // A claim made now is the node's first report: no claim to read back, and no
        // counted report of it to find (a node keeps its claim while it has reports).
        let first = claim.execute(params![r.uuid, presented])? == 1;
        if !first {
            let held: Option<String> = claimed.query_row(params![r.uuid], |row| row.get(0))?;
            if !claims::accepts(held.as_deref(), presented) {
                outcomes.push(InsertOutcome::HashMismatch);
                continue;
            }
        }
        let replaces = !in_batch.insert((r.day, r.uuid.as_str()))
            || uncounted.holds(r.day, &r.uuid)
            || !first && exists.query_row(params![r.day, r.uuid], |row| row.get(0))?;
        let facts = crate::facts::to_column(&r.analytics);
        let facts: [&dyn ToSql; 1] = [&facts];
        log.execute(params_from_iter(row_params(r).into_iter().chain(facts)))?;
        outcomes.push(if replaces {
            InsertOutcome::Replaced
        } else {
            InsertOutcome::Inserted
        });
    }
    drop((exists, log, claim, claimed));
    tx.commit()?;
    Ok(outcomes)
}

pub(super) fn row_params(r: &NewReport) -> [&dyn ToSql; 11] {
    [
        &r.day,
        &r.uuid,
        &r.cluster_uuid,
        &r.received_at,
        &r.emqx_version,
        &r.os_name,
        &r.os_version,
        &r.edition,
        &r.node_count,
        &r.format,
        &r.raw,
    ]
}

/// A maintenance task's result, once its commit is synced.
fn durable<T>(
    result: rusqlite::Result<T>,
    db: &str,
    op: &'static str,
    syncer: &Syncer,
) -> Result<T, StoreError> {
    let done = result.map_err(StoreError::sqlite(db, op))?;
    syncer.sync_now().map(|()| done)
}

/// Runs a maintenance task and answers once its commit is synced.
fn run_task(conn: &mut Connection, db: &str, task: MaintenanceTask, syncer: &Syncer) {
    match task {
        MaintenanceTask::DeleteOldestDay { before, reply } => {
            let result = delete_oldest_day(conn, before);
            batch::reply(reply, durable(result, db, "delete old reports", syncer));
        }
        MaintenanceTask::PruneSnapshots { before_week, reply } => {
            let result = prune_snapshots(conn, before_week);
            batch::reply(reply, durable(result, db, "prune snapshots", syncer));
        }
        MaintenanceTask::Forget {
            uuid,
            secret_sha256,
            reply,
        } => {
            let result = forget(conn, &uuid, &secret_sha256);
            batch::reply(reply, durable(result, db, "forget node", syncer));
        }
        MaintenanceTask::Optimize { reply } => {
            let result = conn.execute_batch("PRAGMA optimize");
            batch::reply(reply, durable(result, db, "optimize", syncer));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::Connection;

    use super::{Counting, fold_due};
    use crate::batch::Counters;
    use crate::counting::FOLD;
    use crate::sqlite::count::recover_uncounted;
    use crate::sqlite::count::tests::{counted_nodes, logged};
    use crate::sqlite::plan::Planner;

    #[test]
    fn a_fold_waits_for_a_round_without_a_step_until_twice_its_bound() {
        assert!(!fold_due(FOLD, true, false), "not right after a step");
        assert!(fold_due(FOLD, false, false));
        assert!(
            fold_due(2 * FOLD, true, false),
            "not beyond twice its bound"
        );
        assert!(!fold_due(FOLD - 1, false, false));
        assert!(fold_due(1, false, true), "whatever waits once idle");
        assert!(!fold_due(0, false, true));
    }

    /// Another collector on the file commits while every plan is made: the writer, which
    /// must count now, counts by itself instead of waiting for a plan that can be written.
    #[test]
    fn a_count_that_is_due_is_made_even_when_its_plan_is_outdated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plan.db");
        let mut conn = logged(&path, &["a", "b", "c"]);
        let mut uncounted = recover_uncounted(&conn).expect("recover");
        let mut planner = Planner::spawn(&path, "test").expect("planner");
        planner.ask(&conn, 3).expect("ask");
        Connection::open(&path)
            .and_then(|other| other.execute_batch("CREATE TABLE elsewhere (x)"))
            .expect("another connection commits");
        let counters = Arc::new(Counters::default());
        let mut counting = Counting {
            conn: &mut conn,
            db: "test",
            uncounted: &mut uncounted,
            counters: &counters,
            planner: &mut planner,
        };
        assert!(counting.count(10));
        assert!(uncounted.is_empty());
        assert_eq!(counted_nodes(&conn), 3);
    }
}
