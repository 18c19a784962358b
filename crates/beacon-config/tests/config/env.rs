//! The EMQX_* environment overlay: naming, case, nesting, precedence, origins.

use std::path::Path;

use beacon_config::{Config, ConfigError, Origin};
use serde_json::json;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn origin_env(var: &str) -> Origin {
    Origin::Env {
        var: var.to_string(),
    }
}

#[test]
fn env_overrides_file_and_both_remain_visible() {
    let config = Config::from_str(
        "telemetry {\n  enable = true\n  interval = 7d\n}\n",
        Path::new("etc/emqx.conf"),
        env(&[("EMQX_TELEMETRY__ENABLE", "false"), ("PATH", "/usr/bin")]),
    )
    .expect("valid");

    let merged = config.bool("telemetry.enable").expect("bool").expect("set");
    assert!(!merged.value);
    assert_eq!(merged.origin, origin_env("EMQX_TELEMETRY__ENABLE"));

    let file = config.file_value("telemetry.enable").expect("file set it");
    assert_eq!(file.value, &json!(true));
    assert_eq!(file.origin.to_string(), "config file etc/emqx.conf line 2");
    let from_env = config.env_value("telemetry.enable").expect("env set it");
    assert_eq!(from_env.value, &json!(false));
    assert_eq!(
        from_env.origin.to_string(),
        "environment EMQX_TELEMETRY__ENABLE"
    );

    // Keys the environment did not touch keep their file origin.
    let interval = config.get("telemetry.interval").expect("set");
    assert_eq!(
        interval.origin.to_string(),
        "config file etc/emqx.conf line 3"
    );
    assert_eq!(config.env_value("telemetry.interval"), None);
}

#[test]
fn keys_are_case_insensitive_and_nest() {
    let config = Config::load(
        None,
        false,
        env(&[
            ("EMQX_Dashboard__Default_Password", "s3cret"),
            ("EMQX_LISTENERS__TCP__DEFAULT__BIND", "0.0.0.0:1883"),
            ("EMQX_NODE_NAME", "beacon@127.0.0.1"),
            ("EMQX_TELEMETRY__URL", "https://127.0.0.1:9/api/telemetry"),
        ]),
    )
    .expect("env only");
    let password = config
        .string("dashboard.default_password")
        .expect("s")
        .expect("set");
    assert_eq!(password.value, "s3cret");
    assert_eq!(
        password.origin,
        origin_env("EMQX_Dashboard__Default_Password")
    );
    let bind = config
        .socket_addr("listeners.tcp.default.bind")
        .expect("addr")
        .expect("set");
    assert_eq!(bind.value.to_string(), "0.0.0.0:1883");
    assert_eq!(
        config.string("node_name").expect("s").map(|s| s.value),
        Some("beacon@127.0.0.1".into())
    );
    // `//` is not a comment in a variable: the URL arrives whole.
    assert_eq!(
        config.string("telemetry.url").expect("s").map(|s| s.value),
        Some("https://127.0.0.1:9/api/telemetry".into())
    );
    assert_eq!(
        config.subtree("listeners.tcp"),
        Some(&json!({"default": {"bind": "0.0.0.0:1883"}}))
    );
    // A sub-tree made only by the environment names a variable that built it.
    assert_eq!(
        config.get("dashboard").map(|s| s.origin),
        Some(origin_env("EMQX_Dashboard__Default_Password"))
    );
}

#[test]
fn unprefixed_and_empty_segment_variables_are_ignored() {
    let config = Config::load(
        None,
        false,
        env(&[
            ("TELEMETRY__ENABLE", "false"),
            ("emqx_telemetry__enable", "false"),
            ("EMQX_", "x"),
            ("EMQX_TELEMETRY____ENABLE", "false"),
            ("EMQX_TELEMETRY__", "false"),
        ]),
    )
    .expect("all ignored");
    assert_eq!(config.subtree(""), Some(&json!({})));
}

