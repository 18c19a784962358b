//! Two `beacon collector` processes on one PostgreSQL database, fed the same nodes at once
//! (a node retrying through a load balancer reaches either): no 5xx, every acknowledged
//! report stored once per node and day, and the rollups count exactly what was
//! acknowledged, whichever instance counted it; and so still when one of them is killed
//! under the load, or frozen inside a transaction (held up for seconds, not hours).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_store::testing::TestDb;
use chrono::NaiveDate;
use serde_json::Value;
use support::{START_TIMEOUT, beacon, next_line, signal, spawn_reading, terminate};
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

    fn url(&self) -> String {
        self.ingest.clone()
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

/// One answer: node, status ([`UNANSWERED`] when there was none), and the day it was
/// stored under when 2xx.
type Answer = (String, u16, Option<NaiveDate>);
/// The status recorded for a post the collector never answered.
const UNANSWERED: u16 = 0;

/// Which node each of a client's posts is for.
#[derive(Debug, Clone, Copy)]
enum Nodes {
    /// Three posts of four for a shared node (which clients of the other collector post
    /// too), the others for the client's own nodes, each posted twice.
    MostlyShared,
    /// Every other post for a shared node, the others each for a node never posted
    /// before: a report lost after its 2xx shows as a node and day missing.
    HalfFresh,
}

impl Nodes {
    /// The node of post `n` of `client`; `own` is the client's own node so far.
    fn pick(self, client: usize, n: usize, shared: &[String], own: &mut String) -> String {
        let (period, renew) = match self {
            Nodes::MostlyShared => (4, n.is_multiple_of(8)),
            Nodes::HalfFresh => (2, true),
        };
        if !n.is_multiple_of(period) {
            return shared[(client * 7 + n) % shared.len()].clone();
        }
        if renew {
            *own = new_uuid();
        }
        own.clone()
    }
}

/// Posts [`POSTS`] reports to `url`, for the nodes `nodes` picks; stops at the first post
/// left unanswered.
async fn post_all(
    client: usize,
    (url, nodes): (String, Nodes),
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
        let uuid = nodes.pick(client, n, &shared, &mut own);
        let answer = post(&http, &url, report(&uuid, &clusters)).await;
        let answered = answer.is_some();
        let (status, day) = answer.unwrap_or((UNANSWERED, None));
        answers.lock().expect("answers").push((uuid, status, day));
        if !answered {
            // The collector is gone (lost by the test): its client stops.
            return;
        }
    }
}

/// The status of one post and the day it was stored under when 2xx; `None` when the
/// collector answered nothing whole.
async fn post(http: &reqwest::Client, url: &str, body: String) -> Option<(u16, Option<NaiveDate>)> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.ok()?;
    let day = body["day"].as_str().and_then(|day| day.parse().ok());
    Some((status, day.filter(|_| (200..300).contains(&status))))
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
    let started = std::time::Instant::now();
    let collectors = [&first, &second].map(|c| (c.url(), Nodes::MostlyShared));
    let answers = feed(collectors).await;
    let elapsed = started.elapsed();
    first.stop().await;
    second.stop().await;
    assert_eq!(
        answers.iter().filter(|(_, _, day)| day.is_some()).count(),
        answers.len(),
        "every report acknowledged"
    );
    eprintln!(
        "{} reports through two collectors in {elapsed:?}",
        answers.len()
    );
    assert_stored_and_counted_once(&test_db, &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_under_load_loses_no_acknowledged_report_and_its_rest_is_counted() {
    lose_one_of_two_under_load(Loss::Killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_frozen_in_the_middle_of_a_transaction_holds_the_other_up_for_seconds_only() {
    lose_one_of_two_under_load(Loss::Frozen).await;
}

/// How the test loses a collector under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// SIGKILL: its sessions end with it.
    Killed,
    /// SIGSTOP while one of its sessions is inside a transaction, as a paused machine or
    /// a partition would stop it: the session stays open, holding rows of nodes the other
    /// collector stores too. Killed after the load.
    Frozen,
}

/// Two collectors under load, one of them lost a second into it (in the middle of its
/// batches and its counting passes, one every 200 ms under load): the other answers every
/// post it gets, no acknowledged report is lost, and the rollups count exactly what is
/// stored.
async fn lose_one_of_two_under_load(loss: Loss) {
    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let name = format!("doomed-{}", new_uuid());
    let url = format!("{}&application_name={name}", test_db.url());
    let mut doomed = Collector::start(&url, dir.path(), "doomed").await;
    let survivor = Collector::start(test_db.url(), dir.path(), "survivor").await;
    let collectors = [
        (doomed.url(), Nodes::HalfFresh),
        (survivor.url(), Nodes::MostlyShared),
    ];
    let pid = doomed.child.id().expect("the collector runs").to_string();
    let sql = support::postgres_client(&test_db).await;
    let losing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match loss {
            Loss::Killed => signal(&pid, "KILL").await,
            Loss::Frozen => freeze_in_a_transaction(&pid, &sql, &name).await,
        }
    });
    let answers = feed(collectors).await;
    losing.await.expect("the collector lost");
    doomed
        .child
        .start_kill()
        .expect("SIGKILL the first collector");
    let status = doomed.child.wait().await.expect("its status");
    assert!(
        !status.success(),
        "the first collector was not killed: {status}"
    );
    survivor.stop().await;
    let unanswered = answers
        .iter()
        .filter(|(_, status, _)| *status == UNANSWERED)
        .count();
    assert!(
        (1..=CLIENTS / 2).contains(&unanswered),
        "{unanswered} posts unanswered: only the lost collector's clients, once each"
    );
    assert_stored_and_counted_once(&test_db, &answers).await;
}

