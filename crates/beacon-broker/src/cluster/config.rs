//! EMQX's cluster keys (`node.name`, `cluster.discovery_strategy`,
//! `cluster.static.seeds`) read into a [`ClusterConfig`], and the numbers rmqtt
//! needs derived from them the same way on every node.

use std::collections::BTreeSet;

use beacon_config::{Config, Origin, Sourced};
use tracing::warn;

use crate::BrokerError;

const NODE_NAME: &str = "node.name";
const STRATEGY: &str = "cluster.discovery_strategy";
const SEEDS: &str = "cluster.static.seeds";

/// EMQX's default is `emqx@127.0.0.1`; Beacon's names itself.
pub(crate) const DEFAULT_NODE_NAME: &str = "beacon@127.0.0.1";

/// A seed without a port gets `BASE_PORT + N`, N being the number that ends its
/// name (`beacon2` → 5372), or `BASE_PORT - 1` when the name ends in no number:
/// EMQX's "stateless" gen_rpc ports.
const BASE_PORT: u16 = 5370;

/// The raft port of a node is its cluster (gRPC) port plus this.
pub(crate) const RAFT_PORT_OFFSET: u16 = 1000;

/// The nodes that form the cluster, as every node derives them from the same seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    node_name: String,
    /// Sorted by name: a node's rmqtt id is its 1-based position here.
    seeds: Vec<Seed>,
}

/// One `name@host[:port]` entry of `cluster.static.seeds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seed {
    /// The EMQX node name, `name@host`.
    pub(crate) name: String,
    /// The host as written (IPv6 in brackets), for `host:port` strings.
    pub(crate) host: String,
    /// The cluster (rmqtt gRPC) port; raft listens on this plus [`RAFT_PORT_OFFSET`].
    pub(crate) port: u16,
}

impl Seed {
    pub(crate) fn grpc_addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub(crate) fn raft_port(&self) -> u16 {
        self.port + RAFT_PORT_OFFSET
    }

    pub(crate) fn raft_addr(&self) -> String {
        format!("{}:{}", self.host, self.raft_port())
    }

    /// The host without IPv6 brackets, for name resolution.
    pub(crate) fn bare_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }
}

impl ClusterConfig {
    /// This node's EMQX name (`beacon1@127.0.0.1`).
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The other seeds' names, sorted.
    pub fn peers(&self) -> Vec<String> {
        self.seeds
            .iter()
            .filter(|s| s.name != self.node_name)
            .map(|s| s.name.clone())
            .collect()
    }

    /// Every seed with its rmqtt node id (1-based position in name order).
    pub(crate) fn numbered(&self) -> impl Iterator<Item = (u64, &Seed)> {
        (1u64..).zip(&self.seeds)
    }

    /// This node's id and seed; `from_config` guarantees it is among the seeds.
    pub(crate) fn own(&self) -> (u64, &Seed) {
        self.numbered()
            .find(|(_, s)| s.name == self.node_name)
            .expect("node.name is among the seeds (checked when read)")
    }

    /// The node that bootstraps the raft group: the first seed by name. Any other
    /// choice would let nodes that start together each lead a cluster of one.
    pub(crate) fn leader_id(&self) -> u64 {
        1
    }
}

/// What the cluster keys say: this node's name, and the cluster to join (`None`:
/// it runs alone).
pub(crate) fn parse(config: &Config) -> Result<(String, Option<ClusterConfig>), BrokerError> {
    let name = config.string(NODE_NAME)?;
    let node_name = name
        .as_ref()
        .map_or(DEFAULT_NODE_NAME.to_owned(), |n| n.value.clone());
    if let Some(name) = &name
        && name.value.trim().is_empty()
    {
        return Err(invalid(NODE_NAME, &name.origin, "must not be empty".into()));
    }
    match strategy(config)? {
        Strategy::Singleton => Ok((node_name, None)),
        Strategy::Manual => {
            warn!(
                key = STRATEGY,
                "discovery strategy manual: Beacon has no join command, so this node runs alone"
            );
            Ok((node_name, None))
        }
        Strategy::Static(origin) => {
            let cluster = static_cluster(config, node_name.clone(), name, &origin)?;
            Ok((node_name, Some(cluster)))
        }
    }
}

