//! `beacon broker`'s dashboard under abuse from anyone who can reach it: floods of wrong
//! logins and wrong API secrets, measured on the real process.

use std::path::Path;
use std::time::{Duration, Instant};

use std::net::IpAddr;

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use support::{START_TIMEOUT, broker_command, lines_until, spawn_reading, terminate};
use tokio::process::Child;

use crate::support;

const PASSWORD: &str = "abuse-test-password";
/// Requests of each kind sent at once.
const FLOOD: usize = 64;
/// At most 4 argon2 checks run at once, whatever the core count, each on a thread that
/// keeps its 19 MiB of working memory: 76 MiB, plus 24 MiB for the 128 connections'
/// buffers and allocator slack (measured: +22 MiB on 2 cores). Without the bound, the
/// same flood grew the node by 1.3 GiB.
const RSS_GROWTH_LIMIT_KIB: u64 = 100 * 1024;

/// A running `beacon broker` and its dashboard's base URL.
struct Broker {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
    data_dir: std::path::PathBuf,
}

/// Starts `beacon broker` with `env` added, logging at `info` to `stderr.log` in its
/// directory.
async fn start_broker(env: &[(&str, &str)]) -> Broker {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("stderr.log")).expect("create the log");
    let (child, mut lines) = spawn_reading(
        broker_command(&data_dir)
            .env("BEACON_LOG", "info")
            .stderr(log)
            .env("EMQX_DASHBOARD__DEFAULT_PASSWORD", PASSWORD)
            .env("EMQX_TELEMETRY__ENABLE", "false")
            .envs(env.iter().copied()),
    );
    let printed = lines_until(&mut lines, "dashboard on", START_TIMEOUT).await;
    let base = printed
        .iter()
        .find_map(|line| line.split("dashboard on ").nth(1))
        .expect("dashboard address")
        .trim()
        .to_owned();
    Broker {
        child,
        base,
        dir,
        data_dir,
    }
}

impl Broker {
    /// Posts a login from the default address (127.0.0.1) or from `source`.
    async fn login(&self, source: Option<IpAddr>, username: &str, password: &str) -> Response {
        let http = Client::builder()
            .no_proxy()
            .local_address(source)
            .build()
            .expect("client");
        http.post(format!("{}/api/v5/login", self.base))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login")
    }

    /// Stops the node; what it logged.
    async fn stop(mut self) -> String {
        let exit = terminate(&mut self.child).await;
        assert!(exit.success(), "exit after SIGTERM: {exit}");
        std::fs::read_to_string(self.dir.path().join("stderr.log")).expect("read the log")
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The id of the node's local API key, from the file it leaves for the CLI.
fn local_key(data_dir: &Path) -> String {
    let text = std::fs::read_to_string(data_dir.join("dashboard/local-api.json")).expect("key");
    let local: Value = serde_json::from_str(&text).expect("json");
    local["key"].as_str().expect("key id").to_owned()
}

/// A refusal is either "wrong" (401) or "busy, retry later" (429 with `Retry-After`).
fn assert_refused(answer: &reqwest::Response, what: &str) {
    match answer.status() {
        StatusCode::UNAUTHORIZED => {}
        StatusCode::TOO_MANY_REQUESTS => assert!(
            answer.headers().contains_key("retry-after"),
            "{what}: 429 without Retry-After"
        ),
        other => panic!("{what}: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_logins_and_secrets_keeps_memory_flat() {
    // The per-address connection cap would close most of this flood before any password
    // check; lifted, so that the check pool itself is what bounds memory.
    let broker = start_broker(&[(
        "EMQX_DASHBOARD__LISTENERS__HTTP__MAX_CONNECTIONS_PER_IP",
        "512",
    )])
    .await;
    let pid = broker.child.id().expect("pid");
    let http = Client::builder().no_proxy().build().expect("client");
    // One good login first: the first argon2 check's memory is not the flood's doing.
    let good = broker.login(None, "admin", PASSWORD).await;
    assert_eq!(good.status(), StatusCode::OK);
    let before = memory_kib(pid, "VmRSS");

    let started = Instant::now();
    let key = local_key(&broker.data_dir);
    let logins = (0..FLOOD).map(|n| {
        http.post(format!("{}/api/v5/login", broker.base))
            .json(&json!({"username": "admin", "password": format!("wrong-{n}")}))
            .send()
    });
    let secrets = (0..FLOOD).map(|n| {
        http.get(format!("{}/api/v5/telemetry/status", broker.base))
            .basic_auth(&key, Some(format!("wrong-{n}")))
            .send()
    });
    let flood = async {
        let logins = futures_join(logins);
        let secrets = futures_join(secrets);
        tokio::join!(logins, secrets)
    };
    let (logins, secrets) = tokio::time::timeout(Duration::from_secs(60), flood)
        .await
        .expect("every request answered within a minute");
    for answer in logins.iter().chain(&secrets) {
        assert_refused(answer.as_ref().expect("answer"), "wrong credential");
    }
    let elapsed = started.elapsed();
    let after = memory_kib(pid, "VmRSS");
    let peak = memory_kib(pid, "VmHWM");
    println!(
        "{FLOOD} wrong logins + {FLOOD} wrong secrets in {elapsed:?}: VmRSS {before} -> \
         {after} KiB, VmHWM {peak} KiB"
    );
    assert!(
        after.saturating_sub(before) < RSS_GROWTH_LIMIT_KIB,
        "RSS grew from {before} to {after} KiB"
    );

    // The node still serves its admin.
    let good = broker.login(None, "admin", PASSWORD).await;
    assert_ne!(good.status(), StatusCode::UNAUTHORIZED);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_logins_are_throttled_per_name_and_address_and_logged_escaped() {
    let broker = start_broker(&[]).await;
    let mut throttled = 0;
    for n in 0..100 {
        let answer = broker.login(None, "admin", &format!("guess-{n}")).await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            let after = answer.headers()["retry-after"].to_str().expect("ascii");
            let seconds: u64 = after.parse().expect("Retry-After in seconds");
            assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
            throttled += 1;
        } else {
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "guess {n}");
        }
    }
    assert!(throttled >= 90, "{throttled} of 100 wrong logins throttled");
    // The guesser at 127.0.0.1 does not lock out the admin signing in from elsewhere.
    let elsewhere = Some(IpAddr::from([127, 0, 0, 2]));
    let answer = broker.login(elsewhere, "admin", PASSWORD).await;
    assert_eq!(answer.status(), StatusCode::OK, "admin from 127.0.0.2");

    let forged = "mallory\n2026-01-01T00:00:00Z  INFO forged: dashboard login accepted";
    let answer = broker.login(elsewhere, forged, "x").await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let log = broker.stop().await;
    assert!(
        log.contains(r#"user="mallory\n2026-01-01T00:00:00Z  INFO forged"#),
        "typed name logged escaped:\n{log}"
    );
    assert!(
        !log.lines().any(|line| line.starts_with("2026-01-01")),
        "a typed name forged a log line:\n{log}"
    );
    assert!(
        !log.contains("127.0.0.2"),
        "addresses are never logged:\n{log}"
    );
}

/// Sends every request at once; the answers in order.
async fn futures_join<F, T>(requests: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = requests.map(tokio::spawn).collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.expect("request task"));
    }
    answers
}