/// Stops `pid` at a moment one of its sessions (named `name`) is inside a transaction,
/// letting it go on and trying again until it is.
async fn freeze_in_a_transaction(pid: &str, sql: &tokio_postgres::Client, name: &str) {
    for _ in 0..100 {
        signal(pid, "STOP").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let held: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1
                    AND state = 'idle in transaction'
                    AND state_change < now() - interval '250 milliseconds'",
                &[&name],
            )
            .await
            .and_then(|row| row.try_get(0))
            .expect("pg_stat_activity");
        if held > 0 {
            return;
        }
        signal(pid, "CONT").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the collector was never frozen inside a transaction");
}

/// Posts from [`CLIENTS`] clients, half to each collector's ingest URL (for the nodes it
/// picks), and answers what each got.
async fn feed(collectors: [(String, Nodes); 2]) -> Vec<Answer> {
    let shared = Arc::new((0..SHARED_NODES).map(|_| new_uuid()).collect::<Vec<_>>());
    let clusters = Arc::new((0..CLUSTERS).map(|_| new_uuid()).collect::<Vec<_>>());
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut clients: tokio::task::JoinSet<()> = (0..CLIENTS)
        .map(|client| {
            let collector = collectors[client % 2].clone();
            let lists = (Arc::clone(&shared), Arc::clone(&clusters));
            post_all(client, collector, lists.0, lists.1, Arc::clone(&answers))
        })
        .collect();
    while let Some(joined) = clients.join_next().await {
        joined.expect("client task");
    }
    std::mem::take(&mut *answers.lock().expect("answers"))
}

/// No 5xx; every acknowledged report stored, and nothing stored but what was acknowledged
/// or left unanswered; and the rollups count exactly what is stored.
async fn assert_stored_and_counted_once(test_db: &TestDb, answers: &[Answer]) {
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
    let unanswered: HashSet<&String> = answers
        .iter()
        .filter(|(_, status, _)| *status == UNANSWERED)
        .map(|(uuid, _, _)| uuid)
        .collect();

    let store = beacon_store::open_store(test_db.url())
        .await
        .expect("open the store");
    for (uuid, day) in &acked {
        let stored = store.get(uuid, *day).await.expect("read a report");
        assert!(stored.is_some(), "acknowledged report {uuid} of {day} lost");
    }
    let sql = support::postgres_client(test_db).await;
    let stored: HashSet<(String, NaiveDate)> = sql
        .query("SELECT uuid, day FROM reports", &[])
        .await
        .expect("stored reports")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let unexpected: Vec<_> = stored
        .iter()
        .filter(|key| !acked.contains(*key) && !unanswered.contains(&key.0))
        .collect();
    assert!(
        unexpected.is_empty(),
        "stored, never posted: {unexpected:?}"
    );
    let rows = count(&sql, "SELECT count(*) FROM reports").await;
    assert_eq!(rows, stored.len() as i64, "one row per node and day");
    let pending = count(&sql, "SELECT count(*) FROM rollup_pending").await;
    assert_eq!(pending, 0, "uncounted after the collectors stopped");

    let nodes: HashSet<&String> = stored.iter().map(|(uuid, _)| uuid).collect();
    let clusters: HashSet<usize> = nodes
        .iter()
        .map(|uuid| uuid.bytes().map(usize::from).sum::<usize>() % CLUSTERS)
        .collect();
    let known = count(&sql, "SELECT count(*) FROM nodes").await;
    assert_eq!(known, nodes.len() as i64, "nodes known to the rollups");
    let week = support::this_week(store.as_ref()).await;
    assert_eq!(week.nodes, nodes.len() as u64, "active nodes: {week:?}");
    assert_eq!(week.new_nodes, nodes.len() as u64, "new nodes: {week:?}");
    assert_eq!(
        week.clusters,
        clusters.len() as u64,
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
        clusters.len() as i64,
        "clusters counted per version"
    );
    drop((sql, store));
}
