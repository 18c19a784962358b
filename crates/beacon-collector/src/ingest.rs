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
use crate::config::{IngestMode, MAX_DECODED_BODY};
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
    let stored = store_document(&state, &decode(wire, encoding)?, received_at).await?;
    let status = match stored.outcome {
        Outcome::Stored => StatusCode::CREATED,
        Outcome::Replaced => StatusCode::OK,
        Outcome::Discarded => StatusCode::ACCEPTED,
    };
    Ok(reply(
        status,
        stored.outcome.word(),
        &stored.uuid,
        received_at,
    ))
}

/// What became of an accepted report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The node's first report of its day.
    Stored,
    /// A later report of the same node and day replaced the earlier one.
    Replaced,
    /// Validated and dropped: the collector runs with [`IngestMode::Discard`].
    Discarded,
}

impl Outcome {
    /// The word the ingest answer and `collector import` use.
    pub fn word(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Replaced => "replaced",
            Self::Discarded => "discarded",
        }
    }
}

/// An accepted report: whose it is and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub uuid: String,
    pub outcome: Outcome,
}

/// The one path from a report's JSON text (already off the wire: gunzipped) to a durable
/// row, shared by `POST /api/telemetry` and `beacon collector import`: the decoded size
/// limit, validation, redaction, facts, the insert (one row per node and day) and the
/// deletion-hash claim. Returns once the store committed.
pub async fn store_document(
    state: &AppState,
    document: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Stored, ApiError> {
    if document.len() > MAX_DECODED_BODY {
        return Err(ApiError::DecodedTooLarge {
            limit: MAX_DECODED_BODY,
        });
    }
    let (parsed, document) = beacon_report::parse_document(document)?;
    let format = parsed.format;
    if state.mode() == IngestMode::Discard {
        state.metrics().accepted(format);
        let uuid = parsed.report.uuid;
        let outcome = Outcome::Discarded;
        return Ok(Stored { uuid, outcome });
    }
    let (parsed, facts) = redact(state, parsed, document)?;
    let row = new_row(parsed, facts, received_at);
    let uuid = row.uuid.clone();
    let started = Instant::now();
    let inserted = state.store().insert(row).await.map_err(store_error)?;
    state.metrics().commit(started.elapsed());
    let outcome = match inserted {
        InsertOutcome::Inserted => Outcome::Stored,
        InsertOutcome::Replaced => Outcome::Replaced,
        InsertOutcome::HashMismatch => return Err(ApiError::HashMismatch),
    };
    state.metrics().accepted(format);
    tracing::debug!(%uuid, outcome = outcome.word(), "report stored");
    Ok(Stored { uuid, outcome })
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

/// A row the store refuses is the client's fault; any other store failure is ours. The
/// store logs a failing write once per streak, so a request adds only a debug line (a full
/// disk refuses every report until space is freed, and must not flood the log).
fn store_error(err: StoreError) -> ApiError {
    match err {
        StoreError::InvalidReport { field, reason } => ApiError::Unstorable { field, reason },
        other => {
            tracing::debug!(error = %other, "storing a report failed");
            if other.is_full() {
                ApiError::StorageFull
            } else {
                ApiError::StorageUnavailable
            }
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
