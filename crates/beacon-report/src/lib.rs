//! The Beacon telemetry report: the typed model of the EMQX 4.x and 5.x payloads,
//! parsing with precise errors, validation, and the privacy rules.
//!
//! This crate owns what a report *is*: its fields and JSON types ([`Report`]), which
//! documents are acceptable ([`parse`], [`Report::validate`]), and which strings would
//! identify someone ([`privacy`]). Unknown fields are kept in `extra` maps and in the
//! raw text, never dropped; 4.x reports map onto the same model with the 5.x-only parts
//! absent, not zeroed.
//!
//! It must stay pure: no I/O, no clock, no network, no logging of report contents, and
//! no knowledge of HTTP, storage or the broker. Callers decide what to do with errors
//! and privacy findings.

mod error;
pub mod facts;
mod identifiers;
mod json;
mod limits;
mod model;
mod path;
pub mod privacy;
mod report;
mod schema;

pub use error::ReportError;
pub use model::{
    AdvancedMqttFeatures, AuthnAuthz, Bridge, BuildInfo, DataBridgeStats, Exhook, License,
    MqttRuntimeInsights, ParsedReport, PayloadFormat, Report, RuleEngine, VmSpecs,
};
pub use report::{parse, parse_document};

/// Maximum JSON nesting depth accepted (the top-level object is depth 1).
pub const MAX_BODY_DEPTH: usize = 32;
/// Maximum length in bytes of any string value or object key.
pub const MAX_STRING_LEN: usize = 1024;
/// Maximum number of elements of any array.
pub const MAX_ARRAY_LEN: usize = 1024;
/// Maximum number of keys of any object.
pub const MAX_OBJECT_KEYS: usize = 1024;

/// Example reports, for tests here and in other crates.
pub mod fixtures {
    /// The EMQX 5.0.9 example from EMQX's telemetry documentation, unchanged.
    pub const SEED_5_0_9: &str = include_str!("../tests/fixtures/seed-5.0.9.json");
    /// A realistic EMQX 4.4.19 report (unpadded ids, `active_modules`).
    pub const EMQX_4_4: &str = include_str!("../tests/fixtures/emqx-4.4.19.json");
    /// A 5.x report with the variations real nodes send: empty `build_info`,
    /// `authn_listener` as a list, `num_cluster_sessions`, edition `enterprise`, an
    /// unpadded uuid and an unknown top-level field `future_field`.
    pub const REAL_WORLD_5: &str = include_str!("../tests/fixtures/real-world-5.json");
}
