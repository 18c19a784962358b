//! The telemetry switch: its sources and their precedence.
//!
//! Off is sticky: telemetry runs only when no source says off. When off, the source
//! reported is the first that says off in the order environment, `DO_NOT_TRACK`, config
//! file, runtime setting (the boot-time sources first, since the runtime setting cannot
//! override them). When on: the runtime setting if it says on, else the environment, else
//! the config file, else the default.
//!
//! The runtime setting is the cluster's: a [`RuntimeSwitch`] carries a version, so that
//! nodes exchanging it keep the latest change. The boot-time sources stay this node's own.

use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;

use beacon_config::{Config, ConfigError, Origin, Sourced};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The config key of the switch.
pub const ENABLE_KEY: &str = "telemetry.enable";

/// Which source decided whether telemetry runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchSource {
    /// Nobody said anything: telemetry is on by default.
    Default,
    /// `telemetry.enable` in the config file.
    ConfigFile { path: PathBuf },
    /// `EMQX_TELEMETRY__ENABLE` (or an `EMQX_*` variable setting the whole block).
    Environment { var: String },
    /// The switch set at runtime (dashboard, REST API), persisted in the data directory.
    Runtime,
    /// The `DO_NOT_TRACK` convention.
    DoNotTrack,
}

const RUNTIME_LABEL: &str = "runtime setting";
const DNT_LABEL: &str = "DO_NOT_TRACK";
const DEFAULT_LABEL: &str = "default";
const FILE_PREFIX: &str = "config file ";
const ENV_PREFIX: &str = "environment ";

impl fmt::Display for SwitchSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str(DEFAULT_LABEL),
            Self::ConfigFile { path } => write!(f, "{FILE_PREFIX}{}", path.display()),
            Self::Environment { var } => write!(f, "{ENV_PREFIX}{var}"),
            Self::Runtime => f.write_str(RUNTIME_LABEL),
            Self::DoNotTrack => f.write_str(DNT_LABEL),
        }
    }
}

impl SwitchSource {
    /// Reads back a label written by `Display`.
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            DEFAULT_LABEL => Some(Self::Default),
            RUNTIME_LABEL => Some(Self::Runtime),
            DNT_LABEL => Some(Self::DoNotTrack),
            _ => label
                .strip_prefix(FILE_PREFIX)
                .map(|path| Self::ConfigFile { path: path.into() })
                .or_else(|| {
                    let var = label.strip_prefix(ENV_PREFIX)?;
                    Some(Self::Environment { var: var.into() })
                }),
        }
    }

    fn from_origin(origin: Origin) -> Self {
        match origin {
            Origin::Default => Self::Default,
            Origin::File { path, .. } => Self::ConfigFile { path },
            Origin::Env { var } => Self::Environment { var },
        }
    }
}

impl Serialize for SwitchSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SwitchSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        Self::from_label(&label)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown switch source {label:?}")))
    }
}

/// The runtime setting as nodes share it: the value, and the version that orders changes
/// made on different nodes. A change takes the highest version its node knows plus one;
/// changes made concurrently on two nodes are ordered by time, then by origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeSwitch {
    pub enable: bool,
    /// Counts changes across the cluster; 0 for a setting saved before versions existed.
    pub version: u64,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// The `uuid` of the node where it was made; empty when unknown.
    pub origin: String,
}

impl RuntimeSwitch {
    /// The change after `current` (`None`: never set), made now on the node `origin`.
    pub fn next(enable: bool, current: Option<&RuntimeSwitch>, origin: &str) -> Self {
        Self {
            enable,
            version: current.map_or(0, |c| c.version) + 1,
            at: Utc::now(),
            origin: origin.to_owned(),
        }
    }

    /// Whether this change is later than `current` (any change is later than none).
    pub fn supersedes(&self, current: Option<&RuntimeSwitch>) -> bool {
        current.is_none_or(|current| self.order(current) == Ordering::Greater)
    }

    fn order(&self, other: &Self) -> Ordering {
        (self.version, self.at, &self.origin).cmp(&(other.version, other.at, &other.origin))
    }
}

/// Whether telemetry runs, and which source decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub enable: bool,
    pub source: SwitchSource,
}

