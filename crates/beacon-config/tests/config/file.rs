//! Reading real config files: both HOCON forms, a realistic commented emqx.conf,
//! line numbers of values, and missing / unreadable files.

use std::path::Path;
use std::time::Duration;

use beacon_config::{Config, ConfigError, Origin, Sourced};
use serde_json::json;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("emqx.conf");
    std::fs::write(&path, text).expect("write config file");
    path
}

#[test]
fn block_and_dotted_forms_are_equivalent() {
    let dir = tempfile::tempdir().expect("tempdir");
    for text in [
        "telemetry {\n  enable = false\n}\n",
        "telemetry.enable = false\n",
        "telemetry: { enable: false }\n",
    ] {
        let path = write(dir.path(), text);
        let config = Config::load(Some(&path), true, no_env()).expect(text);
        let enable = config.bool("telemetry.enable").expect(text).expect(text);
        assert!(!enable.value, "{text}");
        assert!(
            matches!(&enable.origin, Origin::File { path: p, .. } if p == &path),
            "{text}: {:?}",
            enable.origin
        );
        assert_eq!(config.file_path(), Some(path.as_path()));
    }
}

#[test]
fn origin_names_the_file_and_line() {
    let config = Config::from_str(
        "# comment\n\ntelemetry {\n  interval = 1h\n  enable = false\n}\n",
        Path::new("etc/emqx.conf"),
        no_env(),
    )
    .expect("valid");
    let enable = config.bool("telemetry.enable").expect("bool").expect("set");
    assert_eq!(
        enable.origin,
        Origin::File {
            path: "etc/emqx.conf".into(),
            line: Some(5)
        }
    );
    assert_eq!(
        enable.origin.to_string(),
        "config file etc/emqx.conf line 5"
    );
    let interval = config
        .duration("telemetry.interval")
        .expect("duration")
        .expect("set");
    assert_eq!(interval.value, Duration::from_secs(3600));
    assert_eq!(
        interval.origin.to_string(),
        "config file etc/emqx.conf line 4"
    );
}

#[test]
fn realistic_commented_emqx_conf_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/emqx.conf");
    let config = Config::load(Some(&path), true, no_env()).expect("fixture parses");

    let string = |key: &str| config.string(key).expect(key).expect(key).value;
    assert_eq!(string("node.name"), "emqx@127.0.0.1");
    assert_eq!(string("cluster.discovery_strategy"), "manual");
    assert_eq!(string("dashboard.default_password"), "public");
    assert_eq!(string("log.file_handlers.default.level"), "warning");
    // HOCON does not substitute inside quotes; EMQX expands this path itself, later.
    assert_eq!(
        string("listeners.ssl.default.ssl_options.certfile"),
        "${EMQX_ETC_DIR}/certs/cert.pem"
    );

    let bind = config
        .socket_addr("listeners.tcp.default.bind")
        .expect("addr")
        .expect("set");
    assert_eq!(bind.value.to_string(), "0.0.0.0:1883");
    assert_eq!(
        bind.origin,
        Origin::File {
            path: path.clone(),
            line: Some(33)
        }
    );
    let dashboard = config
        .socket_addr("dashboard.listeners.http.bind")
        .expect("addr")
        .expect("set");
    assert_eq!(dashboard.value.to_string(), "0.0.0.0:18083");
    assert_eq!(
        config
            .u64("listeners.tcp.default.max_connections")
            .expect("u64")
            .map(|s| s.value),
        Some(1_024_000)
    );
    let versions = config
        .string_list("listeners.ssl.default.ssl_options.versions")
        .expect("list");
    assert_eq!(
        versions.map(|s| s.value),
        Some(vec!["tlsv1.3".to_string(), "tlsv1.2".to_string()])
    );

    assert_eq!(
        config
            .bool("telemetry.enable")
            .expect("bool")
            .map(|s| s.value),
        Some(true)
    );
    assert_eq!(string("telemetry.url"), "https://127.0.0.1:9/api/telemetry");
    let interval = config
        .duration("telemetry.interval")
        .expect("duration")
        .expect("set");
    assert_eq!(interval.value, Duration::from_secs(7 * 86_400));
    assert_eq!(
        config
            .duration("telemetry.timeout")
            .expect("d")
            .map(|s| s.value),
        Some(Duration::from_secs(10))
    );

    let listeners = config.subtree("listeners").expect("listeners");
    let names: Vec<&String> = listeners.as_object().expect("object").keys().collect();
    assert_eq!(names, ["tcp", "ssl"]);
    assert_eq!(config.get("no.such.key"), None);
    assert_eq!(
        config.string("telemetry.ca_file").expect("absent is fine"),
        None
    );
}

#[test]
fn missing_file_is_an_error_only_when_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.conf");

    let err = Config::load(Some(&path), true, no_env()).expect_err("required");
    assert!(
        matches!(&err, ConfigError::Missing { path: p } if p == &path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );

    let config = Config::load(Some(&path), false, no_env()).expect("optional");
    assert_eq!(config.file_path(), None);
    assert_eq!(config.get("telemetry.enable"), None);

    let config = Config::load(None, true, no_env()).expect("no path at all");
    assert_eq!(config.file_path(), None);
}

#[test]
fn unreadable_file_is_a_read_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Config::load(Some(dir.path()), false, no_env()).expect_err("a directory");
    assert!(
        matches!(&err, ConfigError::Read { path, .. } if path == dir.path()),
        "{err:?}"
    );

    let path = dir.path().join("binary.conf");
    std::fs::write(&path, [0x61, 0x3d, 0xff, 0xfe]).expect("write");
    let err = Config::load(Some(&path), false, no_env()).expect_err("not UTF-8");
    assert_eq!(
        err.to_string(),
        format!("{}:1:3: invalid UTF-8", path.display()),
        "a file that is not UTF-8 is refused where it stops being UTF-8"
    );
}

#[test]
fn file_value_and_raw_json() {
    let config = Config::from_str(
        "a { b = [1, \"two\", {c = null}] }\nn = 2.5\n",
        Path::new("x.conf"),
        no_env(),
    )
    .expect("valid");
    let raw = config.get("a.b").expect("set");
    assert_eq!(raw.value, &json!([1, "two", {"c": null}]));
    assert_eq!(config.get("n").map(|s| s.value.clone()), Some(json!(2.5)));
    assert_eq!(config.file_value("a.b"), Some(raw));
    assert_eq!(config.env_value("a.b"), None);
    assert_eq!(
        config.subtree(""),
        Some(&json!({"a": {"b": [1, "two", {"c": null}]}, "n": 2.5}))
    );
}

#[test]
fn empty_config_answers_nothing() {
    let config = Config::empty();
    assert_eq!(config.file_path(), None);
    assert_eq!(config.get("telemetry.enable"), None);
    assert_eq!(config.bool("telemetry.enable").expect("absent"), None);
    assert_eq!(Origin::Default.to_string(), "default");
    let s = Sourced {
        value: 1,
        origin: Origin::Default,
    }
    .map(|v| v + 1);
    assert_eq!(s.value, 2);
}

#[test]
fn substitution_of_unknown_variable_is_refused_with_position() {
    let err = Config::from_str(
        "a = 1\nb = ${NOT_SET_ANYWHERE}\n",
        Path::new("etc/emqx.conf"),
        no_env(),
    )
    .expect_err("unresolved");
    let text = err.to_string();
    assert!(text.starts_with("etc/emqx.conf:2:5: "), "{text}");
    assert!(text.contains("NOT_SET_ANYWHERE"), "{text}");
}