enum Strategy {
    Singleton,
    Manual,
    /// Where `static` was set, for errors about missing seeds.
    Static(Origin),
}

fn strategy(config: &Config) -> Result<Strategy, BrokerError> {
    let Some(setting) = config.string(STRATEGY)? else {
        return Ok(Strategy::Singleton);
    };
    match setting.value.as_str() {
        "singleton" => Ok(Strategy::Singleton),
        "manual" => Ok(Strategy::Manual),
        "static" => Ok(Strategy::Static(setting.origin)),
        "dns" | "etcd" | "k8s" | "mcast" => Err(invalid(
            STRATEGY,
            &setting.origin,
            format!(
                "{:?} is an EMQX strategy Beacon does not support; use singleton, static or manual",
                setting.value
            ),
        )),
        other => Err(invalid(
            STRATEGY,
            &setting.origin,
            format!("expected singleton, static or manual, found {other:?}"),
        )),
    }
}

fn static_cluster(
    config: &Config,
    node_name: String,
    name_setting: Option<Sourced<String>>,
    strategy_origin: &Origin,
) -> Result<ClusterConfig, BrokerError> {
    let Some(seeds) = config.string_list(SEEDS)? else {
        return Err(invalid(
            STRATEGY,
            strategy_origin,
            format!("static needs {SEEDS}, which is not set"),
        ));
    };
    let parsed = seeds
        .value
        .iter()
        .enumerate()
        .map(|(i, text)| {
            parse_seed(text).map_err(|why| invalid(&format!("{SEEDS}[{i}]"), &seeds.origin, why))
        })
        .collect::<Result<Vec<Seed>, BrokerError>>()?;
    check_unique(&parsed, &seeds.origin)?;
    if !parsed.iter().any(|s| s.name == node_name) {
        let origin = name_setting.map_or(Origin::Default, |n| n.origin);
        return Err(invalid(
            NODE_NAME,
            &origin,
            format!(
                "{node_name:?} is not among {SEEDS} ({}); a node finds its cluster port there",
                seeds.origin
            ),
        ));
    }
    let mut sorted = parsed;
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ClusterConfig {
        node_name,
        seeds: sorted,
    })
}

/// Names repeat, or two nodes on one host would need the same port (each uses
/// its port and port + 1000).
fn check_unique(seeds: &[Seed], origin: &Origin) -> Result<(), BrokerError> {
    for (i, seed) in seeds.iter().enumerate() {
        let ports = BTreeSet::from([seed.port, seed.raft_port()]);
        for (j, earlier) in seeds[..i].iter().enumerate() {
            let key = format!("{SEEDS}[{i}]");
            if earlier.name == seed.name {
                let message = format!("{:?} repeats {SEEDS}[{j}]", seed.name);
                return Err(invalid(&key, origin, message));
            }
            let clash = earlier.host == seed.host
                && (ports.contains(&earlier.port) || ports.contains(&earlier.raft_port()));
            if clash {
                let message = format!(
                    "{:?} needs ports {} and {} on {}, which {SEEDS}[{j}] also needs \
                     (each node uses its port and port + {RAFT_PORT_OFFSET})",
                    seed.name,
                    seed.port,
                    seed.raft_port(),
                    seed.host
                );
                return Err(invalid(&key, origin, message));
            }
        }
    }
    Ok(())
}

