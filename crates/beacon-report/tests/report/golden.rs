//! The fixtures parse, classify and serialize back to exactly the documents they were.

use beacon_report::fixtures::{EMQX_4_4, REAL_WORLD_5, SEED_5_0_9};
use beacon_report::{PayloadFormat, Report, parse};
use serde_json::{Value, json};

fn value_of(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

#[test]
fn fixtures_are_the_files_under_tests_fixtures() {
    let seed_file = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-5.0.9.json"
    ))
    .expect("seed fixture readable");
    assert_eq!(seed_file, SEED_5_0_9);
}

#[test]
fn seed_parses_as_v5_and_round_trips_exactly() {
    let parsed = parse(SEED_5_0_9.as_bytes()).expect("seed is accepted");
    assert_eq!(parsed.format, PayloadFormat::V5);
    assert_eq!(parsed.raw, SEED_5_0_9);
    let back = serde_json::to_value(&parsed.report).expect("serializes");
    assert_eq!(back, value_of(SEED_5_0_9));
    assert!(parsed.report.extra.is_empty());
}

#[test]
fn seed_fields_land_in_typed_fields() {
    let report = parse(SEED_5_0_9.as_bytes()).expect("seed").report;
    assert_eq!(report.emqx_version, "5.0.9");
    assert_eq!(report.edition(), Some("opensource"));
    assert_eq!(report.uuid, "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E");
    assert_eq!(report.up_time, Some(181_903));
    assert_eq!(report.node_count(), 1);
    let build = report.build_info.as_ref().expect("build_info");
    assert_eq!(build.wordsize, Some(64));
    assert_eq!(build.arch.as_deref(), Some("x86_64-apple-darwin20.6.0"));
    let vm = report.vm_specs.as_ref().expect("vm_specs");
    assert_eq!(vm.total_memory, Some(8_589_934_592));
    let insights = report.mqtt_runtime_insights.as_ref().expect("insights");
    assert_eq!(insights.messages_sent_rate, Some(0.0));
    let features = report.advanced_mqtt_features.as_ref().expect("features");
    assert_eq!(features.retained, Some(3));
    let authn_authz = report.authn_authz.as_ref().expect("authn_authz");
    assert_eq!(authn_authz.authz.as_deref(), Some(&["file".to_owned()][..]));
    assert_eq!(authn_authz.authn_listener, Some(json!({})));
    let bridge = report.bridge.as_ref().expect("bridge");
    let webhook = &bridge.data_bridge.as_ref().expect("data_bridge")["webhook"];
    assert_eq!(
        (webhook.num, webhook.num_linked_by_rules),
        (Some(1), Some(1))
    );
    assert_eq!(
        report.rule_engine.as_ref().and_then(|r| r.num_rules),
        Some(1)
    );
    assert_eq!(report.exhook.as_ref().and_then(|e| e.num_servers), Some(0));
    assert_eq!(report.gateway, Some(serde_json::Map::new()));
}

#[test]
fn emqx_4_parses_as_v4_with_5x_parts_absent() {
    let parsed = parse(EMQX_4_4.as_bytes()).expect("4.x is accepted");
    assert_eq!(parsed.format, PayloadFormat::V4);
    let report = &parsed.report;
    assert_eq!(report.cluster_uuid, None);
    assert_eq!(report.build_info, None);
    assert_eq!(report.vm_specs, None);
    assert_eq!(report.mqtt_runtime_insights, None);
    assert_eq!(report.advanced_mqtt_features, None);
    assert_eq!(report.authn_authz, None);
    assert_eq!(report.num_cluster_sessions, None);
    assert_eq!(report.edition(), Some("community"));
    assert_eq!(report.node_count(), 2);
    assert_eq!(
        report.active_modules,
        Some(json!(["presence", "recon", "retainer"]))
    );
    let back = serde_json::to_value(report).expect("serializes");
    assert_eq!(back, value_of(EMQX_4_4));
}

#[test]
fn real_world_variant_is_accepted_and_keeps_unknown_fields() {
    let parsed = parse(REAL_WORLD_5.as_bytes()).expect("real-world variant is accepted");
    assert_eq!(parsed.format, PayloadFormat::V5);
    let report = &parsed.report;
    assert_eq!(report.uuid, "B1A7C0-61-11ED-AD7C-5AAB80CED2E");
    assert_eq!(report.edition(), Some("enterprise"));
    assert_eq!(report.num_cluster_sessions, Some(2210));
    assert_eq!(report.build_info, Some(Default::default()));
    assert_eq!(report.node_count(), 3);
    let authn_authz = report.authn_authz.as_ref().expect("authn_authz");
    assert_eq!(authn_authz.authn_listener, Some(json!([])));
    let insights = report.mqtt_runtime_insights.as_ref().expect("insights");
    assert_eq!(insights.messages_sent_rate, Some(12.75));
    assert_eq!(report.extra.get("future_field"), Some(&json!({"x": 1})));
    let back = serde_json::to_value(report).expect("serializes");
    assert_eq!(back, value_of(REAL_WORLD_5));
}

