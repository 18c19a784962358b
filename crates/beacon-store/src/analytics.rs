//! The analytics query API: questions ([`AnalyticsQuery`]), answers (serializable structs
//! for the dashboard and the data API), and how answers are computed from the rollups, the
//! same way for both backends.
//!
//! Everything is counted per ISO week (Monday to Sunday): a range covers every week it
//! touches. Weekly series count distinct clusters and nodes. Answers for a whole range
//! (distributions, adoption, histograms, percentiles) count *cluster-weeks*: each cluster
//! once for every week it reported in, which is the average over the weeks of the range
//! weighted by how many clusters were active each week.
//!
//! The week in progress (the one holding today, UTC) and any later week are *incomplete*:
//! weekly series mark them (`complete: false`) and the overview's headline numbers leave
//! them out, so that a week only a few days old is never read as a collapse.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Days, NaiveDate, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::buckets::{LAST_BUCKET, lower_bound, upper_bound};
use crate::counting::{self, Settled};
use crate::maintenance::WriterQueue;
use crate::rollup::{ALL, family, kind, week_of};
use crate::rows::RollupRow;
use crate::{StoreError, StoredReport};

/// Longest range a query may cover, so that a typo cannot ask for millions of weeks.
pub const MAX_QUERY_WEEKS: u32 = 1000;
/// Reports per page of [`export_reports`].
pub const EXPORT_PAGE_SIZE: u32 = 1000;

/// A dashboard question: a date range (inclusive) and optional filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Only clusters (and nodes) running exactly this EMQX version.
    #[serde(default)]
    pub version: Option<String>,
    /// Only clusters (and nodes) on this OS name (`unknown` for those that sent none).
    #[serde(default)]
    pub os: Option<String>,
}

/// The weeks an answer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Monday of the first week.
    pub first_week: NaiveDate,
    /// Monday of the last week.
    pub last_week: NaiveDate,
    pub weeks: u32,
}

/// One week of activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekActivity {
    /// Monday of the week.
    pub week: NaiveDate,
    /// Distinct clusters that reported.
    pub clusters: u64,
    /// Distinct nodes that reported.
    pub nodes: u64,
    /// Nodes whose first report ever fell in this week (new installations).
    pub new_nodes: u64,
    /// Whether the week had ended when asked; the week in progress counts "so far".
    #[serde(default = "ended")]
    pub complete: bool,
}

/// Answers serialized before `complete` existed held finished weeks only.
fn ended() -> bool {
    true
}

/// Active clusters per week and version, for a stacked chart; series share `weeks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionAdoption {
    pub period: Period,
    pub weeks: Vec<NaiveDate>,
    /// Newest version first.
    pub versions: Vec<VersionSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSeries {
    pub version: String,
    /// Clusters on this version, one entry per week of `weeks`.
    pub clusters: Vec<u64>,
}

/// One value of a distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub value: String,
    pub cluster_weeks: u64,
    /// `cluster_weeks` / the distribution's total, 0 to 1.
    pub share: f64,
}

/// One OS and version of the OS distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsVersionShare {
    pub os: String,
    pub os_version: String,
    pub cluster_weeks: u64,
    pub share: f64,
}

/// OS, OS version and edition distributions, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platforms {
    pub period: Period,
    /// Cluster-weeks counted.
    pub cluster_weeks: u64,
    pub os: Vec<Share>,
    pub os_versions: Vec<OsVersionShare>,
    pub editions: Vec<Share>,
}

/// One bar of a histogram over whole numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountBar {
    pub value: u64,
    pub cluster_weeks: u64,
    /// Of the cluster-weeks that reported this value.
    pub share: f64,
}

/// CPU, memory and cluster-size histograms, in increasing value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hardware {
    pub period: Period,
    pub cluster_weeks: u64,
    /// CPUs of the reporting node (4.x reports send none).
    pub cpus: Vec<CountBar>,
    /// Memory in bytes, rounded to the nearest power of two.
    pub memory: Vec<CountBar>,
    /// Nodes in the cluster.
    pub cluster_sizes: Vec<CountBar>,
}

/// Adoption of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShare {
    /// `feature` (one flag per kind of feature: `retained`, `delayed`, `topic_rewrite`,
    /// `auto_subscribe`, `rule_engine`, `exhook`, and `bridge`/`authn`/`authz`/`gateway`/
    /// `plugin` for "any of them"), or `bridge`, `authn`, `authz`, `gateway`, `plugin`
    /// for one bridge type, mechanism, source, gateway or plugin.
    pub family: String,
    pub name: String,
    pub cluster_weeks: u64,
    /// Of the active cluster-weeks, 0 to 1.
    pub share: f64,
}

