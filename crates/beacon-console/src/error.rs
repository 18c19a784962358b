//! Why a console request failed, and how that is shown: JSON `{"code", "message"}` for the
//! data API, a page for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use beacon_store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// A query parameter or form field cannot be used as given.
    #[error("{0}")]
    BadRequest(String),
    #[error("no such {what}: `{name}`")]
    NotFound { what: &'static str, name: String },
    /// The storage failed; the cause is logged, not shown.
    #[error("the storage failed; the collector log has the cause")]
    Storage(#[source] StoreError),
    /// The threads that check passwords could not be started.
    #[error("cannot start the threads that check passwords: {0}")]
    CheckThreads(#[source] std::io::Error),
}

impl From<StoreError> for ConsoleError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidQuery { field, reason } => {
                Self::BadRequest(format!("`{field}`: {reason}"))
            }
            other => {
                tracing::error!(error = %other, "console: storage failed");
                Self::Storage(other)
            }
        }
    }
}

impl ConsoleError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::Storage(_) | Self::CheckThreads(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::Storage(_) => "STORAGE_UNAVAILABLE",
            Self::CheckThreads(_) => "UNAVAILABLE",
        }
    }
}

/// The data API's rendering; pages show errors as pages (see `layout::error_page`).
impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code(), "message": self.to_string()});
        (self.status(), Json(body)).into_response()
    }
}
