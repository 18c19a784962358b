//! Prometheus metrics of the collector, served on `GET /metrics` in the OpenMetrics text
//! format. Labels take values from small fixed sets only (payload format, error code,
//! route), never from request data.

use std::sync::Arc;
use std::time::Duration;

use beacon_report::PayloadFormat;
use beacon_store::ReportStore;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabel {
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The collector's metrics and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: Family<FormatLabel, Counter>,
    rejected: Family<ReasonLabel, Counter>,
    redacted: Counter,
    request_seconds: HistogramFamily<RouteLabel>,
    commit_seconds: Histogram,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s: an ingest is sub-millisecond until storage is involved.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Metrics {
    /// Metrics whose registry also reports the store's own counters on each scrape.
    pub fn new(store: Arc<dyn ReportStore>) -> Self {
        let mut registry = Registry::default();
        let accepted = Family::<FormatLabel, Counter>::default();
        let rejected = Family::<ReasonLabel, Counter>::default();
        let redacted = Counter::default();
        let request_seconds: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(latency_histogram);
        let commit_seconds = latency_histogram();
        registry.register(
            "beacon_collector_reports_accepted",
            "Reports accepted, by payload format",
            accepted.clone(),
        );
        registry.register(
            "beacon_collector_reports_rejected",
            "Ingest requests refused, by error code",
            rejected.clone(),
        );
        registry.register(
            "beacon_collector_redacted_identifiers",
            "Identifying values removed from reports before storage",
            redacted.clone(),
        );
        registry.register(
            "beacon_collector_request_duration_seconds",
            "HTTP request latency, by route",
            request_seconds.clone(),
        );
        registry.register(
            "beacon_collector_store_commit_duration_seconds",
            "Time from handing a report to the store until its commit returned",
            commit_seconds.clone(),
        );
        registry.register_collector(Box::new(StoreStatsCollector(store)));
        Self {
            registry,
            accepted,
            rejected,
            redacted,
            request_seconds,
            commit_seconds,
        }
    }

    pub(crate) fn accepted(&self, format: PayloadFormat) {
        let format = format.as_str();
        self.accepted.get_or_create(&FormatLabel { format }).inc();
    }

    pub(crate) fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn redacted(&self, count: usize) {
        self.redacted.inc_by(count as u64);
    }

    pub(crate) fn request(&self, route: &'static str, elapsed: Duration) {
        self.request_seconds
            .get_or_create(&RouteLabel { route })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn commit(&self, elapsed: Duration) {
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the store's counters at scrape time, so the store needs no metrics dependency.
struct StoreStatsCollector(Arc<dyn ReportStore>);

impl std::fmt::Debug for StoreStatsCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreStatsCollector")
            .field(&self.0.backend())
            .finish()
    }
}

impl Collector for StoreStatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.stats();
        let counters = [
            (
                "beacon_store_batches",
                "Transactions committed by the store's writer",
                stats.batches,
            ),
            (
                "beacon_store_rows",
                "Report rows written by the store's writer",
                stats.rows,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
