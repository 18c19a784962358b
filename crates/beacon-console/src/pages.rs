//! The dashboard pages: each reads the filters from the URL, asks the store, and renders
//! cards of SVG charts, each card linking to its JSON and exports. One function per page
//! draws its body from the store's answer, without I/O.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use beacon_store::{
    Analytics, CountBar, Distribution, FeatureAdoption, Hardware, Overview, Platforms, Share,
    VersionAdoption, WeekActivity, Workload,
};

use crate::access::SignedIn;
use crate::api::{Answer, answer, workload_metrics};
use crate::chart::Chart;
use crate::error::ConsoleError;
use crate::export::{Format, REPORTS};
use crate::filters::{Filters, RawFilters};
use crate::html::esc;
use crate::layout;
use crate::paths::{self, Page};
use crate::state::Console;
use crate::svg::{self, Labels, Series, bytes, number, percent};

/// Versions drawn on their own in the stacked chart; the rest are summed as "other".
const TOP_VERSIONS: usize = 8;
/// OS versions listed.
const TOP_OS_VERSIONS: usize = 15;

/// The handler of a dashboard page.
pub(crate) fn route(page: Page) -> MethodRouter<Console> {
    get(
        move |State(console): State<Console>,
              Extension(signed_in): Extension<SignedIn>,
              Query(raw): Query<RawFilters>| async move {
            show(&console, &signed_in, raw, &page).await
        },
    )
}

async fn show(console: &Console, signed_in: &SignedIn, raw: RawFilters, page: &Page) -> Response {
    let rendered = async {
        let filters = Filters::parse(raw)?;
        // At once: each read counts the reports acknowledged before it, and on PostgreSQL,
        // where that means waiting for a count, reads that wait together share one.
        let (choices, body) = tokio::try_join!(
            console.filter_choices(&filters),
            body(console.store.as_ref(), page.chart, &filters),
        )?;
        Ok::<_, ConsoleError>((filters, choices, body))
    }
    .await;
    match rendered {
        Ok((filters, choices, body)) => {
            layout::dashboard(page, &signed_in.session, &filters, &choices, &body).into_response()
        }
        Err(error) => layout::error_page(&error),
    }
}

/// Asks the store for what the page of `chart` shows, then draws it.
async fn body(
    store: &dyn Analytics,
    chart: Chart,
    filters: &Filters,
) -> Result<String, ConsoleError> {
    let (answer, weeks) = tokio::try_join!(
        answer(store, chart, filters),
        weekly_activity(store, chart, filters),
    )?;
    Ok(match answer {
        Answer::Overview(a) => overview(&a, &weeks, filters),
        Answer::Activity(a) => activity(&a, filters),
        Answer::Versions(a) => versions(&a, filters),
        Answer::Platforms(a) => platforms(&a, filters),
        Answer::Hardware(a) => hardware(&a, filters),
        Answer::Features(a) => features(&a, filters),
        Answer::Workload(a) => workload(&a, filters),
    })
}

/// The overview also draws the weekly activity (read beside its answer); other pages
/// need none.
async fn weekly_activity(
    store: &dyn Analytics,
    chart: Chart,
    filters: &Filters,
) -> Result<Vec<WeekActivity>, ConsoleError> {
    if chart != Chart::Overview {
        return Ok(Vec::new());
    }
    Ok(store.activity(&filters.query()).await?)
}

fn overview(overview: &Overview, weeks: &[WeekActivity], filters: &Filters) -> String {
    let cards = Cards::new(Chart::Activity, filters);
    let activity = activity_chart(weeks, "overview-activity");
    format!(
        "{}<div class=\"grid\">{}</div>",
        headlines(overview),
        cards.card("Active clusters and nodes per week", "", &activity)
    )
}

fn activity(weeks: &[WeekActivity], filters: &Filters) -> String {
    let cards = Cards::new(Chart::Activity, filters);
    let dates: Vec<_> = weeks.iter().map(|w| w.week).collect();
    let new = svg::weekly_lines(
        &Labels {
            id: "new-installs",
            x: "Week (Monday, UTC)",
            y: "New installations (nodes)",
        },
        &dates,
        complete_weeks(weeks),
        &[Series {
            name: "New nodes".into(),
            values: weeks.iter().map(|w| w.new_nodes as f64).collect(),
        }],
    );
    format!(
        "<div class=\"grid\">{}{}</div>",
        cards.card(
            "Active clusters and nodes",
            "Distinct clusters (counted once however many nodes report) and nodes per ISO week.",
            &activity_chart(weeks, "activity")
        ),
        cards.card(
            "New installations",
            "Node uuids seen for the first time, per week.",
            &new
        ),
    )
}

fn versions(adoption: &VersionAdoption, filters: &Filters) -> String {
    let cards = Cards::new(Chart::Versions, filters);
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
    let chart = svg::weekly_stacked(
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
        cards.card(
            "Clusters by EMQX version",
            "Each week's active clusters, stacked by the version they ran.",
            &chart
        )
    )
}

