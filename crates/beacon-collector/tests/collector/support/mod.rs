//! A real collector on 127.0.0.1 (ephemeral port) over a real store, for the tests.

use std::net::SocketAddr;
use std::sync::Arc;

use beacon_collector::{
    BoundCollector, Collector, CollectorConfig, CollectorError, RateLimit, TlsFiles,
};
use beacon_store::testing::TestDb;
use beacon_store::{ReportStore, Store, StoredReport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const JSON: &str = "application/json";

/// A storage backend for one test; the database goes when the value does.
pub struct Backend {
    pub name: &'static str,
    // Declared before the database, so that the store closes first.
    pub store: Arc<dyn Store>,
    _db: TestDb,
}

impl Backend {
    async fn open(db: TestDb) -> Self {
        let store = beacon_store::open_store(db.url())
            .await
            .unwrap_or_else(|error| panic!("open {} store: {error}", db.backend()));
        Self {
            name: db.backend(),
            store,
            _db: db,
        }
    }
}

pub async fn sqlite() -> Backend {
    Backend::open(TestDb::sqlite()).await
}

/// Both backends (PostgreSQL unless explicitly skipped).
pub async fn backends() -> Vec<Backend> {
    let mut all = Vec::new();
    for db in TestDb::each() {
        all.push(Backend::open(db).await);
    }
    all
}

pub fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A self-signed certificate for 127.0.0.1 in PEM files, and a client that trusts only it.
pub struct Https {
    pub files: TlsFiles,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn https() -> Https {
    let dir = tempfile::tempdir().expect("temp dir");
    let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, issued.cert.pem()).expect("write cert");
    std::fs::write(&key, issued.signing_key.serialize_pem()).expect("write key");
    let trusted = reqwest::Certificate::from_pem(issued.cert.pem().as_bytes()).expect("pem");
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([trusted])
        .build()
        .expect("https client");
    Https {
        files: TlsFiles { cert, key },
        client,
        _dir: dir,
    }
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

    /// A collector as [`Running::start`] makes it, over a fresh SQLite store that lives as
    /// long as the returned backend.
    pub async fn on_sqlite() -> (Backend, Self) {
        let backend = sqlite().await;
        let running = Self::start(backend.store.clone()).await;
        (backend, running)
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

    /// The report stored for `uuid` on `day`; fails the test when there is none.
    pub async fn stored(&self, uuid: &str, day: chrono::NaiveDate) -> StoredReport {
        let read = self.store.get(uuid, day).await.expect("read the store");
        read.unwrap_or_else(|| panic!("no report of {uuid} on {day} stored"))
    }

    /// The answer to `GET path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let url = self.url(path);
        let sent = self.client.get(&url).send().await;
        sent.unwrap_or_else(|error| panic!("GET {url}: {error}"))
    }

    /// The Prometheus text of `/metrics`, after checking it answered 200.
    pub async fn metrics(&self) -> String {
        let response = self.get("/metrics").await;
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
