//! The console's "Import reports" form through the real binary, in headless Chromium
//! (`tests/browser/import.mjs`): a mixed NDJSON file is stored through the path of
//! ingest, the summary names each refused line, and the overview counts the new nodes.

use std::process::Stdio;

use beacon_store::testing::TestDb;
use serde_json::Value;
use support::launch::run_browser_check;
use support::{beacon, text};

use crate::support;

const PASSWORD: &str = "a long console password";

/// A report of node `uuid` in cluster `cluster`.
fn report(uuid: &str, cluster: &str) -> String {
    let mut doc: Value =
        serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed is JSON");
    doc["uuid"] = uuid.into();
    doc["cluster_uuid"] = cluster.into();
    doc.to_string()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

/// Adds the console's admin to `db`.
async fn add_admin(db: &str) {
    let output = support::beacon_with(
        &["collector", "user", "add", "admin", "--db", db],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_imports_a_mixed_ndjson_file_in_chromium() {
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    add_admin(&db).await;
    let (mut collector, ingest, console) = support::collector_started(
        beacon(&["collector", "--listen", "127.0.0.1:0", "--db", &db]).stdin(Stdio::null()),
    )
    .await;

    // One node reported over the network; the file brings two more and a later report of
    // that one, between a report with a wrong type and a line that is not JSON.
    let (known, known_cluster) = (new_uuid(), new_uuid());
    let posted = reqwest::Client::new()
        .post(format!("{ingest}/api/telemetry"))
        .header("content-type", "application/json")
        .body(report(&known, &known_cluster))
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 201);
    let mut wrong_type: Value =
        serde_json::from_str(&report(&new_uuid(), &new_uuid())).expect("JSON");
    wrong_type["uuid"] = 42.into();
    let (first, second) = (new_uuid(), new_uuid());
    let ndjson = [
        report(&first, &new_uuid()),
        wrong_type.to_string(),
        report(&second, &new_uuid()),
        "{\"uuid\": \"not closed\"".to_owned(),
        report(&known, &known_cluster),
    ]
    .join("\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bundle.ndjson");
    std::fs::write(&file, ndjson).expect("write the bundle");

    run_browser_check(
        "import.mjs",
        &[
            ("CONSOLE_URL", &console),
            ("ADMIN_PASSWORD", PASSWORD),
            ("IMPORT_FILE", &file.display().to_string()),
            ("NODES_BEFORE", "1"),
            ("NODES_AFTER", "3"),
        ],
    )
    .await;
    collector.kill().await.expect("stop the collector");

    let store = beacon_store::open_store(&db).await.expect("store");
    let today = chrono::Utc::now().date_naive();
    let mut stored: Vec<String> = store
        .list(today, today)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.uuid)
        .collect();
    stored.sort();
    let mut expected = vec![known, first, second];
    expected.sort();
    assert_eq!(stored, expected, "one report per node and day");
}
