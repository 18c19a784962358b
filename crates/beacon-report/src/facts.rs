//! The facts of a report that the collector's analytics count, read from its JSON
//! document: where each feature sits in the EMQX 4.x and 5.x payloads, and the names
//! EMQX 4.x gives its modules.
//!
//! Reading is lenient on purpose: the document has already been validated by
//! [`crate::parse`], and a part that is missing or has an unexpected shape simply
//! contributes nothing.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What one report says about its node, beyond the columns of its row.
///
/// Lists are sorted and without duplicates. `Default` is a report that says nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// `nodes_uuid`: the other nodes of the cluster. A 4.x report has no `cluster_uuid`,
    /// so its cluster is named by the smallest uuid among the node and these.
    pub peer_uuids: Vec<String>,
    /// SHA-256 (hex) of the node's deletion secret, when the report carries one.
    pub deletion_secret_sha256: Option<String>,
    pub num_cpus: Option<u64>,
    /// Bytes.
    pub total_memory: Option<u64>,
    pub num_clients: Option<u64>,
    pub num_topics: Option<u64>,
    /// Messages per second.
    pub messages_sent_rate: Option<f64>,
    /// Messages per second.
    pub messages_received_rate: Option<f64>,
    pub retained: bool,
    pub delayed: bool,
    pub topic_rewrite: bool,
    pub auto_subscribe: bool,
    /// At least one rule.
    pub rule_engine: bool,
    /// At least one ExHook server.
    pub exhook: bool,
    /// Data bridge types with at least one bridge, e.g. `kafka_producer`.
    pub bridges: Vec<String>,
    /// Enabled authenticators, `mechanism:backend`.
    pub authn: Vec<String>,
    /// Enabled authorization sources.
    pub authz: Vec<String>,
    /// Enabled gateways, e.g. `mqttsn`.
    pub gateways: Vec<String>,
    /// Active plugins by name, without their version.
    pub plugins: Vec<String>,
}

/// EMQX 4.x names its features as modules (`active_modules`) or plugins.
const V4_MODULES: [(&str, Feature4); 8] = [
    ("retainer", Feature4::Retained),
    ("emqx_retainer", Feature4::Retained),
    ("delayed", Feature4::Delayed),
    ("emqx_delayed_publish", Feature4::Delayed),
    ("rewrite", Feature4::TopicRewrite),
    ("topic_rewrite", Feature4::TopicRewrite),
    ("subscription", Feature4::AutoSubscribe),
    ("emqx_rule_engine", Feature4::RuleEngine),
];

#[derive(Clone, Copy)]
enum Feature4 {
    Retained,
    Delayed,
    TopicRewrite,
    AutoSubscribe,
    RuleEngine,
}

impl Facts {
    /// The facts of a report document (EMQX 4.x or 5.x shape).
    pub fn of(doc: &Value) -> Self {
        let empty = Map::new();
        let root = doc.as_object().unwrap_or(&empty);
        let section = |name: &str| root.get(name).and_then(Value::as_object).unwrap_or(&empty);
        let features = section("advanced_mqtt_features");
        let insights = section("mqtt_runtime_insights");
        let vm = section("vm_specs");
        let authn_authz = section("authn_authz");
        let exhook = section("exhook");
        let mut facts = Self {
            peer_uuids: strings(root.get("nodes_uuid")),
            deletion_secret_sha256: root
                .get("deletion_secret_sha256")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase),
            num_cpus: vm.get("num_cpus").and_then(Value::as_u64),
            total_memory: vm.get("total_memory").and_then(Value::as_u64),
            num_clients: root.get("num_clients").and_then(Value::as_u64),
            num_topics: insights.get("num_topics").and_then(Value::as_u64),
            messages_sent_rate: rate(insights.get("messages_sent_rate")),
            messages_received_rate: rate(insights.get("messages_received_rate")),
            retained: positive(features.get("retained")),
            delayed: positive(features.get("delayed")),
            topic_rewrite: positive(features.get("topic_rewrite")),
            auto_subscribe: positive(features.get("auto_subscribe")),
            rule_engine: positive(section("rule_engine").get("num_rules")),
            exhook: positive(exhook.get("num_servers"))
                || exhook
                    .get("servers")
                    .and_then(Value::as_array)
                    .is_some_and(|servers| !servers.is_empty()),
            bridges: bridge_types(section("bridge")),
            authn: strings(authn_authz.get("authn")),
            authz: strings(authn_authz.get("authz")),
            gateways: sorted(section("gateway").keys().cloned()),
            plugins: sorted(
                strings(root.get("active_plugins"))
                    .iter()
                    .map(|entry| plugin_name(entry)),
            ),
        };
        facts.add_v4_modules(root);
        facts
    }

    fn add_v4_modules(&mut self, root: &Map<String, Value>) {
        let modules = strings(root.get("active_modules"));
        let plugins = strings(root.get("active_plugins"));
        for name in modules.iter().chain(&plugins) {
            let found = V4_MODULES.iter().find(|(module, _)| module == name);
            match found.map(|(_, feature)| *feature) {
                Some(Feature4::Retained) => self.retained = true,
                Some(Feature4::Delayed) => self.delayed = true,
                Some(Feature4::TopicRewrite) => self.topic_rewrite = true,
                Some(Feature4::AutoSubscribe) => self.auto_subscribe = true,
                Some(Feature4::RuleEngine) => self.rule_engine = true,
                None => {}
            }
        }
    }
}

