//! What the operator chooses when starting a collector.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;

/// Address the collector listens on when none is given: loopback, so that a collector
/// started without thought is not reachable from the network.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));

/// Largest request body accepted as it arrives on the wire (compressed or not).
pub const MAX_WIRE_BODY: usize = 64 * 1024;

/// Largest report accepted after gunzip: a report of a big cluster is a few KiB, so this
/// leaves room for growth while a compressed bomb is cut off early.
pub const MAX_DECODED_BODY: usize = 512 * 1024;

/// Everything [`crate::Collector::bind`] needs besides the store.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Socket address to listen on; port 0 picks a free port (see `local_addr`).
    pub listen: SocketAddr,
    /// Serve HTTPS with these PEM files instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Per-source-IP request budget of the ingest endpoint.
    pub rate_limit: RateLimit,
    /// Whether accepted reports are stored or dropped after validation.
    pub mode: IngestMode,
    /// Raw reports older than this many days are deleted daily (rollups remain); `None`
    /// keeps them forever. Applies to a collector bound with maintenance rights
    /// ([`crate::Collector::bind_store`]).
    pub retention_days: Option<u32>,
    /// Timeouts and connection caps of every listener (ingest and the console's own).
    pub connections: beacon_listener::Limits,
}

/// Raw reports are kept for this many days by default: a year and a bit, so that a
/// year-on-year comparison can still be recomputed from raw data.
pub const DEFAULT_RETENTION_DAYS: u32 = 400;

impl CollectorConfig {
    /// Plain HTTP on `listen`, default rate limit, reports stored.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls: None,
            rate_limit: RateLimit::default(),
            mode: IngestMode::Store,
            retention_days: Some(DEFAULT_RETENTION_DAYS),
            connections: beacon_listener::Limits::default(),
        }
    }
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self::new(DEFAULT_LISTEN)
    }
}

/// Certificate chain and private key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Token bucket per source IP: `burst` requests at once, refilled at `per_minute`.
/// A `per_minute` of 0 disables rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl RateLimit {
    /// Default budget: generous, since a node reports once a week and a NAT may hide many.
    pub const DEFAULT_PER_MINUTE: u32 = 300;

    /// `per_minute` requests a minute with a burst of the same size.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            burst: per_minute,
        }
    }

    /// No rate limiting at all.
    pub fn disabled() -> Self {
        Self::per_minute(0)
    }

    /// True when requests are to be counted.
    pub fn is_enabled(&self) -> bool {
        self.per_minute > 0
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::per_minute(Self::DEFAULT_PER_MINUTE)
    }
}

/// What happens to a report that passed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngestMode {
    /// Store it and answer only after the commit (the normal mode).
    #[default]
    Store,
    /// Parse and validate, then drop it: the benchmark's baseline for the HTTP and parse
    /// cost without storage.
    Discard,
}
