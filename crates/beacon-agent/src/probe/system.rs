//! System probes: OS, CPUs, memory, node start time, build facts.
//!
//! Reads only what the report needs. Never reads the hostname, network addresses, MAC
//! addresses, `/etc/machine-id`, DMI/hardware serials or user names.

use chrono::{DateTime, TimeZone, Utc};
use tracing::debug;

/// The Beacon version, sent as `emqx_version`.
pub(crate) const BEACON_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Target triple the node was built for (from the build script).
pub(crate) const BUILD_TARGET: &str = env!("BEACON_BUILD_TARGET");
/// Version of the Rust compiler that built the node.
pub(crate) const BUILD_RUSTC: &str = env!("BEACON_BUILD_RUSTC");
/// How the binary was packaged: `cargo` for a source build, or what packaging set.
pub(crate) const BUILD_RELFORM: &str = env!("BEACON_BUILD_RELFORM");

/// Linux distributions describe themselves here; the second is the fallback location.
const OS_RELEASE_FILES: [&str; 2] = ["/etc/os-release", "/usr/lib/os-release"];

/// Facts about the machine and process, read once when the agent starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SystemFacts {
    pub(crate) os_name: String,
    pub(crate) os_version: String,
    /// Logical CPUs this process may use.
    pub(crate) num_cpus: u64,
    /// Bytes of physical memory, when the platform tells.
    pub(crate) total_memory: Option<u64>,
    /// When the node (this process) started.
    pub(crate) node_started_at: DateTime<Utc>,
}

impl SystemFacts {
    pub(crate) fn collect() -> Self {
        let (os_name, os_version) = os_name_version();
        Self {
            os_name,
            os_version,
            num_cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            total_memory: total_memory(),
            node_started_at: process_started_at().unwrap_or_else(Utc::now),
        }
    }

    /// Milliseconds since the node started.
    pub(crate) fn up_time_ms(&self, now: DateTime<Utc>) -> u64 {
        u64::try_from((now - self.node_started_at).num_milliseconds()).unwrap_or(0)
    }
}

fn total_memory() -> Option<u64> {
    let mut system = sysinfo::System::new().ok()?;
    system.refresh_memory();
    Some(system.total_memory()).filter(|bytes| *bytes > 0)
}

/// Start of this process, to the second, as the platform records it.
fn process_started_at() -> Option<DateTime<Utc>> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let pid = sysinfo::get_current_pid().ok()?;
    let mut system = System::new().ok()?;
    system.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing(),
    );
    let secs = i64::try_from(system.process(pid)?.start_time()).ok()?;
    let started = Utc.timestamp_opt(secs, 0).single();
    debug!(?started, "node start time from the process table");
    started
}

fn os_name_version() -> (String, String) {
    if cfg!(target_os = "linux") {
        let text = OS_RELEASE_FILES
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default();
        let release = OsRelease::parse(&text);
        (
            release.name.unwrap_or_else(|| "Linux".to_owned()),
            release.version_id.unwrap_or_else(|| "unknown".to_owned()),
        )
    } else {
        (
            sysinfo::System::name().unwrap_or_else(|_| std::env::consts::OS.to_owned()),
            sysinfo::System::os_version().unwrap_or_else(|_| "unknown".to_owned()),
        )
    }
}

/// `NAME` and `VERSION_ID` of an os-release file (shell-style `KEY=value` lines).
#[derive(Debug, Default, PartialEq)]
struct OsRelease {
    name: Option<String>,
    version_id: Option<String>,
}

impl OsRelease {
    fn parse(text: &str) -> Self {
        let mut release = Self::default();
        for line in text.lines().map(str::trim) {
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            let value = unquote(raw.trim());
            let slot = match key.trim() {
                "NAME" => &mut release.name,
                "VERSION_ID" => &mut release.version_id,
                _ => continue,
            };
            *slot = Some(value).filter(|v| !v.is_empty());
        }
        release
    }
}

/// Removes matching outer quotes and, inside double quotes, backslash escapes.
fn unquote(raw: &str) -> String {
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return raw.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_name_and_version() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                    VERSION_ID=\"12\"\n# comment\nID=debian\n";
        assert_eq!(
            OsRelease::parse(text),
            OsRelease {
                name: Some("Debian GNU/Linux".into()),
                version_id: Some("12".into())
            }
        );
    }

    #[test]
    fn os_release_quoting_and_absence() {
        let text = "NAME='Alpine Linux'\nVERSION_ID=3.20.1\n";
        let parsed = OsRelease::parse(text);
        assert_eq!(parsed.name.as_deref(), Some("Alpine Linux"));
        assert_eq!(parsed.version_id.as_deref(), Some("3.20.1"));
        assert_eq!(
            OsRelease::parse("NAME=\"say \\\"hi\\\"\""),
            OsRelease {
                name: Some("say \"hi\"".into()),
                version_id: None
            }
        );
        assert_eq!(
            OsRelease::parse("garbage\nVERSION_ID=\"\""),
            OsRelease::default()
        );
    }

    #[test]
    fn facts_are_plausible() {
        let facts = SystemFacts::collect();
        assert!(facts.num_cpus >= 1);
        assert!(facts.total_memory.is_some_and(|m| m > 1 << 20));
        assert!(
            facts.up_time_ms(Utc::now()) < 24 * 3600 * 1000,
            "test process is young"
        );
        assert!(!BUILD_TARGET.is_empty() && !BUILD_RUSTC.is_empty());
    }
}
