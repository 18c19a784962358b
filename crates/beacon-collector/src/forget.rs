//! Self-service deletion: `DELETE /api/telemetry/{uuid}` with the node's deletion secret
//! removes that node's raw reports; only aggregate counters remain.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use beacon_store::ForgetOutcome;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::body::read_small;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest secret accepted; the agent's are 64 hex characters.
const MAX_SECRET: usize = 256;
/// Largest deletion request body read.
const MAX_BODY: usize = 4096;

#[derive(Deserialize)]
struct ForgetRequest {
    secret: String,
}

/// Deletes the node's raw reports if the secret's SHA-256 is the hash its first report
/// carried (the store compares in constant time). An unknown uuid and a wrong secret get
/// the same answer. The route is rate limited like ingest, so that secrets cannot be
/// guessed quickly.
pub(crate) async fn forget(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let Some(maintenance) = state.maintenance() else {
        return Err(ApiError::NotFound(request.uri().path().to_owned()));
    };
    let body = read_small(request.into_body(), MAX_BODY).await?;
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
        ForgetOutcome::WrongSecret | ForgetOutcome::UnknownNode => Err(ApiError::WrongSecret),
    }
}
