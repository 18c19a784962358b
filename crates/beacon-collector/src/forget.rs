//! Self-service deletion: `DELETE /api/telemetry/{uuid}` with the node's deletion secret
//! removes that node's raw reports; only aggregate counters remain. And retention: raw
//! reports older than the configured number of days are deleted by a background job.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use beacon_store::{ForgetOutcome, Maintenance};
use chrono::{Days, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::server::AppState;

/// How often retention runs (it also runs at start).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);
/// Longest secret accepted; the agent's are 64 hex characters.
const MAX_SECRET: usize = 256;
/// Largest deletion request body read.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
struct ForgetRequest {
    secret: String,
}

/// Deletes the node's raw reports if the secret's SHA-256 is the hash its reports carried.
/// Rate limited like ingest, so that secrets cannot be guessed quickly.
pub(crate) async fn forget(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0);
    if let Some(peer) = peer {
        state
            .limiter()
            .check(peer.ip())
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    }
    let Some(maintenance) = state.maintenance() else {
        return Err(ApiError::NotFound(format!("/api/telemetry/{uuid}")));
    };
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
        .await
        .map_err(|e| ApiError::BadForgetRequest(e.to_string()))?;
    let request: ForgetRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadForgetRequest(e.to_string()))?;
    if request.secret.is_empty() || request.secret.len() > MAX_SECRET {
        return Err(ApiError::BadForgetRequest(format!(
            "\"secret\" must have 1 to {MAX_SECRET} characters"
        )));
    }
    let presented = hex::encode(Sha256::digest(request.secret.as_bytes()));
    let outcome = maintenance
        .forget_node(&uuid, &presented)
        .await
        .map_err(|error| {
            tracing::error!(%error, "deleting a node's reports failed");
            ApiError::StorageUnavailable
        })?;
    match outcome {
        ForgetOutcome::Deleted { reports } => {
            tracing::info!(reports, "a node's reports were deleted at its request");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ForgetOutcome::WrongSecret => Err(ApiError::WrongSecret),
        ForgetOutcome::UnknownNode => Err(ApiError::UnknownNode),
    }
}

/// Deletes raw reports older than `days` now and then every day, until aborted.
pub(crate) async fn retention(maintenance: Arc<dyn Maintenance>, days: u32) {
    let mut every_day = tokio::time::interval(RETENTION_EVERY);
    loop {
        every_day.tick().await;
        let Some(cutoff) = Utc::now()
            .date_naive()
            .checked_sub_days(Days::new(u64::from(days)))
        else {
            continue;
        };
        match maintenance.delete_reports_before(cutoff).await {
            Ok(deleted) => tracing::info!(%cutoff, deleted, "retention: old raw reports deleted"),
            Err(error) => tracing::error!(%error, "retention failed; retried tomorrow"),
        }
    }
}
