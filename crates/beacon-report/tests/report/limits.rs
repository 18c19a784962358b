//! Size and depth limits hold everywhere in a document, known fields or not.

use beacon_report::fixtures::SEED_5_0_9;
use beacon_report::{
    MAX_ARRAY_LEN, MAX_BODY_DEPTH, MAX_OBJECT_KEYS, MAX_STRING_LEN, ReportError, parse,
};
use serde_json::{Map, Value, json};

fn seed_with(key: &str, value: Value) -> String {
    let mut doc: Value = serde_json::from_str(SEED_5_0_9).expect("seed");
    doc[key] = value;
    doc.to_string()
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!([inner]))
}

#[test]
fn ten_thousand_open_brackets_are_too_deep_not_a_stack_overflow() {
    let text = "[".repeat(10_000);
    let err = parse(text.as_bytes()).expect_err("too deep");
    assert_eq!(
        err,
        ReportError::TooDeep {
            max: MAX_BODY_DEPTH
        }
    );
    assert_eq!(err.code(), "TOO_DEEP");
    let balanced = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert_eq!(
        parse(balanced.as_bytes()).expect_err("deep").code(),
        "TOO_DEEP"
    );
}

#[test]
fn depth_limit_is_exact() {
    // The top-level object is level 1, so an extra field may nest MAX - 1 more levels.
    let at_limit = seed_with("future", nested(MAX_BODY_DEPTH - 1));
    parse(at_limit.as_bytes()).expect("at the limit");
    let over = seed_with("future", nested(MAX_BODY_DEPTH));
    assert_eq!(
        parse(over.as_bytes()).expect_err("over"),
        ReportError::TooDeep {
            max: MAX_BODY_DEPTH
        }
    );
}

#[test]
fn brackets_inside_strings_do_not_count() {
    let text = seed_with("note", json!(format!("\\\"{}", "[".repeat(500))));
    parse(text.as_bytes()).expect("brackets in a string are text");
}

#[test]
fn string_length_limit_is_exact_and_names_the_field() {
    let ok = seed_with("os_name", json!("a".repeat(MAX_STRING_LEN)));
    parse(ok.as_bytes()).expect("at the limit");
    let long = seed_with("os_name", json!("a".repeat(MAX_STRING_LEN + 1)));
    let err = parse(long.as_bytes()).expect_err("too long");
    assert_eq!(
        err,
        ReportError::TooLong {
            field: "os_name".to_owned(),
            max: MAX_STRING_LEN
        }
    );
    assert_eq!(err.code(), "TOO_LONG");
    assert_eq!(err.field(), Some("os_name"));
}

#[test]
fn string_limit_counts_bytes() {
    let text = seed_with("os_name", json!("é".repeat(MAX_STRING_LEN / 2 + 1)));
    assert_eq!(
        parse(text.as_bytes()).expect_err("bytes").code(),
        "TOO_LONG"
    );
}

#[test]
fn limits_apply_inside_unknown_fields() {
    let text = seed_with(
        "future",
        json!({"list": [1, "x".repeat(MAX_STRING_LEN + 1)]}),
    );
    let err = parse(text.as_bytes()).expect_err("too long");
    assert_eq!(err.field(), Some("future.list[1]"));
}

#[test]
fn array_length_limit_is_exact() {
    let ok = seed_with("active_plugins", json!(vec!["p"; MAX_ARRAY_LEN]));
    parse(ok.as_bytes()).expect("at the limit");
    let long = seed_with("active_plugins", json!(vec!["p"; MAX_ARRAY_LEN + 1]));
    assert_eq!(
        parse(long.as_bytes()).expect_err("too long"),
        ReportError::TooLong {
            field: "active_plugins".to_owned(),
            max: MAX_ARRAY_LEN
        }
    );
}

#[test]
fn object_key_count_limit_is_exact() {
    let keys =
        |n: usize| -> Map<String, Value> { (0..n).map(|i| (format!("k{i}"), json!(i))).collect() };
    let ok = seed_with("gateway", Value::Object(keys(MAX_OBJECT_KEYS)));
    parse(ok.as_bytes()).expect("at the limit");
    let many = seed_with("gateway", Value::Object(keys(MAX_OBJECT_KEYS + 1)));
    assert_eq!(
        parse(many.as_bytes()).expect_err("too many keys"),
        ReportError::TooLong {
            field: "gateway".to_owned(),
            max: MAX_OBJECT_KEYS
        }
    );
}

#[test]
fn too_many_top_level_keys() {
    let mut doc: Map<String, Value> = (0..MAX_OBJECT_KEYS)
        .map(|i| (format!("k{i}"), json!(i)))
        .collect();
    doc.insert("emqx_version".into(), json!("5.0.9"));
    doc.insert("uuid".into(), json!("A-B-C-D-E"));
    let err = parse(Value::Object(doc).to_string().as_bytes()).expect_err("too many");
    assert_eq!(err.field(), Some("(top level)"));
}

#[test]
fn long_keys_are_refused_and_cut_in_the_message() {
    let key = "k".repeat(MAX_STRING_LEN + 1);
    let text = seed_with("gateway", json!({ key.clone(): 1 }));
    let err = parse(text.as_bytes()).expect_err("long key");
    let field = err.field().expect("has a field").to_owned();
    assert!(field.starts_with("gateway[\"kkk"), "{field}");
    assert!(field.len() < 100, "{field}");
    assert_eq!(err.code(), "TOO_LONG");
}

#[test]
fn odd_keys_are_quoted_in_paths() {
    let text = seed_with(
        "gateway",
        json!({"a.b": {"c d": "x".repeat(MAX_STRING_LEN + 1)}}),
    );
    let err = parse(text.as_bytes()).expect_err("too long");
    assert_eq!(err.field(), Some("gateway[\"a.b\"][\"c d\"]"));
}

#[test]
fn identifier_keys_are_hidden_in_paths() {
    let text = seed_with(
        "gateway",
        json!({"192.168.1.20": "x".repeat(MAX_STRING_LEN + 1)}),
    );
    let err = parse(text.as_bytes()).expect_err("too long");
    assert_eq!(err.field(), Some("gateway.<redacted>"));
}
