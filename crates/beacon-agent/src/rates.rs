//! Message rates from counters: messages per second over the time that really passed
//! since the previous successful report.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The broker's message counters as carried by one report, kept for the next rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct CounterSnapshot {
    pub(crate) at: DateTime<Utc>,
    /// When the node that counted started: counters begin again at zero with a new node
    /// process, so a different start means a reset even if the new count is larger.
    pub(crate) node_started_at: DateTime<Utc>,
    pub(crate) messages_sent: u64,
    pub(crate) messages_received: u64,
}

/// Messages per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Rates {
    pub(crate) sent: f64,
    pub(crate) received: f64,
}

impl Rates {
    /// Rates between `previous` and `now`; zero on the first report or when no time passed.
    ///
    /// After a reset (new node process, or a counter that went down) the messages counted
    /// since the reset are all that is known, so they are divided by the whole elapsed time:
    /// an underestimate, never a negative or inflated rate.
    pub(crate) fn between(previous: Option<&CounterSnapshot>, now: &CounterSnapshot) -> Self {
        let Some(previous) = previous else {
            return Self::default();
        };
        let elapsed = (now.at - previous.at).as_seconds_f64();
        if elapsed <= 0.0 {
            return Self::default();
        }
        let same_run = previous.node_started_at == now.node_started_at;
        let delta = |before: u64, after: u64| match after.checked_sub(before) {
            Some(grown) if same_run => grown,
            _ => after,
        };
        // u64 -> f64 rounds above 2^53 messages; a rate does not need that precision.
        Self {
            sent: delta(previous.messages_sent, now.messages_sent) as f64 / elapsed,
            received: delta(previous.messages_received, now.messages_received) as f64 / elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn snapshot(secs: i64, started: i64, sent: u64, received: u64) -> CounterSnapshot {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        CounterSnapshot {
            at: epoch + TimeDelta::seconds(secs),
            node_started_at: epoch + TimeDelta::seconds(started),
            messages_sent: sent,
            messages_received: received,
        }
    }

    #[test]
    fn first_report_is_zero() {
        assert_eq!(
            Rates::between(None, &snapshot(10, 0, 5, 5)),
            Rates::default()
        );
    }

    #[test]
    fn per_second_over_real_elapsed_time() {
        let rates = Rates::between(Some(&snapshot(100, 0, 10, 0)), &snapshot(110, 0, 60, 20));
        assert_eq!(
            rates,
            Rates {
                sent: 5.0,
                received: 2.0
            }
        );
    }

    #[test]
    fn counter_going_down_is_a_reset() {
        let rates = Rates::between(Some(&snapshot(100, 0, 1000, 7)), &snapshot(110, 0, 30, 7));
        assert_eq!(
            rates,
            Rates {
                sent: 3.0,
                received: 0.0
            }
        );
    }

    #[test]
    fn new_node_process_is_a_reset_even_when_counts_grew() {
        let rates = Rates::between(Some(&snapshot(100, 0, 10, 10)), &snapshot(110, 50, 40, 20));
        assert_eq!(
            rates,
            Rates {
                sent: 4.0,
                received: 2.0
            }
        );
    }

    #[test]
    fn clock_going_back_gives_zero() {
        let rates = Rates::between(Some(&snapshot(100, 0, 1, 1)), &snapshot(90, 0, 50, 50));
        assert_eq!(rates, Rates::default());
    }
}
