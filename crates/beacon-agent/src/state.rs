//! The persisted switch and schedule state: `telemetry/runtime.json` (the runtime switch)
//! and `telemetry/state.json` (last successful report and the counters it carried).

use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::datadir::{DataDir, RUNTIME_FILE, STATE_FILE};
use crate::rates::CounterSnapshot;
use crate::switch::RuntimeSwitch;

/// `telemetry/runtime.json`. Files written before versions existed hold only `enable`
/// and `changed_at`: they read as version 0 from an unknown origin.
#[derive(Debug, Serialize, Deserialize)]
struct RuntimeFile {
    enable: bool,
    changed_at: DateTime<Utc>,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    origin: String,
}

/// The runtime switch, `None` when never set. A file that cannot be read or understood
/// counts as off: it may hold an operator's "off", and off is the safe reading. It gets
/// the lowest version, so that any change the cluster knows of replaces it.
pub(crate) fn read_runtime(data: &DataDir) -> Option<RuntimeSwitch> {
    let path = data.path(RUNTIME_FILE);
    let unreadable = RuntimeSwitch {
        enable: false,
        version: 0,
        at: DateTime::UNIX_EPOCH,
        origin: String::new(),
    };
    let bytes = match data.read(RUNTIME_FILE) {
        Ok(bytes) => bytes?,
        Err(error) => {
            warn!(path = %path.display(), %error, "cannot read the runtime telemetry setting; treating it as off");
            return Some(unreadable);
        }
    };
    match serde_json::from_slice::<RuntimeFile>(&bytes) {
        Ok(file) => Some(RuntimeSwitch {
            enable: file.enable,
            version: file.version,
            at: file.changed_at,
            origin: file.origin,
        }),
        Err(error) => {
            warn!(path = %path.display(), %error, "runtime telemetry setting is corrupt; treating it as off");
            Some(unreadable)
        }
    }
}

/// Persists the runtime switch atomically.
pub(crate) fn write_runtime(data: &DataDir, switch: &RuntimeSwitch) -> io::Result<()> {
    let file = RuntimeFile {
        enable: switch.enable,
        changed_at: switch.at,
        version: switch.version,
        origin: switch.origin.clone(),
    };
    data.try_save(RUNTIME_FILE, &to_json_line(&file))
}

/// What the schedule and the rates need from the previous successful report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ReportState {
    pub(crate) last_report_at: Option<DateTime<Utc>>,
    pub(crate) counters: Option<CounterSnapshot>,
}

impl ReportState {
    /// The persisted state; a missing, unreadable or corrupt file means "never reported"
    /// (with a warning for the latter two), so the schedule starts afresh.
    pub(crate) fn load(data: &DataDir) -> Self {
        let path = data.path(STATE_FILE);
        let bytes = match data.read(STATE_FILE) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Self::default(),
            Err(error) => {
                warn!(path = %path.display(), %error, "cannot read telemetry state; assuming no report was sent");
                return Self::default();
            }
        };
        serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            warn!(path = %path.display(), %error, "telemetry state is corrupt; assuming no report was sent");
            Self::default()
        })
    }

    pub(crate) fn save(&self, data: &DataDir) {
        data.save(STATE_FILE, &to_json_line(self));
    }
}

fn to_json_line<T: Serialize>(value: &T) -> Vec<u8> {
    // These types hold only strings, numbers and timestamps: serializing cannot fail,
    // and an empty file would read back as corrupt (the safe direction) if it did.
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_setting_round_trip_and_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().to_path_buf());
        assert_eq!(read_runtime(&data), None);
        let switch = RuntimeSwitch::next(true, None, "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E");
        write_runtime(&data, &switch).expect("write");
        assert_eq!(read_runtime(&data), Some(switch));
        std::fs::write(data.path(RUNTIME_FILE), b"{\"enable\": tru").expect("corrupt");
        let corrupt = read_runtime(&data).expect("set");
        assert!(!corrupt.enable);
        assert!(RuntimeSwitch::next(true, None, "").supersedes(Some(&corrupt)));
    }

    #[test]
    fn runtime_files_without_a_version_read_as_version_zero() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().to_path_buf());
        std::fs::create_dir_all(dir.path().join("telemetry")).expect("mkdir");
        let old = "{\"enable\":false,\"changed_at\":\"2026-01-02T03:04:05Z\"}\n";
        std::fs::write(data.path(RUNTIME_FILE), old).expect("old format");
        let switch = read_runtime(&data).expect("set");
        assert_eq!(
            (
                switch.enable,
                switch.version,
                switch.at.to_rfc3339(),
                switch.origin
            ),
            (false, 0, "2026-01-02T03:04:05+00:00".into(), String::new())
        );
    }

    #[test]
    fn corrupt_state_means_never_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path().to_path_buf());
        let state = ReportState {
            last_report_at: Some(Utc::now()),
            counters: None,
        };
        state.save(&data);
        assert_eq!(ReportState::load(&data), state);
        std::fs::write(data.path(STATE_FILE), b"not json").expect("corrupt");
        assert_eq!(ReportState::load(&data), ReportState::default());
    }
}