#[test]
fn env_values_are_typed_like_hocon() {
    let config = Config::load(
        None,
        false,
        env(&[
            ("EMQX_A__BOOL", "true"),
            ("EMQX_A__NUM", "42"),
            ("EMQX_A__QUOTED", "\"42\""),
            ("EMQX_A__LIST", "[tlsv1.3, \"tlsv1.2\"]"),
            ("EMQX_A__WORD", "maybe"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        config.subtree("a"),
        Some(
            &json!({"bool": true, "list": ["tlsv1.3", "tlsv1.2"], "num": 42, "quoted": "42", "word": "maybe"})
        )
    );
}

#[test]
fn env_object_then_deeper_variable_refines_it() {
    let config = Config::from_str(
        "telemetry { enable = true, timeout = 10s }\n",
        Path::new("etc/emqx.conf"),
        env(&[
            ("EMQX_TELEMETRY__TIMEOUT", "20s"),
            ("EMQX_TELEMETRY", "{enable = false, interval = 1d}"),
        ]),
    )
    .expect("valid");
    assert_eq!(
        config.subtree("telemetry"),
        Some(&json!({"enable": false, "interval": "1d", "timeout": "20s"}))
    );
    assert_eq!(
        config.get("telemetry.enable").map(|s| s.origin),
        Some(origin_env("EMQX_TELEMETRY"))
    );
    assert_eq!(
        config.get("telemetry.timeout").map(|s| s.origin),
        Some(origin_env("EMQX_TELEMETRY__TIMEOUT"))
    );
    assert_eq!(
        config.env_value("telemetry.enable").map(|s| s.origin),
        Some(origin_env("EMQX_TELEMETRY"))
    );
}

#[test]
fn env_replaces_a_scalar_with_a_tree() {
    let config = Config::from_str(
        "a = 1\nz = 2\n",
        Path::new("x.conf"),
        env(&[("EMQX_A__B", "3")]),
    )
    .expect("valid");
    assert_eq!(config.subtree(""), Some(&json!({"a": {"b": 3}, "z": 2})));
    assert_eq!(
        config.file_value("a").map(|s| s.value.clone()),
        Some(json!(1))
    );
}

#[test]
fn conflicting_spellings_of_one_key_are_refused() {
    let err = Config::load(
        None,
        false,
        env(&[
            ("EMQX_TELEMETRY__ENABLE", "false"),
            ("EMQX_telemetry__enable", "true"),
        ]),
    )
    .expect_err("conflict");
    assert!(matches!(&err, ConfigError::EnvSyntax { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("EMQX_TELEMETRY__ENABLE") && text.contains("EMQX_telemetry__enable"),
        "{text}"
    );

    let same = Config::load(
        None,
        false,
        env(&[
            ("EMQX_TELEMETRY__ENABLE", "false"),
            ("EMQX_telemetry__enable", "false"),
        ]),
    )
    .expect("same value is not a conflict");
    assert_eq!(
        same.bool("telemetry.enable")
            .expect("bool")
            .map(|s| s.value),
        Some(false)
    );
}

#[test]
fn broken_structured_env_value_names_the_variable() {
    let err = Config::load(None, false, env(&[("EMQX_A__LIST", "[1, 2")])).expect_err("truncated");
    assert!(
        matches!(&err, ConfigError::EnvSyntax { var, .. } if var == "EMQX_A__LIST"),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("environment EMQX_A__LIST: "),
        "{err}"
    );
}

#[test]
fn env_is_used_for_file_substitutions() {
    let config = Config::from_str(
        "node.data_dir = ${?DATA_DIR}\nnode.name = ${NAME}\n",
        Path::new("x.conf"),
        env(&[("NAME", "n@h")]),
    )
    .expect("valid");
    assert_eq!(config.get("node.data_dir"), None);
    assert_eq!(
        config.string("node.name").expect("s").map(|s| s.value),
        Some("n@h".into())
    );
}

#[test]
fn process_env_is_readable() {
    // The test process always has PATH; this checks the non-panicking reader works.
    assert!(
        beacon_config::process_env()
            .iter()
            .any(|(k, _)| k == "PATH")
    );
}
