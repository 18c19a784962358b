//! The collector's private console: admin login, server-rendered dashboard pages with SVG
//! charts, the JSON data API (one endpoint per chart), CSV and NDJSON exports (raw reports
//! streamed page by page, and every aggregate), an OpenAPI 3 document, and API tokens for
//! scripts. Everything lives under [`PREFIX`], so it can share a listener with ingest.
//!
//! It owns access control for these routes: pages need a login session (cookie `HttpOnly`,
//! `SameSite=Strict`, `Secure` when served over TLS; every form carries a CSRF token), the
//! data API takes a session or an API token, pages never take an API token.
//!
//! It must NOT serve or touch ingest, compute analytics itself (every number comes from
//! `beacon_store`'s [`Analytics`](beacon_store::Analytics), i.e. from the rollups), hash or
//! compare secrets its own way (that is `beacon_auth`), or load anything from the internet:
//! styles and charts are rendered here.
//!
//! Modules import one way, each only from those listed before it:
//! 1. `error`, `html` (escaping, the document, the stylesheet: no console types), `chart`
//!    (the aggregates by name), `throttle`;
//! 2. `paths` (every console path: the page table, the API), `filters`, `svg`, `state`;
//! 3. `layout` (the console's page frames), then `access` (login, sessions, CSRF, gates);
//! 4. the handlers: `api`, `export`, `import` (the "Import reports" form), `openapi`,
//!    `pages`, `tokens`;
//! 5. `routes`: [`router`].

mod access;
mod api;
mod chart;
mod error;
mod export;
mod filters;
mod html;
mod import;
mod layout;
mod openapi;
mod pages;
mod paths;
mod routes;
mod state;
mod svg;
mod tokens;

/// The filters' query-string parsing on its own, for the fuzz targets in `fuzz/`; only
/// `cargo fuzz` turns the feature on, so it stays out of the binaries.
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    pub use crate::filters::{Filters, RawFilters};
}

pub use chart::Chart;
pub use error::ConsoleError;
pub use paths::PREFIX;
pub use routes::router;
pub use state::{
    ConsoleOptions, DEFAULT_FILTER_CHOICES, DEFAULT_FILTER_MIN_COUNT, DEFAULT_LOGIN_BURST,
    DEFAULT_LOGINS_GLOBAL_PER_MINUTE, DEFAULT_LOGINS_PER_MINUTE, DEFAULT_SESSION_IDLE,
    ImportFuture, ImportReports, ImportSummary, RefusedReport,
};
