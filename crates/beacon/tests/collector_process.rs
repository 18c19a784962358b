//! Tests of the real `beacon collector` process: crash safety under SIGKILL, graceful
//! SIGTERM, and that the client IP reaches neither storage nor logs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SEED: &str = beacon_report::fixtures::SEED_5_0_9;
const START_TIMEOUT: Duration = Duration::from_secs(60);
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_beacon"))
            .args(["collector", "--listen", "127.0.0.1:0", "--db", db])
            .args(extra)
            .env("BEACON_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn beacon collector");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .expect("collector printed its start line in time")
            .expect("read stdout")
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
        let pid = self.child.id().expect("child still running");
        let sent = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("run kill");
        assert!(sent.success());
        let status = tokio::time::timeout(START_TIMEOUT, self.child.wait())
            .await
            .expect("collector stopped after SIGTERM")
            .expect("wait for collector");
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

/// Closes `store` and drops the scratch schema when `db` is a PostgreSQL test URL.
async fn finish(db: &str, store: Arc<dyn beacon_store::ReportStore>) {
    drop(store);
    if db.starts_with("postgres") {
        let dropped = beacon_store::testing::drop_postgres_schema(db).await;
        dropped.expect("drop test schema");
    }
}

/// Storage URLs: an SQLite file in `dir`, and PostgreSQL unless explicitly skipped.
async fn databases(dir: &Path) -> Vec<String> {
    let mut urls = vec![beacon_store::testing::sqlite_url(dir).await];
    urls.extend(beacon_store::testing::postgres_url().await);
    urls
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
    for db in databases(dir.path()).await {
        let mut process = Process::start(&db, dir.path(), &["--rate-limit-per-minute", "0"]).await;
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
        let restarted = Process::start(&db, dir.path(), &[]).await;
        let health = client(None)
            .get(format!("{}/healthz", restarted.base))
            .send()
            .await;
        assert_eq!(health.expect("healthz").status(), 200);
        restarted.terminate().await;

        let store = beacon_store::open(&db).await.expect("open storage");
        for (uuid, day) in &acked {
            let row = store.get(uuid, *day).await.expect("read storage");
            assert!(
                row.is_some(),
                "{db}: acknowledged report {uuid} lost after SIGKILL"
            );
        }
        assert!(store.count().await.expect("count") >= acked.len() as u64);
        finish(&db, store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_ip_is_neither_stored_nor_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    for db in databases(dir.path()).await {
        let process = Process::start(&db, dir.path(), &["--rate-limit-per-minute", "5"]).await;
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
        let store = beacon_store::open(&db).await.expect("open storage");
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
        finish(&db, store).await;
    }
    for file in std::fs::read_dir(dir.path()).expect("list temp dir") {
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
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("seeded.db").display());
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args([
            "collector",
            "seed-demo-data",
            "--reports",
            "500",
            "--db",
            &db,
        ])
        .env("BEACON_LOG", "warn")
        .output()
        .await
        .expect("run seed-demo-data");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("seeded 500 reports"), "{stdout}");
    let store = beacon_store::open_store(&db).await.expect("open");
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
