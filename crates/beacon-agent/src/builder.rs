//! The report builder: system facts, identity and the broker's reading into the
//! `beacon_report::Report` model. Pure: the caller supplies every input, including time.

use std::collections::BTreeMap;

use beacon_report::{
    AdvancedMqttFeatures, AuthnAuthz, Bridge, BuildInfo, DataBridgeStats, Exhook, License,
    MqttRuntimeInsights, Report, RuleEngine, VmSpecs,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::identity::Identity;
use crate::probe::{
    BEACON_VERSION, BUILD_RELFORM, BUILD_RUSTC, BUILD_TARGET, BridgeCount, BrokerReading,
    SystemFacts,
};
use crate::rates::{CounterSnapshot, Rates};

/// Fields without meaning for a Rust broker keep their place with this honest value.
const NONE: &str = "none";
const EDITION: &str = "opensource";

/// Everything one report is made of.
pub(crate) struct Inputs<'a> {
    pub(crate) facts: &'a SystemFacts,
    pub(crate) identity: &'a Identity,
    /// Counters of the previous successful report, for the rates.
    pub(crate) previous: Option<&'a CounterSnapshot>,
    pub(crate) broker: BrokerReading,
    pub(crate) now: DateTime<Utc>,
}

/// The report, and the counters it carries (to be kept if it is delivered).
pub(crate) fn build(inputs: Inputs<'_>) -> (Report, CounterSnapshot) {
    let Inputs {
        facts,
        identity,
        previous,
        broker,
        now,
    } = inputs;
    let counters = CounterSnapshot {
        at: now,
        node_started_at: facts.node_started_at,
        messages_sent: broker.messages_sent,
        messages_received: broker.messages_received,
    };
    let rates = Rates::between(previous, &counters);
    (
        report(facts, identity, broker, rates, facts.up_time_ms(now)),
        counters,
    )
}

fn report(
    facts: &SystemFacts,
    identity: &Identity,
    broker: BrokerReading,
    rates: Rates,
    up_time_ms: u64,
) -> Report {
    let mut others = sorted_unique(broker.nodes_uuid);
    others.retain(|id| *id != identity.uuid);
    Report {
        emqx_version: BEACON_VERSION.to_owned(),
        license: Some(License {
            edition: Some(EDITION.to_owned()),
            extra: Map::new(),
        }),
        os_name: Some(facts.os_name.clone()),
        os_version: Some(facts.os_version.clone()),
        otp_version: Some(NONE.to_owned()),
        up_time: Some(up_time_ms),
        uuid: identity.uuid.clone(),
        cluster_uuid: Some(identity.cluster_uuid.clone()),
        nodes_uuid: Some(others),
        active_plugins: Some(sorted_unique(broker.active_plugins)),
        num_clients: Some(broker.num_clients),
        messages_received: Some(broker.messages_received),
        messages_sent: Some(broker.messages_sent),
        num_cluster_sessions: Some(broker.num_cluster_sessions),
        build_info: Some(build_info()),
        vm_specs: Some(VmSpecs {
            num_cpus: Some(facts.num_cpus),
            total_memory: facts.total_memory,
            extra: Map::new(),
        }),
        mqtt_runtime_insights: Some(MqttRuntimeInsights {
            num_topics: Some(broker.num_topics),
            messages_sent_rate: Some(rates.sent),
            messages_received_rate: Some(rates.received),
            extra: Map::new(),
        }),
        advanced_mqtt_features: Some(AdvancedMqttFeatures {
            topic_rewrite: Some(broker.topic_rewrite),
            retained: Some(broker.retained),
            delayed: Some(broker.delayed),
            auto_subscribe: Some(broker.auto_subscribe),
            extra: Map::new(),
        }),
        authn_authz: Some(AuthnAuthz {
            authz: Some(sorted_unique(broker.authz)),
            authn_listener: Some(match broker.authn_listener {
                Value::Null => Value::Object(Map::new()),
                other => other,
            }),
            authn: Some(sorted_unique(broker.authn)),
            extra: Map::new(),
        }),
        gateway: Some(broker.gateways),
        rule_engine: Some(RuleEngine {
            num_rules: Some(broker.num_rules),
            extra: Map::new(),
        }),
        bridge: Some(bridge(broker.bridges)),
        exhook: Some(exhook(broker.exhook_servers)),
        active_modules: None,
        deletion_secret_sha256: Some(identity.deletion_secret_sha256.clone()),
        extra: Map::new(),
    }
}

fn build_info() -> BuildInfo {
    BuildInfo {
        wordsize: Some(u64::from(usize::BITS)),
        relform: Some(BUILD_RELFORM.to_owned()),
        os: Some(std::env::consts::OS.to_owned()),
        erlang: Some(NONE.to_owned()),
        elixir: Some(NONE.to_owned()),
        arch: Some(BUILD_TARGET.to_owned()),
        rustc: Some(BUILD_RUSTC.to_owned()),
        extra: Map::new(),
    }
}