#[test]
fn unknown_nested_fields_are_kept() {
    let mut doc = value_of(SEED_5_0_9);
    doc["vm_specs"]["num_numa_nodes"] = json!(2);
    doc["bridge"]["data_bridge"]["webhook"]["num_failed"] = json!(0);
    doc["license"]["expiry"] = json!("2030-01-01");
    let parsed = parse(doc.to_string().as_bytes()).expect("accepted");
    let report = &parsed.report;
    let vm = report.vm_specs.as_ref().expect("vm_specs");
    assert_eq!(vm.extra.get("num_numa_nodes"), Some(&json!(2)));
    assert_eq!(serde_json::to_value(report).expect("serializes"), doc);
}

#[test]
fn raw_is_the_exact_text_received() {
    let text = " {\"emqx_version\":\"5.1.0\",\n \"uuid\":\"A-B-C-D-E\",\"z\":[1, 2.50]}\n";
    let parsed = parse(text.as_bytes()).expect("accepted");
    assert_eq!(parsed.raw, text);
    assert_eq!(parsed.format, PayloadFormat::V5);
}

#[test]
fn to_json_is_compact_and_parses_back_to_the_same_report() {
    for fixture in [SEED_5_0_9, EMQX_4_4, REAL_WORLD_5] {
        let report = parse(fixture.as_bytes()).expect("fixture").report;
        let text = report.to_json();
        assert!(!text.contains('\n'));
        assert_eq!(parse(text.as_bytes()).expect("reparsed").report, report);
        report.validate().expect("fixture validates");
    }
}

#[test]
fn whole_rates_serialize_as_integers_and_fractions_as_floats() {
    let mut report = parse(SEED_5_0_9.as_bytes()).expect("seed").report;
    let insights = report.mqtt_runtime_insights.as_mut().expect("insights");
    insights.messages_sent_rate = Some(3.0);
    insights.messages_received_rate = Some(0.25);
    let value = serde_json::to_value(&report).expect("serializes");
    assert_eq!(
        value["mqtt_runtime_insights"]["messages_sent_rate"],
        json!(3)
    );
    assert_eq!(
        value["mqtt_runtime_insights"]["messages_received_rate"],
        json!(0.25)
    );
}

/// Found by the `report` fuzz target: without correctly rounded float parsing, this rate
/// read back one unit in the last place off, so the report changed on a round trip.
#[test]
fn fractional_rates_read_back_bit_for_bit() {
    let mut report = parse(SEED_5_0_9.as_bytes()).expect("seed").report;
    let rate = 3.777_590_464_922_207e-258;
    let insights = report.mqtt_runtime_insights.as_mut().expect("insights");
    insights.messages_sent_rate = Some(rate);
    let text = report.to_json();
    assert!(
        text.contains("\"messages_sent_rate\":3.777590464922207e-258"),
        "{text}"
    );
    let back = parse(text.as_bytes()).expect("reparsed").report;
    let insights = back.mqtt_runtime_insights.as_ref().expect("insights");
    assert_eq!(
        insights.messages_sent_rate.map(f64::to_bits),
        Some(rate.to_bits())
    );
    assert_eq!(back, report);
}

#[test]
fn format_detection() {
    let base = |version: &str| Report {
        emqx_version: version.to_owned(),
        uuid: "A-B-C-D-E".to_owned(),
        ..Default::default()
    };
    assert_eq!(base("4.4.19").format(), PayloadFormat::V4);
    assert_eq!(base("e4.4.5").format(), PayloadFormat::V4);
    assert_eq!(base("5.0.9").format(), PayloadFormat::V5);
    assert_eq!(base("e5.1.0").format(), PayloadFormat::V5);
    assert_eq!(base("10.0").format(), PayloadFormat::V5);
    assert_eq!(base("unknown").format(), PayloadFormat::V4);
    let with_cluster = Report {
        cluster_uuid: Some("A-B-C-D-E".to_owned()),
        ..base("4.4.19")
    };
    assert_eq!(with_cluster.format(), PayloadFormat::V5);
    let with_vm = Report {
        vm_specs: Some(Default::default()),
        ..base("4.4.19")
    };
    assert_eq!(with_vm.format(), PayloadFormat::V5);
    let with_build = Report {
        build_info: Some(Default::default()),
        ..base("4.4.19")
    };
    assert_eq!(with_build.format(), PayloadFormat::V5);
}

#[test]
fn beacon_additions_round_trip() {
    let mut doc = value_of(SEED_5_0_9);
    doc["build_info"]["rustc"] = json!("1.95.0");
    doc["deletion_secret_sha256"] = json!("a".repeat(64));
    let report = parse(doc.to_string().as_bytes()).expect("accepted").report;
    assert_eq!(
        report.build_info.as_ref().and_then(|b| b.rustc.as_deref()),
        Some("1.95.0")
    );
    assert_eq!(report.deletion_secret_sha256, Some("a".repeat(64)));
    assert_eq!(serde_json::to_value(&report).expect("serializes"), doc);
}

#[test]
fn null_in_an_optional_field_means_absent() {
    let mut doc = value_of(SEED_5_0_9);
    doc["cluster_uuid"] = Value::Null;
    doc["vm_specs"]["num_cpus"] = Value::Null;
    let report = parse(doc.to_string().as_bytes()).expect("accepted").report;
    assert_eq!(report.cluster_uuid, None);
    assert_eq!(report.vm_specs.and_then(|v| v.num_cpus), None);
}
