//! The typed report: one struct per JSON object of the EMQX 5.x payload.
//!
//! Every field is optional except `emqx_version` and `uuid`, because EMQX 4.x and
//! newer 5.x releases each leave out parts of the set. Absent stays absent: `None`
//! fields are not serialized, so a parsed report serializes back to the document it
//! came from. Each struct keeps fields it does not know in `extra`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One telemetry report, EMQX 4.x or 5.x, plus the fields Beacon adds.
///
/// `Default` gives empty required fields (which [`Report::validate`] refuses); it is
/// there so a builder can write `Report { uuid, emqx_version, ..Default::default() }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Release of the reporting node, e.g. `5.0.9` or `4.4.19`.
    pub emqx_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<License>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_version: Option<String>,
    /// Milliseconds since the node started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_time: Option<u64>,
    /// Random id of the reporting node.
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uuid: Option<String>,
    /// Ids of the *other* nodes of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_uuid: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_plugins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_clients: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_cluster_sessions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_info: Option<BuildInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_specs: Option<VmSpecs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_runtime_insights: Option<MqttRuntimeInsights>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_mqtt_features: Option<AdvancedMqttFeatures>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authn_authz: Option<AuthnAuthz>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_engine: Option<RuleEngine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhook: Option<Exhook>,
    /// Sent by EMQX 4.x only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_modules: Option<Value>,
    /// Beacon addition: SHA-256 (64 lowercase hex) of the secret that lets the node
    /// ask for its reports to be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_secret_sha256: Option<String>,
    /// Fields this version of the model does not know, kept as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct License {
    /// `opensource`, `community`, `enterprise`, ...: kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Build facts; every field is optional because real reports send `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wordsize: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erlang: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elixir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Beacon addition: version of the Rust compiler that built the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rustc: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmSpecs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_cpus: Option<u64>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_memory: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MqttRuntimeInsights {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_topics: Option<u64>,
    /// Messages per second.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rate::serialize"
    )]
    pub messages_sent_rate: Option<f64>,
    /// Messages per second.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "rate::serialize"
    )]
    pub messages_received_rate: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdvancedMqttFeatures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_rewrite: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_subscribe: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthnAuthz {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authz: Option<Vec<String>>,
    /// An object in the seed, a list in some real reports: kept as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authn_listener: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authn: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleEngine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_rules: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bridge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_data_bridges: Option<u64>,
    /// Keyed by bridge type, e.g. `webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_bridge: Option<BTreeMap<String, DataBridgeStats>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataBridgeStats {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_linked_by_rules: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Exhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_servers: Option<u64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which EMQX generation a report follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    /// EMQX 4.x: no cluster id, build info or VM specs.
    V4,
    /// EMQX 5.x (and Beacon).
    V5,
}

impl PayloadFormat {
    /// Stable lower-case name, e.g. for a storage column or a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V4 => "v4",
            Self::V5 => "v5",
        }
    }
}

impl std::fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A report accepted by [`crate::parse`], with the text it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReport {
    pub report: Report,
    pub format: PayloadFormat,
    /// The exact JSON text received (after any gzip), so that nothing the model does
    /// not know is lost.
    pub raw: String,
}

mod rate {
    use serde::Serializer;

    /// Largest integer an `f64` holds exactly.
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

    /// EMQX sends `0` as often as `0.5`; writing whole rates as integers makes a parsed
    /// report serialize back to the same JSON value it was read from.
    pub(super) fn serialize<S: Serializer>(rate: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match *rate {
            Some(r) if r.fract() == 0.0 && (0.0..=MAX_EXACT).contains(&r) => {
                // Exact: whole and within the range where f64 -> u64 loses nothing.
                s.serialize_u64(r as u64)
            }
            Some(r) => s.serialize_f64(r),
            None => s.serialize_none(),
        }
    }
}
