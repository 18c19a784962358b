//! Every refusal names its problem, its field and a stable code.

use beacon_report::fixtures::SEED_5_0_9;
use beacon_report::{ReportError, parse};
use serde_json::{Value, json};

fn seed() -> Value {
    serde_json::from_str(SEED_5_0_9).expect("seed is JSON")
}

fn refuse(doc: &Value) -> ReportError {
    parse(doc.to_string().as_bytes()).expect_err("document must be refused")
}

fn with(pointer: &str, value: Value) -> Value {
    let mut doc = seed();
    *doc.pointer_mut(pointer)
        .expect("pointer exists in the seed") = value;
    doc
}

fn invalid(field: &str, reason: &str) -> ReportError {
    ReportError::InvalidField {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

#[test]
fn counter_as_string_names_the_field() {
    let err = refuse(&with("/num_clients", json!("5")));
    assert_eq!(
        err,
        invalid(
            "num_clients",
            "expected a non-negative integer, found a string"
        )
    );
    assert_eq!(err.code(), "INVALID_FIELD");
    assert_eq!(err.field(), Some("num_clients"));
    assert_eq!(
        err.to_string(),
        "field `num_clients`: expected a non-negative integer, found a string"
    );
}

#[test]
fn negative_counter_is_refused_with_its_value() {
    let err = refuse(&with("/vm_specs/num_cpus", json!(-1)));
    assert_eq!(
        err.to_string(),
        "field `vm_specs.num_cpus`: expected a non-negative integer, found -1"
    );
}

#[test]
fn fractional_counter_is_refused() {
    let err = refuse(&with("/messages_sent", json!(1.5)));
    assert_eq!(
        err,
        invalid(
            "messages_sent",
            "expected a non-negative integer, found 1.5"
        )
    );
    let err = refuse(&with("/up_time", json!(2.0)));
    assert_eq!(err.field(), Some("up_time"));
}

#[test]
fn counters_accept_the_full_u64_range() {
    let doc = with("/messages_received", json!(u64::MAX));
    let report = parse(doc.to_string().as_bytes()).expect("accepted").report;
    assert_eq!(report.messages_received, Some(u64::MAX));
    let too_big =
        r#"{"emqx_version":"5.0.9","uuid":"A-B-C-D-E","num_clients":18446744073709551616}"#;
    let err = parse(too_big.as_bytes()).expect_err("beyond u64");
    assert_eq!(err.field(), Some("num_clients"));
}

#[test]
fn rates_accept_integers_and_floats_but_not_negatives() {
    for rate in [json!(0), json!(7), json!(0.5), json!(1e3)] {
        let doc = with("/mqtt_runtime_insights/messages_sent_rate", rate);
        parse(doc.to_string().as_bytes()).expect("rate accepted");
    }
    let err = refuse(&with(
        "/mqtt_runtime_insights/messages_received_rate",
        json!(-0.5),
    ));
    assert_eq!(
        err,
        invalid(
            "mqtt_runtime_insights.messages_received_rate",
            "expected a non-negative number, found -0.5"
        )
    );
    let err = refuse(&with(
        "/mqtt_runtime_insights/messages_sent_rate",
        json!("1"),
    ));
    assert_eq!(
        err.field(),
        Some("mqtt_runtime_insights.messages_sent_rate")
    );
}

#[test]
fn wrong_types_elsewhere_name_their_paths() {
    let cases = [
        (
            "/os_name",
            json!(12),
            "os_name",
            "expected a string, found 12",
        ),
        (
            "/license",
            json!("opensource"),
            "license",
            "expected an object, found a string",
        ),
        (
            "/license/edition",
            json!(true),
            "license.edition",
            "expected a string, found a boolean",
        ),
        (
            "/nodes_uuid",
            json!({}),
            "nodes_uuid",
            "expected an array of strings, found an object",
        ),
        (
            "/build_info/wordsize",
            json!("64"),
            "build_info.wordsize",
            "expected a non-negative integer, found a string",
        ),
        (
            "/authn_authz/authn_listener",
            json!("x"),
            "authn_authz.authn_listener",
            "expected an object or an array, found a string",
        ),
        (
            "/authn_authz/authz",
            json!(["file", 3]),
            "authn_authz.authz[1]",
            "expected a string, found 3",
        ),
        (
            "/gateway",
            json!([]),
            "gateway",
            "expected an object, found an array",
        ),
        (
            "/bridge/data_bridge",
            json!([]),
            "bridge.data_bridge",
            "expected an object, found an array",
        ),
        (
            "/bridge/data_bridge/webhook",
            json!(1),
            "bridge.data_bridge.webhook",
            "expected an object, found 1",
        ),
        ("/bridge/data_bridge/webhook/num", json!(null), "", ""),
        (
            "/exhook/servers",
            json!({}),
            "exhook.servers",
            "expected an array, found an object",
        ),
        (
            "/rule_engine/num_rules",
            json!(-3),
            "rule_engine.num_rules",
            "expected a non-negative integer, found -3",
        ),
    ];
    for (pointer, value, field, reason) in cases {
        let doc = with(pointer, value);
        match parse(doc.to_string().as_bytes()) {
            Ok(_) => assert!(field.is_empty(), "{pointer} should be refused"),
            Err(err) => assert_eq!(err, invalid(field, reason), "at {pointer}"),
        }
    }
}

#[test]
fn nested_active_plugins_index_is_named() {
    let err = refuse(&with("/active_plugins", json!(["a-1.0", null])));
    assert_eq!(
        err,
        invalid("active_plugins[1]", "expected a string, found null")
    );
}

#[test]
fn missing_required_fields() {
    for name in ["uuid", "emqx_version"] {
        let mut doc = seed();
        doc.as_object_mut().expect("object").remove(name);
        let err = refuse(&doc);
        assert_eq!(
            err,
            ReportError::MissingField {
                field: name.to_owned()
            }
        );
        assert_eq!(err.code(), "MISSING_FIELD");
        assert_eq!(
            err.to_string(),
            format!("field `{name}`: required but missing")
        );
    }
}

#[test]
fn null_required_fields_are_invalid_not_absent() {
    let err = refuse(&with("/uuid", Value::Null));
    assert_eq!(err, invalid("uuid", "expected a string, found null"));
    let err = refuse(&with("/emqx_version", json!("")));
    assert_eq!(err, invalid("emqx_version", "must not be empty"));
}

#[test]
fn uuid_shapes_emqx_sends_are_accepted() {
    for id in [
        "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E",
        "5eaaf3c2-6186-11ed-ad7c-d5aab80ced2e",
        "B1A7C0-61-11ED-AD7C-5AAB80CED2E",
        "0-0-0-0-0",
    ] {
        let doc = with("/uuid", json!(id));
        parse(doc.to_string().as_bytes()).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
}

#[test]
fn malformed_uuids_are_refused_with_the_reason() {
    let cases = [
        (
            "",
            "expected an id of 5 hex groups separated by '-', found 1 group(s)",
        ),
        (
            "5EAAF3C2618611EDAD7CD5AAB80CED2E",
            "expected an id of 5 hex groups separated by '-', found 1 group(s)",
        ),
        (
            "5EAAF3C2-6186-11ED-AD7C",
            "expected an id of 5 hex groups separated by '-', found 4 group(s)",
        ),
        (
            "A-B-C-D-E-F",
            "expected an id of 5 hex groups separated by '-', found 6 group(s)",
        ),
        (
            "5EAAF3C2--11ED-AD7C-D5AAB80CED2E",
            "group 2 of the id is empty",
        ),
        ("5EAAF3C2-6186-11ED-AD7C-", "group 5 of the id is empty"),
        (
            "5EAAF3C2-6186-11EG-AD7C-D5AAB80CED2E",
            "group 3 of the id has a character that is not a hex digit",
        ),
        (
            " 5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E",
            "group 1 of the id has a character that is not a hex digit",
        ),
        (
            "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2É",
            "group 5 of the id has a character that is not a hex digit",
        ),
        (
            "5EAAF3C20-6186-11ED-AD7C-D5AAB80CED2E",
            "group 1 of the id has 9 hex digits, at most 8 allowed (8-4-4-4-12)",
        ),
        (
            "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E0",
            "group 5 of the id has 13 hex digits, at most 12 allowed (8-4-4-4-12)",
        ),
    ];
    for (id, reason) in cases {
        let err = refuse(&with("/uuid", json!(id)));
        assert_eq!(err, invalid("uuid", reason), "for {id:?}");
    }
}

#[test]
fn cluster_and_node_ids_follow_the_same_rule() {
    let err = refuse(&with("/cluster_uuid", json!("not-a-uuid")));
    assert_eq!(err.field(), Some("cluster_uuid"));
    let ids = json!(["A-B-C-D-E", "A-B-C-D-E", "x"]);
    let err = refuse(&with("/nodes_uuid", ids));
    assert_eq!(err.field(), Some("nodes_uuid[2]"));
    assert_eq!(
        err.to_string(),
        "field `nodes_uuid[2]`: expected an id of 5 hex groups separated by '-', found 1 group(s)"
    );
}

#[test]
fn deletion_secret_must_be_64_lowercase_hex() {
    let mut doc = seed();
    doc["deletion_secret_sha256"] = json!("0123456789abcdef".repeat(4));
    parse(doc.to_string().as_bytes()).expect("accepted");
    for (secret, reason) in [
        (
            "abc".to_owned(),
            "expected 64 lowercase hex digits (a SHA-256), found 3 bytes",
        ),
        (
            "A".repeat(64),
            "has a character that is not a lowercase hex digit",
        ),
        (
            "g".repeat(64),
            "has a character that is not a lowercase hex digit",
        ),
    ] {
        doc["deletion_secret_sha256"] = json!(secret);
        assert_eq!(refuse(&doc), invalid("deletion_secret_sha256", reason));
    }
    doc["deletion_secret_sha256"] = json!(64);
    assert_eq!(
        refuse(&doc),
        invalid("deletion_secret_sha256", "expected a string, found 64")
    );
}

#[test]
fn not_utf8_reports_the_offset() {
    let mut bytes = br#"{"emqx_version":"5.0.9","uuid":"A-B-C-D-E","os_name":"x"#.to_vec();
    bytes.extend_from_slice(&[0xff, b'"', b'}']);
    let err = parse(&bytes).expect_err("not UTF-8");
    assert_eq!(err, ReportError::NotUtf8 { offset: 55 });
    assert_eq!(err.code(), "NOT_UTF8");
    assert_eq!(err.field(), None);
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let err = parse(b"{\n  \"uuid\": \"A-B-C-D-E\",\n  \"emqx_version\": 5.0.9\n}")
        .expect_err("malformed");
    let ReportError::Syntax {
        line,
        column,
        message,
    } = &err
    else {
        panic!("expected a syntax error, got {err:?}");
    };
    assert_eq!((*line, *column), (3, 22));
    assert!(!message.contains("at line"), "{message}");
    assert_eq!(err.code(), "MALFORMED_JSON");
    assert!(
        err.to_string()
            .starts_with("malformed JSON at line 3, column 22: ")
    );
}

#[test]
fn empty_truncated_and_trailing_input_are_malformed() {
    for text in [
        "",
        "   ",
        "{",
        r#"{"uuid":"#,
        r#"{"a":1} {"b":2}"#,
        r#"{"a":1,}"#,
        "\u{feff}{}",
    ] {
        let err = parse(text.as_bytes()).expect_err("malformed");
        assert_eq!(err.code(), "MALFORMED_JSON", "for {text:?}: {err}");
    }
}

#[test]
fn duplicate_keys_are_refused() {
    let text = r#"{"emqx_version":"5.0.9","uuid":"A-B-C-D-E","uuid":"F-F-F-F-F"}"#;
    let err = parse(text.as_bytes()).expect_err("duplicate");
    assert_eq!(err.code(), "MALFORMED_JSON");
    assert!(err.to_string().contains("duplicate key \"uuid\""), "{err}");
    let nested = r#"{"emqx_version":"5.0.9","uuid":"A-B-C-D-E","x":{"k":1,"k":2}}"#;
    assert_eq!(
        parse(nested.as_bytes()).expect_err("dup").code(),
        "MALFORMED_JSON"
    );
}

#[test]
fn duplicate_identifier_key_is_not_echoed() {
    let text = r#"{"emqx_version":"5.0.9","uuid":"A-B-C-D-E","x":{"10.1.2.3":1,"10.1.2.3":2}}"#;
    let err = parse(text.as_bytes()).expect_err("dup").to_string();
    assert!(!err.contains("10.1.2.3"), "{err}");
    assert!(err.contains("<redacted>"), "{err}");
}

#[test]
fn top_level_must_be_an_object() {
    for (text, found) in [
        ("[]", "an array"),
        ("\"x\"", "a string"),
        ("12", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ] {
        let err = parse(text.as_bytes()).expect_err("not an object");
        assert_eq!(err, ReportError::NotAnObject { found });
        assert_eq!(err.code(), "NOT_AN_OBJECT");
        assert_eq!(
            err.to_string(),
            format!("expected a JSON object at the top level, found {found}")
        );
    }
}

#[test]
fn messages_never_quote_string_values() {
    let secret = "user@example.com";
    let err = refuse(&with("/num_clients", json!(secret)));
    assert!(!err.to_string().contains(secret));
    let err = refuse(&with("/uuid", json!(secret)));
    assert!(!err.to_string().contains(secret));
}