/// Non-empty strings of a JSON array, sorted and without duplicates.
fn strings(value: Option<&Value>) -> Vec<String> {
    let items = value
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    sorted(items.iter().filter_map(Value::as_str).map(str::to_owned))
}

fn sorted(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.filter(|item| !item.is_empty()).collect();
    items.sort_unstable();
    items.dedup();
    items
}

fn positive(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_f64)
        .is_some_and(|number| number > 0.0)
}

/// A rate that can be bucketed: finite and not negative.
fn rate(value: Option<&Value>) -> Option<f64> {
    value
        .and_then(Value::as_f64)
        .filter(|rate| rate.is_finite() && *rate >= 0.0)
}

/// Types with at least one bridge; a type listed without a count is counted as used.
fn bridge_types(bridge: &Map<String, Value>) -> Vec<String> {
    let Some(types) = bridge.get("data_bridge").and_then(Value::as_object) else {
        return Vec::new();
    };
    let used = types.iter().filter(|(_, stats)| {
        stats
            .get("num")
            .and_then(Value::as_u64)
            .is_none_or(|num| num > 0)
    });
    sorted(used.map(|(name, _)| name.clone()))
}

/// `my_plugin-1.2.0` names the plugin `my_plugin`; 4.x names (`emqx_retainer`) have no
/// version to strip.
fn plugin_name(entry: &str) -> String {
    match entry.rsplit_once('-') {
        Some((name, version))
            if !name.is_empty() && version.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            name.to_owned()
        }
        _ => entry.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_every_fact_of_a_5x_report() {
        let doc = json!({
            "uuid": "A", "nodes_uuid": ["C", "B", "C"], "num_clients": 42,
            "deletion_secret_sha256": "AB".repeat(32),
            "active_plugins": ["my_plugin-1.2.0", "odd-name", "my_plugin-1.3.0"],
            "vm_specs": {"num_cpus": 8, "total_memory": 8589934592u64},
            "mqtt_runtime_insights": {"num_topics": 7, "messages_sent_rate": 1.5,
                "messages_received_rate": -1},
            "advanced_mqtt_features": {"topic_rewrite": 0, "retained": 3, "delayed": 1,
                "auto_subscribe": 0},
            "authn_authz": {"authz": ["file", "http"], "authn": ["jwt"]},
            "gateway": {"mqttsn": {}, "coap": {}},
            "rule_engine": {"num_rules": 2},
            "bridge": {"data_bridge": {"webhook": {"num": 1}, "kafka": {"num": 0},
                "mqtt": {}}},
            "exhook": {"servers": [], "num_servers": 0}
        });
        let facts = Facts::of(&doc);
        let expected = Facts {
            peer_uuids: vec!["B".into(), "C".into()],
            deletion_secret_sha256: Some("ab".repeat(32)),
            num_cpus: Some(8),
            total_memory: Some(8_589_934_592),
            num_clients: Some(42),
            num_topics: Some(7),
            messages_sent_rate: Some(1.5),
            messages_received_rate: None,
            retained: true,
            delayed: true,
            rule_engine: true,
            bridges: vec!["mqtt".into(), "webhook".into()],
            authn: vec!["jwt".into()],
            authz: vec!["file".into(), "http".into()],
            gateways: vec!["coap".into(), "mqttsn".into()],
            plugins: vec!["my_plugin".into(), "odd-name".into()],
            ..Facts::default()
        };
        assert_eq!(facts, expected);
    }

    #[test]
    fn reads_4x_modules_as_features() {
        let doc = json!({"active_modules": ["presence", "retainer", "rewrite"],
            "active_plugins": ["emqx_rule_engine", "emqx_dashboard"]});
        let facts = Facts::of(&doc);
        assert!(facts.retained && facts.topic_rewrite && facts.rule_engine);
        assert!(!facts.delayed && !facts.auto_subscribe);
        assert_eq!(facts.plugins, ["emqx_dashboard", "emqx_rule_engine"]);
    }

    #[test]
    fn odd_shapes_contribute_nothing() {
        let facts = Facts::of(&json!({"vm_specs": [], "num_clients": "x"}));
        assert_eq!(facts, Facts::default());
        assert_eq!(Facts::of(&json!(3)), Facts::default());
    }
}
