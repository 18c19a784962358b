//! `beacon broker` with the shipped `etc/emqx.conf`, and `beacon telemetry` asking it while
//! it runs and reading its data directory once SIGTERM has stopped it.

use std::path::Path;
use std::process::Output;

use support::{START_TIMEOUT, beacon_node, lines_until, shipped_config, spawn_reading, terminate};

use crate::support;

/// Runs `beacon telemetry ARGS` on `data_dir`; fails the test unless it succeeds.
async fn telemetry(data_dir: &Path, args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = beacon_node(&["telemetry"])
        .args(args)
        .arg("--config")
        .arg(shipped_config())
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .await
        .expect("run beacon telemetry");
    let stdout = String::from_utf8(stdout).expect("utf-8");
    assert!(
        status.success(),
        "beacon telemetry {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_config_starts_and_the_cli_follows_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (mut broker, mut lines) = spawn_reading(
        beacon_node(&["broker"])
            .arg("--config")
            .arg(shipped_config())
            .arg("--data-dir")
            .arg(&data_dir)
            // The shipped ports may be taken on this machine; the file is used as shipped
            // otherwise.
            .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
            .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0")
            .env("EMQX_TELEMETRY__URL", "http://127.0.0.1:9/api/telemetry")
            .env_remove("EMQX_DASHBOARD__DEFAULT_PASSWORD"),
    );
    let text = lines_until(&mut lines, "stored only as a hash", START_TIMEOUT)
        .await
        .join("\n");
    assert!(text.contains("MQTT listening on 127.0.0.1:"), "{text}");
    assert!(
        text.contains("first start: dashboard user \"admin\", password "),
        "{text}"
    );

    let status = telemetry(&data_dir, &["status"]).await;
    assert!(status.contains("Telemetry:    enabled"), "{status}");
    assert!(status.contains("Node:         running"), "{status}");
    let preview: serde_json::Value =
        serde_json::from_str(&telemetry(&data_dir, &["preview"]).await).expect("preview json");
    assert_eq!(preview["num_clients"], 0, "{preview}");
    let sent = telemetry(&data_dir, &["sent"]).await;
    assert!(sent.contains("No report has been sent"), "{sent}");

    let exit = terminate(&mut broker).await;
    assert!(exit.success(), "exit after SIGTERM: {exit}");

    let status: serde_json::Value =
        serde_json::from_str(&telemetry(&data_dir, &["status", "--json"]).await)
            .expect("status json");
    assert_eq!(status["enable"], true, "{status}");
    let status = telemetry(&data_dir, &["status"]).await;
    assert!(status.contains("Node:         stopped"), "{status}");
}

/// Dependencies log at `warn` by default, Beacon at `info`; `BEACON_LOG` asks for more
/// and wins over `RUST_LOG`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependencies_stay_quiet_unless_the_log_filter_asks() {
    let rmqtt_info = |log: &str| log.lines().any(|l| l.contains(" INFO rmqtt"));

    let log = broker_log(&[]).await;
    assert!(
        log.contains("node started"),
        "Beacon's own start line:\n{log}"
    );
    assert!(!rmqtt_info(&log), "no rmqtt INFO line by default:\n{log}");

    let log = broker_log(&[("BEACON_LOG", "debug"), ("RUST_LOG", "warn")]).await;
    assert!(rmqtt_info(&log), "BEACON_LOG=debug shows rmqtt:\n{log}");
}

/// What `beacon broker` logs from its start to its stop, with only `vars` of the log
/// filter variables set.
async fn broker_log(vars: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let mut command = beacon_node(&["broker"]);
    command
        .arg("--config")
        .arg(shipped_config())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
        .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0")
        .env("EMQX_TELEMETRY__ENABLE", "false")
        .env_remove("BEACON_LOG")
        .env_remove("RUST_LOG")
        .envs(vars.iter().copied())
        .stderr(std::fs::File::create(&log).expect("create the log file"));
    let (mut broker, mut lines) = spawn_reading(&mut command);
    lines_until(&mut lines, "MQTT listening on", START_TIMEOUT).await;
    let exit = terminate(&mut broker).await;
    assert!(exit.success(), "exit after SIGTERM: {exit}");
    std::fs::read_to_string(&log).expect("read the log file")
}
