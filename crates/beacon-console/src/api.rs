//! The data API: one JSON endpoint per chart (`/console/api/v1/charts/{chart}` with the
//! page's query string), the filter choices, and each answer flattened to a table for the
//! CSV and NDJSON exports.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use beacon_store::{
    Analytics, Distribution, FeatureAdoption, Hardware, Overview, Platforms, VersionAdoption,
    WeekActivity, Workload,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::chart::Chart;
use crate::error::ConsoleError;
use crate::filters::{Filters, RawFilters};
use crate::state::Console;

/// The answer behind one chart.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Answer {
    Overview(Overview),
    Activity(Vec<WeekActivity>),
    Versions(VersionAdoption),
    Platforms(Platforms),
    Hardware(Hardware),
    Features(FeatureAdoption),
    Workload(Box<Workload>),
}

pub(crate) async fn answer(
    analytics: &dyn Analytics,
    chart: Chart,
    filters: &Filters,
) -> Result<Answer, ConsoleError> {
    let query = filters.query();
    Ok(match chart {
        Chart::Overview => Answer::Overview(analytics.overview(&query).await?),
        Chart::Activity => Answer::Activity(analytics.activity(&query).await?),
        Chart::Versions => Answer::Versions(analytics.version_adoption(&query).await?),
        Chart::Platforms => Answer::Platforms(analytics.platforms(&query).await?),
        Chart::Hardware => Answer::Hardware(analytics.hardware(&query).await?),
        Chart::Features => Answer::Features(analytics.features(&query).await?),
        Chart::Workload => Answer::Workload(Box::new(analytics.workload(&query).await?)),
    })
}

pub(crate) fn chart_named(name: &str) -> Result<Chart, ConsoleError> {
    Chart::from_name(name).ok_or_else(|| ConsoleError::NotFound {
        what: "chart",
        name: name.to_owned(),
    })
}

pub(crate) async fn chart(
    State(console): State<Console>,
    Path(name): Path<String>,
    Query(raw): Query<RawFilters>,
) -> Result<Response, ConsoleError> {
    let chart = chart_named(&name)?;
    let filters = Filters::parse(raw)?;
    let answer = answer(console.store.as_ref(), chart, &filters).await?;
    Ok(Json(answer).into_response())
}

/// The filter lists' values for the range of the query string.
pub(crate) async fn filter_choices(
    State(console): State<Console>,
    Query(raw): Query<RawFilters>,
) -> Result<Response, ConsoleError> {
    let choices = console.filter_choices(&Filters::parse(raw)?).await?;
    Ok(Json(choices).into_response())
}

/// One table row: each value as JSON.
macro_rules! row {
    ($($value:expr),* $(,)?) => {
        vec![$(json!($value)),*]
    };
}

/// An answer as rows under named columns.
pub(crate) struct Table {
    pub(crate) columns: &'static [&'static str],
    pub(crate) rows: Vec<Vec<Value>>,
}

impl Answer {
    pub(crate) fn table(&self) -> Table {
        match self {
            Self::Overview(o) => Table {
                columns: &[
                    "period",
                    "first_week",
                    "last_week",
                    "weeks",
                    "avg_weekly_clusters",
                    "avg_weekly_nodes",
                    "new_nodes",
                ],
                rows: [("current", &o.current), ("previous", &o.previous)]
                    .into_iter()
                    .map(|(name, t)| {
                        row![
                            name,
                            t.period.first_week,
                            t.period.last_week,
                            t.period.weeks,
                            t.avg_weekly_clusters,
                            t.avg_weekly_nodes,
                            t.new_nodes
                        ]
                    })
                    .collect(),
            },
            Self::Activity(weeks) => Table {
                columns: &["week", "clusters", "nodes", "new_nodes", "complete"],
                rows: weeks
                    .iter()
                    .map(|w| row![w.week, w.clusters, w.nodes, w.new_nodes, w.complete])
                    .collect(),
            },
            Self::Versions(v) => Table {
                columns: &["week", "version", "clusters"],
                rows: v
                    .versions
                    .iter()
                    .flat_map(|series| {
                        v.weeks
                            .iter()
                            .zip(&series.clusters)
                            .map(move |(week, n)| row![week, series.version, n])
                    })
                    .collect(),
            },
            Self::Platforms(p) => Table {
                columns: &["dimension", "value", "cluster_weeks", "share"],
                rows: p
                    .os
                    .iter()
                    .map(|s| ("os", s.value.clone(), s.cluster_weeks, s.share))
                    .chain(p.os_versions.iter().map(|s| {
                        (
                            "os_version",
                            format!("{} {}", s.os, s.os_version),
                            s.cluster_weeks,
                            s.share,
                        )
                    }))
                    .chain(
                        p.editions
                            .iter()
                            .map(|s| ("edition", s.value.clone(), s.cluster_weeks, s.share)),
                    )
                    .map(|(d, v, n, share)| row![d, v, n, share])
                    .collect(),
            },
            Self::Hardware(h) => Table {
                columns: &["dimension", "value", "cluster_weeks", "share"],
                rows: [
                    ("cpus", &h.cpus),
                    ("memory_bytes", &h.memory),
                    ("cluster_size", &h.cluster_sizes),
                ]
                .into_iter()
                .flat_map(|(name, bars)| {
                    bars.iter()
                        .map(move |b| row![name, b.value, b.cluster_weeks, b.share])
                })
                .collect(),
            },
            Self::Features(f) => Table {
                columns: &["family", "name", "cluster_weeks", "share"],
                rows: f
                    .features
                    .iter()
                    .map(|s| row![s.family, s.name, s.cluster_weeks, s.share])
                    .collect(),
            },
            Self::Workload(w) => Table {
                columns: &["metric", "statistic", "lower", "upper", "value"],
                rows: workload_metrics(w)
                    .into_iter()
                    .flat_map(|(metric, d)| distribution_rows(metric, d))
                    .collect(),
            },
        }
    }
}

/// The workload values with their names and units.
pub(crate) fn workload_metrics(w: &Workload) -> [(&'static str, &Distribution); 4] {
    [
        ("clients", &w.clients),
        ("topics", &w.topics),
        ("messages_sent_per_second", &w.messages_sent_rate),
        ("messages_received_per_second", &w.messages_received_rate),
    ]
}

fn distribution_rows(metric: &'static str, d: &Distribution) -> Vec<Vec<Value>> {
    let percentiles = [("p50", d.p50), ("p90", d.p90), ("p99", d.p99)]
        .into_iter()
        .map(|(name, value)| row![metric, name, Value::Null, Value::Null, value]);
    let buckets = d
        .histogram
        .iter()
        .map(|b| row![metric, "bucket", b.lower, b.upper, b.cluster_weeks]);
    percentiles.chain(buckets).collect()
}
