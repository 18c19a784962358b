//! Sign-in attempts, so that a password cannot be guessed at network speed and nobody can
//! keep another person out.
//!
//! Each (user name, source address) pair has its own budget: someone hammering `admin`
//! from their address uses up only their own attempts, never those of the owner signing in
//! from another address. A global budget over every pair bounds the guesses a crowd of
//! addresses can make together; it is only spent by attempts their pair allowed, so one
//! address cannot drain it. Addresses live in memory only (never stored or logged); IPv6
//! addresses count by their /64, the block one subscriber usually holds.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

/// Names longer than this share the key of their first characters, so that the table
/// cannot be grown with huge keys.
const MAX_KEY_CHARS: usize = 128;
/// Above this many pairs, those whose budget is whole again are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// Sign-in budgets per (user name, source address) and over all attempts.
pub struct LoginThrottle {
    pairs: DefaultKeyedRateLimiter<(String, IpAddr)>,
    global: DefaultDirectRateLimiter,
}

/// Why an attempt was refused, and for how many seconds (rounded up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// This user name from this address.
    Pair(u64),
    /// Every sign-in: too many from everywhere at once.
    Global(u64),
}

impl LoginThrottle {
    /// `per_minute` and `burst` per pair; `global_per_minute` (and as many in a row) over all.
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32, global_per_minute: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self {
            pairs: RateLimiter::keyed(quota),
            global: RateLimiter::direct(Quota::per_minute(global_per_minute)),
        }
    }

    /// Counts an attempt for `user` from `source`.
    pub fn attempt(&self, user: &str, source: IpAddr) -> Result<(), Throttled> {
        if self.pairs.len() > PRUNE_ABOVE {
            self.pairs.retain_recent();
        }
        let key = (
            user.chars().take(MAX_KEY_CHARS).collect(),
            subscriber(source),
        );
        self.pairs
            .check_key(&key)
            .map_err(|not_until| Throttled::Pair(self.seconds(&not_until)))?;
        self.global
            .check()
            .map_err(|not_until| Throttled::Global(self.seconds(&not_until)))
    }

    /// Rounded up, so that waiting the announced time is always enough.
    fn seconds(&self, not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> u64 {
        let wait = not_until.wait_time_from(self.pairs.clock().now());
        wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
    }
}

impl Throttled {
    /// How long to wait before the next attempt can succeed, for `Retry-After`.
    pub fn seconds(self) -> u64 {
        match self {
            Self::Pair(seconds) | Self::Global(seconds) => seconds,
        }
    }
}

/// The address as throttled: IPv4 whole, IPv6 by its /64 (IPv4-mapped ones as IPv4).
fn subscriber(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const AWAY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    fn throttle(global: u32) -> LoginThrottle {
        let two = NonZeroU32::new(2).expect("two");
        LoginThrottle::new(
            NonZeroU32::MIN,
            two,
            NonZeroU32::new(global).expect("global"),
        )
    }

    #[test]
    fn each_name_and_address_has_its_own_budget() {
        let throttle = throttle(100);
        assert!(throttle.attempt("admin", HOME).is_ok());
        assert!(throttle.attempt("admin", HOME).is_ok());
        let Err(Throttled::Pair(wait)) = throttle.attempt("admin", HOME) else {
            panic!("third attempt in a row from one address");
        };
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(throttle.attempt("admin", AWAY).is_ok(), "another address");
        assert!(throttle.attempt("other", HOME).is_ok(), "another name");
        let long = "x".repeat(1000);
        assert!(throttle.attempt(&long, HOME).is_ok() && throttle.attempt(&long, HOME).is_ok());
        let longer = format!("{long}y");
        assert!(
            throttle.attempt(&longer, HOME).is_err(),
            "same first characters, same key"
        );
    }

    #[test]
    fn the_global_budget_counts_only_attempts_their_pair_allowed() {
        let throttle = throttle(3);
        for _ in 0..10 {
            let _ = throttle.attempt("admin", HOME);
        }
        assert!(
            throttle.attempt("admin", AWAY).is_ok(),
            "one address drained 2 of 3"
        );
        assert!(matches!(
            throttle.attempt("other", AWAY),
            Err(Throttled::Global(_))
        ));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(subscriber(a), subscriber(b));
        assert_ne!(subscriber(a), subscriber(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("ip");
        assert_eq!(subscriber(mapped), HOME);
    }
}
