//! Writes outside ingest: bulk loading, retention and self-service deletion. All of them
//! go through the backend's single writer, so they never race with ingest.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::batch::{self, Job, MaintenanceTask, Task};
use crate::counting::CHUNK;
use crate::report::invalid;
use crate::rollup::week_of;
use crate::{InsertOutcome, NewReport, StoreError};

/// What [`Maintenance::forget_node`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForgetOutcome {
    /// The secret matched: the node's raw reports (this many) and its snapshots are gone;
    /// only aggregate counters remain.
    Deleted { reports: u64 },
    /// The node is known but the secret does not match the hash it last sent (or it never
    /// sent one); nothing was deleted.
    WrongSecret,
    /// No report of this uuid was ever stored, or it was already forgotten.
    UnknownNode,
}

/// Reports written by [`Maintenance::bulk_insert`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkOutcome {
    pub inserted: u64,
    pub replaced: u64,
    /// Reports not stored: their deletion hash is not the one their node's first report
    /// fixed (see [`InsertOutcome::HashMismatch`]).
    pub refused: u64,
}

/// Writes outside ingest.
#[async_trait::async_trait]
pub trait Maintenance: Send + Sync + 'static {
    /// Stores every report of `reports` in order, 4,096 per transaction, and counts them
    /// exactly as [`crate::ReportStore::insert`] does.
    ///
    /// The iterator runs on a blocking thread, overlapping with the writes. A report that
    /// breaks a column rule stops the load with [`StoreError::InvalidReport`] naming its
    /// position; the chunks before it stay committed.
    async fn bulk_insert(
        &self,
        reports: Box<dyn Iterator<Item = NewReport> + Send>,
    ) -> Result<BulkOutcome, StoreError>;
    /// Deletes raw reports with day before `day`, one day per transaction so that ingest
    /// goes on in between, and the per-week snapshots of weeks that ended before `day`.
    /// Rollup counters remain. Answers how many reports were deleted.
    async fn delete_reports_before(&self, day: NaiveDate) -> Result<u64, StoreError>;
    /// Deletes the raw reports, snapshots and claim of node `uuid` if `secret_sha256` (hex
    /// of SHA-256 of the secret the caller presented) equals the hash the node's first
    /// report fixed (see `claims`); compared in constant time, case-insensitively.
    async fn forget_node(
        &self,
        uuid: &str,
        secret_sha256: &str,
    ) -> Result<ForgetOutcome, StoreError>;
}

/// A backend's handle on the queue of its single writer, which takes [`Job`]s.
pub(crate) trait WriterQueue: Send + Sync + 'static {
    fn queue(&self) -> &mpsc::Sender<Job>;
}

#[async_trait::async_trait]
impl<W: WriterQueue> Maintenance for W {
    async fn bulk_insert(
        &self,
        reports: Box<dyn Iterator<Item = NewReport> + Send>,
    ) -> Result<BulkOutcome, StoreError> {
        let (chunks, mut ready) = mpsc::channel(2);
        let producer = tokio::task::spawn_blocking(move || produce(reports, &chunks));
        let mut outcome = BulkOutcome::default();
        while let Some(chunk) = ready.recv().await {
            let outcomes = batch::submit_validated(self.queue(), chunk?).await?;
            for result in outcomes {
                match result {
                    InsertOutcome::Inserted => outcome.inserted += 1,
                    InsertOutcome::Replaced => outcome.replaced += 1,
                    InsertOutcome::HashMismatch => outcome.refused += 1,
                }
            }
        }
        if let Err(error) = producer.await
            && error.is_panic()
        {
            // The caller's iterator panicked: that is the caller's panic.
            std::panic::resume_unwind(error.into_panic());
        }
        // Counted and ready for fast queries when the load returns, not at the first read.
        run(self.queue(), |reply| MaintenanceTask::Optimize { reply }).await?;
        tracing::info!(
            inserted = outcome.inserted,
            replaced = outcome.replaced,
            refused = outcome.refused,
            "bulk load committed"
        );
        Ok(outcome)
    }

    async fn delete_reports_before(&self, day: NaiveDate) -> Result<u64, StoreError> {
        let mut deleted = 0;
        while let Some(rows) = run(self.queue(), |reply| MaintenanceTask::DeleteOldestDay {
            before: day,
            reply,
        })
        .await?
        {
            deleted += rows;
        }
        let before_week = week_of(day);
        let pruned = run(self.queue(), |reply| MaintenanceTask::PruneSnapshots {
            before_week,
            reply,
        })
        .await?;
        tracing::info!(%day, deleted, pruned, "retention applied");
        Ok(deleted)
    }

    async fn forget_node(
        &self,
        uuid: &str,
        secret_sha256: &str,
    ) -> Result<ForgetOutcome, StoreError> {
        let outcome = run(self.queue(), |reply| MaintenanceTask::Forget {
            uuid: uuid.to_owned(),
            secret_sha256: secret_sha256.to_owned(),
            reply,
        })
        .await?;
        tracing::info!(?outcome, "node deletion requested");
        Ok(outcome)
    }
}

/// Queues a maintenance task made around its reply channel and waits for its answer.
async fn run<T>(
    queue: &mpsc::Sender<Job>,
    task: impl FnOnce(batch::Reply<T>) -> MaintenanceTask,
) -> Result<T, StoreError> {
    batch::run_task(queue, |reply| Task::Maintenance(task(reply))).await
}

/// Validates the reports in chunks and hands them over until the iterator ends, a report
/// is refused, or the receiver is gone.
fn produce(
    mut reports: Box<dyn Iterator<Item = NewReport> + Send>,
    chunks: &mpsc::Sender<Result<Vec<NewReport>, StoreError>>,
) {
    let mut position = 0usize;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        for report in reports.by_ref().take(CHUNK) {
            match report.validated() {
                Ok(report) => chunk.push(report),
                Err(error) => {
                    let _ = chunks.blocking_send(Err(at_position(error, position)));
                    return;
                }
            }
            position += 1;
        }
        if chunk.is_empty() || chunks.blocking_send(Ok(chunk)).is_err() {
            return;
        }
    }
}

fn at_position(error: StoreError, position: usize) -> StoreError {
    match error {
        StoreError::InvalidReport { field, reason } => invalid(
            field,
            format!("report #{position} of the bulk load: {reason}"),
        ),
        other => other,
    }
}

/// Whether the presented hash equals the stored one, without an early exit that would
/// tell an attacker how many leading characters were right.
pub(crate) fn secret_matches(stored: Option<&str>, presented: &str) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    let (stored, presented) = (stored.as_bytes(), presented.as_bytes());
    if stored.len() != presented.len() {
        return false;
    }
    let difference = stored.iter().zip(presented).fold(0u8, |acc, (a, b)| {
        acc | (a.to_ascii_lowercase() ^ b.to_ascii_lowercase())
    });
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_exactly_ignoring_case() {
        let hash = "ab".repeat(32);
        assert!(secret_matches(Some(&hash), &hash));
        assert!(secret_matches(Some(&hash), &hash.to_uppercase()));
        assert!(!secret_matches(Some(&hash), &"ab".repeat(31)));
        assert!(!secret_matches(
            Some(&hash),
            &format!("{}ac", "ab".repeat(31))
        ));
        assert!(!secret_matches(None, &hash));
    }
}