/// Feature adoption as a share of active clusters; by family, then most used first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureAdoption {
    pub period: Period,
    /// Active cluster-weeks: the denominator of every share.
    pub cluster_weeks: u64,
    pub features: Vec<FeatureShare>,
}

/// One bucket of a workload histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Smallest value in the bucket.
    pub lower: f64,
    /// First value past the bucket; `None` for the last, unbounded one.
    pub upper: Option<f64>,
    pub cluster_weeks: u64,
}

/// Percentiles and histogram of one workload value.
///
/// Values are kept in round-number log buckets no wider than a third of their lower
/// bound; a percentile is the lower bound of the bucket holding it (nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Cluster-weeks that reported the value.
    pub cluster_weeks: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    /// Non-empty buckets, in increasing value.
    pub histogram: Vec<Bucket>,
}

/// Workload of the cluster's latest report each week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub period: Period,
    /// Connected clients.
    pub clients: Distribution,
    pub topics: Distribution,
    /// Messages per second.
    pub messages_sent_rate: Distribution,
    /// Messages per second.
    pub messages_received_rate: Distribution,
}

/// Headline numbers of one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodTotals {
    /// The complete weeks counted (`weeks` is 0 when the range has none yet).
    pub period: Period,
    /// Active clusters per week, averaged over the period's weeks.
    pub avg_weekly_clusters: f64,
    /// Active nodes per week, averaged over the period's weeks.
    pub avg_weekly_nodes: f64,
    /// Nodes first seen in the period.
    pub new_nodes: u64,
}

/// The complete weeks of the chosen range against as many weeks just before them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub current: PeriodTotals,
    pub previous: PeriodTotals,
    /// Relative change of `avg_weekly_clusters` (0.1 = +10%); `None` when the previous
    /// period had none.
    pub clusters_change: Option<f64>,
    pub nodes_change: Option<f64>,
    pub new_nodes_change: Option<f64>,
    /// Monday of the first incomplete week the range reaches (the week in progress), left
    /// out of both periods; `None` when every week of the range had ended.
    #[serde(default)]
    pub partial_week: Option<NaiveDate>,
}

/// The values a dashboard's filter lists offer for a range: versions newest first, OS
/// names alphabetically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterChoices {
    pub versions: Vec<String>,
    pub os: Vec<String>,
}

/// Where an export page ends; the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCursor {
    pub day: NaiveDate,
    pub uuid: String,
}

impl From<&StoredReport> for ExportCursor {
    fn from(report: &StoredReport) -> Self {
        Self {
            day: report.day,
            uuid: report.uuid.clone(),
        }
    }
}

/// Dashboard and data API queries; none of them reads raw reports except the export.
#[async_trait::async_trait]
pub trait Analytics: Send + Sync + 'static {
    /// Active clusters, active nodes and new installations, every week of the range; the
    /// week in progress is marked incomplete.
    async fn activity(&self, query: &AnalyticsQuery) -> Result<Vec<WeekActivity>, StoreError>;
    async fn version_adoption(&self, query: &AnalyticsQuery)
    -> Result<VersionAdoption, StoreError>;
    async fn platforms(&self, query: &AnalyticsQuery) -> Result<Platforms, StoreError>;
    async fn hardware(&self, query: &AnalyticsQuery) -> Result<Hardware, StoreError>;
    async fn features(&self, query: &AnalyticsQuery) -> Result<FeatureAdoption, StoreError>;
    async fn workload(&self, query: &AnalyticsQuery) -> Result<Workload, StoreError>;
    /// The range's complete weeks against as many weeks just before them.
    async fn overview(&self, query: &AnalyticsQuery) -> Result<Overview, StoreError>;
    /// Every version ever counted, newest first, for a filter list.
    async fn distinct_versions(&self) -> Result<Vec<String>, StoreError>;
    /// Every OS name ever counted, alphabetically, for a filter list.
    async fn distinct_os(&self) -> Result<Vec<String>, StoreError>;
    /// The versions and OS names counted at least `min_count` cluster-weeks in the range of
    /// `query` (its version and os filters are ignored), at most `limit` of each, the most
    /// counted kept: values sent by a few reports cannot flood the filter lists.
    async fn filter_choices(
        &self,
        query: &AnalyticsQuery,
        min_count: u64,
        limit: usize,
    ) -> Result<FilterChoices, StoreError>;
    /// Up to `limit` raw reports with day in [from, to], after `after`, ordered by day
    /// then uuid (byte order). See [`export_reports`] for a stream of all of them.
    async fn export_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError>;
}

