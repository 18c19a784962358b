//! Retention: raw reports older than the configured number of days are deleted by a
//! background job; only aggregate counters remain.

use std::sync::Arc;
use std::time::Duration;

use beacon_store::Maintenance;
use chrono::{Days, Utc};

/// How often retention runs (it also runs at start).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Deletes raw reports older than `days` now and then every day, until aborted.
pub(crate) async fn retention(maintenance: Arc<dyn Maintenance>, days: u32) {
    let mut every_day = tokio::time::interval(RETENTION_EVERY);
    loop {
        every_day.tick().await;
        let Some(cutoff) = Utc::now()
            .date_naive()
            .checked_sub_days(Days::new(u64::from(days)))
        else {
            continue;
        };
        match maintenance.delete_reports_before(cutoff).await {
            Ok(deleted) => tracing::info!(%cutoff, deleted, "retention: old raw reports deleted"),
            Err(error) => tracing::error!(%error, "retention failed; retried tomorrow"),
        }
    }
}
