//! `GET /healthz` and `GET /metrics`: what monitoring polls.

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