fn platforms(platforms: &Platforms, filters: &Filters) -> String {
    let cards = Cards::new(Chart::Platforms, filters);
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
        cards.card(
            "Operating system",
            &note,
            &svg::share_bars(&share_labels("os"), &shares(&platforms.os))
        ),
        cards.card(
            "OS version",
            &note,
            &svg::share_bars(&share_labels("os-versions"), &os_versions)
        ),
        cards.card(
            "Edition",
            &note,
            &svg::share_bars(&share_labels("editions"), &shares(&platforms.editions))
        ),
    )
}

fn hardware(hardware: &Hardware, filters: &Filters) -> String {
    let cards = Cards::new(Chart::Hardware, filters);
    let card = |title: &str,
                note: &str,
                id: &str,
                x: &str,
                values: &[CountBar],
                label: fn(u64) -> String| {
        let bars: Vec<(String, f64)> = values
            .iter()
            .map(|b| (label(b.value), b.cluster_weeks as f64))
            .collect();
        let labels = Labels {
            id,
            x,
            y: "Cluster-weeks",
        };
        cards.card(title, note, &svg::histogram(&labels, &bars))
    };
    let count = |v: u64| v.to_string();
    format!(
        "<div class=\"grid\">{}{}{}</div>",
        card(
            "CPUs per node",
            "",
            "cpus",
            "CPU cores",
            &hardware.cpus,
            count
        ),
        card(
            "Memory per node",
            "Rounded to the nearest power of two.",
            "memory",
            "Memory",
            &hardware.memory,
            bytes
        ),
        card(
            "Cluster size",
            "",
            "cluster-sizes",
            "Nodes in the cluster",
            &hardware.cluster_sizes,
            count
        ),
    )
}

fn features(adoption: &FeatureAdoption, filters: &Filters) -> String {
    let cards = Cards::new(Chart::Features, filters);
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
    let shown: String = families
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
            cards.card(&title, &note, &svg::share_bars(&labels, &rows))
        })
        .collect();
    let empty = if shown.is_empty() {
        svg::share_bars(&share_labels("features"), &[])
    } else {
        String::new()
    };
    format!("<div class=\"grid\">{shown}{empty}</div>")
}

fn workload(workload: &Workload, filters: &Filters) -> String {
    let cards = Cards::new(Chart::Workload, filters);
    let shown: String = workload_metrics(workload)
        .into_iter()
        .map(|(metric, distribution)| workload_card(&cards, metric, distribution))
        .collect();
    format!("<div class=\"grid\">{shown}</div>")
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

/// How many weeks from the first had ended (the store marks the week in progress).
fn complete_weeks(weeks: &[WeekActivity]) -> usize {
    weeks.iter().take_while(|w| w.complete).count()
}

fn activity_chart(weeks: &[WeekActivity], id: &str) -> String {
    let dates: Vec<_> = weeks.iter().map(|w| w.week).collect();
    svg::weekly_lines(
        &Labels {
            id,
            x: "Week (Monday, UTC)",
            y: "Active per week",
        },
        &dates,
        complete_weeks(weeks),
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
    let partial = overview.partial_week.map_or(String::new(), |week| {
        format!(
            "<p class=\"partial-note\" id=\"headline-partial\">Complete weeks only: the week \
             of {week} is still in progress, drawn as \"so far\" and left out of these numbers.</p>"
        )
    });
    format!("<div class=\"headlines\">{html}</div>{partial}")
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

fn workload_card(cards: &Cards<'_>, metric: &str, distribution: &Distribution) -> String {
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
    let chart = svg::histogram(
        &Labels {
            id: &id,
            x: unit,
            y: "Cluster-weeks",
        },
        &bars,
    );
    cards.card(
        &capitalized(&title),
        "Each cluster's latest report of the week.",
        &format!("{table}{chart}"),
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The cards of a page, each linking to the data of one chart under the page's filters.
struct Cards<'a> {
    data: Chart,
    filters: &'a Filters,
}

impl<'a> Cards<'a> {
    fn new(data: Chart, filters: &'a Filters) -> Self {
        Self { data, filters }
    }

    /// A chart card with links to the data behind it.
    fn card(&self, title: &str, note: &str, chart: &str) -> String {
        let query = esc(&self.filters.query_string());
        let data = self.data.name();
        let note = if note.is_empty() {
            String::new()
        } else {
            format!("<p class=\"note\">{}</p>", esc(note))
        };
        format!(
            "<section class=\"card\"><h2>{}</h2>{note}{chart}<div class=\"links\">\
         <a href=\"{json}?{query}\">JSON</a>\
         <a href=\"{csv}?{query}\" download>CSV</a>\
         <a href=\"{ndjson}?{query}\" download>NDJSON</a>\
         <a href=\"{raw}?{query}\" download class=\"raw-export\">Raw reports (CSV)</a>\
         </div></section>",
            esc(title),
            json = paths::chart_data(data),
            csv = paths::export(data, Format::Csv.extension()),
            ndjson = paths::export(data, Format::Ndjson.extension()),
            raw = paths::export(REPORTS, Format::Csv.extension()),
        )
    }
}