/// The sources fixed for this boot: config file, environment, `DO_NOT_TRACK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootSwitches {
    /// `telemetry.enable` as the environment sets it.
    pub env: Option<Decision>,
    /// `DO_NOT_TRACK` is set (see [`do_not_track_set`]).
    pub do_not_track: bool,
    /// `telemetry.enable` as the config file sets it.
    pub file: Option<Decision>,
}

impl BootSwitches {
    /// Reads the file's and the environment's `telemetry.enable` separately.
    pub fn from_config(config: &Config, do_not_track: Option<&str>) -> Result<Self, ConfigError> {
        let decide = |value: Option<Sourced<&serde_json::Value>>| {
            value
                .map(|v| v.to_bool(ENABLE_KEY))
                .transpose()
                .map(|found| {
                    found.map(|s| Decision {
                        enable: s.value,
                        source: SwitchSource::from_origin(s.origin),
                    })
                })
        };
        Ok(Self {
            env: decide(config.env_value(ENABLE_KEY))?,
            do_not_track: do_not_track_set(do_not_track),
            file: decide(config.file_value(ENABLE_KEY))?,
        })
    }

    /// The first boot-time source that says off, in precedence order.
    pub fn boot_off(&self) -> Option<SwitchSource> {
        let dnt = self.do_not_track.then_some(Decision {
            enable: false,
            source: SwitchSource::DoNotTrack,
        });
        [&self.env, &dnt, &self.file]
            .into_iter()
            .flatten()
            .find(|d| !d.enable)
            .map(|d| d.source.clone())
    }

    /// The decision given the runtime setting (`None`: never set).
    pub fn resolve(&self, runtime: Option<bool>) -> Decision {
        if let Some(source) = self.boot_off() {
            return Decision {
                enable: false,
                source,
            };
        }
        match runtime {
            Some(enable) => Decision {
                enable,
                source: SwitchSource::Runtime,
            },
            // No boot source says off here, so whichever is present says on.
            None => self
                .env
                .clone()
                .or_else(|| self.file.clone())
                .unwrap_or(Decision {
                    enable: true,
                    source: SwitchSource::Default,
                }),
        }
    }
}

/// `DO_NOT_TRACK` counts as set when its value is non-empty and not `0` or `false`
/// (any case), the common reading of the convention.
pub fn do_not_track_set(value: Option<&str>) -> bool {
    value
        .map(str::trim)
        .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_back() {
        let sources = [
            SwitchSource::Default,
            SwitchSource::ConfigFile {
                path: "etc/emqx.conf".into(),
            },
            SwitchSource::Environment {
                var: "EMQX_TELEMETRY__ENABLE".into(),
            },
            SwitchSource::Runtime,
            SwitchSource::DoNotTrack,
        ];
        for source in sources {
            assert_eq!(SwitchSource::from_label(&source.to_string()), Some(source));
        }
        assert_eq!(SwitchSource::from_label("somewhere"), None);
    }

    #[test]
    fn later_switches_supersede_by_version_then_time_then_origin() {
        let first = RuntimeSwitch::next(false, None, "A");
        assert_eq!(first.version, 1);
        assert!(first.supersedes(None));
        assert!(
            !first.supersedes(Some(&first)),
            "a change does not supersede itself"
        );
        let second = RuntimeSwitch::next(true, Some(&first), "B");
        assert!(second.supersedes(Some(&first)));
        assert!(!first.supersedes(Some(&second)));
        let older_but_later_clock = RuntimeSwitch {
            at: second.at + chrono::TimeDelta::hours(1),
            ..first.clone()
        };
        assert!(
            second.supersedes(Some(&older_but_later_clock)),
            "version first"
        );
        let same_version_later = RuntimeSwitch {
            at: second.at + chrono::TimeDelta::seconds(1),
            ..second.clone()
        };
        assert!(same_version_later.supersedes(Some(&second)), "then time");
        let same_time_other_origin = RuntimeSwitch {
            origin: "C".into(),
            ..second.clone()
        };
        assert!(
            same_time_other_origin.supersedes(Some(&second)),
            "then origin"
        );
    }

    #[test]
    fn do_not_track_values() {
        for set in ["1", "true", "yes", " 1 "] {
            assert!(do_not_track_set(Some(set)), "{set:?}");
        }
        for unset in [
            None,
            Some(""),
            Some("0"),
            Some("false"),
            Some("FALSE"),
            Some("  "),
        ] {
            assert!(!do_not_track_set(unset), "{unset:?}");
        }
    }
}
