//! The `telemetry { ... }` block: read from the config file and `EMQX_TELEMETRY__*`
//! variables (environment wins), with the defaults of `design.md`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use beacon_config::{Config, Origin, Sourced};
use reqwest::Url;

use crate::AgentError;
use crate::switch::BootSwitches;

/// Beacon's own collector. Tests never use it: they always set `telemetry.url`.
pub const DEFAULT_URL: &str = "https://telemetry.beacon-mqtt.org/api/telemetry";
/// Time between reports.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Time from start (or from enabling at runtime) to the first report, so that
/// short-lived instances (tests, CI, demos) never report.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(10 * 60);
/// Limit for one request, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Intervals below this work (tests and demos need them) but are worth a warning.
pub const SHORT_INTERVAL: Duration = Duration::from_secs(3600);
/// Shortest interval accepted: anything faster would only hammer the collector.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the agent needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    /// Collector endpoint: `https://`, or `http://` to a loopback address only.
    pub url: Url,
    pub interval: Duration,
    pub initial_delay: Duration,
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM) for a private collector; system roots stay trusted.
    pub ca_file: Option<PathBuf>,
    /// Proxy URL; when absent the standard proxy variables apply.
    pub proxy: Option<String>,
    /// What the file, the environment and `DO_NOT_TRACK` say about the switch.
    pub switches: BootSwitches,
}

impl AgentSettings {
    /// Reads `telemetry.*`. `env_do_not_track` is the value of `DO_NOT_TRACK`, if set.
    /// Errors name the file:line or the variable that gave the bad value.
    pub fn from_config(
        config: &Config,
        env_do_not_track: Option<String>,
    ) -> Result<Self, AgentError> {
        let interval = config.duration("telemetry.interval")?;
        let timeout = config.duration("telemetry.timeout")?;
        Ok(Self {
            url: url(config)?,
            interval: at_least("interval", interval, MIN_INTERVAL)?.unwrap_or(DEFAULT_INTERVAL),
            initial_delay: config
                .duration("telemetry.initial_delay")?
                .map_or(DEFAULT_INITIAL_DELAY, |d| d.value),
            timeout: at_least("timeout", timeout, Duration::from_millis(1))?
                .unwrap_or(DEFAULT_TIMEOUT),
            ca_file: non_empty(config.string("telemetry.ca_file")?).map(|s| s.value.into()),
            proxy: proxy(config)?,
            switches: BootSwitches::from_config(config, env_do_not_track.as_deref())?,
        })
    }

    /// True when the collector is on this machine (plain HTTP is allowed only then, and
    /// proxies are bypassed: a proxy cannot reach our loopback).
    pub fn is_loopback_url(&self) -> bool {
        is_loopback(&self.url)
    }
}

fn url(config: &Config) -> Result<Url, AgentError> {
    let Some(found) = non_empty(config.string("telemetry.url")?) else {
        return Url::parse(DEFAULT_URL).map_err(|e| setting("url", Origin::Default, e.to_string()));
    };
    let url = Url::parse(&found.value)
        .map_err(|e| setting("url", found.origin.clone(), format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(setting(
            "url",
            found.origin,
            "plain http is allowed only for a collector on a loopback address; use https".into(),
        )),
        other => Err(setting(
            "url",
            found.origin,
            format!("scheme {other:?} is not supported; use https"),
        )),
    }
}

fn proxy(config: &Config) -> Result<Option<String>, AgentError> {
    let Some(found) = non_empty(config.string("telemetry.proxy")?) else {
        return Ok(None);
    };
    reqwest::Proxy::all(found.value.as_str())
        .map_err(|e| setting("proxy", found.origin, format!("not a proxy URL: {e}")))?;
    Ok(Some(found.value))
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn at_least(
    key: &'static str,
    found: Option<Sourced<Duration>>,
    min: Duration,
) -> Result<Option<Duration>, AgentError> {
    match found {
        Some(d) if d.value < min => Err(setting(
            key,
            d.origin,
            format!("must be at least {}", humantime::format_duration(min)),
        )),
        other => Ok(other.map(|d| d.value)),
    }
}

/// An empty string means "not set", so that `proxy = ""` can switch a value off.
fn non_empty(found: Option<Sourced<String>>) -> Option<Sourced<String>> {
    found.filter(|s| !s.value.trim().is_empty())
}

fn setting(key: &'static str, origin: Origin, reason: String) -> AgentError {
    AgentError::Setting {
        key,
        origin,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn settings(text: &str, env: &[(&str, &str)]) -> Result<AgentSettings, AgentError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::from_str(text, Path::new("etc/emqx.conf"), env)?;
        AgentSettings::from_config(&config, None)
    }

    #[test]
    fn defaults() {
        let s = AgentSettings::from_config(&Config::empty(), None).expect("defaults");
        assert_eq!(s.url.as_str(), DEFAULT_URL);
        assert_eq!(s.interval, DEFAULT_INTERVAL);
        assert_eq!(s.initial_delay, DEFAULT_INITIAL_DELAY);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!((s.ca_file, s.proxy), (None, None));
    }

    #[test]
    fn block_and_env_override() {
        let text = "telemetry {\n  url = \"https://c.example/api/telemetry\"\n  interval = 5s\n  \
                    initial_delay = 1s\n  ca_file = \"ca.pem\"\n}\n";
        let s = settings(text, &[("EMQX_TELEMETRY__INTERVAL", "2s")]).expect("settings");
        assert_eq!(s.url.as_str(), "https://c.example/api/telemetry");
        assert_eq!(s.interval, Duration::from_secs(2));
        assert_eq!(s.initial_delay, Duration::from_secs(1));
        assert_eq!(s.ca_file, Some(PathBuf::from("ca.pem")));
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = settings("telemetry.url = \"http://c.example/x\"", &[]).expect_err("http");
        assert!(
            err.to_string().starts_with("config file etc/emqx.conf"),
            "{err}"
        );
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = settings("", &[("EMQX_TELEMETRY__INTERVAL", "500ms")]).expect_err("short");
        assert!(
            err.to_string().contains("EMQX_TELEMETRY__INTERVAL"),
            "{err}"
        );
        let err = settings("", &[("EMQX_TELEMETRY__TIMEOUT", "soon")]).expect_err("not a duration");
        assert!(err.to_string().contains("EMQX_TELEMETRY__TIMEOUT"), "{err}");
        let err = settings("telemetry.proxy = \"::::\"", &[]).expect_err("proxy");
        assert!(err.to_string().contains("telemetry.proxy"), "{err}");
    }

    #[test]
    fn loopback_http_is_allowed() {
        for url in [
            "http://127.0.0.1:8080/api",
            "http://localhost/api",
            "http://[::1]:1/a",
        ] {
            let text = format!("telemetry.url = \"{url}\"");
            assert!(settings(&text, &[]).expect(url).is_loopback_url(), "{url}");
        }
    }
}
