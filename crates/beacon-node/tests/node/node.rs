//! The broker node as an operator and a script see it: real MQTT clients, the REST API
//! over real HTTP, restarts on the same data directory.

#[allow(dead_code)] // the broker tests' MQTT client and helpers, of which these use two
#[path = "../../../beacon-broker/tests/broker/common/mod.rs"]
mod mqtt;
use crate::support;

use mqtt::{TestClient, within};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::{Api, PASSWORD, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_data_counts_what_real_clients_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let mqtt = node.mqtt_addr().expect("mqtt listener");
    let api = Api::login(&node).await;

    let mut reader = TestClient::connect(mqtt, "reader-client-7f3a").await;
    reader.subscribe("plant/line1/temp").await;
    reader.subscribe("plant/line2/#").await;
    let mut writer = TestClient::connect(mqtt, "writer-client-9c1d").await;
    writer.publish("plant/line1/temp", "21.5", false).await;
    writer.publish("plant/line2/speed", "3", false).await;
    writer.publish("plant/config/version", "v7", true).await;
    writer.publish("plant/config/owner", "ops", true).await;
    within("two deliveries", async {
        reader.next_publish().await;
        reader.next_publish().await;
    })
    .await;
    let idle = TestClient::connect(mqtt, "idle-client-0b2e").await;

    // The broker counts a connection just after its CONNACK: wait for the third.
    let report = api
        .get_until("/api/v5/telemetry/data", |r| r["num_clients"] == 3)
        .await;
    assert_eq!(report["num_clients"], 3, "{report}");
    assert_eq!(report["mqtt_runtime_insights"]["num_topics"], 2, "{report}");
    assert_eq!(report["advanced_mqtt_features"]["retained"], 2, "{report}");
    assert_eq!(report["messages_received"], 4, "{report}");
    assert_eq!(report["messages_sent"], 2, "{report}");

    // Nothing of what the clients are or did appears in the report, only counts.
    let text = report.to_string();
    for private in [
        "reader-client-7f3a",
        "writer-client-9c1d",
        "idle-client-0b2e",
        "plant/",
        "21.5",
        "ops",
        "127.0.0.1",
    ] {
        assert!(!text.contains(private), "{private:?} leaked into {text}");
    }

    idle.disconnect().await;
    writer.disconnect().await;
    // The broker closes a session just after the client's DISCONNECT: wait for it.
    let report = api
        .get_until("/api/v5/telemetry/data", |r| r["num_clients"] == 1)
        .await;
    assert_eq!(report["num_clients"], 1, "{report}");
    let overview = api.get("/api/v5/overview").await;
    assert_eq!(overview["num_clients"], 1, "{overview}");
    assert_eq!(overview["messages_received"], 4, "{overview}");
    node.shutdown().await;
}

