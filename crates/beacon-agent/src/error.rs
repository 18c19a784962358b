//! Typed errors of the agent: starting it, reading a stopped node's files, switching.

use std::io;
use std::path::PathBuf;

use beacon_config::{ConfigError, Origin};

use crate::switch::SwitchSource;

/// Why the agent could not be configured, started, or a stopped node's files read.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A `telemetry.*` value could not be read as its type (names file:line or variable).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A `telemetry.*` value has the right type but cannot be used.
    #[error("{origin}: telemetry.{key}: {reason}")]
    Setting {
        key: &'static str,
        origin: Origin,
        reason: String,
    },
    /// `telemetry.ca_file` cannot be read.
    #[error("cannot read telemetry.ca_file {}: {source}", path.display())]
    CaFileRead { path: PathBuf, source: io::Error },
    /// `telemetry.ca_file` holds no usable PEM certificate.
    #[error("telemetry.ca_file {}: {reason}", path.display())]
    CaFileContent { path: PathBuf, reason: String },
    /// A file of the data directory exists but cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The collector did not delete this node's data ([`crate::forget`]); nothing changed.
    #[error("deleting this node's telemetry data at {url} failed: {reason}")]
    Forget { url: String, reason: String },
    /// An exported report was not accepted by the collector ([`crate::upload`]).
    #[error("uploading the report to {url} failed: {reason}")]
    Upload { url: String, reason: String },
    /// A value offered as a telemetry id is not one (8-4-4-4-12 hex digits).
    #[error("not a telemetry id (8-4-4-4-12 hex digits): {value:?}")]
    NotAnId { value: String },
    /// [`crate::Agent::start`] was called outside a tokio runtime.
    #[error("the telemetry agent must be started inside a tokio runtime")]
    NoRuntime,
}

/// Why the runtime switch was not changed as asked.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// A boot-time source says off; only changing that source (and restarting) enables.
    #[error("telemetry is disabled by {by}; {}", remedy(by))]
    Locked { by: SwitchSource },
    /// The switch is already in the asked state (the REST API answers 400 with this text,
    /// word for word EMQX's).
    #[error("Telemetry status is already {}", if *enabled { "enabled" } else { "disabled" })]
    AlreadyInState { enabled: bool },
    /// Enabling needs the setting saved first, so that a restart does not silently undo it;
    /// nothing was changed.
    #[error("cannot save the runtime setting to {}: {source}; telemetry stays disabled", path.display())]
    Persist { path: PathBuf, source: io::Error },
    /// Disabling took effect at once, but will be forgotten at restart.
    #[error(
        "telemetry is disabled for this run, but the setting could not be saved to {} and \
         will be lost at restart: {source}",
        path.display()
    )]
    NotPersisted { path: PathBuf, source: io::Error },
    /// The agent's task is no longer running.
    #[error("the telemetry agent has stopped")]
    Stopped,
}

fn remedy(by: &SwitchSource) -> &'static str {
    match by {
        SwitchSource::Environment { .. } => "remove that variable and restart to enable",
        SwitchSource::DoNotTrack => "unset DO_NOT_TRACK and restart to enable",
        SwitchSource::ConfigFile { .. } => {
            "set telemetry.enable = true there (or remove it) and restart to enable"
        }
        SwitchSource::Default | SwitchSource::Runtime => "enable it at runtime",
    }
}
