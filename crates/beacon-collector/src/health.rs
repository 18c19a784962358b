//! `GET /healthz` and `GET /metrics`: what monitoring polls; `POST /settle`: waits until
//! every report acknowledged so far is counted (benchmarks, scripts).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

#[derive(Serialize)]
pub(crate) struct Healthy {
    status: &'static str,
    backend: &'static str,
}

/// Healthy when the store answers a round trip and its latest write did not fail; names
/// the backend either way. Monitoring polls this every few seconds, so a failing check
/// logs a warning only when the collector turns unhealthy, and one line when it recovers.
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Healthy>, ApiError> {
    let backend = state.store().backend();
    if let Err(err) = state.store().health().await {
        if state.health_changed(false) {
            tracing::warn!(error = %err, backend, "health check: storage unavailable");
        } else {
            tracing::debug!(error = %err, backend, "health check: storage still unavailable");
        }
        return Err(ApiError::Unhealthy { backend });
    }
    if state.health_changed(true) {
        tracing::warn!(backend, "health check: storage available again");
    }
    Ok(Json(Healthy {
        status: "ok",
        backend,
    }))
}

pub(crate) async fn render_metrics(State(state): State<AppState>) -> Response {
    match state.metrics().render() {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "rendering metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Serialize)]
pub(crate) struct SettledAnswer {
    status: &'static str,
    /// Reports committed since the collector started.
    committed: u64,
}

/// Answers once every report acknowledged before the request is indexed and counted in
/// the rollups: what a benchmark waits for to stop its clock. Private, like `/metrics`:
/// it only asks for counting that the store's lag bound would do anyway, sooner.
pub(crate) async fn settle(State(state): State<AppState>) -> Result<Json<SettledAnswer>, ApiError> {
    state.store().settle().await.map_err(|err| {
        tracing::error!(error = %err, "settle: storage unavailable");
        ApiError::StorageUnavailable
    })?;
    Ok(Json(SettledAnswer {
        status: "settled",
        committed: state.store().stats().rows,
    }))
}
