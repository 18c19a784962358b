//! Beacon's collector HTTP service: `POST /api/telemetry` (content type and encoding
//! checks, size limits on the wire and after gunzip, per-IP rate limiting, validation via
//! `beacon_report`, privacy redaction, then a durable insert through `beacon_store`),
//! `GET /healthz`, `GET /metrics` (Prometheus), optionally over TLS. `/metrics` is private:
//! it is served with the console that [`BoundCollector::with_console`] mounts, on the
//! console's own listener unless told to go beside ingest. Every listener gets the
//! connection limits of `beacon_listener` (timeouts, connection caps).
//!
//! It owns HTTP and the mapping from a parsed report to a row. It must NOT contain SQL or
//! know a storage backend (that is `beacon_store`), must NOT validate report fields itself
//! (that is `beacon_report`), and must never write a client IP address to storage or to
//! logs: the address is used only as the in-memory rate-limit key.
//!
//! A 2xx answer to an ingest means the store's commit returned. Refusals are JSON
//! `{"code", "message"}` (plus `field` for an invalid report field).
//!
//! Modules import one way, each only from those listed before it:
//! 1. `config`, `error`, `metrics`, `rate_limit`, `body`, `facts`: settings, answers,
//!    counters, the limiter table, request body checks, and the facts a report gives;
//! 2. `state`: [`AppState`], what every handler shares;
//! 3. the handlers and jobs: `ingest` (also [`store_document`], the one path from a
//!    report's text to a row), `import` (an upload's reports through `store_document`:
//!    `beacon collector import` and the console's import form), `forget`, `health`
//!    (`/healthz`, `/metrics`), `retention`;
//! 4. `routes`: [`router`] (public) and [`private_router`], paths, the one rate-limit
//!    layer of ingest and delete;
//! 5. `serve`: [`Collector`] and [`BoundCollector`]: binding, TLS, background jobs,
//!    shutdown.

mod body;
mod config;
mod error;
mod facts;
mod forget;
mod health;
mod import;
mod ingest;
mod metrics;
mod rate_limit;
mod retention;
mod routes;
mod serve;
mod state;

/// The ingest body's decoding on its own, for the fuzz targets in `fuzz/`; only `cargo fuzz`
/// turns the feature on, so it stays out of the binaries.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::body::{Encoding, decode};
}

pub use beacon_listener::Limits as ConnectionLimits;
pub use config::{
    CollectorConfig, DEFAULT_LISTEN, DEFAULT_RETENTION_DAYS, IngestMode, MAX_DECODED_BODY,
    MAX_WIRE_BODY, RateLimit, TlsFiles,
};
pub use error::{ApiError, CollectorError};
pub use facts::{open_store, stored_report_facts};
pub use import::{Document, ImportSummary, Refused, UploadError, documents, import};
pub use ingest::{Outcome, Stored, store_document};
pub use metrics::Metrics;
pub use routes::{FORGET_PATH, HEALTH_PATH, INGEST_PATH, METRICS_PATH, private_router, router};
pub use serve::{BoundCollector, Collector};
pub use state::AppState;