/// EMQX's `GET /api/v5/nodes` on a node that runs alone: itself, running, with its
/// connections; its report names no other node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_lists_itself_in_emqx_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "node.name = \"solo@127.0.0.1\"\n", &[]).await;
    let api = Api::login(&node).await;
    let client = TestClient::connect(node.mqtt_addr().expect("mqtt"), "nodes-client").await;
    let nodes = api
        .get_until("/api/v5/nodes", |n| n[0]["connections"] == 1)
        .await;
    let rows = nodes.as_array().expect("a list");
    assert_eq!(rows.len(), 1, "{nodes}");
    let row = rows[0].as_object().expect("an object");
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["connections", "node", "node_status", "uptime", "version"]
    );
    assert_eq!(row["node"], "solo@127.0.0.1");
    assert_eq!(row["node_status"], "running");
    assert_eq!(row["connections"], 1);
    assert!(row["uptime"].as_u64().is_some_and(|ms| ms > 0), "{nodes}");
    assert_eq!(row["version"], env!("CARGO_PKG_VERSION"));
    let report = api.get("/api/v5/telemetry/data").await;
    assert_eq!(report["nodes_uuid"], json!([]), "{report}");
    assert_eq!(report["num_cluster_sessions"], 1, "{report}");
    client.disconnect().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_api_switches_and_refuses_as_emqx_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let api = Api::login(&node).await;

    let status = api.get("/api/v5/telemetry/status").await;
    assert_eq!(status["enable"], true, "{status}");
    assert_eq!(status["source"], "default", "{status}");
    assert_eq!(status["locked_by"], Value::Null, "{status}");

    let (code, status) = api.put_status(r#"{"enable": false}"#).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    assert_eq!(status["enable"], false);
    assert_eq!(status["source"], "runtime setting");
    assert_eq!(api.get("/api/v5/telemetry/status").await["enable"], false);

    let (code, body) = api.put_status(r#"{"enable": false}"#).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": "BAD_REQUEST", "message": "Telemetry status is already disabled"})
    );

    for (bad, names) in [
        ("{", "not valid JSON"),
        ("[true]", "JSON object"),
        ("{}", "\"enable\" is required"),
        (r#"{"enable": "yes"}"#, "\"enable\" must be true or false"),
        (r#"{"enable": true, "url": "x"}"#, "unknown field \"url\""),
    ] {
        let (code, body) = api.put_status(bad).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["code"], "BAD_REQUEST", "{bad}");
        let message = body["message"].as_str().expect("message");
        assert!(message.contains(names), "{bad}: {message}");
    }

    // The preview is still available while off, and says so.
    let answer = api
        .http
        .get(format!("{}/api/v5/telemetry/data", api.base))
        .bearer_auth(api.token.as_deref().expect("a session"))
        .send()
        .await
        .expect("data");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["x-telemetry-enabled"], "false");

    let (code, status) = api.put_status(r#"{"enable": true}"#).await;
    assert_eq!(code, StatusCode::OK, "{status}");
    assert_eq!(status["enable"], true);
    let (code, body) = api.put_status(r#"{"enable": true}"#).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"code": "BAD_REQUEST", "message": "Telemetry status is already enabled"})
    );
    node.shutdown().await;
}

/// The collector of the test config (port 9) answers nothing: the node keeps its ids and
/// says why; only an administrator may ask at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_api_needs_an_administrator_and_changes_nothing_when_not_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let api = Api::login(&node).await;
    let uuid = api.get("/api/v5/telemetry/status").await["uuid"].clone();
    assert!(uuid.is_string(), "{uuid}");

    let (code, key) = api
        .call(
            Method::POST,
            "/api/v5/api_key",
            Some(r#"{"name": "reader", "role": "viewer"}"#),
        )
        .await;
    assert_eq!(code, StatusCode::CREATED, "{key}");
    let (code, body) = api
        .with_key(&key)
        .call(Method::POST, "/api/v5/telemetry/forget", None)
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");

    let (code, body) = api
        .call(Method::POST, "/api/v5/telemetry/forget", None)
        .await;
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "COLLECTOR_REFUSED", "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("127.0.0.1:9"), "{message}");
    assert_eq!(api.get("/api/v5/telemetry/status").await["uuid"], uuid);
    assert_eq!(api.get("/api/v5/telemetry/data").await["uuid"], uuid);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_without_valid_credentials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let base = format!("http://{}", node.http_addr());
    let http = Client::new();
    let routes = [
        (Method::GET, "/api/v5/telemetry/status"),
        (Method::PUT, "/api/v5/telemetry/status"),
        (Method::GET, "/api/v5/telemetry/data"),
        (Method::GET, "/api/v5/telemetry/sent"),
        (Method::POST, "/api/v5/telemetry/forget"),
        (Method::GET, "/api/v5/overview"),
        (Method::GET, "/api/v5/nodes"),
        (Method::POST, "/api/v5/api_key"),
        (Method::POST, "/api/v5/logout"),
    ];
    // EMQX's codes: which kind of credential failed.
    for (method, path) in &routes {
        for (auth, refused) in [
            (None, "AUTHORIZATION_HEADER_ERROR"),
            (Some("Bearer not-a-session"), "BAD_TOKEN"),
            (Some("Basic YWRtaW46eA=="), "BAD_API_KEY_OR_SECRET"),
        ] {
            let mut request = http.request(method.clone(), format!("{base}{path}"));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let answer = request
                .body("{\"enable\": false}")
                .send()
                .await
                .expect("request");
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}"
            );
            let body: Value = answer.json().await.expect("json");
            assert_eq!(body["code"], refused, "{method} {path} {auth:?}");
        }
    }

    // A wrong user and a wrong password get the very same answer.
    let mut answers = Vec::new();
    for (username, password) in [("admin", "wrong"), ("root", PASSWORD)] {
        let answer = http
            .post(format!("{base}/api/v5/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login");
        answers.push((answer.status(), answer.text().await.expect("body")));
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(
        serde_json::from_str::<Value>(&answers[0].1).expect("json"),
        json!({"code": "BAD_USERNAME_OR_PWD", "message": "Auth failed"})
    );

    // An API key works for scripts; its secret is checked.
    let api = Api::login(&node).await;
    let (code, key) = api
        .call(Method::POST, "/api/v5/api_key", Some(r#"{"name": "ci"}"#))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{key}");
    let (id, secret) = (
        key["api_key"].as_str().unwrap(),
        key["api_secret"].as_str().unwrap(),
    );
    let with_key = |secret: &str| {
        http.get(format!("{base}/api/v5/telemetry/status"))
            .basic_auth(id, Some(secret.to_owned()))
            .send()
    };
    assert_eq!(
        with_key(secret).await.expect("get").status(),
        StatusCode::OK
    );
    assert_eq!(
        with_key("wrong").await.expect("get").status(),
        StatusCode::UNAUTHORIZED
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_survives_a_restart_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path(), "", &[]).await;
    let api = Api::login(&node).await;
    let (code, _) = api.put_status(r#"{"enable": false}"#).await;
    assert_eq!(code, StatusCode::OK);
    node.shutdown().await;

    let node = start(dir.path(), "", &[]).await;
    let api = Api::login(&node).await;
    let status = api.get("/api/v5/telemetry/status").await;
    assert_eq!(status["enable"], false, "{status}");
    assert_eq!(status["source"], "runtime setting", "{status}");
    let (code, _) = api.put_status(r#"{"enable": true}"#).await;
    assert_eq!(code, StatusCode::OK);
    node.shutdown().await;

    let env = [("EMQX_TELEMETRY__ENABLE", "false")];
    let node = start(dir.path(), "", &env).await;
    let api = Api::login(&node).await;
    let status = api.get("/api/v5/telemetry/status").await;
    assert_eq!(status["enable"], false, "{status}");
    assert_eq!(status["source"], "environment EMQX_TELEMETRY__ENABLE");
    assert_eq!(status["locked_by"], "environment EMQX_TELEMETRY__ENABLE");
    let (code, body) = api.put_status(r#"{"enable": true}"#).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("EMQX_TELEMETRY__ENABLE"), "{message}");
    node.shutdown().await;
}
