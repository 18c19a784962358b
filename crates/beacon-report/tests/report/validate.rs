//! `Report::validate` checks a built report exactly as the collector will read it.

use beacon_report::fixtures::SEED_5_0_9;
use beacon_report::{MAX_BODY_DEPTH, MqttRuntimeInsights, Report, ReportError, parse};
use serde_json::json;

fn minimal() -> Report {
    Report {
        emqx_version: "5.8.6".to_owned(),
        uuid: "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E".to_owned(),
        ..Default::default()
    }
}

#[test]
fn a_minimal_built_report_validates_and_parses_back() {
    let report = minimal();
    report.validate().expect("valid");
    assert_eq!(
        report.to_json(),
        r#"{"emqx_version":"5.8.6","uuid":"5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E"}"#
    );
    assert_eq!(
        parse(report.to_json().as_bytes()).expect("parses").report,
        report
    );
}

#[test]
fn default_report_is_refused() {
    assert_eq!(
        Report::default().validate(),
        Err(ReportError::InvalidField {
            field: "emqx_version".to_owned(),
            reason: "must not be empty".to_owned()
        })
    );
}

#[test]
fn node_count_counts_this_node_and_the_others() {
    let mut report = minimal();
    assert_eq!(report.node_count(), 1);
    report.nodes_uuid = Some(vec![]);
    assert_eq!(report.node_count(), 1);
    report.nodes_uuid = Some(vec!["A-B-C-D-E".into(), "F-F-F-F-F".into()]);
    assert_eq!(report.node_count(), 3);
}

#[test]
fn edition_reads_the_license() {
    let mut report = minimal();
    assert_eq!(report.edition(), None);
    report.license = Some(Default::default());
    assert_eq!(report.edition(), None);
    report.license = Some(beacon_report::License {
        edition: Some("opensource".into()),
        extra: Default::default(),
    });
    assert_eq!(report.edition(), Some("opensource"));
}

#[test]
fn non_finite_and_negative_rates_are_refused() {
    for (rate, shown) in [(f64::NAN, "NaN"), (f64::INFINITY, "inf"), (-1.0, "-1")] {
        let report = Report {
            mqtt_runtime_insights: Some(MqttRuntimeInsights {
                messages_sent_rate: Some(rate),
                ..Default::default()
            }),
            ..minimal()
        };
        assert_eq!(
            report.validate(),
            Err(ReportError::InvalidField {
                field: "mqtt_runtime_insights.messages_sent_rate".to_owned(),
                reason: format!("expected a non-negative number, found {shown}"),
            })
        );
    }
}

#[test]
fn bad_ids_and_secrets_are_refused() {
    let bad_uuid = Report {
        uuid: "node-1".into(),
        ..minimal()
    };
    assert_eq!(bad_uuid.validate().expect_err("bad").field(), Some("uuid"));
    let bad_secret = Report {
        deletion_secret_sha256: Some("F".repeat(64)),
        ..minimal()
    };
    assert_eq!(
        bad_secret.validate().expect_err("bad").field(),
        Some("deletion_secret_sha256")
    );
}

#[test]
fn limits_apply_to_built_reports() {
    let long = Report {
        os_name: Some("x".repeat(2000)),
        ..minimal()
    };
    assert_eq!(long.validate().expect_err("long").code(), "TOO_LONG");
    let deep = (0..MAX_BODY_DEPTH).fold(json!(1), |inner, _| json!([inner]));
    let mut nested = minimal();
    nested.extra.insert("deep".into(), deep);
    assert_eq!(
        nested.validate(),
        Err(ReportError::TooDeep {
            max: MAX_BODY_DEPTH
        })
    );
}

#[test]
fn extra_key_shadowing_a_typed_field_is_refused() {
    let mut report = minimal();
    report.extra.insert("uuid".into(), json!("F-F-F-F-F"));
    let err = report.validate().expect_err("shadowed");
    assert_eq!(err.code(), "MALFORMED_JSON");
    assert!(err.to_string().contains("duplicate key \"uuid\""), "{err}");
}

#[test]
fn extra_fields_of_a_built_report_are_sent() {
    let mut report = parse(SEED_5_0_9.as_bytes()).expect("seed").report;
    report
        .extra
        .insert("beacon_feature".into(), json!({"on": true}));
    report.validate().expect("valid");
    assert!(
        report
            .to_json()
            .ends_with(r#""beacon_feature":{"on":true}}"#)
    );
}
