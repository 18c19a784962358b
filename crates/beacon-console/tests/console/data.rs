//! The data API, exports, OpenAPI document and pages over a seeded SQLite store: answers
//! are the store's own, exports parse back to what is stored, pages draw data points.

use crate::support;

use beacon_console::{Chart, ConsoleOptions};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE};
use serde_json::Value;
use support::{Served, Session, client, login, serve};

const SEEDED: usize = 3000;

async fn get(served: &Served, session: &Session, path: &str) -> reqwest::Response {
    served
        .get(&client(), path, &[(COOKIE, &session.cookie)])
        .await
}

/// The JSON answer to `GET path`.
async fn get_json(served: &Served, session: &Session, path: &str) -> Value {
    let response = get(served, session, path).await;
    response.json().await.expect("a JSON answer")
}

/// The whole seeded year (and a bit), so that every report is in range.
fn year_query() -> String {
    let today = chrono::Utc::now().date_naive();
    format!("from={}&to={today}", today - chrono::Days::new(380))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_json_is_the_stores_answer_and_bad_queries_are_named() {
    let served = serve(SEEDED, ConsoleOptions::default()).await;
    let session = login(&client(), &served.base).await;
    let query = year_query();
    let activity: Value = get_json(
        &served,
        &session,
        &format!("/console/api/v1/charts/activity?{query}"),
    )
    .await;
    let today = chrono::Utc::now().date_naive();
    let expected = served
        .store
        .activity(&beacon_store::AnalyticsQuery {
            from: today - chrono::Days::new(380),
            to: today,
            version: None,
            os: None,
        })
        .await
        .unwrap();
    assert_eq!(activity, serde_json::to_value(&expected).unwrap());
    assert!(
        expected.iter().any(|w| w.clusters > 0),
        "the seeded history is counted"
    );

    let filtered: Value = get_json(
        &served,
        &session,
        &format!("/console/api/v1/charts/versions?{query}&os=no-such-os"),
    )
    .await;
    assert!(
        filtered["versions"].as_array().unwrap().is_empty(),
        "the OS filter applies: {filtered}"
    );

    let bad = get(
        &served,
        &session,
        "/console/api/v1/charts/activity?from=yesterday",
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["code"], "BAD_REQUEST");
    assert!(
        body["message"].as_str().unwrap().contains("`from`"),
        "{body}"
    );
    let unknown = get(&served, &session, "/console/api/v1/charts/pie").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let choices: Value = get_json(&served, &session, "/console/api/v1/filters").await;
    assert!(
        choices["versions"].as_array().unwrap().len() > 1,
        "{choices}"
    );
    assert!(!choices["os"].as_array().unwrap().is_empty(), "{choices}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_report_exports_stream_every_report_of_the_range() {
    let served = serve(SEEDED, ConsoleOptions::default()).await;
    let session = login(&client(), &served.base).await;
    let stored = served.store.count().await.unwrap();
    let query = year_query();

    let ndjson = get(
        &served,
        &session,
        &format!("/console/api/v1/export/reports.ndjson?{query}"),
    )
    .await;
    assert_eq!(ndjson.headers()[CONTENT_TYPE], "application/x-ndjson");
    assert!(
        ndjson.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"beacon-reports-")
    );
    let text = ndjson.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len() as u64,
        stored,
        "more than one export page, all of it"
    );
    assert!(
        lines[0]["report"].is_object(),
        "the report is nested JSON: {}",
        lines[0]
    );
    assert!(
        lines
            .windows(2)
            .all(|w| (w[0]["day"].as_str(), w[0]["uuid"].as_str())
                < (w[1]["day"].as_str(), w[1]["uuid"].as_str()))
    );

    let csv = get(
        &served,
        &session,
        &format!("/console/api/v1/export/reports.csv?{query}"),
    )
    .await;
    assert_eq!(csv.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        "day,uuid,cluster_uuid,received_at,emqx_version,os_name,os_version,edition,node_count,format,report"
    );
    // Each record ends with CRLF; the JSON field contains no line breaks.
    assert_eq!(text.matches("\r\n").count() as u64, stored + 1);

    let first_day = lines[0]["day"].as_str().unwrap();
    let one_day = get(
        &served,
        &session,
        &format!("/console/api/v1/export/reports.ndjson?from={first_day}&to={first_day}"),
    )
    .await;
    let count = one_day.text().await.unwrap().lines().count();
    let expected = lines.iter().filter(|l| l["day"] == first_day).count();
    assert_eq!(count, expected, "the date range applies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_aggregate_exports_as_csv_and_ndjson() {
    let served = serve(SEEDED, ConsoleOptions::default()).await;
    let session = login(&client(), &served.base).await;
    let query = year_query();
    for chart in Chart::ALL {
        let name = chart.name();
        let csv = get(
            &served,
            &session,
            &format!("/console/api/v1/export/{name}.csv?{query}"),
        )
        .await;
        assert_eq!(csv.status(), StatusCode::OK, "{name}");
        let csv = csv.text().await.unwrap();
        let ndjson = get(
            &served,
            &session,
            &format!("/console/api/v1/export/{name}.ndjson?{query}"),
        )
        .await
        .text()
        .await
        .unwrap();
        let rows: Vec<Value> = ndjson
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!rows.is_empty(), "{name} has rows");
        assert_eq!(
            csv.lines().count(),
            rows.len() + 1,
            "{name}: same rows, plus the CSV header"
        );
        let columns: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let keys: Vec<&str> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(columns, keys, "{name}: CSV header = NDJSON keys");
    }
    let activity = get(
        &served,
        &session,
        &format!("/console/api/v1/export/activity.ndjson?{query}"),
    )
    .await
    .text()
    .await
    .unwrap();
    let total_new: u64 = activity
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["new_nodes"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let today = chrono::Utc::now().date_naive();
    let nodes = served
        .store
        .list(today - chrono::Days::new(380), today)
        .await
        .unwrap();
    let distinct: std::collections::BTreeSet<_> = nodes.iter().map(|r| r.uuid.clone()).collect();
    assert_eq!(
        total_new,
        distinct.len() as u64,
        "every node is new exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let served = serve(0, ConsoleOptions::default()).await;
    let session = login(&client(), &served.base).await;
    let doc: Value = get_json(&served, &session, "/console/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for chart in Chart::ALL {
        let name = chart.name();
        assert!(
            paths.contains_key(&format!("/console/api/v1/charts/{name}")),
            "{name}"
        );
        assert!(
            paths.contains_key(&format!("/console/api/v1/export/{name}.csv")),
            "{name}"
        );
        assert!(
            paths.contains_key(&format!("/console/api/v1/export/{name}.ndjson")),
            "{name}"
        );
    }
    assert!(paths.contains_key("/console/api/v1/export/reports.ndjson"));
    assert_eq!(
        doc["components"]["securitySchemes"]["apiToken"]["scheme"],
        "bearer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_draw_charts_with_data_points_and_keep_filters_in_links() {
    let served = serve(SEEDED, ConsoleOptions::default()).await;
    let session = login(&client(), &served.base).await;
    let query = year_query();
    for page in [
        "overview",
        "activity",
        "versions",
        "platforms",
        "hardware",
        "features",
        "workload",
    ] {
        let html = get(&served, &session, &format!("/console/{page}?{query}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(html.contains("<svg class=\"chart\""), "{page} has a chart");
        assert!(
            html.matches("class=\"point").count() > 3,
            "{page} has data points"
        );
        assert!(html.contains("<title>"), "{page} has hover values");
        assert!(
            html.contains(&format!(
                "/console/versions?{}",
                query.replace('&', "&amp;")
            )),
            "{page}: links keep the filters"
        );
    }
    let overview = get(&served, &session, &format!("/console/overview?{query}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(overview.contains("id=\"headline-clusters\""));
    let bad = get(&served, &session, "/console/overview?to=2026-02-30").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("`to`"));
}