/// Every raw report with day in [from, to], page by page, for a streaming export.
pub fn export_reports(
    analytics: Arc<dyn Analytics>,
    from: NaiveDate,
    to: NaiveDate,
) -> impl Stream<Item = Result<StoredReport, StoreError>> + Send + 'static {
    use futures::StreamExt;
    // The state is the cursor to continue after, or `None` once the last page was short.
    let pages = futures::stream::try_unfold(Some(None), move |state| {
        let analytics = Arc::clone(&analytics);
        async move {
            let Some(after) = state else {
                return Ok(None);
            };
            let page = analytics
                .export_page(from, to, after, EXPORT_PAGE_SIZE)
                .await?;
            let next = match page.last() {
                Some(last) if page.len() == EXPORT_PAGE_SIZE as usize => {
                    Some(Some(ExportCursor::from(last)))
                }
                _ => None,
            };
            Ok::<_, StoreError>(Some((page, next)))
        }
    });
    pages
        .map(|page| match page {
            Ok(reports) => futures::stream::iter(reports.into_iter().map(Ok)).left_stream(),
            Err(error) => futures::stream::once(async { Err(error) }).right_stream(),
        })
        .flatten()
}

/// A query resolved to rollup keys: dimension values and a week range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) version: String,
    pub(crate) os: String,
    pub(crate) first_week: NaiveDate,
    pub(crate) last_week: NaiveDate,
}

/// A counter summed over `k2` for one week.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WeekRow {
    pub(crate) kind: &'static str,
    pub(crate) week: NaiveDate,
    pub(crate) k1: String,
    pub(crate) n: i64,
}

/// A counter summed over the weeks of a scope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyRow {
    pub(crate) kind: &'static str,
    pub(crate) k1: String,
    pub(crate) k2: String,
    pub(crate) n: i64,
}

