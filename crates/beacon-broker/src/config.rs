use std::net::SocketAddr;
use std::num::NonZeroU16;

use beacon_config::Config;

use crate::BrokerError;
use crate::authn::{self, Authenticator};
use crate::authz::{self, Authorization};
use crate::autosub::{self, AutoSubscribeTopic};
use crate::cluster::{self, ClusterConfig};
use crate::listeners::{self, ListenerConfig};
use crate::rewrite::{self, RewriteRule};

/// What the broker runs, read from EMQX-named keys; every key is optional.
///
/// | key | default |
/// |---|---|
/// | `listeners.tcp.default.enable` / `.bind` | `true` / `0.0.0.0:1883` |
/// | `listeners.{tcp,ssl,ws,wss}.<name>` | served when present (see `listeners.rs`) |
/// | `retainer.enable` / `.max_retained_messages` | `true` / `0` (no limit) |
/// | `delayed.enable` / `.max_delayed_messages` | `true` / `0` (no limit) |
/// | `rewrite` | no rules (see `rewrite.rs`) |
/// | `auto_subscribe.topics` | none (see `autosub.rs`) |
/// | `authentication` | none: anonymous clients allowed (see `authn.rs`) |
/// | `authorization` | `no_match = allow`, no sources (see `authz.rs`) |
/// | `mqtt.max_inflight` / `mqtt.max_mqueue_len` | `32` / `1000` (0: no limit), as EMQX |
/// | `node.name` | `beacon@127.0.0.1` (EMQX's `name@host`) |
/// | `cluster.discovery_strategy` | `singleton`: no cluster; `static`: the seeds below; `manual`: runs alone with a warning (Beacon has no join command); others refused |
/// | `cluster.static.seeds` | required by `static`: `["name@host:port", ...]` or `name@host` (see below) |
///
/// Cluster seeds (see `cluster.rs`): a seed names a node (`beacon1@127.0.0.1`) and its
/// cluster port, which carries rmqtt's gRPC; raft listens on that port + 1000. A seed
/// without a port gets 5370 + the number that ends its name (`beacon2` → 5372), or
/// 5369 when the name ends in no number. `node.name` must be one of the seeds; names
/// must not repeat, and two seeds on one host must not need the same port. Every node
/// must list the same seeds: rmqtt node ids are positions in the seeds sorted by name.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub(crate) listeners: Vec<ListenerConfig>,
    pub(crate) retainer: Option<Limit>,
    pub(crate) delayed: Option<Limit>,
    pub(crate) rewrite: Vec<RewriteRule>,
    pub(crate) auto_subscribe: Vec<AutoSubscribeTopic>,
    pub(crate) authentication: Vec<Authenticator>,
    pub(crate) authorization: Authorization,
    pub(crate) session: SessionLimits,
    pub(crate) node_name: String,
    pub(crate) cluster: Option<ClusterConfig>,
}

/// Per-session flow control: QoS 1/2 messages awaiting a client's acknowledgement, and
/// messages queued behind them. A message that finds the queue full is dropped, as in
/// EMQX, so a slow subscriber cannot make the broker's memory grow without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    pub(crate) max_inflight: NonZeroU16,
    pub(crate) max_mqueue_len: usize,
}

impl Default for SessionLimits {
    /// EMQX's defaults.
    fn default() -> Self {
        SessionLimits {
            max_inflight: NonZeroU16::new(32).expect("non-zero"),
            max_mqueue_len: 1000,
        }
    }
}

/// A feature's store limit; 0 means none, as in EMQX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit(pub(crate) u64);

impl Default for BrokerConfig {
    /// The configuration of an empty config file.
    fn default() -> Self {
        BrokerConfig {
            listeners: vec![ListenerConfig::tcp_default()],
            retainer: Some(Limit(0)),
            delayed: Some(Limit(0)),
            rewrite: Vec::new(),
            auto_subscribe: Vec::new(),
            authentication: Vec::new(),
            authorization: Authorization::default(),
            session: SessionLimits::default(),
            node_name: cluster::DEFAULT_NODE_NAME.to_owned(),
            cluster: None,
        }
    }
}

impl BrokerConfig {
    /// Reads the broker's settings; a bad value is refused naming its key and origin.
    pub fn from_config(config: &Config) -> Result<BrokerConfig, BrokerError> {
        let (node_name, cluster) = cluster::parse(config)?;
        Ok(BrokerConfig {
            listeners: listeners::parse(config)?,
            retainer: limit(config, "retainer", "max_retained_messages")?,
            delayed: limit(config, "delayed", "max_delayed_messages")?,
            rewrite: rewrite::parse(config)?,
            auto_subscribe: autosub::parse(config)?,
            authentication: authn::parse(config)?,
            authorization: authz::parse(config)?,
            session: session_limits(config)?,
            node_name,
            cluster,
        })
    }

    /// This node's EMQX name (`node.name`), also when it runs alone.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The cluster this node joins; `None` when it runs alone.
    pub fn cluster(&self) -> Option<&ClusterConfig> {
        self.cluster.as_ref()
    }

    /// The address to bind for `listeners.tcp.default`; `None` when it is disabled.
    pub fn listener(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.is_tcp_default())
            .map(|l| l.bind)
    }

    /// Replaces the address of `listeners.tcp.default` (port 0 picks a free port), e.g.
    /// when the configured port is taken; `None` disables it. Other listeners stay.
    pub fn set_listener(&mut self, addr: Option<SocketAddr>) {
        self.listeners.retain(|l| !l.is_tcp_default());
        if let Some(addr) = addr {
            self.listeners
                .insert(0, ListenerConfig::tcp_default_at(addr));
        }
    }

    /// Every listener to serve, by EMQX's id (`tcp:default`, `ssl:default`, ...), with
    /// the address to bind.
    pub fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.listeners.iter().map(|l| (l.id(), l.bind)).collect()
    }
}

fn limit(config: &Config, section: &str, max_key: &str) -> Result<Option<Limit>, BrokerError> {
    let enabled = config
        .bool(&format!("{section}.enable"))?
        .is_none_or(|s| s.value);
    if !enabled {
        return Ok(None);
    }
    let max = config.u64(&format!("{section}.{max_key}"))?;
    Ok(Some(Limit(max.map_or(0, |s| s.value))))
}

/// `mqtt.max_inflight` (1 to 65535) and `mqtt.max_mqueue_len` (0: no limit).
fn session_limits(config: &Config) -> Result<SessionLimits, BrokerError> {
    const INFLIGHT: &str = "mqtt.max_inflight";
    let defaults = SessionLimits::default();
    let max_inflight = match config.u64(INFLIGHT)? {
        None => defaults.max_inflight,
        Some(setting) => u16::try_from(setting.value)
            .ok()
            .and_then(NonZeroU16::new)
            .ok_or_else(|| beacon_config::ConfigError::Type {
                key: INFLIGHT.to_owned(),
                origin: setting.origin.clone(),
                expected: "a number from 1 to 65535",
                found: setting.value.to_string(),
            })?,
    };
    // rmqtt sizes a channel by the queue length and panics above about usize::MAX / 4,
    // so "no limit" is a length no session reaches.
    const UNLIMITED_MQUEUE: u64 = i32::MAX as u64;
    let max_mqueue_len = match config.u64("mqtt.max_mqueue_len")? {
        None => defaults.max_mqueue_len,
        Some(setting) if setting.value == 0 => UNLIMITED_MQUEUE as usize,
        Some(setting) => setting.value.min(UNLIMITED_MQUEUE) as usize,
    };
    Ok(SessionLimits {
        max_inflight,
        max_mqueue_len,
    })
}
