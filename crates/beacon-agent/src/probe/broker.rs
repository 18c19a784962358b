//! The broker's probe: the trait a broker implements so that the agent can read it.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Reads the broker. Called once per report attempt and per preview, from the agent's
/// task: it must answer quickly and never block on the network.
pub trait BrokerProbe: Send + Sync {
    fn read(&self) -> BrokerReading;
}

/// What one read of the broker gives a report, in the report's terms. Lists may come in
/// any order with duplicates; the report builder sorts and dedupes them.
///
/// Nothing here may identify a person or machine: no client ids, user names, topic
/// names, addresses or host names. `authn_listener`, `gateways` and `exhook_servers` are
/// sent as given, so the broker puts only types and counts in them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerReading {
    /// Connections live now.
    pub num_clients: u64,
    /// Sessions in the cluster, connected or not.
    pub num_cluster_sessions: u64,
    /// Messages received since the node started (a counter; rates are derived from it).
    pub messages_received: u64,
    /// Messages sent since the node started (a counter).
    pub messages_sent: u64,
    pub num_topics: u64,
    /// Retained messages stored.
    pub retained: u64,
    /// Delayed messages waiting.
    pub delayed: u64,
    /// Topic rewrite rules configured.
    pub topic_rewrite: u64,
    /// Auto-subscribe topics configured.
    pub auto_subscribe: u64,
    /// Enabled authenticators as `mechanism:backend`, e.g. `password_based:built_in_database`.
    pub authn: Vec<String>,
    /// Enabled authorization source types, e.g. `file`.
    pub authz: Vec<String>,
    /// Per-listener authentication summary; `Value::Null` is sent as `{}`.
    pub authn_listener: Value,
    /// Active plugins as `name-version`.
    pub active_plugins: Vec<String>,
    pub num_rules: u64,
    /// Data bridges by type, e.g. `webhook`.
    pub bridges: BTreeMap<String, BridgeCount>,
    /// Enabled gateways by name, with whatever counts the broker reports for each.
    pub gateways: Map<String, Value>,
    /// Exhook server summaries.
    pub exhook_servers: Vec<String>,
    /// Ids of the *other* nodes of the cluster.
    pub nodes_uuid: Vec<String>,
}

/// Data bridges of one type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeCount {
    pub num: u64,
    /// How many of them a rule uses.
    pub num_linked_by_rules: u64,
}

/// A fixed reading is its own probe: handy for a stopped node (all zeros) and for tests.
impl BrokerProbe for BrokerReading {
    fn read(&self) -> BrokerReading {
        self.clone()
    }
}