/// What a backend provides so that the answers can be computed here. Every rollup read
/// counts every report committed before it: [`Source::rollups`] by its backend's means,
/// [`Source::keys`] only with the [`Settled`] token.
#[async_trait::async_trait]
pub(crate) trait Source: Send + Sync + 'static {
    /// Rows of `T`'s statement for each of `kinds`, weekly ([`WeekRow`]) or summed over
    /// the weeks of `scope` ([`KeyRow`]), counting every report committed before the call:
    /// PostgreSQL settles first; SQLite adds what its uncounted reports would count, worked
    /// out on the snapshot it reads the counters from, and never waits for its writer.
    async fn rollups<T: RollupRow>(
        &self,
        scope: &Scope,
        kinds: &[&'static str],
    ) -> Result<Vec<T>, StoreError>;
    /// Distinct `k1` of a kind, over every version, os and week.
    async fn keys(&self, settled: &Settled, kind: &'static str) -> Result<Vec<String>, StoreError>;
    async fn export_rows(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: ExportCursor,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError>;
}

#[async_trait::async_trait]
impl<S: Source + WriterQueue> Analytics for S {
    async fn activity(&self, query: &AnalyticsQuery) -> Result<Vec<WeekActivity>, StoreError> {
        let scope = scope(query)?;
        let rows = self.rollups::<WeekRow>(&scope, ACTIVITY).await?;
        Ok(weekly_activity(&scope, &rows, today()))
    }

    async fn version_adoption(
        &self,
        query: &AnalyticsQuery,
    ) -> Result<VersionAdoption, StoreError> {
        let scope = scope(query)?;
        let rows = self.rollups::<WeekRow>(&scope, &[kind::VERSION]).await?;
        Ok(version_adoption(&scope, rows))
    }

    async fn platforms(&self, query: &AnalyticsQuery) -> Result<Platforms, StoreError> {
        let scope = scope(query)?;
        let rows = self
            .rollups::<KeyRow>(&scope, &[kind::OS, kind::EDITION])
            .await?;
        Ok(platforms(&scope, &rows))
    }

    async fn hardware(&self, query: &AnalyticsQuery) -> Result<Hardware, StoreError> {
        let scope = scope(query)?;
        let kinds = [kind::CLUSTERS, kind::CPUS, kind::MEMORY, kind::SIZE];
        let rows = self.rollups::<KeyRow>(&scope, &kinds).await?;
        Ok(hardware(&scope, &rows))
    }

    async fn features(&self, query: &AnalyticsQuery) -> Result<FeatureAdoption, StoreError> {
        let scope = scope(query)?;
        let rows = self
            .rollups::<KeyRow>(&scope, &[kind::CLUSTERS, kind::FEATURE])
            .await?;
        Ok(features(&scope, rows))
    }

    async fn workload(&self, query: &AnalyticsQuery) -> Result<Workload, StoreError> {
        let scope = scope(query)?;
        let kinds = [
            kind::CLIENTS,
            kind::TOPICS,
            kind::SENT_RATE,
            kind::RECEIVED_RATE,
        ];
        let rows = self.rollups::<KeyRow>(&scope, &kinds).await?;
        let distribution = |kind| distribution(rows.iter().filter(|row| row.kind == kind));
        Ok(Workload {
            period: period(&scope),
            clients: distribution(kind::CLIENTS),
            topics: distribution(kind::TOPICS),
            messages_sent_rate: distribution(kind::SENT_RATE),
            messages_received_rate: distribution(kind::RECEIVED_RATE),
        })
    }

    async fn overview(&self, query: &AnalyticsQuery) -> Result<Overview, StoreError> {
        let range = scope(query)?;
        // Every week either period can cover: the range and as many weeks before it.
        let both = Scope {
            first_week: previous(&range).first_week,
            ..range.clone()
        };
        let rows = self.rollups::<WeekRow>(&both, ACTIVITY).await?;
        Ok(overview(&range, &rows, today()))
    }

    async fn distinct_versions(&self) -> Result<Vec<String>, StoreError> {
        let mut versions = self
            .keys(&counting::settle(self.queue()).await?, kind::VERSION)
            .await?;
        versions.sort_by(|a, b| version_order(b, a));
        Ok(versions)
    }

    async fn distinct_os(&self) -> Result<Vec<String>, StoreError> {
        let mut names = self
            .keys(&counting::settle(self.queue()).await?, kind::OS)
            .await?;
        names.sort();
        Ok(names)
    }

    async fn filter_choices(
        &self,
        query: &AnalyticsQuery,
        min_count: u64,
        limit: usize,
    ) -> Result<FilterChoices, StoreError> {
        let unfiltered = AnalyticsQuery {
            version: None,
            os: None,
            ..query.clone()
        };
        let scope = scope(&unfiltered)?;
        let rows = self
            .rollups::<KeyRow>(&scope, &[kind::VERSION, kind::OS])
            .await?;
        let most_counted = |kind: &'static str| {
            let counts = rows
                .iter()
                .filter(|row| row.kind == kind)
                .map(|row| (row.k1.as_str(), count(row.n)));
            let (_, mut shares) = shares(counts);
            shares.retain(|share| share.cluster_weeks >= min_count);
            shares.truncate(limit);
            shares
                .into_iter()
                .map(|share| share.value)
                .collect::<Vec<_>>()
        };
        let mut versions = most_counted(kind::VERSION);
        versions.sort_by(|a, b| version_order(b, a));
        let mut os = most_counted(kind::OS);
        os.sort();
        Ok(FilterChoices { versions, os })
    }

    async fn export_page(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Result<Vec<StoredReport>, StoreError> {
        // Uuids are never empty, so ("from", "") comes before every report of the range.
        let after = after.unwrap_or(ExportCursor {
            day: from,
            uuid: String::new(),
        });
        self.export_rows(from, to, after, limit).await
    }
}

const ACTIVITY: &[&str] = &[kind::CLUSTERS, kind::NODES, kind::NEW_NODES];

/// The day (UTC) that decides which weeks are complete.
fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Whether the week starting on Monday `week` had ended by `today`.
fn complete(week: NaiveDate, today: NaiveDate) -> bool {
    week < week_of(today)
}

fn scope(query: &AnalyticsQuery) -> Result<Scope, StoreError> {
    if query.to < query.from {
        return Err(invalid_query(
            "to",
            format!("{} is before `from` ({})", query.to, query.from),
        ));
    }
    let (first_week, last_week) = (week_of(query.from), week_of(query.to));
    if week_count(first_week, last_week) > MAX_QUERY_WEEKS {
        let reason = format!("the range covers more than {MAX_QUERY_WEEKS} weeks");
        return Err(invalid_query("from", reason));
    }
    // The empty value stands for "every version/os" in the rollups, so it cannot filter.
    let filter = |field: &'static str, value: &Option<String>| match value.as_deref() {
        Some("") => Err(invalid_query(field, "must not be empty".into())),
        Some(value) => Ok(value.to_owned()),
        None => Ok(ALL.to_owned()),
    };
    Ok(Scope {
        version: filter("version", &query.version)?,
        os: filter("os", &query.os)?,
        first_week,
        last_week,
    })
}

fn invalid_query(field: &'static str, reason: String) -> StoreError {
    StoreError::InvalidQuery { field, reason }
}

fn week_count(first: NaiveDate, last: NaiveDate) -> u32 {
    let weeks = (last - first).num_weeks() + 1;
    u32::try_from(weeks).unwrap_or(u32::MAX)
}

fn weeks(scope: &Scope) -> Vec<NaiveDate> {
    let mut weeks = Vec::new();
    let mut week = scope.first_week;
    while week <= scope.last_week {
        weeks.push(week);
        match week.checked_add_days(Days::new(7)) {
            Some(next) => week = next,
            None => break,
        }
    }
    weeks
}

fn period(scope: &Scope) -> Period {
    Period {
        first_week: scope.first_week,
        last_week: scope.last_week,
        weeks: week_count(scope.first_week, scope.last_week),
    }
}

/// The weeks just before `scope`, as many as it has.
fn previous(scope: &Scope) -> Scope {
    let weeks = u64::from(week_count(scope.first_week, scope.last_week));
    let back = |days: u64| {
        scope
            .first_week
            .checked_sub_days(Days::new(days))
            .unwrap_or(NaiveDate::MIN)
    };
    Scope {
        first_week: week_of(back(weeks * 7)),
        last_week: week_of(back(7)),
        ..scope.clone()
    }
}

/// Counters never go below zero; a negative sum would be a bug, shown as zero.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn weekly_activity(scope: &Scope, rows: &[WeekRow], today: NaiveDate) -> Vec<WeekActivity> {
    let mut by_week: BTreeMap<NaiveDate, WeekActivity> = weeks(scope)
        .into_iter()
        .map(|week| {
            let empty = WeekActivity {
                week,
                clusters: 0,
                nodes: 0,
                new_nodes: 0,
                complete: complete(week, today),
            };
            (week, empty)
        })
        .collect();
    for row in rows {
        let Some(week) = by_week.get_mut(&row.week) else {
            continue;
        };
        let slot = match row.kind {
            kind::CLUSTERS => &mut week.clusters,
            kind::NODES => &mut week.nodes,
            _ => &mut week.new_nodes,
        };
        *slot += count(row.n);
    }
    by_week.into_values().collect()
}

