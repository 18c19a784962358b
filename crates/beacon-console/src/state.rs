//! What every console handler shares, and the options it is built from.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use beacon_auth::{CheckPool, LoginThrottle, Sessions};
use beacon_store::{FilterChoices, Store};

use crate::error::ConsoleError;
use crate::filters::Filters;

/// Login sessions end after this long without a request.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);

/// Sign-in attempts allowed per user name and source address: this many a minute on
/// average...
pub const DEFAULT_LOGINS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(5).unwrap();
/// ...and this many in a row.
pub const DEFAULT_LOGIN_BURST: NonZeroU32 = NonZeroU32::new(10).unwrap();
/// Sign-in attempts allowed a minute (and in a row) over every name and address.
pub const DEFAULT_LOGINS_GLOBAL_PER_MINUTE: NonZeroU32 = NonZeroU32::new(120).unwrap();
/// A version or OS is offered by the filter lists once it counts this many cluster-weeks
/// in the range shown...
pub const DEFAULT_FILTER_MIN_COUNT: u64 = 2;
/// ...and only the most counted this many are.
pub const DEFAULT_FILTER_CHOICES: usize = 50;

/// How the console is served.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure`: set when the console is served over TLS.
    pub secure_cookies: bool,
    pub session_idle: Duration,
    /// Sign-in attempts per user name and address, on average and in a row, and over
    /// every name and address (see `throttle`).
    pub logins_per_minute: NonZeroU32,
    pub login_burst: NonZeroU32,
    pub logins_global_per_minute: NonZeroU32,
    /// Filter lists offer at most `filter_choices` values, each counted at least
    /// `filter_min_count` cluster-weeks in the range shown, so that junk sent by anyone
    /// cannot flood every page.
    pub filter_min_count: u64,
    pub filter_choices: usize,
    /// What the "Import reports" form stores uploads with; without it the form says that
    /// importing is not set up here.
    pub import: Option<Arc<dyn ImportReports>>,
}

/// Stores the reports of an upload through the collector's ingest path (validation,
/// limits, one report per node and day, rollups): the console knows nothing of ingest, so
/// whoever serves it hands this in (`beacon collector` hands the collector's import).
pub trait ImportReports: Send + Sync + std::fmt::Debug + 'static {
    /// Imports the reports of `upload` (JSON or NDJSON, gzip accepted). `Err` says why the
    /// upload as a whole cannot be read; refused reports are in the summary.
    fn import(&self, upload: Vec<u8>) -> ImportFuture;
}

/// What [`ImportReports::import`] returns.
pub type ImportFuture = Pin<Box<dyn Future<Output = Result<ImportSummary, String>> + Send>>;

/// What became of the reports of an upload.
#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// Each a node's first report of its day.
    pub stored: u64,
    /// Each replaced an earlier report of the same node and day.
    pub replaced: u64,
    pub refused: Vec<RefusedReport>,
}

/// A refused report: its line in an NDJSON upload (`None` for one JSON report), the
/// refusal's code and why.
#[derive(Debug, Clone)]
pub struct RefusedReport {
    pub line: Option<usize>,
    pub code: String,
    pub message: String,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            session_idle: DEFAULT_SESSION_IDLE,
            logins_per_minute: DEFAULT_LOGINS_PER_MINUTE,
            login_burst: DEFAULT_LOGIN_BURST,
            logins_global_per_minute: DEFAULT_LOGINS_GLOBAL_PER_MINUTE,
            filter_min_count: DEFAULT_FILTER_MIN_COUNT,
            filter_choices: DEFAULT_FILTER_CHOICES,
            import: None,
        }
    }
}

/// What every console handler shares.
#[derive(Clone)]
pub(crate) struct Console {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) logins: Arc<LoginThrottle>,
    pub(crate) secure_cookies: bool,
    pub(crate) filter_min_count: u64,
    pub(crate) filter_choices: usize,
    pub(crate) import: Option<Arc<dyn ImportReports>>,
    /// Started at the first sign-in, so that a console nobody uses holds no threads.
    checks: Arc<OnceLock<CheckPool>>,
}

impl Console {
    pub(crate) fn new(store: Arc<dyn Store>, options: ConsoleOptions) -> Self {
        Self {
            store,
            sessions: Arc::new(Sessions::new(options.session_idle)),
            logins: Arc::new(LoginThrottle::new(
                options.logins_per_minute,
                options.login_burst,
                options.logins_global_per_minute,
            )),
            secure_cookies: options.secure_cookies,
            filter_min_count: options.filter_min_count,
            filter_choices: options.filter_choices,
            import: options.import,
            checks: Arc::default(),
        }
    }

    /// The bounded pool password checks run on.
    pub(crate) fn checks(&self) -> Result<&CheckPool, ConsoleError> {
        if let Some(pool) = self.checks.get() {
            return Ok(pool);
        }
        // Two first sign-ins at once may both start one; the spare's threads end with it.
        let pool = CheckPool::start().map_err(ConsoleError::CheckThreads)?;
        Ok(self.checks.get_or_init(|| pool))
    }
}

impl Console {
    /// The filter lists' values for the range of `filters`; a chosen value is kept even
    /// when it is not among them, so that the form still shows it.
    pub(crate) async fn filter_choices(
        &self,
        filters: &Filters,
    ) -> Result<FilterChoices, ConsoleError> {
        let mut choices = self
            .store
            .filter_choices(&filters.query(), self.filter_min_count, self.filter_choices)
            .await?;
        let keep = |chosen: &Option<String>, values: &mut Vec<String>| {
            if let Some(value) = chosen.as_ref().filter(|v| !values.contains(v)) {
                values.insert(0, value.clone());
            }
        };
        keep(&filters.version, &mut choices.versions);
        keep(&filters.os, &mut choices.os);
        Ok(choices)
    }
}
