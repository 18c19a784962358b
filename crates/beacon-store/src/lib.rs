//! Collector storage: the [`ReportStore`], [`Analytics`] and [`Maintenance`] traits and
//! their two backends, embedded SQLite (`sqlite://PATH`, the default) and PostgreSQL
//! (`postgres://...`).
//!
//! This crate owns the database side of the collector: the schema and its versioned
//! migrations, one row per node `uuid` per UTC day (a later report that day replaces the
//! earlier one), group commit (concurrent inserts are written by a single writer in one
//! transaction, and every `insert` resolves only after its row is durably committed),
//! counting (a committed report is counted in the analytics rollups later, in chunks of
//! many reports, and every rollup read first settles what is still uncounted; see
//! `counting.rs` for the vocabulary and [`Analytics`] for what is counted), retention and
//! self-service deletion.
//!
//! It must NOT know about HTTP or read reports: it stores the columns, the raw JSON text
//! and the [`Facts`] (the report crate's type) the collector derived from a parsed report,
//! and counts from those facts, never from the JSON. It never receives or stores a client
//! IP address: [`NewReport`] has no field for one. Dashboard and data API answers must
//! come from the rollups, never from a scan of raw reports.

mod analytics;
mod batch;
mod buckets;
mod claims;
mod counting;
mod error;
mod facts;
mod maintenance;
mod migrations;
mod postgres;
mod report;
mod rollup;
mod rows;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod url;
mod users;

use std::sync::Arc;

use chrono::NaiveDate;

pub use analytics::{
    Analytics, AnalyticsQuery, Bucket, CountBar, Distribution, EXPORT_PAGE_SIZE, ExportCursor,
    FeatureAdoption, FeatureShare, FilterChoices, Hardware, MAX_QUERY_WEEKS, OsVersionShare,
    Overview, Period, PeriodTotals, Platforms, Share, VersionAdoption, VersionSeries, WeekActivity,
    Workload, export_reports,
};
pub use beacon_report::facts::Facts;
pub use error::StoreError;
pub use facts::LegacyFacts;
pub use maintenance::{BulkOutcome, ForgetOutcome, Maintenance};
pub use report::{InsertOutcome, NewReport, StoredReport};
pub use url::redact as redact_url;
pub use users::{ApiToken, Users};

/// Where the collector stores reports when no URL is configured.
pub const DEFAULT_URL: &str = "sqlite://data/collector.db";

/// Insert and batch counters since the store was opened; only committed batches count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed by the writer.
    pub batches: u64,
    /// Reports committed by those transactions.
    pub rows: u64,
}

/// The collector's storage, implemented by each backend.
#[async_trait::async_trait]
pub trait ReportStore: Send + Sync + 'static {
    /// Stores `report`, replacing the row of the same `uuid` and `day` if there is one; the
    /// report is counted in the rollups later, and before any rollup read.
    ///
    /// Resolves only after the row is durably committed (group commit underneath). A report
    /// that breaks a column rule is refused with [`StoreError::InvalidReport`] before it
    /// reaches the writer, so it cannot fail the batch of other reports.
    async fn insert(&self, report: NewReport) -> Result<InsertOutcome, StoreError>;
    /// The report stored for `uuid` on `day`, if any.
    async fn get(&self, uuid: &str, day: NaiveDate) -> Result<Option<StoredReport>, StoreError>;
    /// Reports with day in [from, to] inclusive, ordered by day then uuid (byte order).
    async fn list(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<StoredReport>, StoreError>;
    /// Number of stored reports.
    async fn count(&self) -> Result<u64, StoreError>;
    /// Cheap round trip to the database, for /healthz; also fails if the writer has stopped.
    async fn health(&self) -> Result<(), StoreError>;
    /// Counts every report committed so far into the rollups (SQLite: moves its ingest log
    /// into `reports`).
    async fn settle(&self) -> Result<(), StoreError>;
    /// Settles, then stops the store's writer and whatever it runs beside (PostgreSQL's
    /// counter, its folds): answers once none of them is left in a transaction. Reports
    /// queued after it, and whatever needs the writer later (inserts, settles, maintenance,
    /// the reads that settle first), get [`StoreError::Closed`]. A collector calls it when
    /// it stops, so that the database it leaves is settled for anyone who reads it with
    /// SQL before the next start, and no transaction is cut off by the process's exit.
    async fn close(&self) -> Result<(), StoreError>;
    /// Counters of committed batches and rows.
    fn stats(&self) -> StoreStats;
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
}

/// Everything a backend does: ingest, analytics, maintenance and console accounts on one
/// database.
///
/// An `Arc<dyn Store>` converts to `Arc<dyn ReportStore>`, `Arc<dyn Analytics>`,
/// `Arc<dyn Maintenance>` or `Arc<dyn Users>` for code that needs only one part.
pub trait Store: ReportStore + Analytics + Maintenance + Users {}

impl<T: ReportStore + Analytics + Maintenance + Users> Store for T {}

/// Opens (creating and migrating if needed) the store at `url`, for ingest only.
///
/// See [`open_store`] for the URL forms.
pub async fn open(url: &str) -> Result<Arc<dyn ReportStore>, StoreError> {
    Ok(open_store(url).await?)
}

/// Opens (creating and migrating if needed) the store at `url`.
///
/// `sqlite://relative/or/absolute/path.db` (parent directories are created; an absolute
/// path is written `sqlite:///abs/path.db`), or
/// `postgres://user@host:port/db?schema=NAME` (`schema` is Beacon's own parameter: it is
/// stripped before connecting, created if missing, and set as the `search_path` of every
/// connection; without it the server's default `search_path` is used).
///
/// Reports that a build older than schema version 5 left uncounted have no facts kept
/// beside them; this opener counts them from their columns only. The collector opens with
/// [`open_store_with`] instead, which derives their facts.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_store_with(url, None).await
}

/// [`open_store`], back-filling right after the migrations the facts of reports an older
/// build left uncounted without them, through `legacy` (the store cannot read a report).
pub async fn open_store_with(
    url: &str,
    legacy: Option<LegacyFacts>,
) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match url::parse(url)? {
        url::StoreUrl::Sqlite(path) => Arc::new(sqlite::SqliteStore::open(path, legacy).await?),
        url::StoreUrl::Postgres(target) => {
            Arc::new(postgres::PostgresStore::open(*target, legacy).await?)
        }
    };
    tracing::info!(backend = store.backend(), url = %url::redact(url), "report store opened");
    Ok(store)
}
