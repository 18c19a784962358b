//! The dashboard pages: each reads the filters from the URL, asks the store, and renders
//! cards of SVG charts, each card linking to its JSON and exports.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use beacon_store::{Distribution, Overview, Share};

use crate::access::SignedIn;
use crate::api::{Chart, workload_metrics};
use crate::charts::{self, Labels, Series, bytes, number, percent};
use crate::filters::{Filters, RawFilters};
use crate::html::{self, Choices, esc};
use crate::{Console, ConsoleError};

/// Versions drawn on their own in the stacked chart; the rest are summed as "other".
const TOP_VERSIONS: usize = 8;
/// OS versions listed.
const TOP_OS_VERSIONS: usize = 15;

macro_rules! page_handler {
    ($name:ident, $chart:expr) => {
        pub(crate) async fn $name(
            State(console): State<Console>,
            Extension(signed_in): Extension<SignedIn>,
            Query(raw): Query<RawFilters>,
        ) -> Response {
            page(&console, &signed_in, raw, $chart).await
        }
    };
}

page_handler!(overview, Chart::Overview);
page_handler!(activity, Chart::Activity);
page_handler!(versions, Chart::Versions);
page_handler!(platforms, Chart::Platforms);
page_handler!(hardware, Chart::Hardware);
page_handler!(features, Chart::Features);
page_handler!(workload, Chart::Workload);

async fn page(console: &Console, signed_in: &SignedIn, raw: RawFilters, chart: Chart) -> Response {
    let rendered = async {
        let filters = Filters::parse(raw)?;
        let choices = Choices {
            versions: console.store.distinct_versions().await?,
            os: console.store.distinct_os().await?,
        };
        let body = body(console, chart, &filters).await?;
        Ok::<_, ConsoleError>((filters, choices, body))
    }
    .await;
    match rendered {
        Ok((filters, choices, body)) => {
            let path = format!("/console/{}", chart.name());
            let title = html::NAV
                .iter()
                .find(|(href, _)| *href == path)
                .map_or("Console", |(_, title)| title);
            html::dashboard(&path, title, signed_in, &filters, &choices, &body).into_response()
        }
        Err(error) => html::error_page(&error),
    }
}