fn totals(scope: &Scope, rows: &[WeekRow]) -> PeriodTotals {
    let in_scope = rows
        .iter()
        .filter(|row| (scope.first_week..=scope.last_week).contains(&row.week));
    let (mut clusters, mut nodes, mut new_nodes) = (0, 0, 0);
    for row in in_scope {
        match row.kind {
            kind::CLUSTERS => clusters += count(row.n),
            kind::NODES => nodes += count(row.n),
            _ => new_nodes += count(row.n),
        }
    }
    let period = period(scope);
    let weeks = u64::from(period.weeks);
    PeriodTotals {
        period,
        avg_weekly_clusters: ratio(clusters, weeks),
        avg_weekly_nodes: ratio(nodes, weeks),
        new_nodes,
    }
}

/// The headline numbers of `range` on `today`: its complete weeks against as many weeks
/// just before them, from `rows` covering both. Leaving the week in progress out of only
/// the current period would compare a shorter period with a longer one, so the previous
/// period shrinks with it.
fn overview(range: &Scope, rows: &[WeekRow], today: NaiveDate) -> Overview {
    let partial_week = weeks(range)
        .into_iter()
        .find(|week| !complete(*week, today));
    let last_complete = match partial_week {
        // No complete week yet: an empty period (its last week before its first).
        Some(week) => week
            .checked_sub_days(Days::new(7))
            .unwrap_or(NaiveDate::MIN),
        None => range.last_week,
    };
    let current = Scope {
        last_week: last_complete,
        ..range.clone()
    };
    let previous = previous(&current);
    let current = totals(&current, rows);
    let previous = totals(&previous, rows);
    Overview {
        clusters_change: change(current.avg_weekly_clusters, previous.avg_weekly_clusters),
        nodes_change: change(current.avg_weekly_nodes, previous.avg_weekly_nodes),
        new_nodes_change: change(current.new_nodes as f64, previous.new_nodes as f64),
        current,
        previous,
        partial_week,
    }
}

fn change(current: f64, previous: f64) -> Option<f64> {
    (previous > 0.0).then(|| current / previous - 1.0)
}

