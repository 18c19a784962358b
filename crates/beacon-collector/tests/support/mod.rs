//! A real collector on 127.0.0.1 (ephemeral port) over a real store, for the tests.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::net::SocketAddr;
use std::sync::Arc;

use beacon_collector::{BoundCollector, Collector, CollectorConfig, CollectorError, RateLimit};
use beacon_store::{ReportStore, Store};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const JSON: &str = "application/json";

/// A storage backend for one test, kept alive (temp dir) as long as the value lives.
pub struct Backend {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    url: String,
    _dir: Option<TempDir>,
}

impl Backend {
    /// Closes the store and drops a PostgreSQL test schema.
    pub async fn finish(self) {
        drop(self.store);
        if self.name == "postgres" {
            beacon_store::testing::drop_postgres_schema(&self.url)
                .await
                .expect("drop test schema");
        }
    }
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = beacon_store::testing::sqlite_url(dir.path()).await;
    let store = beacon_store::open_store(&url)
        .await
        .expect("open sqlite store");
    Backend {
        name: "sqlite",
        store,
        url,
        _dir: Some(dir),
    }
}

/// PostgreSQL in a fresh schema; `None` only when BEACON_SKIP_POSTGRES=1.
pub async fn postgres() -> Option<Backend> {
    let url = beacon_store::testing::postgres_url().await?;
    let store = beacon_store::open_store(&url)
        .await
        .expect("open postgres store");
    Some(Backend {
        name: "postgres",
        store,
        url,
        _dir: None,
    })
}

/// Both backends (PostgreSQL unless explicitly skipped).
pub async fn backends() -> Vec<Backend> {
    let mut all = vec![sqlite().await];
    all.extend(postgres().await);
    all
}

pub fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

/// A collector serving in a task of the test's runtime.
pub struct Running {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn ReportStore>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), CollectorError>>,
}

impl Running {
    pub async fn start(store: Arc<dyn ReportStore>) -> Self {
        let mut config = CollectorConfig::new(local());
        config.rate_limit = RateLimit::disabled();
        Self::with_config(store, config, client()).await
    }

    pub async fn with_config(
        store: Arc<dyn ReportStore>,
        config: CollectorConfig,
        client: reqwest::Client,
    ) -> Self {
        let bound = Collector::bind(config, Arc::clone(&store))
            .await
            .expect("bind collector");
        Self::serving(bound, store, client)
    }

    /// A collector with the whole store: deletion and retention (after `retention_days`).
    pub async fn with_maintenance(store: Arc<dyn Store>, retention_days: Option<u32>) -> Self {
        let mut config = CollectorConfig::new(local());
        config.rate_limit = RateLimit::disabled();
        config.retention_days = retention_days;
        let bound = Collector::bind_store(config, Arc::clone(&store))
            .await
            .expect("bind collector");
        Self::serving(bound, store, client())
    }

    fn serving(
        bound: BoundCollector,
        store: Arc<dyn ReportStore>,
        client: reqwest::Client,
    ) -> Self {
        let base = bound.url();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            client,
            store,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/api/telemetry"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("post report")
    }

    pub async fn post_json(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post(JSON, body).await
    }

    /// The Prometheus text of `/metrics`, after checking it answered 200.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("get metrics");
        assert_eq!(response.status(), 200);
        response.text().await.expect("metrics text")
    }

    /// Shuts down gracefully and checks the server ended without error.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .expect("collector task")
            .expect("collector served without error");
    }
}

/// Status and parsed JSON body of a response.
pub async fn json_of(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"));
    (status, value)
}

/// The seed report with another node uuid and `messages_received` value.
pub fn seed_with(uuid: &str, messages_received: u64) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(beacon_report::fixtures::SEED_5_0_9).expect("seed is JSON");
    doc["uuid"] = uuid.into();
    doc["messages_received"] = messages_received.into();
    doc.to_string()
}

pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}