async fn body(console: &Console, chart: Chart, filters: &Filters) -> Result<String, ConsoleError> {
    let store = &console.store;
    let query = filters.query();
    Ok(match chart {
        Chart::Overview => {
            let overview = store.overview(&query).await?;
            let activity = activity_chart(&store.activity(&query).await?, "overview-activity");
            format!(
                "{}<div class=\"grid\">{}</div>",
                headlines(&overview),
                card(
                    "Active clusters and nodes per week",
                    "",
                    &activity,
                    "activity",
                    filters
                )
            )
        }
        Chart::Activity => {
            let weeks = store.activity(&query).await?;
            let dates: Vec<_> = weeks.iter().map(|w| w.week).collect();
            let new = charts::weekly_lines(
                &Labels {
                    id: "new-installs",
                    x: "Week (Monday, UTC)",
                    y: "New installations (nodes)",
                },
                &dates,
                &[Series {
                    name: "New nodes".into(),
                    values: weeks.iter().map(|w| w.new_nodes as f64).collect(),
                }],
            );
            format!(
                "<div class=\"grid\">{}{}</div>",
                card(
                    "Active clusters and nodes",
                    "Distinct clusters (counted once however many nodes report) and nodes per ISO week.",
                    &activity_chart(&weeks, "activity"),
                    "activity",
                    filters
                ),
                card(
                    "New installations",
                    "Node uuids seen for the first time, per week.",
                    &new,
                    "activity",
                    filters
                ),
            )
        }
        Chart::Versions => {
            let adoption = store.version_adoption(&query).await?;
            let mut series: Vec<Series> = adoption
                .versions
                .iter()
                .map(|v| Series {
                    name: v.version.clone(),
                    values: v.clusters.iter().map(|n| *n as f64).collect(),
                })
                .collect();
            series.sort_by(|a, b| total(b).total_cmp(&total(a)));
            let rest = series.split_off(series.len().min(TOP_VERSIONS));
            if !rest.is_empty() {
                let values = (0..adoption.weeks.len())
                    .map(|i| rest.iter().map(|s| s.values[i]).sum())
                    .collect();
                series.push(Series {
                    name: format!("{} other versions", rest.len()),
                    values,
                });
            }
            let chart = charts::weekly_stacked(
                &Labels {
                    id: "versions",
                    x: "Week (Monday, UTC)",
                    y: "Active clusters",
                },
                &adoption.weeks,
                &series,
            );
            format!(
                "<div class=\"grid\">{}</div>",
                card(
                    "Clusters by EMQX version",
                    "Each week's active clusters, stacked by the version they ran.",
                    &chart,
                    "versions",
                    filters
                )
            )
        }
        Chart::Platforms => {
            let platforms = store.platforms(&query).await?;
            let os_versions: Vec<_> = platforms
                .os_versions
                .iter()
                .take(TOP_OS_VERSIONS)
                .map(|s| {
                    (
                        format!("{} {}", s.os, s.os_version),
                        s.share,
                        s.cluster_weeks,
                    )
                })
                .collect();
            let note = format!(
                "Share of {} cluster-weeks.",
                number(platforms.cluster_weeks as f64)
            );
            format!(
                "<div class=\"grid\">{}{}{}</div>",
                card(
                    "Operating system",
                    &note,
                    &charts::share_bars(&share_labels("os"), &shares(&platforms.os)),
                    "platforms",
                    filters
                ),
                card(
                    "OS version",
                    &note,
                    &charts::share_bars(&share_labels("os-versions"), &os_versions),
                    "platforms",
                    filters
                ),
                card(
                    "Edition",
                    &note,
                    &charts::share_bars(&share_labels("editions"), &shares(&platforms.editions)),
                    "platforms",
                    filters
                ),
            )
        }
        Chart::Hardware => {
            let hardware = store.hardware(&query).await?;
            let bars = |values: &[beacon_store::CountBar],
                        label: fn(u64) -> String|
             -> Vec<(String, f64)> {
                values
                    .iter()
                    .map(|b| (label(b.value), b.cluster_weeks as f64))
                    .collect()
            };
            let y = "Cluster-weeks";
            format!(
                "<div class=\"grid\">{}{}{}</div>",
                card(
                    "CPUs per node",
                    "",
                    &charts::histogram(
                        &Labels {
                            id: "cpus",
                            x: "CPU cores",
                            y
                        },
                        &bars(&hardware.cpus, |v| v.to_string())
                    ),
                    "hardware",
                    filters
                ),
                card(
                    "Memory per node",
                    "Rounded to the nearest power of two.",
                    &charts::histogram(
                        &Labels {
                            id: "memory",
                            x: "Memory",
                            y
                        },
                        &bars(&hardware.memory, bytes)
                    ),
                    "hardware",
                    filters
                ),
                card(
                    "Cluster size",
                    "",
                    &charts::histogram(
                        &Labels {
                            id: "cluster-sizes",
                            x: "Nodes in the cluster",
                            y
                        },
                        &bars(&hardware.cluster_sizes, |v| v.to_string())
                    ),
                    "hardware",
                    filters
                ),
            )
        }
        Chart::Features => {
            let adoption = store.features(&query).await?;
            let mut families: Vec<&str> = Vec::new();
            for feature in &adoption.features {
                if !families.contains(&feature.family.as_str()) {
                    families.push(&feature.family);
                }
            }
            let note = format!(
                "Share of {} active cluster-weeks.",
                number(adoption.cluster_weeks as f64)
            );
            let cards: String = families
                .iter()
                .map(|family| {
                    let rows: Vec<_> = adoption
                        .features
                        .iter()
                        .filter(|f| f.family == *family)
                        .map(|f| (f.name.clone(), f.share, f.cluster_weeks))
                        .collect();
                    let title = if *family == "feature" {
                        "Features".to_owned()
                    } else {
                        format!("By {family}")
                    };
                    let id = format!("features-{family}");
                    let labels = Labels {
                        id: &id,
                        x: "cluster-weeks",
                        y: "Share of active clusters",
                    };
                    card(
                        &title,
                        &note,
                        &charts::share_bars(&labels, &rows),
                        "features",
                        filters,
                    )
                })
                .collect();
            let empty = if cards.is_empty() {
                charts::share_bars(&share_labels("features"), &[])
            } else {
                String::new()
            };
            format!("<div class=\"grid\">{cards}{empty}</div>")
        }
        Chart::Workload => {
            let workload = store.workload(&query).await?;
            let cards: String = workload_metrics(&workload)
                .into_iter()
                .map(|(metric, distribution)| workload_card(metric, distribution, filters))
                .collect();
            format!("<div class=\"grid\">{cards}</div>")
        }
    })
}

fn total(series: &Series) -> f64 {
    series.values.iter().sum()
}

fn share_labels(id: &str) -> Labels<'_> {
    Labels {
        id,
        x: "cluster-weeks",
        y: "Share of cluster-weeks",
    }
}