fn version_adoption(scope: &Scope, rows: Vec<WeekRow>) -> VersionAdoption {
    let weeks = weeks(scope);
    let index: HashMap<NaiveDate, usize> = weeks.iter().enumerate().map(|(i, w)| (*w, i)).collect();
    let mut series: HashMap<String, Vec<u64>> = HashMap::new();
    for row in rows {
        let Some(&slot) = index.get(&row.week) else {
            continue;
        };
        let clusters = series.entry(row.k1).or_insert_with(|| vec![0; weeks.len()]);
        clusters[slot] += count(row.n);
    }
    let mut versions: Vec<VersionSeries> = series
        .into_iter()
        .map(|(version, clusters)| VersionSeries { version, clusters })
        .collect();
    versions.sort_by(|a, b| version_order(&b.version, &a.version));
    VersionAdoption {
        period: period(scope),
        weeks,
        versions,
    }
}

/// Largest count first, then by value, so the order is stable.
fn by_count_desc<T>(items: &mut [T], key: impl Fn(&T) -> (u64, &str)) {
    items.sort_by(|a, b| {
        let (a, b) = (key(a), key(b));
        b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
    });
}

fn shares<'a>(rows: impl Iterator<Item = (&'a str, u64)>) -> (u64, Vec<Share>) {
    let mut merged: HashMap<&str, u64> = HashMap::new();
    for (value, n) in rows {
        *merged.entry(value).or_default() += n;
    }
    let total = merged.values().sum();
    let mut items: Vec<Share> = merged
        .into_iter()
        .map(|(value, cluster_weeks)| Share {
            value: value.to_owned(),
            cluster_weeks,
            share: ratio(cluster_weeks, total),
        })
        .collect();
    by_count_desc(&mut items, |s| (s.cluster_weeks, &s.value));
    (total, items)
}

fn platforms(scope: &Scope, rows: &[KeyRow]) -> Platforms {
    let of = |kind: &'static str| rows.iter().filter(move |row| row.kind == kind);
    let (total, os) = shares(of(kind::OS).map(|row| (row.k1.as_str(), count(row.n))));
    let (_, editions) = shares(of(kind::EDITION).map(|row| (row.k1.as_str(), count(row.n))));
    let mut os_versions: Vec<OsVersionShare> = of(kind::OS)
        .map(|row| OsVersionShare {
            os: row.k1.clone(),
            os_version: row.k2.clone(),
            cluster_weeks: count(row.n),
            share: ratio(count(row.n), total),
        })
        .collect();
    os_versions.sort_by(|a, b| {
        (b.cluster_weeks, &a.os, &a.os_version).cmp(&(a.cluster_weeks, &b.os, &b.os_version))
    });
    Platforms {
        period: period(scope),
        cluster_weeks: total,
        os,
        os_versions,
        editions,
    }
}

fn hardware(scope: &Scope, rows: &[KeyRow]) -> Hardware {
    let bars = |kind: &'static str, value: fn(u64) -> u64| {
        let mut merged: BTreeMap<u64, u64> = BTreeMap::new();
        for row in rows.iter().filter(|row| row.kind == kind) {
            // Keys were written by this crate from whole numbers; another key is skipped.
            if let Ok(key) = row.k1.parse::<u64>() {
                *merged.entry(value(key)).or_default() += count(row.n);
            }
        }
        let total = merged.values().sum();
        merged
            .into_iter()
            .map(|(value, cluster_weeks)| CountBar {
                value,
                cluster_weeks,
                share: ratio(cluster_weeks, total),
            })
            .collect()
    };
    let active = rows
        .iter()
        .filter(|row| row.kind == kind::CLUSTERS)
        .map(|row| count(row.n))
        .sum();
    Hardware {
        period: period(scope),
        cluster_weeks: active,
        cpus: bars(kind::CPUS, |cpus| cpus),
        memory: bars(kind::MEMORY, |exponent| {
            1u64.checked_shl(exponent as u32).unwrap_or(u64::MAX)
        }),
        cluster_sizes: bars(kind::SIZE, |size| size),
    }
}

fn features(scope: &Scope, rows: Vec<KeyRow>) -> FeatureAdoption {
    let active: u64 = rows
        .iter()
        .filter(|row| row.kind == kind::CLUSTERS)
        .map(|row| count(row.n))
        .sum();
    let mut features: Vec<FeatureShare> = rows
        .into_iter()
        .filter(|row| row.kind == kind::FEATURE)
        .map(|row| FeatureShare {
            cluster_weeks: count(row.n),
            share: ratio(count(row.n), active),
            family: row.k1,
            name: row.k2,
        })
        .collect();
    let rank = |family: &str| FAMILY_ORDER.iter().position(|f| *f == family);
    features.sort_by(|a, b| {
        rank(&a.family)
            .cmp(&rank(&b.family))
            .then(b.cluster_weeks.cmp(&a.cluster_weeks))
            .then_with(|| a.name.cmp(&b.name))
    });
    FeatureAdoption {
        period: period(scope),
        cluster_weeks: active,
        features,
    }
}

