//! The queue between callers and a backend's single writer (group commit).
//!
//! The writer waits for the first job, takes whatever else is queued at that moment (up to
//! [`BATCH_CAP`] jobs), commits consecutive inserts in one transaction, then answers every
//! waiter. Nothing waits on a timer, so an idle store commits a lone insert at once.
//! Maintenance (retention, deletion) and counting (see `counting`) go through the same
//! writer, between batches, so they never race with ingest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use tokio::sync::{mpsc, oneshot};

use crate::{ForgetOutcome, InsertOutcome, NewReport, StoreError, StoreStats};

/// Most jobs taken from the queue at once.
pub(crate) const BATCH_CAP: usize = 1024;
/// Queued jobs beyond this make callers wait, which pushes back on the ingest side.
pub(crate) const QUEUE_CAP: usize = 4 * BATCH_CAP;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Reports to store, answered with one outcome per report.
pub(crate) struct Insert {
    pub(crate) reports: Vec<NewReport>,
    reply: Reply<Vec<InsertOutcome>>,
}

/// What the writer does between report batches.
pub(crate) enum Task {
    /// Counts every uncounted report (see `counting`).
    Settle { reply: Reply<()> },
    /// Counts uncounted reports if they are due.
    Tick,
    /// Counts every uncounted report, lets whatever the store runs in the background end,
    /// and stops it: answered last, once nothing of the store is left mid-transaction.
    Close { reply: Reply<()> },
    /// Runs once every report committed before it is counted.
    Maintenance(MaintenanceTask),
}

/// Maintenance, each in a transaction of its own.
pub(crate) enum MaintenanceTask {
    /// Deletes the raw reports of the oldest stored day if it is before `before`; answers
    /// how many, or `None` when no day before `before` is left.
    DeleteOldestDay {
        before: NaiveDate,
        reply: Reply<Option<u64>>,
    },
    /// Deletes node and cluster snapshots of weeks before `before_week`.
    PruneSnapshots {
        before_week: NaiveDate,
        reply: Reply<u64>,
    },
    /// Deletes a node's reports and snapshots if `secret_sha256` matches its stored hash.
    Forget {
        uuid: String,
        secret_sha256: String,
        reply: Reply<ForgetOutcome>,
    },
    /// Refreshes what the query planner relies on (PostgreSQL also clears dead rows),
    /// after a bulk load: `PRAGMA optimize` on SQLite, `VACUUM (ANALYZE) rollups` on
    /// PostgreSQL.
    Optimize { reply: Reply<()> },
}

impl MaintenanceTask {
    /// Answers the task with `error` without running it.
    pub(crate) fn fail(self, error: StoreError) {
        match self {
            Self::DeleteOldestDay { reply, .. } => self::reply(reply, Err(error)),
            Self::PruneSnapshots { reply, .. } => self::reply(reply, Err(error)),
            Self::Forget { reply, .. } => self::reply(reply, Err(error)),
            Self::Optimize { reply } => self::reply(reply, Err(error)),
        }
    }
}

pub(crate) enum Job {
    Insert(Insert),
    Task(Task),
}

/// Jobs in queue order, consecutive inserts grouped into one transaction.
pub(crate) enum Run {
    Inserts(Vec<Insert>),
    Task(Task),
}

pub(crate) fn queue() -> (mpsc::Sender<Job>, mpsc::Receiver<Job>) {
    mpsc::channel(QUEUE_CAP)
}

/// Splits a batch into runs without reordering it.
pub(crate) fn runs(jobs: impl Iterator<Item = Job>) -> Vec<Run> {
    let mut runs = Vec::new();
    for job in jobs {
        match (job, runs.last_mut()) {
            (Job::Insert(insert), Some(Run::Inserts(group))) => group.push(insert),
            (Job::Insert(insert), _) => runs.push(Run::Inserts(vec![insert])),
            (Job::Task(task), _) => runs.push(Run::Task(task)),
        }
    }
    runs
}

/// The reports of a run of inserts, in queue order.
pub(crate) fn reports(inserts: &[Insert]) -> impl Iterator<Item = &NewReport> {
    inserts.iter().flat_map(|insert| &insert.reports)
}

/// Validates `report`, queues it for the writer and waits for the commit.
///
/// If the caller stops waiting, the report is still written; only the answer is lost.
pub(crate) async fn submit(
    queue: &mpsc::Sender<Job>,
    report: NewReport,
) -> Result<InsertOutcome, StoreError> {
    let outcomes = submit_validated(queue, vec![report.validated()?]).await?;
    outcomes.into_iter().next().ok_or(StoreError::Closed)
}

