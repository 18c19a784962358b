//! Self-service deletion end to end: a broker reports to a real collector, and
//! `beacon telemetry forget` has the collector delete its reports, on a stopped node (in
//! its data directory) and on a running one (through its API, without a restart); the
//! node starts over with a new uuid.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use beacon_store::Store;
use support::{TestCollector, beacon_node, terminate};

use crate::support;

/// `beacon ARGS` with the node's config given by the environment, as an operator would.
fn beacon(args: &[&str], data_dir: &Path, collector: &str) -> tokio::process::Command {
    let mut command = beacon_node(args);
    command
        .arg("--config")
        .arg("/dev/null")
        .arg("--data-dir")
        .arg(data_dir)
        .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
        .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0")
        .env("EMQX_TELEMETRY__URL", format!("{collector}/api/telemetry"))
        .env("EMQX_TELEMETRY__INITIAL_DELAY", "0s");
    command
}

async fn count(store: &Arc<dyn Store>) -> u64 {
    store.count().await.expect("count")
}

/// The uuids of the reports the collector holds.
async fn stored_uuids(store: &Arc<dyn Store>) -> Vec<String> {
    let today = chrono::Utc::now().date_naive();
    let reports = store
        .list(today - chrono::Days::new(1), today + chrono::Days::new(1))
        .await
        .expect("list");
    reports.into_iter().map(|r| r.uuid).collect()
}

/// Waits until the collector holds exactly the reports of `uuids`.
async fn wait_for_uuids(store: &Arc<dyn Store>, uuids: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stored_uuids(store).await != uuids && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored_uuids(store).await, uuids);
}

/// `beacon broker` on `data_dir`, once it has reported to `collector`.
async fn broker_after_first_report(
    store: &Arc<dyn Store>,
    data_dir: &Path,
    collector: &str,
) -> tokio::process::Child {
    let broker = beacon(&["broker"], data_dir, collector)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the broker");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(store).await == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(store).await, 1, "the broker reported once");
    broker
}

/// `beacon telemetry ARGS --json` on the running node, as JSON.
async fn telemetry_json(args: &[&str], data_dir: &Path, collector: &str) -> serde_json::Value {
    let mut all = vec!["telemetry"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = beacon(&all, data_dir, collector)
        .output()
        .await
        .expect("beacon telemetry");
    assert!(output.status.success(), "{}", support::text(&output));
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_forget_on_a_running_broker_switches_to_new_ids_without_restart() {
    let running = TestCollector::start().await;
    let (store, collector) = (Arc::clone(&running.store), running.url.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");
    let mut broker = broker_after_first_report(&store, &data_dir, &collector).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let old_uuid = std::fs::read_to_string(data_dir.join("node.uuid")).expect("node.uuid");
    let old_uuid = old_uuid.trim().to_owned();
    wait_for_uuids(&store, &[&old_uuid]).await;
    // The dashboard (and with it the local API key) may come up after the first report.
    let mut status = telemetry_json(&["status"], &data_dir, &collector).await;
    while status["running"] != true && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = telemetry_json(&["status"], &data_dir, &collector).await;
    }
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["uuid"], old_uuid.as_str(), "{status}");

    // The collector refuses a secret that is not the one the reports announced: the API
    // says so, and the node keeps its ids.
    let secret_file = data_dir.join("telemetry/deletion.secret");
    let old_secret = std::fs::read_to_string(&secret_file).expect("secret");
    std::fs::write(&secret_file, "0".repeat(64)).expect("write");
    let refused = beacon(&["telemetry", "forget"], &data_dir, &collector)
        .output()
        .await
        .expect("forget");
    let text = support::text(&refused);
    assert!(!refused.status.success(), "{text}");
    assert!(text.contains("502") && text.contains("403"), "{text}");
    let status = telemetry_json(&["status"], &data_dir, &collector).await;
    assert_eq!(status["uuid"], old_uuid.as_str(), "{status}");
    assert_eq!(stored_uuids(&store).await, [old_uuid.as_str()]);
    std::fs::write(&secret_file, &old_secret).expect("restore");

    let forgotten = telemetry_json(&["forget"], &data_dir, &collector).await;
    assert_eq!(forgotten["old_uuid"], old_uuid.as_str(), "{forgotten}");
    assert_eq!(forgotten["collector_had_data"], true, "{forgotten}");
    let new_uuid = forgotten["new_uuid"].as_str().expect("new uuid").to_owned();
    assert_ne!(new_uuid, old_uuid);
    assert!(
        !stored_uuids(&store).await.contains(&old_uuid),
        "the old uuid's reports are gone"
    );

    // The same process goes on under the new ids: its status, its next report, and the
    // report it then sends all carry the new uuid.
    assert!(broker.try_wait().expect("poll").is_none(), "no restart");
    let status = telemetry_json(&["status"], &data_dir, &collector).await;
    assert_eq!(status["uuid"], new_uuid.as_str(), "{status}");
    let preview = telemetry_json(&["preview"], &data_dir, &collector).await;
    assert_eq!(preview["uuid"], new_uuid.as_str(), "{preview}");
    wait_for_uuids(&store, &[&new_uuid]).await;
    let new_secret = std::fs::read_to_string(&secret_file).expect("new secret");
    assert_ne!(new_secret.trim(), old_secret.trim());

    // The old secret deletes nothing any more: the new reports announced another one.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let answer = client
        .delete(format!("{collector}/api/telemetry/{new_uuid}"))
        .json(&serde_json::json!({ "secret": old_secret.trim() }))
        .send()
        .await
        .expect("delete");
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    assert_eq!(stored_uuids(&store).await, [new_uuid.as_str()]);

    terminate(&mut broker).await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_forget_deletes_the_nodes_reports_at_the_collector() {
    let running = TestCollector::start().await;
    let (store, collector) = (Arc::clone(&running.store), running.url.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");

    let mut broker = broker_after_first_report(&store, &data_dir, &collector).await;
    terminate(&mut broker).await;
    let old_uuid = std::fs::read_to_string(data_dir.join("node.uuid")).expect("node.uuid");

    // A secret that is not the one the reports announced is refused; nothing changes.
    let secret_file = data_dir.join("telemetry/deletion.secret");
    let secret = std::fs::read_to_string(&secret_file).expect("secret");
    std::fs::write(&secret_file, "0".repeat(64)).expect("write");
    let Output { status, stderr, .. } = beacon(&["telemetry", "forget"], &data_dir, &collector)
        .output()
        .await
        .expect("forget");
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(!status.success() && stderr.contains("403"), "{stderr}");
    assert_eq!(count(&store).await, 1);
    std::fs::write(&secret_file, secret).expect("restore");

    let Output {
        status,
        stdout,
        stderr,
    } = beacon(&["telemetry", "forget"], &data_dir, &collector)
        .output()
        .await
        .expect("forget");
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(stdout.contains("deleted this node's reports"), "{stdout}");
    assert_eq!(count(&store).await, 0, "the node's reports are gone");
    let new_uuid = std::fs::read_to_string(data_dir.join("node.uuid")).expect("node.uuid");
    assert_ne!(new_uuid, old_uuid, "the node starts over with a new uuid");
    assert!(stdout.contains(new_uuid.trim()), "{stdout}");

    running.stop().await;
}
