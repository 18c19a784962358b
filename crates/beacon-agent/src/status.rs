//! What the agent reports about itself (REST API, CLI, dashboard).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::settings::AgentSettings;
use crate::switch::{Decision, SwitchSource};

/// The state of telemetry on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryStatus {
    /// Whether reports are sent.
    pub enable: bool,
    /// Which source decided `enable`: `default`, `config file <path>`,
    /// `environment EMQX_TELEMETRY__ENABLE`, `runtime setting` or `DO_NOT_TRACK`.
    pub source: SwitchSource,
    /// Whether an agent is running (false when read from a stopped node's files).
    pub running: bool,
    /// The node's telemetry id (`node.uuid`); none while a stopped node has not made one.
    #[serde(default)]
    pub uuid: Option<String>,
    pub url: String,
    /// EMQX-style duration, e.g. `7d`.
    pub interval: String,
    pub initial_delay: String,
    /// Last report the collector accepted.
    pub last_report_at: Option<DateTime<Utc>>,
    /// Next attempt, while enabled and running.
    pub next_report_at: Option<DateTime<Utc>>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// Why the last attempt failed, while failures continue.
    pub last_error: Option<String>,
}

/// The parts of a status that the running agent adds to the settings and the decision.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub(crate) uuid: Option<String>,
    pub(crate) running: bool,
    pub(crate) last_report_at: Option<DateTime<Utc>>,
    pub(crate) next_report_at: Option<DateTime<Utc>>,
    pub(crate) consecutive_failures: u64,
    pub(crate) last_error: Option<String>,
}

impl TelemetryStatus {
    pub(crate) fn new(settings: &AgentSettings, decision: Decision, progress: Progress) -> Self {
        Self {
            enable: decision.enable,
            source: decision.source,
            running: progress.running,
            uuid: progress.uuid,
            url: settings.url.to_string(),
            interval: format_duration(settings.interval),
            initial_delay: format_duration(settings.initial_delay),
            last_report_at: progress.last_report_at,
            next_report_at: progress.next_report_at,
            consecutive_failures: progress.consecutive_failures,
            last_error: progress.last_error,
        }
    }
}

/// The largest whole unit, as a config file would say it: `7d`, `10m`, `90s`, `1500ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    const UNITS: [(u128, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ];
    let ms = d.as_millis();
    UNITS
        .iter()
        .find(|(size, _)| ms > 0 && ms.is_multiple_of(*size))
        .map_or_else(
            || format!("{ms}ms"),
            |(size, unit)| format!("{}{unit}", ms / size),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config() {
        let cases = [
            (604_800_000, "7d"),
            (600_000, "10m"),
            (90_000, "90s"),
            (7_200_000, "2h"),
            (1500, "1500ms"),
            (0, "0ms"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_duration(Duration::from_millis(ms)), text);
            assert_eq!(
                beacon_config::parse_duration(text),
                Ok(Duration::from_millis(ms))
            );
        }
    }
}
