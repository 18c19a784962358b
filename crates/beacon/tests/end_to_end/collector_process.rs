//! Tests of the real `beacon collector` process: crash safety under SIGKILL, graceful
//! SIGTERM, a full disk, and that the client IP reaches neither storage nor logs.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_store::testing::TestDb;
use chrono::NaiveDate;
use serde_json::Value;
use support::{START_TIMEOUT, beacon, next_line, spawn_reading, terminate, text};
use tokio::process::Child;

use crate::support;

const SEED: &str = beacon_report::fixtures::SEED_5_0_9;
const CLIENT_IP: &str = "127.0.0.42";

/// A running `beacon collector` child process.
struct Process {
    child: Child,
    base: String,
    stderr: PathBuf,
}

impl Process {
    /// Starts the binary on an ephemeral port and reads the port from its start line.
    async fn start(db: &str, log_dir: &Path, extra: &[&str]) -> Self {
        let stderr = log_dir.join(format!("collector-{}.log", uuid::Uuid::new_v4()));
        let log = std::fs::File::create(&stderr).expect("create log file");
        let (child, mut lines) = spawn_reading(
            beacon(&["collector", "--listen", "127.0.0.1:0", "--db", db])
                .args(extra)
                .env("BEACON_LOG", "debug")
                .stdin(Stdio::null())
                .stderr(Stdio::from(log)),
        );
        let line = next_line(&mut lines, START_TIMEOUT)
            .await
            .unwrap_or_else(|| panic!("collector exited: {}", read(&stderr)));
        let base = line
            .strip_prefix("beacon collector listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"))
            .to_owned();
        Self {
            child,
            base,
            stderr,
        }
    }

    fn ingest_url(&self) -> String {
        format!("{}/api/telemetry", self.base)
    }

    /// SIGTERM, then the exit status must be success (graceful shutdown).
    async fn terminate(mut self) -> String {
        let status = terminate(&mut self.child).await;
        let log = read(&self.stderr);
        assert!(status.success(), "collector exit {status}: {log}");
        log
    }
}

