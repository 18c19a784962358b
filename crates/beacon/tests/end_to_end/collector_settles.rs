//! A graceful stop leaves the collector's database settled: after SIGTERM, every
//! acknowledged report is in `reports` and counted, and nothing waits uncounted (SQLite's
//! `incoming` log, PostgreSQL's `rollup_pending`) or unfolded (`counter_deltas`) for anyone
//! reading the database with SQL.

use std::process::Stdio;

use beacon_store::testing::TestDb;
use serde_json::Value;
use support::{START_TIMEOUT, beacon, next_line, spawn_reading, terminate};

use crate::support;

/// The count from the issue that found it: 53 reports, then SIGTERM.
const REPORTS: usize = 53;

/// Starts `beacon collector` on `db`, posts [`REPORTS`] reports of distinct nodes (each
/// acknowledged), then stops it with SIGTERM; returns the acknowledged uuids.
async fn post_then_sigterm(db: &str) -> Vec<String> {
    let (mut child, mut lines) = spawn_reading(
        beacon(&["collector", "--listen", "127.0.0.1:0", "--db", db])
            .args(["--rate-limit-per-minute", "0"])
            .stdin(Stdio::null())
            .stderr(Stdio::null()),
    );
    let line = next_line(&mut lines, START_TIMEOUT)
        .await
        .expect("a start line");
    let base = line
        .strip_prefix("beacon collector listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected start line: {line}"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let mut acked = Vec::with_capacity(REPORTS);
    for _ in 0..REPORTS {
        let uuid = uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase();
        let mut doc: Value =
            serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed is JSON");
        doc["uuid"] = uuid.clone().into();
        let response = client
            .post(format!("{base}/api/telemetry"))
            .header("content-type", "application/json")
            .body(doc.to_string())
            .send()
            .await
            .expect("post a report");
        assert!(response.status().is_success(), "{}", response.status());
        acked.push(uuid);
    }
    assert!(terminate(&mut child).await.success(), "graceful exit");
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_sqlite_settled() {
    let test_db = TestDb::sqlite();
    let acked = post_then_sigterm(test_db.url()).await;
    let path = test_db.dir().expect("an SQLite file").join("collector.db");
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the database read-only");
    let count = |sql: &str| -> i64 {
        conn.query_row(sql, [], |row| row.get(0))
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
    };
    assert_eq!(
        count("SELECT count(*) FROM incoming"),
        0,
        "uncounted after stop"
    );
    let unfolded = count("SELECT count(*) FROM counter_deltas");
    assert_eq!(unfolded, 0, "unfolded after stop");
    assert_eq!(count("SELECT count(*) FROM reports"), acked.len() as i64);
    let listed = conn
        .prepare("SELECT uuid FROM reports")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<std::collections::HashSet<_>, _>>()
        })
        .expect("read uuids");
    assert!(acked.iter().all(|uuid| listed.contains(uuid)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leaves_postgres_settled() {
    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let acked = post_then_sigterm(test_db.url()).await;
    let schema = test_db
        .url()
        .split("schema=")
        .nth(1)
        .expect("a schema in the test URL");
    let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let count = async |table: &str| -> i64 {
        let sql = format!("SELECT count(*) FROM \"{schema}\".{table}");
        client
            .query_one(&sql, &[])
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
            .get(0)
    };
    assert_eq!(count("rollup_pending").await, 0, "uncounted after stop");
    // The counter's last fold ends before the process does.
    assert_eq!(count("counter_deltas").await, 0, "unfolded after stop");
    assert_eq!(count("reports").await, acked.len() as i64);
    drop(client);
}
