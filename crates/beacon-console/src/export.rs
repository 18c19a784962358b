//! Exports: `/console/api/v1/export/{name}.{csv|ndjson}` with the page's query string.
//! `reports` streams the raw reports of the date range page by page (the whole export is
//! never held in memory); any chart name exports that chart's answer as a table.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use beacon_store::{Analytics, StoredReport, export_reports};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::api::{answer, chart_named};
use crate::error::ConsoleError;
use crate::filters::{Filters, RawFilters};
use crate::state::Console;

/// Name of the raw report export.
pub(crate) const REPORTS: &str = "reports";
const REPORT_COLUMNS: [&str; 11] = [
    "day",
    "uuid",
    "cluster_uuid",
    "received_at",
    "emqx_version",
    "os_name",
    "os_version",
    "edition",
    "node_count",
    "format",
    "report",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub(crate) const ALL: [Format; 2] = [Format::Csv, Format::Ndjson];

    pub(crate) fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
        }
    }

    /// One line: CSV fields, or a JSON object of `columns`.
    fn line(self, columns: &[&str], values: Vec<Value>) -> String {
        match self {
            Self::Csv => csv_line(values.iter().map(csv_text)),
            Self::Ndjson => {
                let object: Map<String, Value> = columns
                    .iter()
                    .map(|c| (*c).to_owned())
                    .zip(values)
                    .collect();
                format!("{}\n", Value::Object(object))
            }
        }
    }

    /// The first line: the CSV header; NDJSON has none.
    fn header(self, columns: &[&str]) -> String {
        match self {
            Self::Csv => csv_line(columns.iter().map(|c| (*c).to_owned())),
            Self::Ndjson => String::new(),
        }
    }
}

pub(crate) async fn export(
    State(console): State<Console>,
    Path(file): Path<String>,
    Query(raw): Query<RawFilters>,
) -> Result<Response, ConsoleError> {
    let (name, format) = parse_file(&file)?;
    let filters = Filters::parse(raw)?;
    let body = if name == REPORTS {
        let analytics: Arc<dyn Analytics> = console.store.clone();
        report_stream(analytics, &filters, format)
    } else {
        let chart = chart_named(name)?;
        let table = answer(console.store.as_ref(), chart, &filters)
            .await?
            .table();
        let mut text = format.header(table.columns);
        for row in table.rows {
            text.push_str(&format.line(table.columns, row));
        }
        Body::from(text)
    };
    let disposition = format!(
        "attachment; filename=\"beacon-{name}-{}-{}.{}\"",
        filters.from,
        filters.to,
        format.extension()
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn parse_file(file: &str) -> Result<(&str, Format), ConsoleError> {
    let unknown = || ConsoleError::NotFound {
        what: "export",
        name: file.to_owned(),
    };
    let (name, extension) = file.rsplit_once('.').ok_or_else(unknown)?;
    let format = Format::ALL
        .into_iter()
        .find(|f| f.extension() == extension)
        .ok_or_else(unknown)?;
    Ok((name, format))
}

/// The raw reports as a body stream. A storage failure mid-stream ends the body early
/// (the status line is already sent), and is logged.
fn report_stream(analytics: Arc<dyn Analytics>, filters: &Filters, format: Format) -> Body {
    let header = futures::stream::once(futures::future::ready(format.header(&REPORT_COLUMNS)));
    let rows =
        export_reports(analytics, filters.from, filters.to).map(move |report| match report {
            Ok(report) => Ok(format.line(&REPORT_COLUMNS, report_values(report, format))),
            Err(error) => {
                tracing::error!(%error, "console: report export failed midway");
                Err(std::io::Error::other(error.to_string()))
            }
        });
    let lines = header.map(Ok).chain(rows).map(|line| line.map(Bytes::from));
    Body::from_stream(lines)
}

/// In NDJSON the report is nested JSON; in CSV it is the JSON text in one field.
fn report_values(report: StoredReport, format: Format) -> Vec<Value> {
    let raw = match format {
        Format::Ndjson => serde_json::from_str(&report.raw).unwrap_or(Value::String(report.raw)),
        Format::Csv => Value::String(report.raw),
    };
    vec![
        json!(report.day),
        json!(report.uuid),
        json!(report.cluster_uuid),
        json!(report.received_at),
        json!(report.emqx_version),
        json!(report.os_name),
        json!(report.os_version),
        json!(report.edition),
        json!(report.node_count),
        json!(report.format),
        raw,
    ]
}

fn csv_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => neutralised(text),
        other => other.to_string(),
    }
}

/// Text that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a tab or
/// carriage return before one) gets a leading `'`, so that opening an export of reports
/// sent by anyone cannot run their formulas. Numbers are written from JSON numbers, never
/// from text, so they are not touched.
fn neutralised(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let mut line = fields
        .map(|field| {
            if field.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", field.replace('"', "\"\""))
            } else {
                field
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let line =
            csv_line(["a".into(), "b,c".into(), "say \"hi\"".into(), String::new()].into_iter());
        assert_eq!(line, "a,\"b,c\",\"say \"\"hi\"\"\",\r\n");
    }

    #[test]
    fn csv_text_that_would_be_a_formula_is_neutralised() {
        for formula in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(csv_text(&json!(formula)), format!("'{formula}"));
        }
        assert_eq!(csv_text(&json!("Linux")), "Linux");
        assert_eq!(csv_text(&json!(-5)), "-5", "numbers stay numbers");
    }

    #[test]
    fn export_names_are_checked() {
        assert_eq!(parse_file("reports.csv").unwrap(), ("reports", Format::Csv));
        assert_eq!(
            parse_file("hardware.ndjson").unwrap(),
            ("hardware", Format::Ndjson)
        );
        assert!(parse_file("reports.xlsx").is_err());
        assert!(parse_file("reports").is_err());
    }
}