fn shares(values: &[Share]) -> Vec<(String, f64, u64)> {
    values
        .iter()
        .map(|s| (s.value.clone(), s.share, s.cluster_weeks))
        .collect()
}

fn activity_chart(weeks: &[beacon_store::WeekActivity], id: &str) -> String {
    let dates: Vec<_> = weeks.iter().map(|w| w.week).collect();
    charts::weekly_lines(
        &Labels {
            id,
            x: "Week (Monday, UTC)",
            y: "Active per week",
        },
        &dates,
        &[
            Series {
                name: "Clusters".into(),
                values: weeks.iter().map(|w| w.clusters as f64).collect(),
            },
            Series {
                name: "Nodes".into(),
                values: weeks.iter().map(|w| w.nodes as f64).collect(),
            },
        ],
    )
}

fn headlines(overview: &Overview) -> String {
    let (current, previous) = (&overview.current, &overview.previous);
    let cards = [
        (
            "clusters",
            "Active clusters / week",
            current.avg_weekly_clusters,
            previous.avg_weekly_clusters,
            overview.clusters_change,
        ),
        (
            "nodes",
            "Active nodes / week",
            current.avg_weekly_nodes,
            previous.avg_weekly_nodes,
            overview.nodes_change,
        ),
        (
            "new-nodes",
            "New installations",
            current.new_nodes as f64,
            previous.new_nodes as f64,
            overview.new_nodes_change,
        ),
    ];
    let html: String = cards
        .iter()
        .map(|(id, label, now, before, change)| {
            format!(
                "<div class=\"card headline\" id=\"headline-{id}\"><div class=\"label\">{label}</div>\
                 <div><span class=\"value\">{}</span>{}</div>\
                 <p class=\"note\">previous {} weeks: {}</p></div>",
                headline_number(*now),
                trend(*change),
                previous.period.weeks,
                headline_number(*before),
            )
        })
        .collect();
    format!("<div class=\"headlines\">{html}</div>")
}

fn headline_number(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// An arrow and the relative change against the previous period.
fn trend(change: Option<f64>) -> String {
    match change {
        None => {
            "<span class=\"trend flat\" title=\"nothing in the previous period\">new</span>".into()
        }
        Some(c) if c > 0.005 => format!("<span class=\"trend up\">▲ +{}</span>", percent(c)),
        Some(c) if c < -0.005 => format!("<span class=\"trend down\">▼ {}</span>", percent(c)),
        Some(_) => "<span class=\"trend flat\">► 0%</span>".into(),
    }
}

fn workload_card(metric: &str, distribution: &Distribution, filters: &Filters) -> String {
    let unit = if metric.ends_with("per_second") {
        "messages/s"
    } else {
        metric
    };
    let title = metric.replace('_', " ");
    let percentile = |value: Option<f64>| value.map_or("–".to_owned(), number);
    let table = format!(
        "<table class=\"percentiles\"><tr><th>p50</th><th>p90</th><th>p99</th><th>cluster-weeks</th></tr>\
         <tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        percentile(distribution.p50),
        percentile(distribution.p90),
        percentile(distribution.p99),
        distribution.cluster_weeks
    );
    let bars: Vec<(String, f64)> = distribution
        .histogram
        .iter()
        .map(|b| {
            let range = match b.upper {
                Some(upper) => format!("{}–{}", number(b.lower), number(upper)),
                None => format!("≥ {}", number(b.lower)),
            };
            (range, b.cluster_weeks as f64)
        })
        .collect();
    let id = format!("workload-{metric}");
    let chart = charts::histogram(
        &Labels {
            id: &id,
            x: unit,
            y: "Cluster-weeks",
        },
        &bars,
    );
    card(
        &capitalized(&title),
        "Each cluster's latest report of the week.",
        &format!("{table}{chart}"),
        "workload",
        filters,
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A chart card with links to the data behind it.
fn card(title: &str, note: &str, chart: &str, data: &str, filters: &Filters) -> String {
    let query = esc(&filters.query_string());
    let note = if note.is_empty() {
        String::new()
    } else {
        format!("<p class=\"note\">{}</p>", esc(note))
    };
    format!(
        "<section class=\"card\"><h2>{}</h2>{note}{chart}<div class=\"links\">\
         <a href=\"/console/api/v1/charts/{data}?{query}\">JSON</a>\
         <a href=\"/console/api/v1/export/{data}.csv?{query}\" download>CSV</a>\
         <a href=\"/console/api/v1/export/{data}.ndjson?{query}\" download>NDJSON</a>\
         <a href=\"/console/api/v1/export/reports.csv?{query}\" download class=\"raw-export\">Raw reports (CSV)</a>\
         </div></section>",
        esc(title)
    )
}
