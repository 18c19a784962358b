//! `POST /api/telemetry`: from request to durable row.

use std::time::Instant;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use beacon_report::facts::Facts;
use beacon_report::{ParsedReport, PayloadFormat, privacy};
use beacon_store::{InsertOutcome, NewReport, StoreError};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::body::{check_content_type, content_encoding, decode, read_limited};
use crate::config::IngestMode;
use crate::error::ApiError;
use crate::state::AppState;

/// The ingest handler. The route counts its refusals and applies the rate limit.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    check_content_type(&parts.headers)?;
    let encoding = content_encoding(&parts.headers)?;
    let wire = read_limited(&parts.headers, body).await?;
    let received_at = Utc::now();
    let (parsed, document) = beacon_report::parse_document(&decode(wire, encoding)?)?;
    let format = parsed.format;
    if state.mode() == IngestMode::Discard {
        state.metrics().accepted(format);
        let uuid = &parsed.report.uuid;
        return Ok(reply(StatusCode::ACCEPTED, "discarded", uuid, received_at));
    }
    let (parsed, facts) = redact(&state, parsed, document)?;
    let row = new_row(parsed, facts, received_at);
    let uuid = row.uuid.clone();
    let started = Instant::now();
    let outcome = state.store().insert(row).await.map_err(store_error)?;
    state.metrics().commit(started.elapsed());
    let (status, word) = match outcome {
        InsertOutcome::Inserted => (StatusCode::CREATED, "stored"),
        InsertOutcome::Replaced => (StatusCode::OK, "replaced"),
        InsertOutcome::HashMismatch => return Err(ApiError::HashMismatch),
    };
    state.metrics().accepted(format);
    tracing::debug!(%uuid, outcome = word, "report stored");
    Ok(reply(status, word, &uuid, received_at))
}

/// Removes identifying values from the document (`parsed` as JSON). A clean document keeps
/// its text exactly as received; a redacted one is re-serialised and re-parsed, so that the
/// row's columns come from the redacted text too. Also gives the facts the rollups count,
/// read from the same document.
fn redact(
    state: &AppState,
    parsed: ParsedReport,
    mut doc: serde_json::Value,
) -> Result<(ParsedReport, Facts), ApiError> {
    let found = privacy::redact_identifiers(&mut doc);
    let facts = Facts::of(&doc);
    if found == 0 {
        return Ok((parsed, facts));
    }
    state.metrics().redacted(found);
    tracing::debug!(found, "identifying values redacted from a report");
    let text = serde_json::to_string(&doc).map_err(ApiError::Reread)?;
    Ok((beacon_report::parse(text.as_bytes())?, facts))
}

/// The row for a report received at `received_at`: one per node uuid per UTC day.
fn new_row(parsed: ParsedReport, analytics: Facts, received_at: DateTime<Utc>) -> NewReport {
    let ParsedReport {
        report,
        format,
        raw,
    } = parsed;
    let edition = report.edition().map(str::to_owned);
    let node_count = i64::try_from(report.node_count()).unwrap_or(i64::MAX);
    NewReport {
        uuid: report.uuid,
        cluster_uuid: report.cluster_uuid,
        day: received_at.date_naive(),
        received_at,
        emqx_version: report.emqx_version,
        os_name: report.os_name,
        os_version: report.os_version,
        edition,
        node_count,
        format: format_code(format),
        raw,
        analytics,
    }
}

fn format_code(format: PayloadFormat) -> i16 {
    match format {
        PayloadFormat::V4 => 4,
        PayloadFormat::V5 => 5,
    }
}

/// A row the store refuses is the client's fault; any other store failure is ours.
fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::InvalidReport { field, reason } => ApiError::Unstorable { field, reason },
        other => {
            tracing::error!(error = %other, "storing a report failed");
            ApiError::StorageUnavailable
        }
    }
}

#[derive(Serialize)]
struct Accepted<'a> {
    status: &'static str,
    uuid: &'a str,
    day: String,
}

fn reply(status: StatusCode, word: &'static str, uuid: &str, at: DateTime<Utc>) -> Response {
    let body = Accepted {
        status: word,
        uuid,
        day: at.date_naive().to_string(),
    };
    (status, Json(body)).into_response()
}
