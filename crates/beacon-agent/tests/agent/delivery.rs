//! Delivery: TLS with a private CA to the real collector, refusals, retries and backoff,
//! the persisted schedule, and the sent log.

use std::sync::Arc;
use std::time::Duration;

use beacon_agent::{MAX_ATTEMPTS_PER_PERIOD, SENT_LOG_CAPACITY, read_sent_log, read_status};
use beacon_collector::{BoundCollector, Collector, CollectorConfig, RateLimit, TlsFiles};
use beacon_config::Config;
use beacon_store::ReportStore;
use beacon_store::testing::TestDb;
use chrono::{TimeDelta, Utc};
use tokio::sync::oneshot;

use crate::support::{
    FakeCollector, Reply, TestCa, capture_logs, fast, settings, start, started_and_reported,
    wait_until, wait_until_async,
};

#[path = "../../../../tests/ports.rs"]
mod ports;
use ports::cluster_ports;

const NOT_DELIVERED: &str = "telemetry report not delivered";

/// The real collector, serving until dropped.
struct RealCollector {
    store: Arc<dyn ReportStore>,
    base: String,
    _stop: oneshot::Sender<()>,
    _db: TestDb,
}

impl RealCollector {
    async fn start(listener: Option<std::net::SocketAddr>, tls: Option<TlsFiles>) -> Self {
        let db = TestDb::sqlite();
        let store = beacon_store::open(db.url()).await.expect("store");
        let mut config = CollectorConfig::new(listener.unwrap_or(([127, 0, 0, 1], 0).into()));
        config.tls = tls;
        config.rate_limit = RateLimit::disabled();
        let bound: BoundCollector = Collector::bind(config, store.clone()).await.expect("bind");
        let base = bound.url();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        Self {
            store,
            base,
            _stop: stop,
            _db: db,
        }
    }

    fn url(&self) -> String {
        format!("{}/api/telemetry", self.base)
    }

    async fn count(&self) -> u64 {
        self.store.count().await.expect("count")
    }
}

#[tokio::test]
async fn report_arrives_over_tls_with_a_private_ca_and_is_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("Beacon test CA");
    let (cert, key) = ca.issue_server(dir.path(), "collector");
    let collector = RealCollector::start(None, Some(TlsFiles { cert, key })).await;
    assert!(collector.url().starts_with("https://127.0.0.1:"));
    let ca_file = ca.write(dir.path(), "ca.pem");
    let mut settings = fast(&collector.url(), "1h");
    settings.ca_file = Some(ca_file);
    let data = dir.path().join("data");
    let agent = start(settings, &data);
    let preview = agent.preview();

    wait_until_async("the report is stored", || async {
        collector.count().await == 1
    })
    .await;
    let today = Utc::now().date_naive();
    let stored = collector
        .store
        .list(today - TimeDelta::days(1), today + TimeDelta::days(1))
        .await
        .expect("list");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].uuid, preview.uuid);
    assert_eq!(
        stored[0].cluster_uuid.as_ref(),
        preview.cluster_uuid.as_ref()
    );
    let raw: serde_json::Value = serde_json::from_str(&stored[0].raw).expect("raw json");
    assert_eq!(raw["uuid"], preview.uuid.as_str());
    assert_eq!(raw["otp_version"], "none");

    wait_until("the answer is recorded", || {
        agent.status().last_report_at.is_some()
    })
    .await;
    let log = agent.sent_log();
    assert_eq!(log.len(), 1);
    assert!(
        log[0].accepted && (200..300).contains(&log[0].status),
        "{log:?}"
    );
    assert_eq!(log[0].report["uuid"], preview.uuid.as_str());
    agent.shutdown().await;
    assert_eq!(read_sent_log(&data).expect("read"), log);
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused_and_logged_once() {
    let (logs, _guard) = capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let trusted = TestCa::new("Trusted CA");
    let other = TestCa::new("Other CA");
    let (cert, key) = other.issue_server(dir.path(), "collector");
    let collector = RealCollector::start(None, Some(TlsFiles { cert, key })).await;
    let mut settings = fast(&collector.url(), "8s");
    settings.ca_file = Some(trusted.write(dir.path(), "ca.pem"));
    let agent = start(settings, &dir.path().join("data"));

    wait_until("several refused attempts", || {
        agent.status().consecutive_failures >= 3
    })
    .await;
    let status = agent.status();
    let error = status.last_error.clone().expect("an error is shown");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(status.last_report_at, None);
    assert_eq!(logs.count("WARN", NOT_DELIVERED), 1, "{}", logs.text());
    assert!(agent.sent_log().is_empty(), "nothing left the machine");
    assert_eq!(collector.count().await, 0);
    agent.shutdown().await;
}