const FAMILY_ORDER: [&str; 6] = [
    family::FEATURE,
    family::BRIDGE,
    family::AUTHN,
    family::AUTHZ,
    family::GATEWAY,
    family::PLUGIN,
];

fn distribution<'a>(rows: impl Iterator<Item = &'a KeyRow>) -> Distribution {
    let mut merged: BTreeMap<i64, u64> = BTreeMap::new();
    for row in rows {
        if let Ok(index) = row.k1.parse::<i64>() {
            *merged.entry(index.clamp(0, LAST_BUCKET)).or_default() += count(row.n);
        }
    }
    let total: u64 = merged.values().sum();
    let percentile = |percent: u64| {
        // Nearest rank: the smallest value with at least `percent`% of values at or below.
        let rank = (total * percent).div_ceil(100);
        let mut seen = 0;
        merged.iter().find_map(|(index, n)| {
            seen += n;
            (total > 0 && seen >= rank).then(|| lower_bound(*index))
        })
    };
    Distribution {
        cluster_weeks: total,
        p50: percentile(50),
        p90: percentile(90),
        p99: percentile(99),
        histogram: merged
            .iter()
            .map(|(index, n)| Bucket {
                lower: lower_bound(*index),
                upper: Some(upper_bound(*index)).filter(|upper| upper.is_finite()),
                cluster_weeks: *n,
            })
            .collect(),
    }
}

