//! `beacon demo` as a user runs it: a bounded run, then the collector's database holds
//! the broker's report; with `--nodes 3`, a cluster the console counts as one of three.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::{START_TIMEOUT, beacon_node, lines_until, spawn_reading, terminate};

use crate::support;

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
        "dashboard http://",
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

/// The demo's three nodes each report for themselves (their own `uuid`, the cluster's
/// `cluster_uuid`, the two others in `nodes_uuid`), and the console's cluster-size chart,
/// read through its JSON API while the demo runs, shows one cluster of three nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_demo_nodes_are_one_cluster_of_three_in_the_collector_and_its_console() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, mut lines) = spawn_reading(
        beacon_node(&[
            "demo",
            "--nodes",
            "3",
            "--mqtt-port",
            "0",
            "--dashboard-port",
            "0",
        ])
        .args(["--interval", "2s", "--data-dir"])
        .arg(dir.path()),
    );
    let printed = lines_until(
        &mut lines,
        "Ctrl-C stops everything",
        Duration::from_secs(240),
    )
    .await;
    let text = printed.join("\n");
    let mqtt_lines: Vec<&String> = printed
        .iter()
        .filter(|line| line.contains("MQTT broker mqtt://127.0.0.1:"))
        .collect();
    assert_eq!(mqtt_lines.len(), 3, "one line per node:\n{text}");
    for n in 1..=3 {
        assert!(
            text.contains(&format!("beacon{n}@127.0.0.1")),
            "node {n} named:\n{text}"
        );
    }
    let console = text
        .split("console     ")
        .nth(1)
        .and_then(|rest| rest.split(beacon_console::PREFIX).next())
        .expect("the console's address is printed")
        .to_owned();

    let uuids: Vec<String> = (1..=3)
        .map(|n| {
            let path = dir.path().join(format!("node{n}/node.uuid"));
            let uuid = std::fs::read_to_string(&path).expect("node.uuid in the node's dir");
            uuid.trim().to_owned()
        })
        .collect();
    let reports = cluster_reports(dir.path(), &uuids).await;
    let cluster_uuid = reports[0]["cluster_uuid"].clone();
    for (i, report) in reports.iter().enumerate() {
        let mut others: Vec<&str> = uuids
            .iter()
            .filter(|u| **u != uuids[i])
            .map(String::as_str)
            .collect();
        others.sort_unstable();
        assert_eq!(report["cluster_uuid"], cluster_uuid, "{report}");
        assert_eq!(report["nodes_uuid"], serde_json::json!(others), "{report}");
    }

    let sizes = console_cluster_sizes(dir.path(), &console).await;
    assert_eq!(
        sizes,
        [(3, 1)],
        "the console counts one cluster of three nodes this week"
    );

    let status = terminate(&mut child).await;
    let rest = lines_until(&mut lines, "beacon demo: stopped", START_TIMEOUT).await;
    assert!(status.success(), "{status}: {rest:#?}");
    for line in mqtt_lines {
        let port = line
            .split("mqtt://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a port");
        assert!(
            std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
            "no node outlives the demo: {line}"
        );
    }
}

/// Each node's report of today in the demo's database, once all three list two peers.
async fn cluster_reports(dir: &Path, uuids: &[String]) -> Vec<Value> {
    let url = format!("sqlite://{}", dir.join("collector.db").display());
    let store = beacon_store::open(&url)
        .await
        .expect("open the demo database");
    let today = chrono::Utc::now().date_naive();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut reports = Vec::new();
        for uuid in uuids {
            if let Some(stored) = store.get(uuid, today).await.expect("read") {
                reports.push(serde_json::from_str::<Value>(&stored.raw).expect("json"));
            }
        }
        let complete = reports.len() == uuids.len()
            && reports
                .iter()
                .all(|r| r["nodes_uuid"].as_array().is_some_and(|a| a.len() == 2));
        if complete || Instant::now() > deadline {
            assert_eq!(
                reports.len(),
                uuids.len(),
                "every node reported: {reports:#?}"
            );
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The console's cluster-size bars of today for Beacon's version, as (nodes,
/// cluster-weeks), read with an API token added to the demo's database, once they show
/// a cluster of three (or after a minute).
async fn console_cluster_sizes(dir: &Path, console: &str) -> Vec<(u64, u64)> {
    let url = format!("sqlite://{}", dir.join("collector.db").display());
    let store = beacon_store::open_store(&url)
        .await
        .expect("open the demo database");
    let token = format!("demo-test-{}", uuid::Uuid::new_v4());
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    assert!(
        store
            .add_api_token("cluster test", "admin", &hash)
            .await
            .expect("add a token")
    );
    let ca = std::fs::read(dir.join("tls/ca.pem")).expect("the demo's CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .build()
        .expect("client");
    let today = chrono::Utc::now().date_naive();
    let chart = format!(
        "{console}{}/api/v1/charts/hardware?from={today}&to={today}&version={}",
        beacon_console::PREFIX,
        env!("CARGO_PKG_VERSION")
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer: Value = client
            .get(&chart)
            .bearer_auth(&token)
            .send()
            .await
            .expect("chart answer")
            .error_for_status()
            .expect("chart status")
            .json()
            .await
            .expect("chart json");
        let sizes: Vec<(u64, u64)> = answer["cluster_sizes"]
            .as_array()
            .expect("cluster_sizes")
            .iter()
            .map(|bar| {
                let n = |key: &str| bar[key].as_u64().expect("a count");
                (n("value"), n("cluster_weeks"))
            })
            .collect();
        if sizes.contains(&(3, 1)) || Instant::now() > deadline {
            return sizes;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
