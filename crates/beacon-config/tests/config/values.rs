//! Typed getters and durations: errors name the key and the source.

use std::path::Path;
use std::time::Duration;

use beacon_config::{Config, ConfigError, Origin, parse_duration};

#[test]
fn maybe_in_file_is_a_type_error_naming_file_and_line() {
    let config = Config::from_str(
        "# telemetry\n\ntelemetry.enable = maybe\n",
        Path::new("etc/emqx.conf"),
        Vec::new(),
    )
    .expect("parses: maybe is a string");
    let err = config.bool("telemetry.enable").expect_err("not a bool");
    assert_eq!(
        err.to_string(),
        "config file etc/emqx.conf line 3: telemetry.enable: expected true or false, found \"maybe\""
    );
    match err {
        ConfigError::Type {
            key, origin, found, ..
        } => {
            assert_eq!(key, "telemetry.enable");
            assert_eq!(
                origin,
                Origin::File {
                    path: "etc/emqx.conf".into(),
                    line: Some(3)
                }
            );
            assert_eq!(found, "\"maybe\"");
        }
        other => panic!("expected a type error, got {other:?}"),
    }
}

#[test]
fn maybe_in_env_is_a_type_error_naming_the_variable() {
    let config = Config::from_str(
        "telemetry { enable = false }\n",
        Path::new("etc/emqx.conf"),
        vec![("EMQX_TELEMETRY__ENABLE".to_string(), "maybe".to_string())],
    )
    .expect("loads: maybe is a string");
    let err = config.bool("telemetry.enable").expect_err("not a bool");
    assert_eq!(
        err.to_string(),
        "environment EMQX_TELEMETRY__ENABLE: expected true or false, found \"maybe\""
    );
    // The file's own answer stays readable for callers that must honour every source.
    let file = config.file_value("telemetry.enable").expect("file value");
    assert!(!file.to_bool("telemetry.enable").expect("bool").value);
}

#[test]
fn bool_accepts_string_spellings_in_any_case() {
    let env = vec![("EMQX_A".to_string(), "FALSE".to_string())];
    let config = Config::from_str("b = \"true\"\n", Path::new("x.conf"), env).expect("valid");
    assert_eq!(
        config.bool("a").expect("bool").map(|s| s.value),
        Some(false)
    );
    assert_eq!(config.bool("b").expect("bool").map(|s| s.value), Some(true));
}

#[test]
fn wrong_types_name_key_and_source() {
    let config = Config::from_str(
        "a = { x = 1 }\nport = -1\nbind = \"localhost:1883\"\nlist = { a = 1 }\nnothing = null\n",
        Path::new("etc/emqx.conf"),
        Vec::new(),
    )
    .expect("valid");
    let cases = [
        (
            config.string("a").err(),
            "config file etc/emqx.conf line 1: a: expected a string, found an object",
        ),
        (
            config.u64("port").err(),
            "config file etc/emqx.conf line 2: port: expected a non-negative integer, found -1",
        ),
        (
            config.socket_addr("bind").err(),
            "config file etc/emqx.conf line 3: bind: expected an address such as 0.0.0.0:1883 or a port, found \"localhost:1883\"",
        ),
        (
            config.string_list("list").err(),
            "config file etc/emqx.conf line 4: list: expected a list of strings, found an object",
        ),
        (
            config.string("nothing").err(),
            "config file etc/emqx.conf line 5: nothing: expected a string, found null",
        ),
    ];
    for (err, expected) in cases {
        assert_eq!(err.map(|e| e.to_string()).as_deref(), Some(expected));
    }
}

#[test]
fn durations() {
    let ok = [
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("7d", Duration::from_secs(7 * 86_400)),
        ("1h", Duration::from_secs(3600)),
        ("500ms", Duration::from_millis(500)),
        ("1500", Duration::from_millis(1500)),
        ("1h 30m", Duration::from_secs(5400)),
        ("1h30m", Duration::from_secs(5400)),
        (" 2w ", Duration::from_secs(14 * 86_400)),
    ];
    for (text, expected) in ok {
        assert_eq!(parse_duration(text), Ok(expected), "{text}");
    }
    for text in ["bad", "", "10x", "-1s", "99999999999999999999999"] {
        let err = parse_duration(text).expect_err(text);
        assert!(!err.is_empty(), "{text}");
    }
}

#[test]
fn duration_getter_reads_hocon_and_names_bad_values() {
    let config = Config::from_str(
        "telemetry {\n  interval = 7d\n  initial_delay = 500ms\n  timeout = 10000\n  retry = bad\n}\n",
        Path::new("etc/emqx.conf"),
        vec![("EMQX_TELEMETRY__BACKOFF".to_string(), "soon".to_string())],
    )
    .expect("valid");
    let get = |key: &str| config.duration(key).expect(key).expect(key).value;
    assert_eq!(get("telemetry.interval"), Duration::from_secs(604_800));
    assert_eq!(get("telemetry.initial_delay"), Duration::from_millis(500));
    assert_eq!(get("telemetry.timeout"), Duration::from_secs(10));
    assert_eq!(
        config
            .duration("telemetry.retry")
            .expect_err("bad")
            .to_string(),
        "config file etc/emqx.conf line 5: telemetry.retry: expected a duration such as 10s, 5m, 7d or 500ms, found \"bad\""
    );
    assert_eq!(
        config
            .duration("telemetry.backoff")
            .expect_err("bad")
            .to_string(),
        "environment EMQX_TELEMETRY__BACKOFF: expected a duration such as 10s, 5m, 7d or 500ms, found \"soon\""
    );
}
