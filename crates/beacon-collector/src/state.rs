//! What every handler shares: the store, the deletion side of the store, the metrics, the
//! rate limiter and the ingest mode. Handlers read it; only [`crate::serve`] builds it
//! with deletion enabled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use beacon_store::{Maintenance, ReportStore};

use crate::config::{IngestMode, RateLimit};
use crate::metrics::Metrics;
use crate::rate_limit::IpRateLimiter;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn ReportStore>,
    /// Deletion and retention; absent for an ingest-only collector.
    maintenance: Option<Arc<dyn Maintenance>>,
    metrics: Metrics,
    limiter: IpRateLimiter,
    mode: IngestMode,
    /// What the latest `/healthz` found, so that a change is logged once.
    unhealthy: AtomicBool,
}

impl AppState {
    pub fn new(store: Arc<dyn ReportStore>, rate_limit: RateLimit, mode: IngestMode) -> Self {
        Self::with_maintenance(store, None, rate_limit, mode)
    }

    pub(crate) fn with_maintenance(
        store: Arc<dyn ReportStore>,
        maintenance: Option<Arc<dyn Maintenance>>,
        rate_limit: RateLimit,
        mode: IngestMode,
    ) -> Self {
        let shared = Shared {
            metrics: Metrics::new(Arc::clone(&store)),
            store,
            maintenance,
            limiter: IpRateLimiter::new(rate_limit),
            mode,
            unhealthy: AtomicBool::new(false),
        };
        Self {
            inner: Arc::new(shared),
        }
    }

    pub fn store(&self) -> &Arc<dyn ReportStore> {
        &self.inner.store
    }

    pub(crate) fn maintenance(&self) -> Option<&Arc<dyn Maintenance>> {
        self.inner.maintenance.as_ref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn limiter(&self) -> &IpRateLimiter {
        &self.inner.limiter
    }

    pub(crate) fn mode(&self) -> IngestMode {
        self.inner.mode
    }

    /// Records what a health check found; true when it differs from the check before.
    pub(crate) fn health_changed(&self, healthy: bool) -> bool {
        self.inner.unhealthy.swap(!healthy, Ordering::Relaxed) == healthy
    }
}
