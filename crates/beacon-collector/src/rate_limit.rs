//! Per-source-IP rate limiting of the ingest endpoint. The addresses live only in this
//! in-memory table; they are never logged or stored.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

/// How often idle entries are dropped from the table, so that it holds only recent sources.
pub(crate) const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// A keyed token bucket; `None` inside when rate limiting is disabled.
#[derive(Debug)]
pub(crate) struct IpRateLimiter {
    inner: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl IpRateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let inner = NonZeroU32::new(limit.per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(limit.burst).unwrap_or(per_minute);
            RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        Self { inner }
    }

    /// `Err(seconds to wait)` when `ip` has used up its budget.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.inner else {
            return Ok(());
        };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            // Round up so that a client honouring Retry-After is not refused again.
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets sources whose bucket is full again.
    pub(crate) fn prune(&self) {
        if let Some(limiter) = &self.inner {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_per_address() {
        let limiter = IpRateLimiter::new(RateLimit::per_minute(2));
        let a: IpAddr = "127.0.0.42".parse().unwrap();
        let b: IpAddr = "127.0.0.43".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(a).is_ok());
        let wait = limiter.check(a).unwrap_err();
        assert!((1..=60).contains(&wait), "retry after {wait}");
        assert!(limiter.check(b).is_ok());
    }

    #[test]
    fn zero_disables() {
        let limiter = IpRateLimiter::new(RateLimit::disabled());
        assert!(!limiter.is_enabled());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!((0..1000).all(|_| limiter.check(ip).is_ok()));
    }
}
