//! The dashboard in headless Chromium (Debian's `chromium`, driven by playwright-core from
//! `tests/browser/node_settings.mjs`); screenshots land in `artifacts/screenshots`.

use beacon_node::RunningNode;
use launch::run_browser_check;
use support::{PASSWORD, start};

#[path = "../../../../tests/browser/launch.rs"]
mod launch;
use crate::support;

/// Runs the browser script against `node`; fails with the script's output.
async fn run_script(node: &RunningNode, locked_by: Option<&str>) {
    let base_url = format!("http://{}", node.http_addr());
    let mut env = vec![
        ("BASE_URL", base_url.as_str()),
        ("ADMIN_PASSWORD", PASSWORD),
        // The default `node.name`: the test node sets none.
        ("NODE_NAME", "beacon@127.0.0.1"),
    ];
    env.extend(locked_by.map(|source| ("LOCKED_BY", source)));
    run_browser_check("node_settings.mjs", &env).await;
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