fn bridge(bridges: BTreeMap<String, BridgeCount>) -> Bridge {
    let total = bridges.values().map(|b| b.num).fold(0, u64::saturating_add);
    let by_type = bridges
        .into_iter()
        .map(|(kind, count)| {
            let stats = DataBridgeStats {
                num_linked_by_rules: Some(count.num_linked_by_rules),
                num: Some(count.num),
                extra: Map::new(),
            };
            (kind, stats)
        })
        .collect();
    Bridge {
        num_data_bridges: Some(total),
        data_bridge: Some(by_type),
        extra: Map::new(),
    }
}

fn exhook(servers: Vec<String>) -> Exhook {
    let servers = sorted_unique(servers);
    Exhook {
        num_servers: Some(servers.len() as u64),
        servers: Some(servers.into_iter().map(Value::String).collect()),
        extra: Map::new(),
    }
}

fn sorted_unique(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn identity() -> Identity {
        Identity {
            uuid: "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E".into(),
            cluster_uuid: "5EAAF818-6186-11ED-AC1D-3DFDC18ED1BB".into(),
            deletion_secret_sha256: "ab".repeat(32),
        }
    }

    fn facts() -> SystemFacts {
        SystemFacts {
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            num_cpus: 8,
            total_memory: Some(8_589_934_592),
            node_started_at: Utc::now(),
        }
    }

    #[test]
    fn the_broker_reading_lands_in_its_fields_sorted() {
        let mut broker = BrokerReading {
            num_clients: 4,
            messages_received: 30,
            authz: vec!["file".into(), "built_in_database".into(), "file".into()],
            active_plugins: vec!["b-1.0".into(), "a-2.0".into()],
            nodes_uuid: vec![identity().uuid, "0A-1-2-3-4".into()],
            exhook_servers: vec!["default".into(), "default".into()],
            ..BrokerReading::default()
        };
        broker.bridges.insert(
            "webhook".into(),
            BridgeCount {
                num: 2,
                num_linked_by_rules: 1,
            },
        );
        let now = Utc::now();
        let facts = facts();
        let previous = CounterSnapshot {
            at: now - chrono::TimeDelta::seconds(10),
            node_started_at: facts.node_started_at,
            messages_sent: 0,
            messages_received: 30,
        };
        broker.messages_sent = 5;
        let (report, counters) = build(Inputs {
            facts: &facts,
            identity: &identity(),
            previous: Some(&previous),
            broker,
            now,
        });
        assert_eq!(
            (counters.messages_sent, counters.messages_received),
            (5, 30)
        );
        report.validate().expect("a built report is valid");
        let value: Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(
            value["authn_authz"]["authz"],
            json!(["built_in_database", "file"])
        );
        assert_eq!(value["authn_authz"]["authn_listener"], json!({}));
        assert_eq!(value["active_plugins"], json!(["a-2.0", "b-1.0"]));
        assert_eq!(value["nodes_uuid"], json!(["0A-1-2-3-4"]));
        assert_eq!(
            value["bridge"],
            json!({"num_data_bridges": 2, "data_bridge": {"webhook": {"num_linked_by_rules": 1, "num": 2}}})
        );
        assert_eq!(
            value["exhook"],
            json!({"servers": ["default"], "num_servers": 1})
        );
        assert_eq!(
            value["mqtt_runtime_insights"]["messages_sent_rate"],
            json!(0.5)
        );
        assert_eq!(
            value["mqtt_runtime_insights"]["messages_received_rate"],
            json!(0)
        );
        assert_eq!(value["otp_version"], json!("none"));
        assert_eq!(value["build_info"]["erlang"], json!("none"));
        assert_eq!(value["build_info"]["wordsize"], json!(usize::BITS));
    }

    #[test]
    fn every_seed_field_is_present() {
        let seed: Value =
            serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed parses");
        let (report, _) = build(Inputs {
            facts: &facts(),
            identity: &identity(),
            previous: None,
            broker: BrokerReading::default(),
            now: Utc::now(),
        });
        let built: Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_same_keys(&seed, &built, "");
    }

    /// Every key of `seed` exists in `built`, recursively, except inside maps keyed by name.
    fn assert_same_keys(seed: &Value, built: &Value, path: &str) {
        let (Value::Object(seed), Value::Object(built)) = (seed, built) else {
            return;
        };
        for (key, value) in seed {
            let here = format!("{path}.{key}");
            let found = built.get(key).unwrap_or_else(|| panic!("missing {here}"));
            if key != "data_bridge" {
                assert_same_keys(value, found, &here);
            }
        }
    }
}
