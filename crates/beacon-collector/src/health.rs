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

/// Healthy when the store answers a round trip; names the backend either way.
pub(crate) async fn healthz(State(state): State<AppState>) -> Result<Json<Healthy>, ApiError> {
    let backend = state.store().backend();
    state.store().health().await.map_err(|err| {
        tracing::error!(error = %err, backend, "health check: storage unavailable");
        ApiError::Unhealthy { backend }
    })?;
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
