//! Rollups brought up to date in large chunks instead of inside every ingest commit.
//!
//! Both backends make a report durable first and count it later, many reports at once,
//! when a reader asks ([`settle`] sends [`Task::Flush`] before every analytics query, so a
//! query always sees every committed report), before maintenance, and when the writer has
//! time. One chunk touches each counter once however many of its reports count it, which
//! is what keeps ingest fast (see BENCHMARKS.md).
//!
//! [`Pending`] is PostgreSQL's way: the ingest transaction stores the report row and its
//! key in `rollup_pending`, the writer keeps the report in memory and applies a chunk when
//! [`Pending::due`] says so; after a crash the keys left in `rollup_pending` name the
//! reports to apply again at start. SQLite logs reports to an unindexed table instead and
//! indexes them later (`sqlite::backlog`).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::batch::{Job, Task};
use crate::{NewReport, ReportFacts, StoreError, StoredReport};

/// Reports applied in one rollup transaction at most, and the count that makes a chunk due.
pub(crate) const ROLLUP_CHUNK: usize = 4096;
/// How long a committed report may wait for its rollups when nobody asks for them.
pub(crate) const MAX_LAG: Duration = Duration::from_secs(1);

/// Reports committed but not yet counted, in commit order.
#[derive(Default)]
pub(crate) struct Pending {
    reports: Vec<NewReport>,
    oldest: Option<Instant>,
}

impl Pending {
    /// Pending reports recovered from the table at start, oldest first.
    pub(crate) fn recovered(reports: Vec<NewReport>) -> Self {
        let oldest = (!reports.is_empty()).then(Instant::now);
        Self { reports, oldest }
    }

    pub(crate) fn push(&mut self, reports: impl IntoIterator<Item = NewReport>) {
        let before = self.reports.len();
        self.reports.extend(reports);
        if before == 0 && !self.reports.is_empty() {
            self.oldest = Some(Instant::now());
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// Enough reports wait, or the oldest has waited long enough.
    pub(crate) fn due(&self) -> bool {
        self.reports.len() >= ROLLUP_CHUNK
            || self.oldest.is_some_and(|since| since.elapsed() >= MAX_LAG)
    }

    /// The next chunk to apply, oldest first; [`Pending::applied`] drops it after commit.
    pub(crate) fn chunk(&self) -> Vec<&NewReport> {
        self.reports.iter().take(ROLLUP_CHUNK).collect()
    }

    /// Forgets the first `count` reports, whose rollups are committed.
    pub(crate) fn applied(&mut self, count: usize) {
        self.reports.drain(..count.min(self.reports.len()));
        self.oldest = (!self.reports.is_empty()).then(Instant::now);
    }
}

/// A stored report as the row it was inserted from, its facts read again from its JSON.
pub(crate) fn reinserted(report: StoredReport) -> NewReport {
    let analytics = serde_json::from_str(&report.raw)
        .map(|doc| ReportFacts::from_json(&doc))
        .unwrap_or_default();
    NewReport {
        uuid: report.uuid,
        cluster_uuid: report.cluster_uuid,
        day: report.day,
        received_at: report.received_at,
        emqx_version: report.emqx_version,
        os_name: report.os_name,
        os_version: report.os_version,
        edition: report.edition,
        node_count: report.node_count,
        format: report.format,
        raw: report.raw,
        analytics,
    }
}

/// Waits until every report committed before this call is counted in the rollups.
pub(crate) async fn settle(queue: &mpsc::Sender<Job>) -> Result<(), StoreError> {
    crate::batch::run_task(queue, |reply| Task::Flush { reply }).await
}

/// Wakes the writer `every` so that it can apply what waits without a job arriving;
/// stops when the store is dropped.
pub(crate) fn spawn_ticker(queue: &mpsc::Sender<Job>, every: Duration) {
    let queue = queue.downgrade();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(queue) = queue.upgrade() else { break };
            if queue.send(Job::Task(Task::Tick)).await.is_err() {
                break;
            }
        }
    });
}
