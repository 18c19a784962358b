//! Shared by the tests of the `beacon` binary: starting it as an operator would, reading
//! what it prints, stopping it with a signal, and the browser checks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use beacon_collector::{Collector, CollectorConfig, RateLimit};
use beacon_store::Store;
use beacon_store::testing::TestDb;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The browser checks of `tests/browser`, and the repository's root.
#[path = "../../../../../tests/browser/launch.rs"]
pub mod launch;

/// How long a process may take to start, or to stop after SIGTERM.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `beacon ARGS` with warnings-only logs, killed when the test drops it. A collector's
/// console listens on a free loopback port instead of its fixed default, so that tests
/// can run side by side.
pub fn beacon(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_beacon"));
    command
        .args(args)
        .env("BEACON_LOG", "warn")
        .env("BEACON_COLLECTOR_CONSOLE_LISTEN", "127.0.0.1:0")
        .kill_on_drop(true);
    command
}

/// [`beacon`] for a node: telemetry is left to the node's config, not to the environment
/// of whoever runs the tests.
pub fn beacon_node(args: &[&str]) -> Command {
    let mut command = beacon(args);
    command
        .env_remove("DO_NOT_TRACK")
        .env_remove("EMQX_TELEMETRY__ENABLE");
    command
}

/// `beacon broker` on the shipped config with its data in `data_dir`, listening on
/// ephemeral loopback ports (the shipped ones may be taken on this machine).
pub fn broker_command(data_dir: &std::path::Path) -> Command {
    let mut command = beacon_node(&["broker"]);
    command
        .arg("--config")
        .arg(shipped_config())
        .arg("--data-dir")
        .arg(data_dir)
        .env("EMQX_LISTENERS__TCP__DEFAULT__BIND", "127.0.0.1:0")
        .env("EMQX_DASHBOARD__LISTENERS__HTTP__BIND", "127.0.0.1:0");
    command
}

/// The shipped `etc/emqx.conf`.
pub fn shipped_config() -> PathBuf {
    launch::repo_root().join("etc/emqx.conf")
}

/// Starts `command` with its standard output piped, and the lines it prints.
pub fn spawn_reading(command: &mut Command) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn beacon");
    let stdout = child.stdout.take().expect("piped stdout");
    (child, BufReader::new(stdout).lines())
}

/// The next line printed, within `timeout`; `None` when the process closed its output.
pub async fn next_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    timeout: Duration,
) -> Option<String> {
    tokio::time::timeout(timeout, lines.next_line())
        .await
        .expect("the process printed its next line in time")
        .expect("read the process's output")
}

/// The lines printed up to and including the first that contains `pattern`, within
/// `timeout`.
pub async fn lines_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    pattern: &str,
    timeout: Duration,
) -> Vec<String> {
    let mut printed = Vec::new();
    let found = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await.expect("read the process's output") {
            let done = line.contains(pattern);
            printed.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        found == Ok(true),
        "no line with {pattern:?} in time; printed:\n{}",
        printed.join("\n")
    );
    printed
}

/// SIGTERM, then the exit status once the process has stopped.
pub async fn terminate(child: &mut Child) -> ExitStatus {
    let pid = child
        .id()
        .expect("the process is still running")
        .to_string();
    signal(&pid, "TERM").await;
    tokio::time::timeout(START_TIMEOUT, child.wait())
        .await
        .expect("the process stopped after SIGTERM")
        .expect("wait for the process")
}

/// Sends `signal` (a name such as `TERM`, `KILL`, `STOP`) to the process `pid`.
pub async fn signal(pid: &str, signal: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), pid])
        .status()
        .await
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Standard output then standard error, for failure messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A loopback listener that counts the connections it is offered and closes them: where
/// a test points something that must never be reached (a proxy, a collector).
pub async fn counting_listener() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the counting listener");
    let addr = listener.local_addr().expect("its address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (addr, accepted)
}

/// This week's row (Monday to today) of the store's weekly activity: what the console's
/// overview counts for the week in progress.
pub async fn this_week(store: &dyn beacon_store::Store) -> beacon_store::WeekActivity {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let monday = today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday()));
    let query = beacon_store::AnalyticsQuery {
        from: monday,
        to: today,
        version: None,
        os: None,
    };
    let weeks = store.activity(&query).await.expect("activity");
    weeks
        .into_iter()
        .find(|w| w.week == monday)
        .expect("a row for this week")
}

/// Spawns the collector `command`; the process and the base URLs of its ingest and console,
/// read from the lines it prints when it listens.
pub async fn collector_started(
    command: &mut tokio::process::Command,
) -> (tokio::process::Child, String, String) {
    let (child, mut lines) = spawn_reading(command);
    let mut url_after = async |prefix: &str| {
        let line = next_line(&mut lines, Duration::from_secs(30))
            .await
            .expect("collector running");
        line.strip_prefix(prefix)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected line: {line}"))
            .trim_end_matches("/console/")
            .to_owned()
    };
    let ingest = url_after("beacon collector listening on ").await;
    let console = url_after("beacon collector console on ").await;
    (child, ingest, console)
}

/// A client of the PostgreSQL schema `test_db` gives each test, for checks in SQL.
pub async fn postgres_client(test_db: &beacon_store::testing::TestDb) -> tokio_postgres::Client {
    let schema = test_db.url().split("schema=").nth(1).expect("a schema");
    let schema = schema.split('&').next().expect("the schema's name");
    let base = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search_path");
    client
}

/// Runs `beacon ARGS` with `stdin` piped in.
pub async fn beacon_with(args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = beacon(args)
        .env_remove("BEACON_CONSOLE_PASSWORD")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn beacon");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("beacon output")
}

/// A real collector on a free loopback port, in SQLite, without rate limit; it stops
/// serving when stopped or dropped.
pub struct TestCollector {
    pub store: Arc<dyn Store>,
    pub url: String,
    _db: TestDb,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), beacon_collector::CollectorError>>,
}

impl TestCollector {
    pub async fn start() -> Self {
        let db = TestDb::sqlite();
        let store = beacon_store::open_store(db.url()).await.expect("store");
        let mut config = CollectorConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.rate_limit = RateLimit::disabled();
        let bound = Collector::bind_store(config, Arc::clone(&store))
            .await
            .expect("bind");
        let url = bound.url();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        Self {
            store,
            url,
            _db: db,
            stop,
            serving,
        }
    }

    /// Stops serving and waits until the collector has.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.serving.await.expect("join").expect("collector ran");
    }
}
