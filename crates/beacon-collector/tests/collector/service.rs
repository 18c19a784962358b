//! The collector as a service: rate limiting, TLS, discard mode, storage failures.

use crate::support;

use std::sync::Arc;

use beacon_collector::{CollectorConfig, IngestMode, RateLimit, TlsFiles};
use beacon_report::fixtures::SEED_5_0_9;
use beacon_store::testing::TestDb;
use beacon_store::{InsertOutcome, NewReport, ReportStore, StoreError, StoreStats, StoredReport};
use chrono::NaiveDate;
use support::{Running, client, json_of, local, seed_with};

#[tokio::test]
async fn a_source_over_its_budget_gets_429_with_retry_after() {
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.rate_limit = RateLimit::per_minute(3);
    let collector = Running::with_config(backend.store.clone(), config, client()).await;
    for n in 0..3 {
        let uuid = format!("11111111-2222-4333-8444-00000000000{n}");
        assert_eq!(collector.post_json(seed_with(&uuid, n)).await.status(), 201);
    }
    let response = collector.post_json(SEED_5_0_9).await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "RATE_LIMITED");
    assert!((1..=60).contains(&retry_after), "retry after {retry_after}");
    assert_eq!(collector.store.count().await.expect("count"), 3);
    // Health and metrics are not part of the ingest budget.
    let health = collector.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let text = collector.metrics().await;
    assert!(
        text.contains("beacon_collector_reports_rejected_total{reason=\"RATE_LIMITED\"} 1"),
        "{text}"
    );
    collector.stop().await;
}

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let https = support::https();
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.tls = Some(https.files.clone());
    let collector = Running::with_config(backend.store.clone(), config, https.client).await;
    assert!(
        collector.base.starts_with("https://127.0.0.1:"),
        "{}",
        collector.base
    );
    let (status, body) = json_of(collector.post_json(SEED_5_0_9).await).await;
    assert_eq!(status, 201, "{body}");
    let plain = client()
        .get(collector.url("/healthz").replace("https", "http"))
        .send()
        .await;
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP must not be served"
    );
    collector.stop().await;
}

#[tokio::test]
async fn missing_tls_files_are_named() {
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.tls = Some(TlsFiles {
        cert: "/nonexistent/cert.pem".into(),
        key: "/nonexistent/key.pem".into(),
    });
    let err = beacon_collector::Collector::bind(config, backend.store.clone())
        .await
        .expect_err("no such files");
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}

#[tokio::test]
async fn discard_mode_validates_but_stores_nothing() {
    let backend = support::sqlite().await;
    let mut config = CollectorConfig::new(local());
    config.mode = IngestMode::Discard;
    let collector = Running::with_config(backend.store.clone(), config, client()).await;
    let (status, body) = json_of(collector.post_json(SEED_5_0_9).await).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(collector.post_json("[]").await.status(), 400);
    assert_eq!(backend.store.count().await.expect("count"), 0);
    collector.stop().await;
}

/// A store whose writer has stopped: every call fails as the real ones do then.
struct ClosedStore;

#[async_trait::async_trait]
impl ReportStore for ClosedStore {
    async fn insert(&self, _: NewReport) -> Result<InsertOutcome, StoreError> {
        Err(StoreError::Closed)
    }
    async fn get(&self, _: &str, _: NaiveDate) -> Result<Option<StoredReport>, StoreError> {
        Err(StoreError::Closed)
    }
    async fn list(&self, _: NaiveDate, _: NaiveDate) -> Result<Vec<StoredReport>, StoreError> {
        Err(StoreError::Closed)
    }
    async fn count(&self) -> Result<u64, StoreError> {
        Err(StoreError::Closed)
    }
    async fn health(&self) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }
    async fn settle(&self) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }
    async fn close(&self) -> Result<(), StoreError> {
        Err(StoreError::Closed)
    }
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }
    fn backend(&self) -> &'static str {
        "closed"
    }
}

#[tokio::test]
async fn a_failing_store_gives_503_never_2xx() {
    let collector = Running::start(Arc::new(ClosedStore)).await;
    let response = collector.post_json(SEED_5_0_9).await;
    // A sender must be told when to ask again, not left to guess whether to retry.
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "STORAGE_UNAVAILABLE");
    let response = collector.get("/healthz").await;
    assert_eq!(response.headers()["retry-after"], "5");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["backend"], "closed");
    collector.stop().await;
}

#[tokio::test]
async fn postgres_losing_its_tables_gives_503() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let store = beacon_store::open(db.url())
        .await
        .expect("open postgres store");
    let collector = Running::start(store).await;
    db.drop_schema().await.expect("drop the store's schema");
    let (status, body) = json_of(collector.post_json(SEED_5_0_9).await).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "STORAGE_UNAVAILABLE");
    collector.stop().await;
}

#[tokio::test]
async fn a_nul_character_is_refused_with_its_field() {
    let (_backend, collector) = Running::on_sqlite().await;
    let body = SEED_5_0_9.replace("\"macOS\"", "\"mac\\u0000OS\"");
    let (status, answer) = json_of(collector.post_json(body).await).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("os_name"),
        "{answer}"
    );
    collector.stop().await;
}
