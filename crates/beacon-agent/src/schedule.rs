//! Timing: when reports are due, jitter, and the backoff between failed attempts.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

/// Jitter is at most this fraction of the delay it is added to.
const JITTER_FRACTION: f64 = 0.1;
/// The first retry waits this fraction of the interval, then the wait doubles...
const FIRST_RETRY_DIVISOR: u32 = 64;
/// ...up to this fraction of the interval. Scaling with the interval (rather than fixed
/// seconds) keeps the number of requests per period the same for any interval.
const RETRY_CAP_DIVISOR: u32 = 4;

/// At most this many attempts fit in one period: the waits are 1, 2, 4, 8, 16 × i/64, then
/// i/4 twice (31/64 + 2/4 < 1; a third quarter would cross the period's end), so seven
/// retries after the first attempt. Jitter only lengthens waits.
pub const MAX_ATTEMPTS_PER_PERIOD: u32 = 8;

/// A random extra delay in `[0, 10 %]` of `base`, so that nodes started together spread out.
pub(crate) fn jitter(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.0..=JITTER_FRACTION))
}

/// `at + delay`, saturating at chrono's far future instead of overflowing.
pub(crate) fn after(at: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Sleeps until the wall-clock time `at` (at once if it has passed).
pub(crate) async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

/// When the next period starts: not before `initial_delay` after telemetry was enabled in
/// this run, not before `interval` after the last successful report, and not before
/// `not_before` (end of a failed period, or a collector's `Retry-After`). Each delay gets
/// its own jitter.
pub(crate) fn next_due(
    enabled_since: DateTime<Utc>,
    initial_delay: Duration,
    last_report_at: Option<DateTime<Utc>>,
    interval: Duration,
    not_before: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    let earliest = after(enabled_since, initial_delay + jitter(initial_delay));
    let regular = last_report_at.map(|last| after(last, interval + jitter(interval)));
    [Some(earliest), regular, not_before]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(earliest)
}

/// Exponential backoff inside one period, scaled to the interval.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub(crate) fn for_interval(interval: Duration) -> Self {
        Self {
            next: interval / FIRST_RETRY_DIVISOR,
            cap: interval / RETRY_CAP_DIVISOR,
        }
    }

    /// The wait before the next retry: the current step plus jitter (never less, so the
    /// bound on attempts per period holds).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(self.cap);
        step + jitter(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_at_most_ten_percent() {
        for _ in 0..1000 {
            assert!(jitter(Duration::from_secs(100)) <= Duration::from_secs(10));
        }
    }

    #[test]
    fn due_respects_every_bound() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        let day = Duration::from_secs(86_400);
        let fresh = next_due(now, hour, None, day, None);
        assert!(fresh >= after(now, hour) && fresh <= after(now, hour.mul_f64(1.1)));
        let recent = now - TimeDelta::hours(2);
        let due = next_due(now, hour, Some(recent), day, None);
        assert!(due >= after(recent, day) && due <= after(recent, day.mul_f64(1.1)));
        let later = after(now, day * 3);
        assert_eq!(next_due(now, hour, Some(recent), day, Some(later)), later);
    }

    #[test]
    fn attempts_per_period_are_bounded() {
        for interval in [Duration::from_secs(2), Duration::from_secs(7 * 86_400)] {
            let mut backoff = Backoff::for_interval(interval);
            let mut elapsed = Duration::ZERO;
            let mut attempts = 1;
            loop {
                elapsed += backoff.next_wait();
                if elapsed >= interval {
                    break;
                }
                attempts += 1;
            }
            assert!(
                attempts <= MAX_ATTEMPTS_PER_PERIOD,
                "{attempts} in {interval:?}"
            );
            assert!(attempts >= 2, "retries happen within {interval:?}");
        }
    }
}
