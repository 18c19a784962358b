//! The dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core from
//! `tests/browser/node_settings.mjs`); screenshots land in `artifacts/screenshots`.

use std::path::{Path, PathBuf};

use beacon_node::RunningNode;
use support::{PASSWORD, start};

mod support;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the browser script against `node`; fails with the script's output.
async fn run_script(node: &RunningNode, locked_by: Option<&str>) {
    let root = repo_root();
    let mut command = tokio::process::Command::new("node");
    command
        .arg("tests/browser/node_settings.mjs")
        .current_dir(&root)
        .env("BASE_URL", format!("http://{}", node.http_addr()))
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("SCREENSHOT_DIR", root.join("artifacts/screenshots"));
    if let Some(source) = locked_by {
        command.env("LOCKED_BY", source);
    }
    let output = command
        .output()
        .await
        .expect("run node (install the browser test packages with `bash scripts/setup.sh`)");
    assert!(
        output.status.success(),
        "browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_toggle_switches_telemetry_off_and_it_stays_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    run_script(&node, None).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_toggle_is_disabled_when_the_environment_forces_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[("EMQX_TELEMETRY__ENABLE", "false")]).await;
    run_script(&node, Some("environment EMQX_TELEMETRY__ENABLE")).await;
    node.shutdown().await;
}