/// Queues already validated reports as one job and waits for their commit.
pub(crate) async fn submit_validated(
    queue: &mpsc::Sender<Job>,
    reports: Vec<NewReport>,
) -> Result<Vec<InsertOutcome>, StoreError> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Job::Insert(Insert { reports, reply }))
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// Queues a task made around its reply channel and waits for its answer.
pub(crate) async fn run_task<T>(
    queue: &mpsc::Sender<Job>,
    task: impl FnOnce(Reply<T>) -> Task,
) -> Result<T, StoreError> {
    let (reply, answer) = oneshot::channel();
    queue
        .send(Job::Task(task(reply)))
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// Sends a task's answer; a caller that gave up has dropped its receiver, and the task's
/// effect stands anyway.
pub(crate) fn reply<T>(reply: Reply<T>, result: Result<T, StoreError>) {
    if let Err(error) = &result {
        tracing::error!(%error, "store maintenance failed, nothing committed");
    }
    let _ = reply.send(result);
}

/// How long a failed write keeps the store unhealthy when nothing is written after it: a
/// collector that nobody sends to (a load balancer took it out) must become healthy again
/// by itself, and the next write tells again.
const FAILED_WRITE_SHOWS_FOR: Duration = Duration::from_secs(30);

/// What the writer did: committed batches and rows, and whether writes fail now.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    batches: AtomicU64,
    rows: AtomicU64,
    /// The latest failed write (an ingest batch or a counting chunk) and when, while no
    /// write has succeeded since.
    failing: Mutex<Option<(Instant, StoreError)>>,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> StoreStats {
        StoreStats {
            batches: self.batches.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
        }
    }

    /// A write failed. A full disk or a lost database fails every write until someone
    /// fixes it, so only the first failure of a streak is a warning (saying why, and that
    /// reports are refused meanwhile); the rest are debug lines.
    pub(crate) fn write_failed(&self, what: &'static str, error: &StoreError) {
        let mut failing = self.failing();
        if failing.is_none() {
            if error.is_full() {
                tracing::warn!(%error, "{what} failed: storage is full; reports are refused (503) until space is freed");
            } else {
                tracing::warn!(%error, "{what} failed; reports are refused (503) until a write succeeds");
            }
        } else {
            tracing::debug!(%error, "{what} failed again");
        }
        *failing = Some((Instant::now(), error.clone()));
    }

    /// A write committed: ends a failure streak, with one line saying so.
    pub(crate) fn write_succeeded(&self) {
        if let Some((_, error)) = self.failing().take() {
            tracing::warn!(after = %error, "storage writes succeed again");
        }
    }

    /// The error of the latest write, if it failed and not long ago: the store's health.
    pub(crate) fn write_health(&self) -> Result<(), StoreError> {
        match &*self.failing() {
            Some((at, error)) if at.elapsed() < FAILED_WRITE_SHOWS_FOR => Err(error.clone()),
            _ => Ok(()),
        }
    }

    /// The state stays valid whatever a panicking holder did, so poisoning is ignored.
    fn failing(&self) -> std::sync::MutexGuard<'_, Option<(Instant, StoreError)>> {
        self.failing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Answers every insert of a run: its own outcomes after a commit, the run's error
/// otherwise (so a failed commit is never reported as a success).
pub(crate) fn answer(
    inserts: Vec<Insert>,
    result: Result<Vec<InsertOutcome>, StoreError>,
    counters: &Counters,
) {
    match result {
        Ok(outcomes) => {
            let rows = outcomes.len();
            counters.write_succeeded();
            counters.batches.fetch_add(1, Ordering::Relaxed);
            counters.rows.fetch_add(rows as u64, Ordering::Relaxed);
            tracing::debug!(rows, "report batch committed");
            let mut outcomes = outcomes.into_iter();
            for insert in inserts {
                let own = outcomes.by_ref().take(insert.reports.len()).collect();
                // A waiter that gave up has dropped its receiver; its rows are stored anyway.
                let _ = insert.reply.send(Ok(own));
            }
        }
        Err(error) => {
            counters.write_failed("storing a report batch", &error);
            for insert in inserts {
                let _ = insert.reply.send(Err(error.clone()));
            }
        }
    }
}
