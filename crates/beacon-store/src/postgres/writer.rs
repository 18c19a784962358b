//! The PostgreSQL writer task: its loop over the queue, which runs report batches
//! (`ingest`), counts uncounted reports (`count`, see `counting`) and maintenance
//! (`maintenance`).
//!
//! Every write transaction first takes an advisory lock, so that two collectors sharing a
//! database never update the same snapshot from two stale reads.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;

use super::uncounted::Uncounted;
use crate::batch::{self, Counters, Job, MaintenanceTask, Run, Task};
use crate::{NewReport, StoreError};

pub(super) const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext($1))";

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
    pub(super) pool: Pool,
    pub(super) db: String,
    /// The advisory lock every write transaction takes, per schema.
    pub(super) lock_key: String,
}

impl PgWriter {
    /// Runs until every sender is gone, that is until the store is dropped.
    pub(super) async fn run(self, mut jobs: mpsc::Receiver<Job>, counters: Arc<Counters>) {
        let mut uncounted = self.recover_uncounted().await.unwrap_or_else(|error| {
            tracing::error!(%error, "reading uncounted reports failed; counted at the next start");
            Uncounted::default()
        });
        let mut received = Vec::with_capacity(batch::BATCH_CAP);
        while jobs.recv_many(&mut received, batch::BATCH_CAP).await > 0 {
            for run in batch::runs(received.drain(..)) {
                match run {
                    Run::Inserts(inserts) => {
                        let reports: Vec<&NewReport> = batch::reports(&inserts).collect();
                        let result = self.write_batch(&reports).await;
                        if result.is_ok() {
                            uncounted.push(reports.into_iter().cloned());
                        }
                        batch::answer(inserts, result, &counters);
                    }
                    Run::Task(Task::Tick) => {}
                    Run::Task(Task::Settle { reply }) => {
                        batch::reply(reply, self.settle(&mut uncounted).await);
                    }
                    Run::Task(Task::Maintenance(task)) => match self.settle(&mut uncounted).await {
                        Ok(()) => self.run_task(task).await,
                        Err(error) => task.fail(error),
                    },
                }
            }
            if uncounted.due()
                && let Err(error) = self.count_chunk(&mut uncounted).await
            {
                tracing::error!(%error, "counting failed; it is retried with the next chunk");
            }
        }
        if let Err(error) = self.settle(&mut uncounted).await {
            tracing::error!(%error, "counting failed at shutdown; done at the next start");
        }
        tracing::debug!(db = self.db, "postgres writer stopped");
    }

    async fn run_task(&self, task: MaintenanceTask) {
        match task {
            MaintenanceTask::DeleteOldestDay { before, reply } => {
                batch::reply(reply, self.delete_oldest_day(before).await);
            }
            MaintenanceTask::PruneSnapshots { before_week, reply } => {
                batch::reply(reply, self.prune_snapshots(before_week).await);
            }
            MaintenanceTask::Forget {
                uuid,
                secret_sha256,
                reply,
            } => batch::reply(reply, self.forget(&uuid, &secret_sha256).await),
            MaintenanceTask::Optimize { reply } => batch::reply(reply, self.optimize().await),
        }
    }
}