fn read(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

fn client(local: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(local)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

fn report(uuid: &str) -> String {
    let mut doc: Value = serde_json::from_str(SEED).expect("seed is JSON");
    doc["uuid"] = uuid.into();
    doc.to_string()
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
}

/// How the collector answered one report.
#[derive(Debug)]
struct Answer {
    uuid: String,
    status: u16,
    retry_after: Option<String>,
    /// The JSON error's `code`, when refused.
    code: Option<String>,
    /// The day it was stored under, when answered 2xx.
    day: Option<NaiveDate>,
}

/// Posts one report of node `uuid`.
async fn post_answer(
    client: &reqwest::Client,
    url: &str,
    uuid: &str,
) -> Result<Answer, reqwest::Error> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(report(uuid))
        .send()
        .await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let body: Value = response.json().await?;
    let day = body["day"].as_str().and_then(|day| day.parse().ok());
    Ok(Answer {
        uuid: uuid.to_owned(),
        status: status.as_u16(),
        retry_after,
        code: body["code"].as_str().map(str::to_owned),
        day: day.filter(|_| status.is_success()),
    })
}

/// Posts one report; `Some(day)` when the collector answered 2xx.
async fn post(
    client: &reqwest::Client,
    url: &str,
    uuid: &str,
) -> Result<Option<NaiveDate>, reqwest::Error> {
    Ok(post_answer(client, url, uuid).await?.day)
}

type Acked = Arc<Mutex<Vec<(String, NaiveDate)>>>;

/// Concurrent clients of the load tests.
const CLIENTS: usize = 50;
/// Nodes every client posts for now and then, so that one node's reports race each other.
const SHARED_NODES: usize = 10;

/// The node of a client's `n`th post: mostly its own, each posted three times in a row (a
/// node reporting several times a day), every fourth post one of the shared nodes.
fn node_for(n: usize, own: &mut String, shared: &[String]) -> String {
    if n % 4 == 3 {
        return shared[n % SHARED_NODES].clone();
    }
    if n.is_multiple_of(3) {
        *own = new_uuid();
    }
    own.clone()
}

/// Posts reports until the connection fails (the process is gone); every node it posted
/// for goes to `posted`, every acknowledged report to `acked`.
async fn keep_posting(url: String, shared: Arc<Vec<String>>, posted: Acked, acked: Acked) {
    let client = client(None);
    let mut own = String::new();
    for n in 0.. {
        let uuid = node_for(n, &mut own, &shared);
        let today = chrono::Utc::now().date_naive();
        posted
            .lock()
            .expect("post list")
            .push((uuid.clone(), today));
        match post(&client, &url, &uuid).await {
            Ok(Some(day)) => acked.lock().expect("ack list").push((uuid, day)),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

/// Waits until the clients have put `len` entries in `list` (answers, acknowledgements).
async fn wait_for_len<T>(list: &Mutex<Vec<T>>, len: usize) {
    let filled = async {
        while list.lock().expect("the list").len() < len {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(START_TIMEOUT, filled)
        .await
        .unwrap_or_else(|_| panic!("{len} entries in time"));
}

/// The database behind a store URL, read with SQL.
enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl Sql {
    async fn open(test_db: &TestDb) -> Self {
        if let Some(dir) = test_db.dir() {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
            let conn = rusqlite::Connection::open_with_flags(dir.join("collector.db"), flags);
            return Self::Sqlite(conn.expect("open the database read-only"));
        }
        Self::Postgres(support::postgres_client(test_db).await)
    }

    /// The first column of the one row `sql` answers.
    async fn value<T>(&self, sql: &str) -> T
    where
        T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>,
    {
        let value = match self {
            Self::Sqlite(conn) => conn
                .query_row(sql, [], |row| row.get(0))
                .map_err(|error| error.to_string()),
            Self::Postgres(client) => client
                .query_one(sql, &[])
                .await
                .map(|row| row.get(0))
                .map_err(|error| error.to_string()),
        };
        value.unwrap_or_else(|error| panic!("{sql}: {error}"))
    }
}

/// Nodes and rows the rollups and `reports` hold for the week of today, after the checks
/// that the database is whole: one row per node and day, every node in `reports` counted
/// once, nothing left uncounted.
async fn check_whole(store: &dyn beacon_store::Store, sql: &Sql, db: &str) -> (i64, i64) {
    let duplicates: i64 = sql
        .value("SELECT count(*) FROM (SELECT day, uuid FROM reports GROUP BY day, uuid HAVING count(*) > 1) d")
        .await;
    assert_eq!(duplicates, 0, "{db}: a node and day stored twice");
    let rows: i64 = sql.value("SELECT count(*) FROM reports").await;
    let nodes: i64 = sql.value("SELECT count(DISTINCT uuid) FROM reports").await;
    match sql {
        Sql::Sqlite(_) => {
            let check: String = sql.value("PRAGMA integrity_check").await;
            assert_eq!(check, "ok", "{db}: integrity check");
            let log: i64 = sql.value("SELECT count(*) FROM incoming").await;
            assert_eq!(log, 0, "{db}: uncounted after a graceful stop");
        }
        Sql::Postgres(_) => {
            let pending: i64 = sql.value("SELECT count(*) FROM rollup_pending").await;
            assert_eq!(pending, 0, "{db}: uncounted after a graceful stop");
        }
    }
    let known: i64 = sql.value("SELECT count(*) FROM nodes").await;
    assert_eq!(
        known, nodes,
        "{db}: nodes known to the rollups against nodes in reports"
    );
    let week = support::this_week(store).await;
    assert_eq!(
        week.nodes, nodes as u64,
        "{db}: this week's active nodes: {week:?}"
    );
    (nodes, rows)
}

/// 50 clients post for distinct and repeated nodes; the collector is SIGKILLed mid-load and
/// restarted on the same database: every acknowledged report is there once, each node is
/// counted once, and the database is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_report_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    for test_db in TestDb::each() {
        let db = test_db.url();
        let started = std::time::Instant::now();
        let mut process = Process::start(db, dir.path(), &["--rate-limit-per-minute", "0"]).await;
        let shared: Arc<Vec<String>> = Arc::new((0..SHARED_NODES).map(|_| new_uuid()).collect());
        let (posted, acked): (Acked, Acked) = Default::default();
        let posters: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let lists = (Arc::clone(&posted), Arc::clone(&acked));
                tokio::spawn(keep_posting(
                    process.ingest_url(),
                    Arc::clone(&shared),
                    lists.0,
                    lists.1,
                ))
            })
            .collect();
        wait_for_len(&acked, 1500).await;
        process.child.kill().await.expect("SIGKILL the collector");
        for poster in posters {
            poster.await.expect("poster task");
        }
        let acked = acked.lock().expect("ack list").clone();
        let posted: HashSet<_> = posted.lock().expect("post list").iter().cloned().collect();

        // The restarted collector must open the same storage and serve again.
        let restarted = Process::start(db, dir.path(), &[]).await;
        let health = client(None)
            .get(format!("{}/healthz", restarted.base))
            .send()
            .await;
        assert_eq!(health.expect("healthz").status(), 200);
        restarted.terminate().await;

        let store = beacon_store::open_store(db).await.expect("open storage");
        for (uuid, day) in &acked {
            let row = store.get(uuid, *day).await.expect("read storage");
            assert!(
                row.is_some(),
                "{db}: acknowledged report {uuid} lost after SIGKILL"
            );
        }
        let sql = Sql::open(&test_db).await;
        let (nodes, rows) = check_whole(&*store, &sql, db).await;
        let acked_rows: HashSet<_> = acked.iter().collect();
        let acked_nodes: HashSet<_> = acked.iter().map(|(uuid, _)| uuid).collect();
        // Unacknowledged reports may be stored too (committed, then killed before the
        // answer), but nothing that was never posted.
        assert!(
            (acked_rows.len()..=posted.len()).contains(&(rows as usize)),
            "{db}: {rows} rows, {} acknowledged, {} posted",
            acked_rows.len(),
            posted.len()
        );
        assert!(
            nodes as usize >= acked_nodes.len(),
            "{db}: {nodes} nodes counted"
        );
        drop((sql, store));
        eprintln!(
            "{db}: {} acknowledged ({} nodes), {rows} rows stored, {:?}",
            acked.len(),
            acked_nodes.len(),
            started.elapsed()
        );
    }
}

/// Posts reports of new nodes until `stop`; every answer goes to `answers`, every failed
/// exchange (no answer at all) to `failed`.
async fn post_until(
    url: String,
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    failed: Arc<Mutex<Vec<String>>>,
) {
    let client = client(None);
    while !stop.load(Ordering::Relaxed) {
        match post_answer(&client, &url, &new_uuid()).await {
            Ok(answer) => answers.lock().expect("answers").push(answer),
            Err(error) => failed.lock().expect("failures").push(error.to_string()),
        }
    }
}

/// `/healthz` statuses every 20 ms until `stop`.
async fn poll_health(base: String, stop: Arc<AtomicBool>) -> Vec<u16> {
    let client = client(None);
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let answer = client.get(format!("{base}/healthz")).send().await;
        seen.push(answer.map_or(0, |answer| answer.status().as_u16()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

/// Ends this test's collector sessions (named by `application_name`) `rounds` times, a
/// little apart; returns how many were ended. Other tests' sessions and other databases'
/// are left alone.
async fn terminate_sessions(application_name: &str, rounds: usize) -> u64 {
    let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let (admin, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let mut ended = 0;
    for _ in 0..rounds {
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND application_name = $1",
                &[&application_name],
            )
            .await
            .expect("terminate the collector's sessions");
        ended += u64::try_from(row.get::<_, i64>(0)).expect("a count");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    ended
}

/// PostgreSQL ends the collector's sessions while 50 clients post: every answer is 2xx or
/// 503 with `Retry-After`, every 2xx report is stored, and the collector recovers by
/// itself (a new report is stored within 10 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_mid_load_answers_503_with_retry_after_and_recovers() {
    let Some(test_db) = TestDb::postgres() else {
        return;
    };
    let schema = test_db.url().split("schema=").nth(1).expect("a schema");
    // The sessions to end are told apart by their name: this test's schema.
    let db = format!("{}&application_name={schema}", test_db.url());
    let dir = tempfile::tempdir().expect("temp dir");
    let process = Process::start(&db, dir.path(), &["--rate-limit-per-minute", "0"]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let posters: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, answers, failed) = (stop.clone(), answers.clone(), failed.clone());
            tokio::spawn(post_until(process.ingest_url(), stop, answers, failed))
        })
        .collect();
    let health = tokio::spawn(poll_health(process.base.clone(), stop.clone()));
    wait_for_len(&answers, 200).await;

    let ended = terminate_sessions(schema, 5).await;
    assert!(ended > 0, "no session of the collector was found to end");
    let lost_at = std::time::Instant::now();
    let recovered = loop {
        let answer = post_answer(&client(None), &process.ingest_url(), &new_uuid()).await;
        if answer.is_ok_and(|answer| answer.day.is_some()) {
            break lost_at.elapsed();
        }
        assert!(
            lost_at.elapsed() < Duration::from_secs(10),
            "no report stored within 10 s of the last session ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for poster in posters {
        poster.await.expect("poster task");
    }
    let health = health.await.expect("health task");
    process.terminate().await;

    let answers = std::mem::take(&mut *answers.lock().expect("answers"));
    let failed = std::mem::take(&mut *failed.lock().expect("failures"));
    assert!(failed.is_empty(), "requests without an answer: {failed:?}");
    let unclear: Vec<_> = answers
        .iter()
        .filter(|a| a.day.is_none() && !(a.status == 503 && a.retry_after.is_some()))
        .collect();
    assert!(
        unclear.is_empty(),
        "answers neither 2xx nor 503 with Retry-After: {unclear:?}"
    );
    let store = beacon_store::open(test_db.url())
        .await
        .expect("open storage");
    for answer in &answers {
        if let Some(day) = answer.day {
            let row = store.get(&answer.uuid, day).await.expect("read storage");
            assert!(
                row.is_some(),
                "report {} answered 2xx, not stored",
                answer.uuid
            );
        }
    }
    drop(store);
    let unavailable = answers.iter().filter(|a| a.status == 503).count();
    let unhealthy = health.iter().filter(|status| **status != 200).count();
    assert_eq!(health.last(), Some(&200), "healthy again: {health:?}");
    eprintln!(
        "{ended} sessions ended; {} answers, {unavailable} of them 503; /healthz unhealthy \
         {unhealthy} of {} polls; a report stored again {recovered:?} after the last end",
        answers.len(),
        health.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_ip_is_neither_stored_nor_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    for test_db in TestDb::each() {
        let db = test_db.url();
        let process = Process::start(db, dir.path(), &["--rate-limit-per-minute", "5"]).await;
        let from_42 = client(Some(CLIENT_IP.parse().expect("ip")));
        let mut days = Vec::new();
        let mut refused = 0;
        for _ in 0..8 {
            match post(&from_42, &process.ingest_url(), &new_uuid())
                .await
                .expect("post")
            {
                Some(day) => days.push(day),
                None => refused += 1,
            }
        }
        // The limiter keyed on 127.0.0.42: the collector really saw that address...
        assert!(
            days.len() >= 5 && refused >= 1,
            "{db}: {} stored, {refused} refused",
            days.len()
        );
        // ...and another source still has its own budget.
        let other = post(&client(None), &process.ingest_url(), &new_uuid())
            .await
            .expect("post");
        days.push(other.expect("127.0.0.1 has its own budget"));
        let log = process.terminate().await;

        assert!(
            log.contains("report stored"),
            "{db}: debug log was written:\n{log}"
        );
        assert!(
            !log.contains(CLIENT_IP),
            "{db}: client IP in the log:\n{log}"
        );
        let store = beacon_store::open(db).await.expect("open storage");
        let first = days.iter().min().expect("stored days");
        let last = days.iter().max().expect("stored days");
        let rows = store.list(*first, *last).await.expect("list");
        assert_eq!(rows.len(), days.len(), "{db}");
        for row in rows {
            assert!(
                !format!("{row:?}").contains(CLIENT_IP),
                "{db}: client IP stored: {row:?}"
            );
        }
        drop(store);
        if let Some(db_dir) = test_db.dir() {
            assert_no_client_ip_in(db_dir);
        }
    }
    assert_no_client_ip_in(dir.path());
}

/// Fails the test when a file in `dir` holds [`CLIENT_IP`].
fn assert_no_client_ip_in(dir: &Path) {
    for file in std::fs::read_dir(dir).expect("list temp dir") {
        let path = file.expect("dir entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        let found = bytes
            .windows(CLIENT_IP.len())
            .any(|w| w == CLIENT_IP.as_bytes());
        assert!(!found, "client IP found in {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_data_fills_a_database_with_history() {
    let test_db = TestDb::sqlite();
    let db = test_db.url();
    let output = beacon(&[
        "collector",
        "seed-demo-data",
        "--reports",
        "500",
        "--db",
        db,
    ])
    .output()
    .await
    .expect("run seed-demo-data");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", text(&output));
    assert!(stdout.contains("seeded 500 reports"), "{stdout}");
    let store = beacon_store::open_store(db).await.expect("open");
    assert_eq!(store.count().await.expect("count"), 500);
    let today = chrono::Utc::now().date_naive();
    let year = beacon_store::AnalyticsQuery {
        from: today - chrono::Days::new(364),
        to: today,
        version: None,
        os: None,
    };
    let weeks = store.activity(&year).await.expect("activity");
    let active_weeks = weeks.iter().filter(|w| w.clusters > 0).count();
    assert!(
        active_weeks > 40,
        "the history spreads over the year: {active_weeks} weeks"
    );
}

/// Seeding reports where it is going while it runs: on a stderr that is not a terminal, a
/// plain line every `BEACON_PROGRESS_EVERY`, then the summary on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_data_prints_progress_and_a_summary() {
    let test_db = TestDb::sqlite();
    let output = beacon(&[
        "collector",
        "seed-demo-data",
        "--reports",
        "30000",
        "--db",
        test_db.url(),
    ])
    .env("BEACON_PROGRESS_EVERY", "200ms")
    .stderr(Stdio::piped())
    .output()
    .await
    .expect("run seed-demo-data");
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            line.starts_with("beacon collector: seeded ") && line.contains("/30000 reports")
        })
        .collect();
    assert!(
        progress
            .iter()
            .any(|line| line.contains("/s, ETA ") || line.contains(", finishing (")),
        "no periodic progress line on stderr:\n{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout
        .lines()
        .find(|line| line.starts_with("beacon collector: seeded 30000 reports"))
        .unwrap_or_else(|| panic!("no summary on stdout:\n{stdout}"));
    for part in ["(30000 inserted, 0 replaced, 0 refused)", " s (", "/s)"] {
        assert!(summary.contains(part), "{part:?} missing from {summary:?}");
    }
}

/// A password given as `?password=` in the storage URL is shown as `***`: on the start
/// line, and in the error when the storage cannot be opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_storage_url_is_never_printed() {
    const SECRET: &str = "pw-4f1c9e-never-printed";
    if let Some(test_db) = TestDb::postgres() {
        let db = format!("{}&password={SECRET}", test_db.url());
        let (mut child, mut lines) = spawn_reading(
            beacon(&["collector", "--listen", "127.0.0.1:0", "--db", &db])
                .stdin(Stdio::null())
                .stderr(Stdio::null()),
        );
        let line = next_line(&mut lines, START_TIMEOUT).await;
        assert!(terminate(&mut child).await.success());
        let line = line.expect("a start line");
        assert!(line.contains("password=***"), "{line}");
        assert!(
            !line.contains(SECRET),
            "the start line shows the password: {line}"
        );
    }
    let unreachable = format!("postgres://beacon@127.0.0.1:1/none?password={SECRET}");
    let output = beacon(&["collector", "--listen", "127.0.0.1:0", "--db", &unreachable])
        .env("BEACON_LOG", "debug")
        .output()
        .await
        .expect("run the collector");
    let printed = text(&output);
    assert!(!output.status.success(), "{printed}");
    assert!(printed.contains("password=***"), "{printed}");
    assert!(
        !printed.contains(SECRET),
        "the password is printed: {printed}"
    );
}

/// The start lines' ingest and console base URLs, as reachable on loopback.
async fn start_urls(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> (String, String) {
    let mut url_after = async |prefix: &str| {
        let line = next_line(lines, START_TIMEOUT).await.expect("a start line");
        line.strip_prefix(prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected start line: {line}"))
            .trim_end_matches("/console/")
            .replace("0.0.0.0", "127.0.0.1")
    };
    let ingest = url_after("beacon collector listening on ").await;
    let console = url_after("beacon collector console on ").await;
    (ingest, console)
}

/// A new database has no console admin: the start lines say how to make one, and stop
/// saying it once there is one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_without_a_console_admin_says_how_to_make_one() {
    let test_db = TestDb::sqlite();
    let start = || {
        spawn_reading(
            beacon(&[
                "collector",
                "--listen",
                "127.0.0.1:0",
                "--db",
                test_db.url(),
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null()),
        )
    };
    let (mut child, mut lines) = start();
    start_urls(&mut lines).await;
    let hint = next_line(&mut lines, START_TIMEOUT)
        .await
        .expect("a third line");
    let command = format!("`beacon collector user add NAME --db {}`", test_db.url());
    assert!(
        hint.contains("no admin yet") && hint.contains(&command),
        "{hint}"
    );
    assert!(terminate(&mut child).await.success());

    let added = support::beacon_with(
        &["collector", "user", "add", "admin", "--db", test_db.url()],
        "",
        &[("BEACON_CONSOLE_PASSWORD", "a long enough password")],
    )
    .await;
    assert!(added.status.success(), "{}", text(&added));
    let (mut child, mut lines) = start();
    start_urls(&mut lines).await;
    let after = tokio::time::timeout(Duration::from_secs(1), lines.next_line()).await;
    assert!(after.is_err(), "nothing more is printed: {after:?}");
    assert!(terminate(&mut child).await.success());
}

/// GET `url`'s status.
async fn status_of(url: &str) -> u16 {
    let answer = client(None).get(url).send().await;
    answer
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
        .status()
        .as_u16()
}

/// Private means not on the public network: by default the console, its data API and
/// `/metrics` are not on the ingest address (even when ingest listens on every interface)
/// but on a loopback address of their own; `--console-on-ingest` puts them beside ingest,
/// with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_metrics_are_on_loopback_not_on_ingest() {
    let test_db = TestDb::sqlite();
    let (mut child, mut lines) = spawn_reading(
        beacon(&["collector", "--listen", "0.0.0.0:0", "--db", test_db.url()])
            .stdin(Stdio::null())
            .stderr(Stdio::null()),
    );
    let (ingest, console) = start_urls(&mut lines).await;
    assert!(console.starts_with("http://127.0.0.1:"), "{console}");
    assert_ne!(ingest, console);
    for path in [
        "/console/login",
        "/console/api/v1/charts/activity",
        "/metrics",
    ] {
        assert_eq!(
            status_of(&format!("{ingest}{path}")).await,
            404,
            "{path} on ingest"
        );
    }
    assert_eq!(status_of(&format!("{ingest}/healthz")).await, 200);
    assert_eq!(status_of(&format!("{console}/console/login")).await, 200);
    assert_eq!(status_of(&format!("{console}/metrics")).await, 200);
    assert!(terminate(&mut child).await.success());

    let help = beacon(&["collector", "--help"])
        .output()
        .await
        .expect("help");
    assert!(
        text(&help).contains("[default: 127.0.0.1:8081]"),
        "{}",
        text(&help)
    );

    let logs = tempfile::tempdir().expect("log dir");
    let log_path = logs.path().join("collector.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (mut child, mut lines) = spawn_reading(
        beacon(&[
            "collector",
            "--listen",
            "127.0.0.1:0",
            "--console-on-ingest",
        ])
        .args(["--db", test_db.url()])
        .env_remove("BEACON_COLLECTOR_CONSOLE_LISTEN")
        .stdin(Stdio::null())
        .stderr(Stdio::from(log)),
    );
    let (ingest, console) = start_urls(&mut lines).await;
    assert_eq!(ingest, console);
    assert_eq!(status_of(&format!("{ingest}/console/login")).await, 200);
    assert_eq!(status_of(&format!("{ingest}/metrics")).await, 200);
    assert!(terminate(&mut child).await.success());
    let log = read(&log_path);
    assert!(
        log.contains("WARN") && log.contains("--console-on-ingest"),
        "{log}"
    );
}

/// A tmpfs of `size` mounted on a directory of its own, unmounted when dropped: a disk the
/// test can fill without touching the machine's.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` (and a line saying why the test is skipped) where mounting is not allowed:
    /// it needs root, or CAP_SYS_ADMIN in a container.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "beacon-test"])
            .arg(&mount)
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Self { mount, _dir: dir }),
            other => {
                eprintln!(
                    "SKIPPED: this test mounts a {size} tmpfs to fill it, and mounting is not \
                     allowed here (run as root, or with CAP_SYS_ADMIN): {other:?}"
                );
                None
            }
        }
    }

    /// Writes a file until the disk is full; removing it gives the space back.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0xa5u8; 16 * 1024];
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        let _ = file.write_all(&block[..1]);
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
    }
}

/// The lines of `log` at WARN level that contain `text`.
fn warnings<'a>(log: &'a str, text: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.contains("WARN") && line.contains(text))
        .collect()
}

