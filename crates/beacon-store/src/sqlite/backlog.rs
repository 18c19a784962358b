//! What the SQLite writer knows about the `incoming` log without reading it: how many
//! reports wait there, which (day, node) keys, and when the last one arrived.
//!
//! The log is indexed in chunks read back from the table, so a burst of any size costs
//! memory only for its keys; the keys let ingest tell a replacement from a first report
//! without an index on the log.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, Instant};

use chrono::NaiveDate;

/// Reports indexed in one transaction at most.
pub(super) const CHUNK: usize = 4096;
/// A log this long is indexed a chunk after every ingest batch, even under load, so that
/// the backlog (and the wait of a reader that settles it) stays bounded.
pub(super) const CAP: usize = 65_536;
/// The log is indexed once no report has arrived for this long.
pub(super) const QUIET: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(super) struct Backlog {
    /// Reports waiting per day and node; by day first so that a lookup by `&str` needs no
    /// allocation on the ingest path.
    keys: HashMap<NaiveDate, HashMap<String, usize>>,
    len: usize,
    last_arrival: Option<Instant>,
}

impl Backlog {
    /// The log as found at start.
    pub(super) fn recovered(keys: impl IntoIterator<Item = (NaiveDate, String)>) -> Self {
        let mut backlog = Self::default();
        backlog.logged(keys);
        backlog
    }

    /// Keys of reports just committed to the log.
    pub(super) fn logged(&mut self, keys: impl IntoIterator<Item = (NaiveDate, String)>) {
        for (day, uuid) in keys {
            *self.keys.entry(day).or_default().entry(uuid).or_default() += 1;
            self.len += 1;
        }
        self.last_arrival = Some(Instant::now());
    }

    /// Keys of reports just moved out of the log.
    pub(super) fn indexed<'a>(&mut self, keys: impl IntoIterator<Item = (NaiveDate, &'a str)>) {
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

    /// Too long to wait for a quiet moment.
    pub(super) fn full(&self) -> bool {
        self.len >= CAP
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
    fn keys_are_counted_until_every_copy_is_indexed() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 25).expect("day");
        let mut backlog = Backlog::default();
        backlog.logged([(day, "A".to_owned()), (day, "A".to_owned())]);
        assert!(backlog.holds(day, "A") && !backlog.holds(day, "B"));
        backlog.indexed([(day, "A")]);
        assert!(backlog.holds(day, "A"));
        backlog.indexed([(day, "A")]);
        assert!(!backlog.holds(day, "A") && backlog.is_empty());
        assert!(!backlog.quiet(), "an empty log has nothing to index");
    }
}
