//! SQLite's uncounted reports (see `counting`) wait in the `incoming` table, the ingest
//! log. What the writer knows about it without reading it: how many reports wait there,
//! which (day, node) keys, and when the last one arrived.
//!
//! The log is counted in chunks read back from the table, so a burst of any size costs
//! memory only for its keys; the keys let ingest tell a replacement from a first report
//! without an index on the log.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

use crate::NewReport;
use crate::counting::{CHUNK, MIN_STEP, QUIET, STEP};

/// The keys of the reports in the ingest log.
pub(super) struct UncountedLog {
    /// Reports waiting per day and node; by day first so that a lookup by `&str` needs no
    /// allocation on the ingest path.
    keys: HashMap<NaiveDate, HashMap<String, usize>>,
    len: usize,
    last_arrival: Option<Instant>,
    /// Reports counted per step under load, from how long the last chunk took.
    step: usize,
    /// Counter deltas the chunks counted since the last fold logged (see `count::fold`).
    unfolded: usize,
}

impl Default for UncountedLog {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
            len: 0,
            last_arrival: None,
            step: MIN_STEP,
            unfolded: 0,
        }
    }
}

impl UncountedLog {
    /// The log as found at start.
    pub(super) fn recovered(keys: impl IntoIterator<Item = (NaiveDate, String)>) -> Self {
        let mut log = Self::default();
        log.logged(keys);
        log
    }

    /// Keys of reports just committed to the log.
    pub(super) fn logged(&mut self, keys: impl IntoIterator<Item = (NaiveDate, String)>) {
        for (day, uuid) in keys {
            *self.keys.entry(day).or_default().entry(uuid).or_default() += 1;
            self.len += 1;
        }
        self.last_arrival = Some(Instant::now());
    }

    /// A chunk of `reports` was counted, and so moved out of the log, in `took` of the
    /// writer's time; it logged `deltas` counter deltas.
    pub(super) fn chunk_counted(&mut self, reports: &[NewReport], deltas: usize, took: Duration) {
        self.paced(reports.len(), took);
        if reports.is_empty() {
            // The log is empty whatever the keys say (another process drained it).
            *self = Self {
                unfolded: self.unfolded,
                ..Self::default()
            };
        }
        self.counted(reports.iter().map(|r| (r.day, r.uuid.as_str())));
        self.unfolded += deltas;
    }

    /// Counter deltas logged since the last fold.
    pub(super) fn unfolded(&self) -> usize {
        self.unfolded
    }

    /// Every counter delta logged so far was folded.
    pub(super) fn folded(&mut self) {
        self.unfolded = 0;
    }

    /// Keys of reports just counted.
    fn counted<'a>(&mut self, keys: impl IntoIterator<Item = (NaiveDate, &'a str)>) {
        for (day, uuid) in keys {
            let Entry::Occupied(mut nodes) = self.keys.entry(day) else {
                continue;
            };
            let Some(count) = nodes.get_mut().get_mut(uuid) else {
                continue;
            };
            *count -= 1;
            self.len -= 1;
            if *count == 0 {
                nodes.get_mut().remove(uuid);
                if nodes.get().is_empty() {
                    nodes.remove();
                }
            }
        }
    }

    /// Whether a report of node `uuid` for `day` waits in the log.
    pub(super) fn holds(&self, day: NaiveDate, uuid: &str) -> bool {
        self.keys
            .get(&day)
            .is_some_and(|nodes| nodes.contains_key(uuid))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reports waiting.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// How many reports a chunk counted under load holds: as many as take [`STEP`] at the
    /// pace of the chunks before, within [`MIN_STEP`] and [`CHUNK`].
    pub(super) fn step(&self) -> usize {
        self.step
    }

    /// A chunk of `reports` took `took`: the next step is sized from it (smoothed, so that
    /// one slow chunk does not halve the next).
    fn paced(&mut self, reports: usize, took: Duration) {
        if reports < MIN_STEP {
            return;
        }
        let per_report = took.as_secs_f64() / reports as f64;
        let fits = (STEP.as_secs_f64() / per_report.max(1e-7)) as usize;
        self.step = ((self.step + fits) / 2).clamp(MIN_STEP, CHUNK);
    }

    /// Something waits and nothing has arrived for [`QUIET`].
    pub(super) fn quiet(&self) -> bool {
        !self.is_empty() && self.last_arrival.is_none_or(|at| at.elapsed() >= QUIET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_held_until_every_copy_is_counted() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).expect("day");
        let mut log = UncountedLog::default();
        log.logged([(day, "A".to_owned()), (day, "A".to_owned())]);
        assert!(log.holds(day, "A") && !log.holds(day, "B"));
        log.counted([(day, "A")]);
        assert!(log.holds(day, "A"));
        log.counted([(day, "A")]);
        assert!(!log.holds(day, "A") && log.is_empty());
        assert!(!log.quiet(), "an empty log has nothing to count");
    }
}
