//! The node's dashboard and files under abuse: file modes, bounded password checks,
//! sign-in throttling, Host checks, weak passwords, API key scopes.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use beacon_config::Config;
use beacon_node::{Node, NodeOptions};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::{Api, PASSWORD, start};

fn mode(path: &Path) -> u32 {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    metadata.permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_secrets_and_settings_are_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let api = Api::login(&node).await;
    let (code, body) = api.put_status(r#"{"enable": false}"#).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let data = dir.path().join("data");
    for file in [
        "node.uuid",
        "cluster.uuid",
        "telemetry/deletion.secret",
        "telemetry/runtime.json",
        "dashboard/accounts.json",
        "dashboard/local-api.json",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_dashboard_names_are_answered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "dashboard.listeners.http.allowed_hosts = [\"broker.example.com\"]";
    let node = start(dir.path(), extra, &[]).await;
    let base = format!("http://{}", node.http_addr());
    let port = node.http_addr().port();
    let http = Client::new();
    // A page of evil.example rebound to 127.0.0.1 sends its own name.
    for path in ["/", "/api/v5/login", "/api/v5/telemetry/status"] {
        let answer = http
            .post(format!("{base}{path}"))
            .header("host", format!("evil.example:{port}"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
        let body: Value = answer.json().await.expect("json error");
        assert_eq!(body["code"], "BAD_HOST", "{body}");
        let message = body["message"].as_str().expect("message");
        assert!(
            message.contains("dashboard.listeners.http.allowed_hosts"),
            "{message}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("broker.example.com:{port}"),
    ] {
        let answer = http
            .post(format!("{base}/api/v5/login"))
            .header("host", &host)
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(answer.status(), StatusCode::OK, "{host}");
    }
    node.shutdown().await;
}

/// Why `Node::start` refuses `config_text` with `env`.
async fn refusal(dir: &Path, config_text: &str, env: &[(&str, &str)]) -> String {
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let config = Config::from_str(config_text, &dir.join("emqx.conf"), env).expect("config");
    match Node::start(NodeOptions {
        config,
        data_dir: dir.join("data"),
        do_not_track: None,
    })
    .await
    {
        Ok(node) => {
            node.shutdown().await;
            panic!("the node started with {config_text:?}");
        }
        Err(error) => error.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_default_password_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = "listeners.tcp.default.bind = \"127.0.0.1:0\"\n\
                dashboard.listeners.http.bind = \"127.0.0.1:0\"\n\
                telemetry.enable = false\n";
    let in_file = format!("{base}dashboard.default_password = \"public\"\n");
    let message = refusal(dir.path(), &in_file, &[]).await;
    assert!(message.contains("dashboard.default_password"), "{message}");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("12 characters"), "{message}");

    let env = [("EMQX_DASHBOARD__DEFAULT_PASSWORD", "eleven-char")];
    let message = refusal(dir.path(), base, &env).await;
    assert!(
        message.contains("EMQX_DASHBOARD__DEFAULT_PASSWORD"),
        "{message}"
    );
    assert!(
        !message.contains("eleven-char"),
        "the password is not shown: {message}"
    );
    assert!(
        !dir.path().join("data/dashboard/accounts.json").exists(),
        "no account was made with it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_listed_revoked_expire_and_keep_to_their_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let admin = Api::login(&node).await;
    let create = |body: Value| {
        let admin = &admin;
        async move {
            let body = body.to_string();
            admin
                .call(Method::POST, "/api/v5/api_key", Some(&body))
                .await
        }
    };
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (code, viewer) =
        create(json!({"name": "grafana", "role": "viewer", "expired_at": in_an_hour})).await;
    assert_eq!(code, StatusCode::CREATED, "{viewer}");
    assert_eq!(viewer["role"], "viewer");
    let (code, body) = create(json!({"name": "grafana"})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "same name twice: {body}");
    let (code, body) = create(json!({"name": "old", "expired_at": 1_000_000_000})).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "expiry in the past: {body}");

    // A monitoring key reads, and can neither switch telemetry nor touch keys.
    let monitor = admin.with_key(&viewer);
    monitor.get("/api/v5/telemetry/status").await;
    monitor.get("/api/v5/telemetry/data").await;
    let (code, body) = monitor.put_status(r#"{"enable": false}"#).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "FORBIDDEN");
    let escalate = Some(r#"{"name": "escalated"}"#);
    let (code, _) = monitor
        .call(Method::POST, "/api/v5/api_key", escalate)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "a viewer creates no key");
    let (code, _) = monitor.call(Method::GET, "/api/v5/api_key", None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);

    let list = admin.get("/api/v5/api_key").await;
    let keys = list.as_array().expect("a list");
    let names: Vec<&str> = keys
        .iter()
        .map(|k| k["name"].as_str().expect("name"))
        .collect();
    assert!(
        names.contains(&"grafana") && names.contains(&"local cli"),
        "{list}"
    );
    assert!(
        !list.to_string().contains("secret"),
        "no secret listed: {list}"
    );
    let grafana = keys
        .iter()
        .find(|k| k["name"] == "grafana")
        .expect("grafana");
    assert_eq!(grafana["role"], "viewer");
    assert_eq!(grafana["expired"], false);
    assert!(grafana["expired_at"].is_string(), "{grafana}");

    let revoke = "/api/v5/api_key/grafana";
    let (code, _) = admin.call(Method::DELETE, revoke, None).await;
    assert_eq!(code, StatusCode::NO_CONTENT);
    let (code, body) = monitor.call(Method::GET, "/api/v5/overview", None).await;
    assert_eq!(
        code,
        StatusCode::UNAUTHORIZED,
        "a revoked key stops at once: {body}"
    );
    let (code, body) = admin.call(Method::DELETE, revoke, None).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");

    // A key past its expiry is refused, though its secret is right.
    let soon = chrono::Utc::now().timestamp() + 2;
    let (code, short) = create(json!({"name": "short-lived", "expired_at": soon})).await;
    assert_eq!(code, StatusCode::CREATED, "{short}");
    let short_lived = admin.with_key(&short);
    short_lived.get("/api/v5/overview").await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (code, body) = short_lived
        .call(Method::GET, "/api/v5/overview", None)
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["message"], "API key expired");
    node.shutdown().await;
}