/// `name@host:port` or `name@host`; the host may be an IPv6 address in brackets.
pub(crate) fn parse_seed(text: &str) -> Result<Seed, String> {
    let shape = || format!("expected name@host or name@host:port, found {text:?}");
    let (name, rest) = text.split_once('@').ok_or_else(shape)?;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !name_ok {
        return Err(format!(
            "{}: the name before @ may use letters, digits, '_', '-' and '.'",
            shape()
        ));
    }
    let (host, port) = split_host_port(rest).ok_or_else(shape)?;
    let port = match port {
        Some(digits) => digits
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{digits:?} in {text:?} is not a port (1 to 65535)"))?,
        None => derived_port(name).ok_or_else(|| {
            format!("the number ending {name:?} is too large to derive a port from")
        })?,
    };
    if port > u16::MAX - RAFT_PORT_OFFSET {
        return Err(format!(
            "port {port} leaves no room for its raft port (port + {RAFT_PORT_OFFSET})"
        ));
    }
    Ok(Seed {
        name: format!("{name}@{host}"),
        host: host.to_owned(),
        port,
    })
}

/// `host:port`, `host`, `[v6]:port` or `[v6]`.
fn split_host_port(rest: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if rest.starts_with('[') {
        let end = rest.find(']')?;
        let (host, after) = rest.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    host_ok.then_some((host, port))
}

/// 5370 + the number that ends the name, or 5369 without one.
fn derived_port(name: &str) -> Option<u16> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return Some(BASE_PORT - 1);
    }
    let number: u16 = name[name.len() - digits..].parse().ok()?;
    BASE_PORT.checked_add(number)
}

fn invalid(key: &str, origin: &Origin, message: String) -> BrokerError {
    BrokerError::Invalid {
        key: key.to_owned(),
        origin: origin.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_with_and_without_ports() {
        let seed = parse_seed("beacon1@127.0.0.1:6001").expect("valid");
        assert_eq!(
            (seed.name.as_str(), seed.grpc_addr(), seed.raft_addr()),
            (
                "beacon1@127.0.0.1",
                "127.0.0.1:6001".into(),
                "127.0.0.1:7001".into()
            )
        );
        assert_eq!(
            parse_seed("beacon2@host.example").expect("valid").port,
            5372
        );
        assert_eq!(parse_seed("beacon12@h").expect("valid").port, 5382);
        assert_eq!(parse_seed("emqx@h").expect("valid").port, 5369);
        let v6 = parse_seed("n3@[::1]:6000").expect("valid");
        assert_eq!(
            (v6.name.as_str(), v6.raft_addr()),
            ("n3@[::1]", "[::1]:7000".into())
        );
        assert_eq!(parse_seed("n@[::1]").expect("valid").bare_host(), "::1");
    }

    #[test]
    fn node_ids_are_positions_in_the_seeds_sorted_by_name() {
        let text = "node.name = \"b@h\"\ncluster.discovery_strategy = static\n\
                    cluster.static.seeds = [\"c@h:6000\", \"b@h:6100\", \"a@h:6200\"]\n";
        let config =
            Config::from_str(text, std::path::Path::new("t.conf"), Vec::new()).expect("parses");
        let (_, cluster) = parse(&config).expect("valid");
        let cluster = cluster.expect("clustered");
        let ids: Vec<(u64, &str)> = cluster
            .numbered()
            .map(|(id, s)| (id, &s.name[..]))
            .collect();
        assert_eq!(ids, [(1, "a@h"), (2, "b@h"), (3, "c@h")]);
        assert_eq!(cluster.own().0, 2);
        assert_eq!(cluster.leader_id(), 1);
    }

    #[test]
    fn malformed_seeds_say_what_is_wrong() {
        for (text, says) in [
            ("beacon1", "expected name@host"),
            ("@127.0.0.1", "the name before @"),
            ("b 1@127.0.0.1", "the name before @"),
            ("b1@", "expected name@host"),
            ("b1@127.0.0.1:", "not a port"),
            ("b1@127.0.0.1:0", "not a port"),
            ("b1@127.0.0.1:70000", "not a port"),
            ("b1@127.0.0.1:65000", "no room for its raft port"),
            ("b99999@h", "too large"),
            ("b1@[::1", "expected name@host"),
            ("b1@h/x:1", "expected name@host"),
        ] {
            let err = parse_seed(text).expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
