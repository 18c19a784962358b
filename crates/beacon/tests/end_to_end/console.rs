//! The collector's console through the real binary: admins managed with
//! `beacon collector user`, history from `seed-demo-data`, the console on its own
//! `--dashboard-listen` address, driven by headless Chromium (`tests/browser/console.mjs`).

use std::process::{Output, Stdio};
use std::time::Duration;

use beacon_store::testing::TestDb;
use serde_json::Value;
use support::launch::run_browser_check;
use support::{beacon, next_line, spawn_reading, terminate, text};

use crate::support;

const PASSWORD: &str = "a long console password";

/// `beacon collector user ARGS --db DB` with `stdin` piped in.
async fn user(db: &str, args: &[&str], stdin: &str) -> Output {
    let mut all = vec!["collector", "user"];
    all.extend(args);
    all.extend(["--db", db]);
    support::beacon_with(&all, stdin, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_subcommands_manage_console_admins_in_the_database() {
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    let add = user(&db, &["add", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(add.status.success(), "{}", text(&add));
    let again = user(&db, &["add", "admin"], "another long password\n").await;
    assert!(!again.status.success());
    assert!(text(&again).contains("exists already"), "{}", text(&again));
    let short = user(&db, &["add", "eve"], "eleven char\n").await;
    assert!(!short.status.success());
    assert!(
        text(&short).contains("at least 12"),
        "a short password is refused with the rule: {}",
        text(&short)
    );
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

    let passwd = support::beacon_with(
        &["collector", "user", "passwd", "admin", "--db", &db],
        "",
        &[("BEACON_CONSOLE_PASSWORD", "the new one, longer")],
    )
    .await;
    assert!(passwd.status.success(), "{}", text(&passwd));
    let hash = store.password_hash("admin").await.unwrap().expect("stored");
    assert!(beacon_auth::verify_password(&hash, "the new one, longer"));
    let short = support::beacon_with(
        &["collector", "user", "passwd", "admin", "--db", &db],
        "",
        &[("BEACON_CONSOLE_PASSWORD", "too short")],
    )
    .await;
    assert!(text(&short).contains("at least 12"), "{}", text(&short));
    let kept = store.password_hash("admin").await.unwrap().expect("stored");
    assert_eq!(kept, hash, "a refused password changes nothing");
    let list = user(&db, &["list"], "").await;
    assert_eq!(String::from_utf8_lossy(&list.stdout), "admin\n");
    let remove = user(&db, &["remove", "admin"], "").await;
    assert!(remove.status.success(), "{}", text(&remove));
    let gone = user(&db, &["remove", "admin"], "").await;
    assert!(text(&gone).contains("no console user"), "{}", text(&gone));
    assert_eq!(store.user_names().await.unwrap(), Vec::<String>::new());
}

/// `beacon collector` over `db` with `extra` arguments, ingest and the console each on
/// an ephemeral loopback port.
fn collector(db: &str, extra: &[&str]) -> tokio::process::Command {
    let mut command = beacon(&[
        "collector",
        "--listen",
        "127.0.0.1:0",
        "--dashboard-listen",
        "127.0.0.1:0",
        "--db",
        db,
    ]);
    command.args(extra);
    command
}

/// The overview's headline numbers as the page prints them, for the default range:
/// computed here from the weekly activity, over complete weeks only.
async fn expected_headlines(db: &str) -> [String; 3] {
    let store = beacon_store::open_store(db).await.expect("store");
    let to = chrono::Utc::now().date_naive();
    let query = beacon_store::AnalyticsQuery {
        from: to - chrono::Days::new(26 * 7 - 1),
        to,
        version: None,
        os: None,
    };
    let weeks = store.activity(&query).await.expect("activity");
    let (ended, in_progress): (Vec<&beacon_store::WeekActivity>, Vec<_>) =
        weeks.iter().partition(|w| w.complete);
    assert_eq!(
        in_progress.len(),
        1,
        "the default range ends in the week in progress"
    );
    assert!(
        ended.iter().any(|w| w.clusters > 0),
        "the seeded history is counted"
    );
    let average = |of: fn(&beacon_store::WeekActivity) -> u64| {
        ended.iter().map(|w| of(w)).sum::<u64>() as f64 / ended.len() as f64
    };
    let shown = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    [
        shown(average(|w| w.clusters)),
        shown(average(|w| w.nodes)),
        ended.iter().map(|w| w.new_nodes).sum::<u64>().to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_over_seeded_history() {
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    let seed = support::beacon_with(
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

    let (mut collector, mut lines) = spawn_reading(collector(&db, &[]).stdin(Stdio::null()));
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

/// A report of a node of its own cluster, running `version` on `os`.
fn report(version: &str, os: &str) -> String {
    let mut doc: Value =
        serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed is JSON");
    doc["uuid"] = uuid::Uuid::new_v4().to_string().into();
    doc["cluster_uuid"] = uuid::Uuid::new_v4().to_string().into();
    doc["emqx_version"] = version.into();
    doc["os_name"] = os.into();
    doc.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_in_reports_renders_as_text_on_every_console_page() {
    const HOSTILE: &str =
        r#"<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"#;
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    let add = user(&db, &["add", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(add.status.success(), "{}", text(&add));
    let (mut collector, ingest, console) =
        support::collector_started(collector(&db, &[]).stdin(Stdio::null())).await;

    // Three clusters: enough cluster-weeks for the filter lists to offer the values.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for _ in 0..3 {
        let mut doc: Value = serde_json::from_str(&report(HOSTILE, HOSTILE)).expect("JSON");
        doc["os_version"] = HOSTILE.into();
        let answer = client
            .post(format!("{ingest}/api/telemetry"))
            .header("content-type", "application/json")
            .body(doc.to_string())
            .send()
            .await
            .expect("post report");
        assert!(answer.status().is_success(), "{}", answer.status());
    }

    run_browser_check(
        "hostile.mjs",
        &[
            ("CONSOLE_URL", &console),
            ("ADMIN_PASSWORD", PASSWORD),
            ("HOSTILE_TEXT", HOSTILE),
        ],
    )
    .await;
    terminate(&mut collector).await;
}

/// Posts the login form as `user`; the session cookie it set, empty when refused.
async fn sign_in(client: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let page = client
        .get(format!("{base}/console/login"))
        .send()
        .await
        .expect("login page");
    let form_cookie = set_cookie(&page, "beacon_console_login").expect("login form cookie");
    let html = page.text().await.expect("login html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf field")
        .to_owned();
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let body = format!(
        "username={}&password={}&csrf={}",
        encode(user),
        encode(password),
        encode(&csrf)
    );
    let answer = client
        .post(format!("{base}/console/login"))
        .header("cookie", form_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("post login");
    set_cookie(&answer, "beacon_console").unwrap_or_default()
}

/// `name=value` of the cookie called `name` that `response` sets.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&prefix))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_sent_by_anyone_floods_neither_the_filter_lists_nor_the_log() {
    let test_db = TestDb::sqlite();
    let db = test_db.url().to_owned();
    let add = user(&db, &["add", "admin"], &format!("{PASSWORD}\n")).await;
    assert!(add.status.success(), "{}", text(&add));
    let logs = tempfile::tempdir().expect("log dir");
    let log_path = logs.path().join("collector.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (mut collector, ingest, console) = support::collector_started(
        collector(&db, &["--rate-limit-per-minute", "0"])
            .env("BEACON_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::from(log)),
    )
    .await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = async |body: String| {
        let answer = client
            .post(format!("{ingest}/api/telemetry"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post report");
        assert!(answer.status().is_success(), "{}", answer.status());
    };
    for _ in 0..3 {
        post(report("5.0.9", "Linux")).await;
    }
    let padding = "x".repeat(900);
    for i in 0..200 {
        post(report(
            &format!("9.{i}.0-junk{padding}"),
            &format!("junk-os-{i}"),
        ))
        .await;
    }

    let typed = "nobody\nFORGED console: logged in user=admin";
    assert!(
        sign_in(&client, &console, typed, "wrong password")
            .await
            .is_empty()
    );
    let session = sign_in(&client, &console, "admin", PASSWORD).await;
    assert!(!session.is_empty(), "admin signs in");
    let page = client
        .get(format!("{console}/console/overview"))
        .header("cookie", &session)
        .send()
        .await
        .expect("overview page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let select = |id: &str| {
        let start = html
            .find(&format!("id=\"{id}\">"))
            .unwrap_or_else(|| panic!("no #{id}"));
        let options = &html[start..];
        options[..options.find("</select>").expect("select ends")].to_owned()
    };
    let (versions, os) = (select("filter-version"), select("filter-os"));
    assert!(versions.contains("<option value=\"5.0.9\">"), "{versions}");
    assert!(os.contains("<option value=\"Linux\">"), "{os}");
    assert!(
        !versions.contains("junk") && !os.contains("junk"),
        "junk is offered ({} + {} bytes of options)",
        versions.len(),
        os.len()
    );
    assert!(
        html.len() < 32 * 1024,
        "the page stays small: {} bytes",
        html.len()
    );

    terminate(&mut collector).await;
    let logged = std::fs::read_to_string(&log_path).expect("read log");
    assert!(
        logged.contains(r#"user="nobody\nFORGED"#),
        "the typed name is logged quoted and escaped:\n{logged}"
    );
    assert!(
        !logged.lines().any(|line| line.starts_with("FORGED")),
        "no forged line:\n{logged}"
    );
}