#[tokio::test]
async fn collector_down_then_up_gets_the_report_once() {
    let (logs, _guard) = capture_logs();
    // Free now, and drawn below the ephemeral range, so that no other test's outgoing
    // connection takes it before the collector starts on it (a cluster port is such a
    // port).
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], cluster_ports(1)[0]));
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(
        fast(&format!("http://{addr}/api/telemetry"), "8s"),
        dir.path(),
    );
    wait_until("two refused connections", || {
        agent.status().consecutive_failures >= 2
    })
    .await;

    let collector = RealCollector::start(Some(addr), None).await;
    wait_until("delivery", || agent.status().last_report_at.is_some()).await;
    assert_eq!(collector.count().await, 1);
    let status = agent.status();
    assert_eq!((status.consecutive_failures, status.last_error), (0, None));
    assert_eq!(
        agent.sent_log().len(),
        1,
        "one request reached the collector"
    );
    assert_eq!(logs.count("WARN", NOT_DELIVERED), 1, "{}", logs.text());
    assert_eq!(
        logs.count("INFO", "delivered again after failures"),
        1,
        "{}",
        logs.text()
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    const RETRY_AFTER: u64 = 3;
    let busy = Reply {
        status: 429,
        retry_after_secs: Some(RETRY_AFTER),
    };
    let collector = FakeCollector::start(&[busy, busy], Reply::ACCEPT).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // A 60 s interval makes the first backoff steps about 1 s and 2 s: shorter than asked.
    let agent = start(fast(&collector.url(), "60s"), dir.path());
    wait_until("delivery after two 429s", || {
        agent.status().last_report_at.is_some()
    })
    .await;
    let received = collector.received();
    assert_eq!(received.len(), 3);
    for pair in received.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // Lower bound only: a loaded machine makes gaps longer, never shorter.
        assert!(
            gap >= Duration::from_secs(RETRY_AFTER) - Duration::from_millis(50),
            "retried after {gap:?}"
        );
    }
    let log = agent.sent_log();
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 429, 201]
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times_per_period() {
    let collector = FakeCollector::start(&[], Reply::status(500)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let interval = Duration::from_secs(2);
    let agent = start(fast(&collector.url(), "2s"), dir.path());
    let wanted = MAX_ATTEMPTS_PER_PERIOD as usize + 2;
    wait_until("retries spanning more than one period", || {
        collector.count() >= wanted
    })
    .await;
    agent.shutdown().await;

    let received = collector.received();
    let first = received.first().expect("requests").at;
    let last = received.last().expect("requests").at;
    // Upper bound only: at most MAX_ATTEMPTS_PER_PERIOD in each period touched.
    let periods = (last - first).as_secs_f64() / interval.as_secs_f64();
    let allowed = MAX_ATTEMPTS_PER_PERIOD as usize * (periods.floor() as usize + 2);
    assert!(
        received.len() <= allowed,
        "{} requests over {periods:.1} periods",
        received.len()
    );
    assert!(received.len() >= 2, "failures are retried");
    let sent = read_sent_log(dir.path()).expect("sent log");
    // The last request may have been cut off by the shutdown before its answer arrived.
    let recorded =
        (received.len() - 1).min(SENT_LOG_CAPACITY)..=received.len().min(SENT_LOG_CAPACITY);
    assert!(
        recorded.contains(&sent.len()),
        "{} recorded of {}",
        sent.len(),
        received.len()
    );
    assert!(sent.iter().all(|r| !r.accepted && r.status == 500));
}

#[tokio::test]
async fn requests_carry_the_documented_headers_and_a_gzip_json_body() {
    let collector = FakeCollector::start(&[], Reply::ACCEPT).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = start(fast(&collector.url(), "1h"), dir.path());
    wait_until("a request", || collector.count() == 1).await;
    let request = &collector.received()[0];
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(
        header("user-agent"),
        Some(format!("beacon/{}", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(request.report["uuid"], agent.preview().uuid.as_str());
    agent.shutdown().await;
}

#[tokio::test]
async fn a_restart_does_not_report_before_the_next_is_due() {
    let collector = FakeCollector::start(&[], Reply::ACCEPT).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (agent, last) = started_and_reported(&collector.url(), "1h", dir.path()).await;
    agent.shutdown().await;

    let offline = read_status(dir.path(), &Config::empty(), None).expect("offline status");
    assert_eq!(
        (offline.running, offline.last_report_at),
        (false, Some(last))
    );

    // initial_delay is 0: only the persisted last report holds the next one back.
    let agent = start(fast(&collector.url(), "1h"), dir.path());
    let status = agent.status();
    assert_eq!(status.last_report_at, Some(last));
    let next = status.next_report_at.expect("planned");
    assert!(
        next >= last + TimeDelta::hours(1),
        "next {next}, last {last}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(collector.count(), 1, "no report at restart");
    agent.shutdown().await;

    // With a 3 s interval the restarted node reports again, but not before it is due.
    let agent = start(fast(&collector.url(), "3s"), dir.path());
    wait_until("the next report", || collector.count() == 2).await;
    let received = collector.received();
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(2950),
        "reported again after {gap:?}"
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn a_short_interval_logs_one_warning_at_start() {
    let (logs, _guard) = capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = "http://127.0.0.1:9/api/telemetry";
    let short = settings(
        &format!("url = \"{url}\"\ninterval = 30s\ninitial_delay = 1h"),
        &[],
    );
    let agent = start(short, dir.path());
    assert_eq!(logs.count("WARN", "under one hour"), 1, "{}", logs.text());
    agent.shutdown().await;
    let weekly = settings(&format!("url = \"{url}\"\ninitial_delay = 1h"), &[]);
    let agent = start(weekly, dir.path());
    assert_eq!(logs.count("WARN", "under one hour"), 1, "{}", logs.text());
    agent.shutdown().await;
}
