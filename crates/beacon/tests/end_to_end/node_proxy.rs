//! `beacon telemetry` talks to its own node directly: a proxy set in the environment never
//! sees the request, nor the local API key in it.

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use support::{
    START_TIMEOUT, beacon_node, broker_command, counting_listener, lines_until, shipped_config,
    spawn_reading, terminate,
};

use crate::support;

/// A "proxy" that counts the connections it is offered and closes them.
async fn counting_proxy() -> (String, Arc<AtomicUsize>) {
    let (addr, accepted) = counting_listener().await;
    (format!("http://{addr}"), accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_ignores_proxy_variables_for_its_own_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let (mut broker, mut lines) =
        spawn_reading(broker_command(&data_dir).env("EMQX_TELEMETRY__ENABLE", "false"));
    lines_until(&mut lines, "dashboard on", START_TIMEOUT).await;
    let (proxy, accepted) = counting_proxy().await;

    for command in ["status", "preview", "sent"] {
        let Output { status, stdout, .. } = beacon_node(&["telemetry", command])
            .arg("--config")
            .arg(shipped_config())
            .arg("--data-dir")
            .arg(&data_dir)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .envs(["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"].map(|name| (name, &proxy)))
            .output()
            .await
            .expect("run beacon telemetry");
        let stdout = String::from_utf8_lossy(&stdout);
        assert!(status.success(), "telemetry {command}: {stdout}");
        if command == "status" {
            assert!(stdout.contains("Node:         running"), "{stdout}");
        }
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        0,
        "connections to the proxy"
    );
    let exit = terminate(&mut broker).await;
    assert!(exit.success(), "exit after SIGTERM: {exit}");
}
