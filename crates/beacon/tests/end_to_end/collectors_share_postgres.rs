//! Two `beacon collector` processes on one PostgreSQL database, fed the same nodes at once
//! (a node retrying through a load balancer reaches either): no 5xx, every acknowledged
//! report stored once per node and day, and the rollups count exactly what was
//! acknowledged, whichever instance counted it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_store::testing::TestDb;
use chrono::NaiveDate;
use serde_json::Value;
use support::{START_TIMEOUT, beacon, next_line, spawn_reading, terminate};
use tokio::process::Child;

use crate::support;

/// Concurrent clients, half of them on each collector (a client on one, so that the two
/// collectors commit independently rather than taking turns).
const CLIENTS: usize = 64;
/// Posts per client.
const POSTS: usize = 200;
/// Nodes every client posts for, so that both collectors write the same rows at once: few,
/// so that two batches hold several of them, in different orders.
const SHARED_NODES: usize = 12;
/// Clusters the nodes belong to, so that counting updates the same cluster-weeks.
const CLUSTERS: usize = 12;

struct Collector {
    child: Child,
    ingest: String,
    log: PathBuf,
}

impl Collector {
    async fn start(db: &str, dir: &Path, name: &str) -> Self {
        let log = dir.join(format!("collector-{name}.log"));
        let file = std::fs::File::create(&log).expect("create the log file");
        let (child, mut lines) = spawn_reading(
            beacon(&["collector", "--listen", "127.0.0.1:0", "--db", db])
                .args(["--rate-limit-per-minute", "0"])
                .stdin(Stdio::null())
                .stderr(Stdio::from(file)),
        );
        let line = next_line(&mut lines, START_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("collector {name} exited: {}", read(&log)));
        let base = line
            .strip_prefix("beacon collector listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"));
        Self {
            child,
            ingest: format!("{base}/api/telemetry"),
            log,
        }
    }

    /// SIGTERM; a graceful stop counts what is left uncounted.
    async fn stop(mut self) {
        let status = terminate(&mut self.child).await;
        assert!(
            status.success(),
            "collector exit {status}: {}",
            read(&self.log)
        );
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

/// A node's report; a node stays in the same cluster.
fn report(uuid: &str, clusters: &[String]) -> String {
    let cluster = &clusters[uuid.bytes().map(usize::from).sum::<usize>() % clusters.len()];
    let mut doc: Value =
        serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed is JSON");
    doc["uuid"] = uuid.into();
    doc["cluster_uuid"] = cluster.as_str().into();
    doc.to_string()
}

/// One answer: node, cluster, status, and the day it was stored under when 2xx.
type Answer = (String, u16, Option<NaiveDate>);

/// Posts [`POSTS`] reports through the client's collector: three posts of four for a
/// shared node (which clients of the other collector post too), the others for the
/// client's own nodes.
async fn post_all(
    client: usize,
    urls: [String; 2],
    shared: Arc<Vec<String>>,
    clusters: Arc<Vec<String>>,
    answers: Arc<Mutex<Vec<Answer>>>,
) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let mut own = new_uuid();
    for n in 0..POSTS {
        let uuid = if n % 4 != 0 {
            shared[(client * 7 + n) % shared.len()].clone()
        } else {
            if n % 8 == 0 {
                own = new_uuid();
            }
            own.clone()
        };
        let response = http
            .post(&urls[client % 2])
            .header("content-type", "application/json")
            .body(report(&uuid, &clusters))
            .send()
            .await
            .expect("the collector answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON answer");
        let day = body["day"].as_str().and_then(|day| day.parse().ok());
        let day = day.filter(|_| (200..300).contains(&status));
        answers.lock().expect("answers").push((uuid, status, day));
    }
}

/// The first column of the one row `sql` answers, as a count.
async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .and_then(|row| row.try_get(0))
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_on_one_postgres_store_and_count_every_acknowledged_report_once() {
    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Collector::start(test_db.url(), dir.path(), "a").await;
    let second = Collector::start(test_db.url(), dir.path(), "b").await;
    let shared = Arc::new((0..SHARED_NODES).map(|_| new_uuid()).collect::<Vec<_>>());
    let clusters = Arc::new((0..CLUSTERS).map(|_| new_uuid()).collect::<Vec<_>>());
    let answers = Arc::new(Mutex::new(Vec::new()));
    let started = std::time::Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let urls = [first.ingest.clone(), second.ingest.clone()];
            let lists = (Arc::clone(&shared), Arc::clone(&clusters));
            tokio::spawn(post_all(
                client,
                urls,
                lists.0,
                lists.1,
                Arc::clone(&answers),
            ))
        })
        .collect();
    for client in clients {
        client.await.expect("client task");
    }
    let elapsed = started.elapsed();
    first.stop().await;
    second.stop().await;

    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    let refused: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status >= 500)
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {} reports answered 5xx, e.g. {:?}",
        refused.len(),
        answers.len(),
        refused.first()
    );
    let acked: HashSet<(String, NaiveDate)> = answers
        .iter()
        .filter_map(|(uuid, _, day)| day.map(|day| (uuid.clone(), day)))
        .collect();
    assert_eq!(
        answers.iter().filter(|(_, _, day)| day.is_some()).count(),
        answers.len(),
        "every report acknowledged"
    );
    let nodes: HashSet<&String> = acked.iter().map(|(uuid, _)| uuid).collect();
    let clusters_seen: HashSet<usize> = nodes
        .iter()
        .map(|uuid| uuid.bytes().map(usize::from).sum::<usize>() % CLUSTERS)
        .collect();
    eprintln!(
        "{} reports through two collectors in {elapsed:?}: {} node-days, {} nodes",
        answers.len(),
        acked.len(),
        nodes.len()
    );

    let store = beacon_store::open_store(test_db.url())
        .await
        .expect("open the store");
    for (uuid, day) in &acked {
        let stored = store.get(uuid, *day).await.expect("read a report");
        assert!(stored.is_some(), "acknowledged report {uuid} of {day} lost");
    }
    let sql = support::postgres_client(&test_db).await;
    let rows = count(&sql, "SELECT count(*) FROM reports").await;
    assert_eq!(
        rows,
        acked.len() as i64,
        "one row per acknowledged node and day"
    );
    let pending = count(&sql, "SELECT count(*) FROM rollup_pending").await;
    assert_eq!(pending, 0, "uncounted after both stopped");
    let known = count(&sql, "SELECT count(*) FROM nodes").await;
    assert_eq!(known, nodes.len() as i64, "nodes known to the rollups");

    let week = support::this_week(store.as_ref()).await;
    assert_eq!(week.nodes, nodes.len() as u64, "active nodes: {week:?}");
    assert_eq!(week.new_nodes, nodes.len() as u64, "new nodes: {week:?}");
    assert_eq!(
        week.clusters,
        clusters_seen.len() as u64,
        "active clusters: {week:?}"
    );
    let per_version = count(
        &sql,
        "SELECT COALESCE(sum(n), 0)::BIGINT FROM rollups
            WHERE version = '' AND os = '' AND kind = 'version'",
    )
    .await;
    assert_eq!(
        per_version,
        clusters_seen.len() as i64,
        "clusters counted per version"
    );
    drop((sql, store));
}
