//! `beacon demo` as a user runs it: a bounded run, then the collector's database holds
//! the broker's report.

use std::time::Duration;

use support::{START_TIMEOUT, beacon_node, lines_until, spawn_reading};

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_broker_reports_to_demo_collector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, mut lines) = spawn_reading(
        beacon_node(&["demo", "--mqtt-port", "0", "--dashboard-port", "0"])
            .args(["--interval", "2s", "--stop-after", "12", "--data-dir"])
            .arg(dir.path()),
    );
    // The demo stops by itself, and this is its last line.
    let printed = lines_until(&mut lines, "beacon demo: stopped", Duration::from_secs(120)).await;
    let status = tokio::time::timeout(START_TIMEOUT, child.wait())
        .await
        .expect("the demo exits after its last line")
        .expect("wait");
    assert!(status.success(), "demo failed: {printed:#?}");
    let text = printed.join("\n");
    for expected in [
        "collector   https://127.0.0.1:",
        "console     https://127.0.0.1:",
        "MQTT broker mqtt://",
        "dashboard   http://",
        "password ",
        "stopped",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let url = format!("sqlite://{}", dir.path().join("collector.db").display());
    let store = beacon_store::open(&url)
        .await
        .expect("open the demo database");
    let uuid = std::fs::read_to_string(dir.path().join("node/node.uuid")).expect("node.uuid");
    let today = chrono::Utc::now().date_naive();
    let report = store
        .get(uuid.trim(), today)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("the collector stored no report of the demo broker:\n{text}"));
    let report: serde_json::Value = serde_json::from_str(&report.raw).expect("json");
    assert!(report["num_clients"].as_u64().unwrap() >= 1, "{report}");
    assert!(
        report["messages_received"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(
        store.count().await.expect("count") > 1000,
        "the history is seeded"
    );
}
