//! `beacon broker` with the shipped `etc/emqx.conf`, and `beacon telemetry` asking it while
//! it runs and reading its data directory once SIGTERM has stopped it.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/emqx.conf")
}

/// Runs `beacon telemetry ARGS` on `data_dir`; fails the test unless it succeeds.
async fn telemetry(data_dir: &Path, args: &[&str]) -> String {
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::process::Command::new(env!("CARGO_BIN_EXE_beacon"))
        .arg("telemetry")
        .args(args)
        .arg("--config")
        .arg(shipped_config())
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("DO_NOT_TRACK")
        .env_remove("EMQX_TELEMETRY__ENABLE")
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
    let mut broker = tokio::process::Command::new(env!("CARGO_BIN_EXE_beacon"))
        .arg("broker")
        .arg("--config")
        .arg(shipped_config())
        .arg("--data-dir")
        .arg(&data_dir)
        // The shipped ports may be taken on this machine; the file is used as shipped otherwise.
        .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
        .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0")
        .env("EMQX_TELEMETRY__URL", "http://127.0.0.1:9/api/telemetry")
        .env("BEACON_LOG", "warn")
        .env_remove("DO_NOT_TRACK")
        .env_remove("EMQX_TELEMETRY__ENABLE")
        .env_remove("EMQX_DASHBOARD__DEFAULT_PASSWORD")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start beacon broker");
    let mut lines = BufReader::new(broker.stdout.take().expect("stdout")).lines();
    let mut printed = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            let done = line.contains("stored only as a hash");
            printed.push(line);
            if done {
                break;
            }
        }
    })
    .await
    .expect("the broker announces itself");
    let text = printed.join("\n");
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

    let pid = broker.id().expect("pid").to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(signalled.success());
    let exit = tokio::time::timeout(Duration::from_secs(30), broker.wait())
        .await
        .expect("the broker stops on SIGTERM")
        .expect("wait");
    assert!(exit.success(), "exit after SIGTERM: {exit}");

    let status: serde_json::Value =
        serde_json::from_str(&telemetry(&data_dir, &["status", "--json"]).await)
            .expect("status json");
    assert_eq!(status["enable"], true, "{status}");
    let status = telemetry(&data_dir, &["status"]).await;
    assert!(status.contains("Node:         stopped"), "{status}");
}
