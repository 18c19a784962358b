//! Sign-in attempts per user name, so that a password cannot be guessed at network speed.
//!
//! Keyed by the name typed, never by address (the console keeps no client addresses), so
//! an account's attempts are limited however many sources send them. The price: someone
//! hammering a name delays its owner's sign-in by a few minutes at most, never longer.

use std::num::NonZeroU32;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Names longer than this share the key of their first characters, so that the table
/// cannot be grown with huge keys.
const MAX_KEY_CHARS: usize = 128;
/// Above this many names, those whose budget is whole again are dropped.
const PRUNE_ABOVE: usize = 10_000;

pub(crate) struct LoginThrottle {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl LoginThrottle {
    pub(crate) fn new(per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    /// Counts an attempt for `user`; `Err(seconds to wait)` when its budget is used up.
    pub(crate) fn attempt(&self, user: &str) -> Result<(), u64> {
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
        let key: String = user.chars().take(MAX_KEY_CHARS).collect();
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            // Rounded up, so that waiting the announced time is always enough.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_has_its_own_budget() {
        let one = NonZeroU32::MIN;
        let throttle = LoginThrottle::new(one, NonZeroU32::new(2).expect("two"));
        assert!(throttle.attempt("admin").is_ok());
        assert!(throttle.attempt("admin").is_ok());
        let wait = throttle
            .attempt("admin")
            .expect_err("third attempt in a row");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(throttle.attempt("other").is_ok());
        let long = "x".repeat(1000);
        assert!(throttle.attempt(&long).is_ok() && throttle.attempt(&long).is_ok());
        let longer = format!("{long}y");
        assert!(
            throttle.attempt(&longer).is_err(),
            "same first characters, same key"
        );
    }
}
