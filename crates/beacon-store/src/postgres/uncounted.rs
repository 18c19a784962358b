//! PostgreSQL's uncounted reports (see `counting`): the ingest transaction stores the
//! report row and its key in `rollup_pending`, and the writer keeps the report in memory
//! until a chunk of them is counted; after a crash the keys left in `rollup_pending` name
//! the reports to count at start.

use std::time::Instant;

use crate::NewReport;
use crate::counting::{CHUNK, MAX_LAG};

/// Reports committed but not yet counted, in commit order.
#[derive(Default)]
pub(super) struct Uncounted {
    reports: Vec<NewReport>,
    oldest: Option<Instant>,
}

impl Uncounted {
    /// Uncounted reports recovered from the table at start, oldest first.
    pub(super) fn recovered(reports: Vec<NewReport>) -> Self {
        let oldest = (!reports.is_empty()).then(Instant::now);
        Self { reports, oldest }
    }

    pub(super) fn push(&mut self, reports: impl IntoIterator<Item = NewReport>) {
        let before = self.reports.len();
        self.reports.extend(reports);
        if before == 0 && !self.reports.is_empty() {
            self.oldest = Some(Instant::now());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.reports.is_empty()
    }

    /// A chunk is full, or the oldest report has waited [`MAX_LAG`].
    pub(super) fn due(&self) -> bool {
        self.reports.len() >= CHUNK || self.oldest.is_some_and(|since| since.elapsed() >= MAX_LAG)
    }

    /// The next chunk to count, oldest first; [`Uncounted::counted`] drops it after commit.
    pub(super) fn chunk(&self) -> Vec<&NewReport> {
        self.reports.iter().take(CHUNK).collect()
    }

    /// Forgets the first `count` reports, whose counts are committed.
    pub(super) fn counted(&mut self, count: usize) {
        self.reports.drain(..count.min(self.reports.len()));
        self.oldest = (!self.reports.is_empty()).then(Instant::now);
    }
}
