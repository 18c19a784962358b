//! Starting a node for a test: ephemeral ports, a known admin password, and telemetry
//! that never sends during the test; and calling its REST API as the admin or a key.

use std::path::Path;
use std::time::Duration;

use beacon_config::Config;
use beacon_node::{Node, NodeOptions, RunningNode};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "test-admin-password";

/// A node on ephemeral ports with `extra` config and `env` as its environment.
pub async fn start(dir: &Path, extra: &str, env: &[(&str, &str)]) -> RunningNode {
    let text = format!(
        "listeners.tcp.default.bind = \"127.0.0.1:0\"\n\
         dashboard.listeners.http.bind = \"127.0.0.1:0\"\n\
         dashboard.default_password = \"{PASSWORD}\"\n\
         telemetry.url = \"http://127.0.0.1:9/api/telemetry\"\n\
         telemetry.initial_delay = 1h\n{extra}"
    );
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let config = Config::from_str(&text, &dir.join("emqx.conf"), env).expect("test config");
    Node::start(NodeOptions {
        config,
        data_dir: dir.join("data"),
        do_not_track: None,
    })
    .await
    .expect("node starts")
}

/// The REST API of one node, called with the admin's session token or an API key.
pub struct Api {
    pub base: String,
    pub http: Client,
    pub token: Option<String>,
    key: Option<(String, String)>,
}

impl Api {
    /// Signs in as the admin.
    pub async fn login(node: &RunningNode) -> Api {
        let base = format!("http://{}", node.http_addr());
        let http = Client::new();
        let answer = http
            .post(format!("{base}/api/v5/login"))
            .json(&json!({"username": "admin", "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(answer.status(), StatusCode::OK);
        let token = answer.json::<Value>().await.expect("json")["token"]
            .as_str()
            .expect("token")
            .to_owned();
        Api {
            base,
            http,
            token: Some(token),
            key: None,
        }
    }

    /// The same node called with API key `key` and its `secret` instead.
    pub fn with_key(&self, key: &Value) -> Api {
        let text = |field: &str| key[field].as_str().expect(field).to_owned();
        Api {
            base: self.base.clone(),
            http: self.http.clone(),
            token: None,
            key: Some((text("api_key"), text("api_secret"))),
        }
    }

    /// `request` with this caller's credentials.
    pub fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        match (&self.token, &self.key) {
            (Some(token), _) => request.bearer_auth(token),
            (None, Some((key, secret))) => request.basic_auth(key, Some(secret)),
            (None, None) => request,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request =
            self.authorized(self.http.request(method, format!("{}{path}", self.base)));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let answer = request.send().await.expect("request");
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// GETs `path` until `done` holds (or a minute passes) and returns the last answer.
    pub async fn get_until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let body = self.get(path).await;
            if done(&body) || tokio::time::Instant::now() >= deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn put_status(&self, body: &str) -> (StatusCode, Value) {
        self.call(Method::PUT, "/api/v5/telemetry/status", Some(body))
            .await
    }
}
