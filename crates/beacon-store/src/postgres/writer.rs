//! The PostgreSQL ingest writer: its loop over the ingest queue, which commits report
//! batches (`ingest`) on up to [`PIPELINE`] connections at once, so that one batch's
//! statements run while the one before waits for its commit to reach the disk.
//!
//! Two reports of one node and day never commit at once: the later one waits for the
//! earlier one's batch, so that it replaces it, as with a single writer.
//!
//! Counting and maintenance run beside it, on the counter (`count`), so that neither waits
//! behind ingest nor holds it up.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::batch::{self, Counters, Insert, Job, Run, Task};
use crate::{NewReport, StoreError};

/// Report batches committing at once, each on its own connection. A batch takes two round
/// trips (see `ingest`), so a second one's statements run while the first waits for its
/// commit; a third only made the batches smaller: two collectors on one database ingested
/// 7% more with two than with three, one collector the same (BENCHMARKS.md).
pub(super) const PIPELINE: usize = 2;

/// Names the database and operation of a failed call.
pub(super) trait Context<T> {
    fn context(self, db: &str, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, tokio_postgres::Error> {
    fn context(self, db: &str, op: &'static str) -> Result<T, StoreError> {
        self.map_err(StoreError::postgres(db, op))
    }
}

pub(super) struct PgWriter {
    /// [`PIPELINE`] connections, with durable commits.
    pub(super) pool: Pool,
    pub(super) db: String,
}

impl PgWriter {
    /// Runs until every sender of `jobs` is gone or the store is closed, then waits for the
    /// batches still committing. Each committed batch wakes the counter through
    /// `committed`; tasks go to the counter's queue `tasks`, the close too, once the last
    /// batch has committed (so that the counter's last count comes after it).
    pub(super) async fn run(
        self,
        mut jobs: mpsc::Receiver<Job>,
        counters: Arc<Counters>,
        tasks: mpsc::Sender<Job>,
        committed: Arc<Notify>,
    ) {
        let writer = Arc::new(self);
        let slots = Arc::new(Semaphore::new(PIPELINE));
        let in_flight = Arc::new(InFlight::default());
        let mut received = Vec::with_capacity(batch::BATCH_CAP);
        let mut closing = None;
        while closing.is_none() {
            // A free slot first: reports that arrive meanwhile join the next batch.
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            if jobs.recv_many(&mut received, batch::BATCH_CAP).await == 0 {
                break;
            }
            let mut inserts = Vec::new();
            for run in batch::runs(received.drain(..)) {
                match run {
                    Run::Inserts(run) => inserts.extend(run),
                    // What was queued after it is dropped, its callers told the store closed.
                    Run::Task(Task::Close { reply }) => {
                        jobs.close();
                        closing = Some(reply);
                        break;
                    }
                    Run::Task(task) => {
                        if tasks.send(Job::Task(task)).await.is_err() {
                            tracing::error!("postgres counter stopped; task dropped");
                        }
                    }
                }
            }
            if inserts.is_empty() {
                continue;
            }
            let keys: Vec<Key> = batch::reports(&inserts)
                .map(|r| (r.day, r.uuid.clone()))
                .collect();
            if !in_flight.claim(&keys) {
                // Rare: a node reported again while its last report is committing.
                drain(&slots, PIPELINE - 1).await;
                in_flight.claim(&keys);
            }
            let (writer, counters, committed, in_flight) = (
                Arc::clone(&writer),
                Arc::clone(&counters),
                Arc::clone(&committed),
                Arc::clone(&in_flight),
            );
            tokio::spawn(async move {
                writer.commit(inserts, &counters, &committed).await;
                in_flight.release(&keys);
                drop(slot);
            });
        }
        drain(&slots, PIPELINE).await;
        tracing::debug!(db = writer.db, "postgres writer stopped");
        if let Some(reply) = closing {
            // Failing, the close is dropped, and its caller hears the store is closed.
            drop(tasks.send(Job::Task(Task::Close { reply })).await);
        }
    }

    async fn commit(&self, inserts: Vec<Insert>, counters: &Counters, committed: &Notify) {
        let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
        let result = self.write_batch(&reports).await;
        if result.is_ok() {
            committed.notify_one();
        }
        batch::answer(inserts, result, counters);
    }
}

/// Waits until no batch is committing: the `free` slots the caller does not hold are back.
async fn drain(slots: &Semaphore, free: usize) {
    let free = u32::try_from(free).unwrap_or(u32::MAX);
    if let Ok(all) = slots.acquire_many(free).await {
        drop(all);
    }
}

type Key = (NaiveDate, String);

/// The (day, uuid) keys of the batches committing now.
#[derive(Default)]
struct InFlight(Mutex<HashSet<Key>>);

impl InFlight {
    /// Adds `keys` unless one of them is committing already.
    fn claim(&self, keys: &[Key]) -> bool {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.iter().any(|key| held.contains(key)) {
            return false;
        }
        held.extend(keys.iter().cloned());
        true
    }

    fn release(&self, keys: &[Key]) {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            held.remove(key);
        }
    }
}