/// The SQLite database's disk fills up while nodes report: every report is answered 2xx
/// (and stored) or 503 `STORAGE_FULL` with `Retry-After`, the log says so in one warning
/// for the whole streak, `/healthz` is unhealthy; once space is freed the collector stores
/// again by itself, and the database it leaves holds every acknowledged report once and
/// passes its integrity check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_refused_with_503_and_recovered_from_without_loss() {
    let Some(disk) = SmallDisk::mount("8m") else {
        return;
    };
    let logs = tempfile::tempdir().expect("log dir");
    let path = disk.mount.join("collector.db");
    let db = format!("sqlite://{}", path.display());
    let process = Process::start(&db, logs.path(), &["--rate-limit-per-minute", "0"]).await;
    let client = client(None);
    let url = process.ingest_url();
    let mut acked = Vec::new();
    for _ in 0..20 {
        let answer = post_answer(&client, &url, &new_uuid()).await.expect("post");
        acked.push((answer.uuid, answer.day.expect("stored while space is left")));
    }

    let filler = disk.fill();
    let mut refused = Vec::new();
    for _ in 0..5000 {
        let answer = post_answer(&client, &url, &new_uuid()).await.expect("post");
        match answer.day {
            Some(day) => acked.push((answer.uuid, day)),
            None => refused.push(answer),
        }
        if refused.len() == 30 {
            break;
        }
    }
    assert_eq!(
        refused.len(),
        30,
        "reports are refused once the disk is full"
    );
    let unclear: Vec<_> = refused
        .iter()
        .filter(|a| {
            !(a.status == 503
                && a.retry_after.is_some()
                && a.code.as_deref() == Some("STORAGE_FULL"))
        })
        .collect();
    assert!(
        unclear.is_empty(),
        "refusals not 503 STORAGE_FULL with Retry-After: {unclear:?}"
    );
    let health = format!("{}/healthz", process.base);
    assert_eq!(
        status_of(&health).await,
        503,
        "/healthz while the disk is full"
    );

    std::fs::remove_file(filler).expect("free the space");
    let freed_at = std::time::Instant::now();
    loop {
        let answer = post_answer(&client, &url, &new_uuid()).await.expect("post");
        if let Some(day) = answer.day {
            acked.push((answer.uuid, day));
            break;
        }
        assert!(
            freed_at.elapsed() < Duration::from_secs(10),
            "no report stored within 10 s of freeing space: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status_of(&health).await, 200, "/healthz once space is back");
    let recovered = freed_at.elapsed();
    let log = process.terminate().await;

    let full = warnings(&log, "storage is full");
    assert_eq!(
        full.len(),
        1,
        "one warning for the streak of {} refusals:\n{log}",
        refused.len()
    );
    assert_eq!(
        warnings(&log, "succeed again").len(),
        1,
        "one line at recovery:\n{log}"
    );
    let store = beacon_store::open_store(&db).await.expect("open storage");
    for (uuid, day) in &acked {
        let row = store.get(uuid, *day).await.expect("read storage");
        assert!(
            row.is_some(),
            "acknowledged report {uuid} lost to the full disk"
        );
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let sql = Sql::Sqlite(rusqlite::Connection::open_with_flags(&path, flags).expect("open"));
    let (_, rows) = check_whole(&*store, &sql, &db).await;
    assert_eq!(
        rows as usize,
        acked.len(),
        "exactly the acknowledged reports are stored"
    );
    drop((sql, store));
    eprintln!(
        "{} acknowledged, {} refused while full, stored again {recovered:?} after space was freed",
        acked.len(),
        refused.len()
    );
}
