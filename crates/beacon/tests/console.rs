//! The collector's console through the real binary: admins managed with
//! `beacon collector user`, history from `seed-demo-data`, the console on its own
//! `--dashboard-listen` address, driven by headless Chromium (`tests/browser/console.mjs`).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const PASSWORD: &str = "a long console password";

/// Runs `beacon ARGS` with `stdin` piped in.
async fn beacon(args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(args)
        .env_remove("BEACON_CONSOLE_PASSWORD")
        .envs(envs.iter().copied())
        .env("BEACON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
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

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("collector.db").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_subcommands_manage_console_admins_in_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_url(dir.path());
    let add = beacon(
        &["collector", "user", "add", "admin", "--db", &db],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .await;
    assert!(add.status.success(), "{}", text(&add));
    let again = beacon(
        &["collector", "user", "add", "admin", "--db", &db],
        "other\n",
        &[],
    )
    .await;
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    let bad_name = beacon(
        &["collector", "user", "add", "a b", "--db", &db],
        "pw\n",
        &[],
    )
    .await;
    assert!(text(&bad_name).contains("user name"), "{}", text(&bad_name));
    let argv = beacon(
        &[
            "collector",
            "user",
            "add",
            "eve",
            "--password",
            "x",
            "--db",
            &db,
        ],
        "",
        &[],
    )
    .await;
    assert!(
        !argv.status.success(),
        "a password is never taken from argv"
    );
    let empty = beacon(&["collector", "user", "add", "eve", "--db", &db], "", &[]).await;
    assert!(
        text(&empty).contains("no password given"),
        "{}",
        text(&empty)
    );

    let store = beacon_store::open_store(&db).await.expect("store");
    let hash = store.password_hash("admin").await.unwrap().expect("stored");
    assert!(
        beacon_auth::verify_password(&hash, PASSWORD),
        "stored as an argon2 hash: {hash}"
    );
    assert!(!hash.contains(PASSWORD));

    let passwd = beacon(
        &["collector", "user", "passwd", "admin", "--db", &db],
        "",
        &[("BEACON_CONSOLE_PASSWORD", "the new one")],
    )
    .await;
    assert!(passwd.status.success(), "{}", text(&passwd));
    let hash = store.password_hash("admin").await.unwrap().expect("stored");
    assert!(beacon_auth::verify_password(&hash, "the new one"));
    let list = beacon(&["collector", "user", "list", "--db", &db], "", &[]).await;
    assert_eq!(String::from_utf8_lossy(&list.stdout), "admin\n");
    let remove = beacon(
        &["collector", "user", "remove", "admin", "--db", &db],
        "",
        &[],
    )
    .await;
    assert!(remove.status.success(), "{}", text(&remove));
    let gone = beacon(
        &["collector", "user", "remove", "admin", "--db", &db],
        "",
        &[],
    )
    .await;
    assert!(text(&gone).contains("no console user"), "{}", text(&gone));
    assert_eq!(store.user_names().await.unwrap(), Vec::<String>::new());
}

/// The overview's headline numbers as the page prints them, for the default range.
async fn expected_headlines(db: &str) -> [String; 3] {
    let store = beacon_store::open_store(db).await.expect("store");
    let to = chrono::Utc::now().date_naive();
    let query = beacon_store::AnalyticsQuery {
        from: to - chrono::Days::new(26 * 7 - 1),
        to,
        version: None,
        os: None,
    };
    let overview = store.overview(&query).await.expect("overview");
    let shown = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    let current = &overview.current;
    assert!(
        current.avg_weekly_clusters > 0.0,
        "the seeded history reaches today"
    );
    [
        shown(current.avg_weekly_clusters),
        shown(current.avg_weekly_nodes),
        shown(current.new_nodes as f64),
    ]
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_over_seeded_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_url(dir.path());
    let seed = beacon(
        &[
            "collector",
            "seed-demo-data",
            "--db",
            &db,
            "--reports",
            "6000",
            "--seed",
            "3",
        ],
        "",
        &[],
    )
    .await;
    assert!(seed.status.success(), "{}", text(&seed));
    let add = beacon(
        &["collector", "user", "add", "admin", "--db", &db],
        &format!("{PASSWORD}\n"),
        &[],
    )
    .await;
    assert!(add.status.success(), "{}", text(&add));
    let [clusters, nodes, new_nodes] = expected_headlines(&db).await;

    let mut collector = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args([
            "collector",
            "--listen",
            "127.0.0.1:0",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--db",
            &db,
        ])
        .env("BEACON_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn collector");
    let mut lines = BufReader::new(collector.stdout.take().expect("stdout")).lines();
    let mut next_line = async || {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("start line in time")
            .expect("read stdout")
            .expect("collector running")
    };
    let ingest = next_line().await;
    let console = next_line().await;
    let console_url = console
        .strip_prefix("beacon collector console on ")
        .and_then(|rest| rest.strip_suffix("/console/"))
        .unwrap_or_else(|| panic!("unexpected console line: {console}"))
        .to_owned();
    assert!(
        !ingest.contains(&console_url),
        "the console has its own port: {ingest} / {console}"
    );

    let root = repo_root();
    let output = Command::new("node")
        .arg("tests/browser/console.mjs")
        .current_dir(&root)
        .env("CONSOLE_URL", &console_url)
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("EXPECTED_CLUSTERS", &clusters)
        .env("EXPECTED_NODES", &nodes)
        .env("EXPECTED_NEW_NODES", &new_nodes)
        .env("SCREENSHOT_DIR", root.join("artifacts/screenshots"))
        .output()
        .await
        .expect("run node (install the browser test packages with `bash scripts/setup.sh`)");
    assert!(
        output.status.success(),
        "browser check failed:\n{}",
        text(&output)
    );
    collector.kill().await.expect("stop collector");
}
