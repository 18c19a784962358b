//! The `Host` names the dashboard answers to. A web page can point a name it controls at
//! 127.0.0.1 (DNS rebinding) and then talk to the loopback dashboard as a same-origin
//! page; its requests still carry that name in `Host`, so only the configured names pass.

use std::net::SocketAddr;

use beacon_config::Config;

use crate::NodeError;

/// The config key that adds names to the loopback defaults.
pub(crate) const ALLOWED_HOSTS_KEY: &str = "dashboard.listeners.http.allowed_hosts";

/// Host names (lowercase, IPv6 in brackets, without port) the dashboard answers to.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// The loopback names, the bind address unless it is unspecified (0.0.0.0, ::), and
    /// the names of [`ALLOWED_HOSTS_KEY`].
    pub(crate) fn from_config(config: &Config, bind: SocketAddr) -> Result<Self, NodeError> {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .map(str::to_owned)
            .into();
        if !bind.ip().is_unspecified() {
            // `SocketAddr` prints IPv6 in brackets, as `Host` carries it.
            names.push(host_name(&bind.to_string()));
        }
        if let Some(extra) = config.string_list(ALLOWED_HOSTS_KEY)? {
            names.extend(extra.value.iter().map(|name| host_name(name)));
        }
        Ok(Self(names))
    }

    /// Whether a `Host` header value names this dashboard; the port is not compared.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let name = host_name(host);
        self.0.contains(&name)
    }
}

/// The name part of `host[:port]`, lowercase, without a trailing dot.
fn host_name(host: &str) -> String {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .map_or(host, |(inside, _)| &host[..inside.len() + 2]),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(extra: &str, bind: &str) -> AllowedHosts {
        let text = format!("{ALLOWED_HOSTS_KEY} = [{extra}]");
        let config = Config::from_str(&text, "t.conf".as_ref(), Vec::<(String, String)>::new())
            .expect("config");
        AllowedHosts::from_config(&config, bind.parse().expect("addr")).expect("hosts")
    }

    #[test]
    fn loopback_names_and_the_bind_address_pass_by_default() {
        let allowed = hosts("", "192.0.2.7:18083");
        for good in [
            "localhost:18083",
            "LOCALHOST",
            "127.0.0.1:18083",
            "[::1]:18083",
            "192.0.2.7:18083",
            "localhost.:18083",
        ] {
            assert!(allowed.allows(good), "{good}");
        }
        for bad in ["evil.example:18083", "127.0.0.2:18083", "", "[::2]:18083"] {
            assert!(!allowed.allows(bad), "{bad}");
        }
        assert!(!hosts("", "0.0.0.0:18083").allows("0.0.0.0:18083"));
    }

    #[test]
    fn configured_names_are_added() {
        let allowed = hosts(r#""Broker.Example.com", "[2001:db8::1]""#, "0.0.0.0:18083");
        assert!(allowed.allows("broker.example.com:18083"));
        assert!(allowed.allows("[2001:db8::1]:18083"));
        assert!(allowed.allows("localhost:18083"));
        assert!(!allowed.allows("example.com:18083"));
    }
}
