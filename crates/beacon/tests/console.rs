//! The collector's console through the real binary: admins managed with
//! `beacon collector user`, history from `seed-demo-data`, the console on its own
//! `--dashboard-listen` address, driven by headless Chromium (`tests/browser/console.mjs`).

use std::process::{Output, Stdio};
use std::time::Duration;

use beacon_store::testing::TestDb;
use support::launch::run_browser_check;
use support::{beacon, next_line, spawn_reading, text};
use tokio::io::AsyncWriteExt;

mod support;

const PASSWORD: &str = "a long console password";

/// Runs `beacon ARGS` with `stdin` piped in.
async fn beacon_with(args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
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

/// `beacon collector user ARGS --db DB` with `stdin` piped in.
async fn user(db: &str, args: &[&str], stdin: &str) -> Output {
    let mut all = vec!["collector", "user"];
    all.extend(args);
    all.extend(["--db", db]);
    beacon_with(&all, stdin, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_subcommands_manage_console_admins_in_the_database() {
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    let add = user(&db, &["add", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(add.status.success(), "{}", text(&add));
    let again = user(&db, &["add", "admin"], "other\n").await;
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    let bad_name = user(&db, &["add", "a b"], "pw\n").await;
    assert!(text(&bad_name).contains("user name"), "{}", text(&bad_name));
    let argv = user(&db, &["add", "eve", "--password", "x"], "").await;
    assert!(
        !argv.status.success(),
        "a password is never taken from argv"
    );
    let empty = user(&db, &["add", "eve"], "").await;
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

    let passwd = beacon_with(
        &["collector", "user", "passwd", "admin", "--db", &db],
        "",
        &[("BEACON_CONSOLE_PASSWORD", "the new one")],
    )
    .await;
    assert!(passwd.status.success(), "{}", text(&passwd));
    let hash = store.password_hash("admin").await.unwrap().expect("stored");
    assert!(beacon_auth::verify_password(&hash, "the new one"));
    let list = user(&db, &["list"], "").await;
    assert_eq!(String::from_utf8_lossy(&list.stdout), "admin\n");
    let remove = user(&db, &["remove", "admin"], "").await;
    assert!(remove.status.success(), "{}", text(&remove));
    let gone = user(&db, &["remove", "admin"], "").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_over_seeded_history() {
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    let seed = beacon_with(
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
    let add = user(&db, &["add", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(add.status.success(), "{}", text(&add));
    let [clusters, nodes, new_nodes] = expected_headlines(&db).await;

    let (mut collector, mut lines) = spawn_reading(
        beacon(&[
            "collector",
            "--listen",
            "127.0.0.1:0",
            "--dashboard-listen",
            "127.0.0.1:0",
            "--db",
            &db,
        ])
        .stdin(Stdio::null()),
    );
    let mut next_line = async || {
        next_line(&mut lines, Duration::from_secs(30))
            .await
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

    run_browser_check(
        "console.mjs",
        &[
            ("CONSOLE_URL", &console_url),
            ("ADMIN_PASSWORD", PASSWORD),
            ("EXPECTED_CLUSTERS", &clusters),
            ("EXPECTED_NODES", &nodes),
            ("EXPECTED_NEW_NODES", &new_nodes),
        ],
    )
    .await;
    collector.kill().await.expect("stop collector");
}
