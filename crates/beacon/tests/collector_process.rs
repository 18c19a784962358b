//! Tests of the real `beacon collector` process: crash safety under SIGKILL, graceful
//! SIGTERM, and that the client IP reaches neither storage nor logs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_store::testing::TestDb;
use chrono::NaiveDate;
use serde_json::Value;
use support::{START_TIMEOUT, beacon, next_line, spawn_reading, terminate, text};
use tokio::process::Child;

mod support;

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

/// Posts one report; `Some(day)` when the collector answered 2xx.
async fn post(
    client: &reqwest::Client,
    url: &str,
    uuid: &str,
) -> Result<Option<NaiveDate>, reqwest::Error> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(report(uuid))
        .send()
        .await?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let body: Value = response.json().await?;
    Ok(body["day"].as_str().and_then(|day| day.parse().ok()))
}

type Acked = Arc<Mutex<Vec<(String, NaiveDate)>>>;

/// Posts distinct reports until the connection fails (the process is gone).
async fn keep_posting(url: String, acked: Acked) {
    let client = client(None);
    loop {
        let uuid = new_uuid();
        match post(&client, &url, &uuid).await {
            Ok(Some(day)) => acked.lock().expect("ack list").push((uuid, day)),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_report_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    for test_db in TestDb::each() {
        let db = test_db.url();
        let mut process = Process::start(db, dir.path(), &["--rate-limit-per-minute", "0"]).await;
        let acked: Acked = Arc::default();
        let posters: Vec<_> = (0..8)
            .map(|_| tokio::spawn(keep_posting(process.ingest_url(), Arc::clone(&acked))))
            .collect();
        let enough = async {
            while acked.lock().expect("ack list").len() < 300 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(START_TIMEOUT, enough)
            .await
            .expect("300 reports acknowledged");
        process.child.kill().await.expect("SIGKILL the collector");
        for poster in posters {
            poster.await.expect("poster task");
        }
        let acked = acked.lock().expect("ack list").clone();

        // The restarted collector must open the same storage and serve again.
        let restarted = Process::start(db, dir.path(), &[]).await;
        let health = client(None)
            .get(format!("{}/healthz", restarted.base))
            .send()
            .await;
        assert_eq!(health.expect("healthz").status(), 200);
        restarted.terminate().await;

        let store = beacon_store::open(db).await.expect("open storage");
        for (uuid, day) in &acked {
            let row = store.get(uuid, *day).await.expect("read storage");
            assert!(
                row.is_some(),
                "{db}: acknowledged report {uuid} lost after SIGKILL"
            );
        }
        assert!(store.count().await.expect("count") >= acked.len() as u64);
    }
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