/// Orders versions by their numbers (`5.0.10` after `5.0.9`), then as text.
pub(crate) fn version_order(a: &str, b: &str) -> Ordering {
    let parts = |version: &str| -> Vec<(u64, String)> {
        version
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                let number = digits.parse().unwrap_or(0);
                (number, part[digits.len()..].to_owned())
            })
            .collect()
    };
    // A leading letter (`e4.4.5`, `v5.1.0`) names a flavour, not a bigger number.
    let trim = |v: &str| {
        v.trim_start_matches(|c: char| c.is_ascii_alphabetic())
            .to_owned()
    };
    parts(&trim(a)).cmp(&parts(&trim(b))).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_number() {
        let mut versions = vec![
            "5.0.10",
            "4.4.19",
            "5.0.9",
            "e4.4.5",
            "5.10.0",
            "5.1.0-rc.1",
        ];
        versions.sort_by(|a, b| version_order(a, b));
        assert_eq!(
            versions,
            [
                "e4.4.5",
                "4.4.19",
                "5.0.9",
                "5.0.10",
                "5.1.0-rc.1",
                "5.10.0"
            ]
        );
    }

    #[test]
    fn percentiles_are_nearest_rank_bucket_bounds() {
        let row = |k1: &str, n| KeyRow {
            kind: kind::CLIENTS,
            k1: k1.into(),
            k2: String::new(),
            n,
        };
        let ten = crate::buckets::bucket(10.0).expect("bucket").to_string();
        let big = crate::buckets::bucket(3000.0).expect("bucket").to_string();
        let rows = [row(&ten, 9), row(&big, 1)];
        let stats = distribution(rows.iter());
        assert_eq!(stats.cluster_weeks, 10);
        assert_eq!(
            (stats.p50, stats.p90, stats.p99),
            (Some(10.0), Some(10.0), Some(3000.0))
        );
        assert_eq!(distribution([].iter()).p50, None);
    }

    /// Weekly rows of `kind`, one per value, the first on `first` (a Monday).
    fn weekly(kind: &'static str, first: NaiveDate, values: &[i64]) -> Vec<WeekRow> {
        values
            .iter()
            .zip(0u64..)
            .map(|(n, i)| WeekRow {
                kind,
                week: first + Days::new(7 * i),
                k1: String::new(),
                n: *n,
            })
            .collect()
    }

    fn day(month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, month, day).expect("day")
    }

    /// Every version and OS, from Monday 2 March 2026 to `last_week`.
    fn from_march(last_week: NaiveDate) -> Scope {
        Scope {
            version: ALL.into(),
            os: ALL.into(),
            first_week: day(3, 2),
            last_week,
        }
    }

    #[test]
    fn the_week_in_progress_is_left_out_of_the_headlines() {
        // Four weeks from Monday 2 March; today is Wednesday of the fourth.
        let range = from_march(day(3, 23));
        let today = day(3, 25);
        let mut rows = weekly(kind::CLUSTERS, day(2, 2), &[99, 10, 10, 10, 10, 20, 30, 2]);
        rows.extend(weekly(
            kind::NODES,
            day(2, 2),
            &[99, 30, 30, 30, 20, 40, 60, 4],
        ));
        rows.extend(weekly(
            kind::NEW_NODES,
            day(2, 2),
            &[100, 1, 1, 1, 1, 2, 3, 9],
        ));
        let overview = overview(&range, &rows, today);
        let (now, before) = (&overview.current, &overview.previous);
        assert_eq!(overview.partial_week, Some(day(3, 23)));
        assert_eq!(
            (now.period.first_week, now.period.last_week),
            (day(3, 2), day(3, 16))
        );
        assert_eq!(now.period.weeks, 3);
        // (10 + 20 + 30) / 3, not (10 + 20 + 30 + 2) / 4 = 15.5.
        assert_eq!(
            (now.avg_weekly_clusters, now.avg_weekly_nodes),
            (20.0, 40.0)
        );
        assert_eq!(now.new_nodes, 6);
        // The three weeks before: 9 February to 23 February (2 February is a fourth).
        assert_eq!(
            (before.period.first_week, before.period.weeks),
            (day(2, 9), 3)
        );
        assert_eq!(
            (before.avg_weekly_clusters, before.avg_weekly_nodes),
            (10.0, 30.0)
        );
        assert_eq!(before.new_nodes, 3);
        assert_eq!(overview.clusters_change, Some(1.0));
        assert_eq!(overview.new_nodes_change, Some(1.0));

        // On Monday 30 March the fourth week has ended: all four count.
        let later = super::overview(&range, &rows, day(3, 30));
        assert_eq!(later.partial_week, None);
        assert_eq!(later.current.avg_weekly_clusters, 15.5);
        // A range only in the week in progress has no complete week to show yet.
        let this_week = Scope {
            first_week: day(3, 23),
            ..range.clone()
        };
        let empty = super::overview(&this_week, &rows, today);
        assert_eq!(empty.partial_week, Some(day(3, 23)));
        assert_eq!(
            (
                empty.current.period.weeks,
                empty.current.avg_weekly_clusters
            ),
            (0, 0.0)
        );
        assert_eq!(empty.clusters_change, None);
    }

    #[test]
    fn weekly_series_mark_the_week_in_progress() {
        let range = from_march(day(3, 30));
        let rows = weekly(kind::CLUSTERS, day(3, 2), &[10, 20, 30, 2]);
        // Sunday 29 March still belongs to the week of 23 March; 30 March is to come.
        let weeks = weekly_activity(&range, &rows, day(3, 29));
        let marks: Vec<_> = weeks.iter().map(|w| (w.clusters, w.complete)).collect();
        assert_eq!(
            marks,
            [(10, true), (20, true), (30, true), (2, false), (0, false)]
        );
        let json = serde_json::to_value(weeks[3]).expect("json");
        assert_eq!(json["complete"], false, "{json}");
        let old: WeekActivity =
            serde_json::from_str(r#"{"week":"2026-03-02","clusters":1,"nodes":1,"new_nodes":0}"#)
                .expect("an answer without `complete`");
        assert!(old.complete);
    }

    #[test]
    fn queries_are_checked() {
        let day = |d| NaiveDate::from_ymd_opt(2024, 3, d).expect("day");
        let query = |from, to, version: Option<&str>| AnalyticsQuery {
            from,
            to,
            version: version.map(str::to_owned),
            os: None,
        };
        let field = |q| match scope(&q) {
            Err(StoreError::InvalidQuery { field, .. }) => field,
            other => panic!("expected InvalidQuery, got {other:?}"),
        };
        assert_eq!(field(query(day(5), day(4), None)), "to");
        assert_eq!(field(query(day(4), day(5), Some(""))), "version");
        assert_eq!(field(query(NaiveDate::MIN, day(5), None)), "from");
        let ok = scope(&query(day(5), day(11), Some("5.0.9"))).expect("scope");
        assert_eq!((ok.first_week, ok.last_week), (day(4), day(11)));
        let before = previous(&ok);
        let expected = (
            NaiveDate::from_ymd_opt(2024, 2, 19).expect("day"),
            day(4) - Days::new(7),
        );
        assert_eq!((before.first_week, before.last_week), expected);
    }
}
