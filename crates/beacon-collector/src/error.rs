//! Errors: [`CollectorError`] for starting and running the service, [`ApiError`] for the
//! answer to one bad request (or a failed health check). Every answer an [`ApiError`]
//! renders carries a [`Refused`] extension, so that a layer can count refusals by code.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use beacon_report::ReportError;
use serde::Serialize;

/// `Retry-After` of a 503 answer: the store recovers from a lost database connection by
/// itself within seconds, and a sender that waits this long does not add to the load.
const STORAGE_RETRY_AFTER_SECS: u64 = 5;
/// `Retry-After` when the storage is full: freeing space takes a person, so senders are
/// asked to wait longer than for a lost connection.
const STORAGE_FULL_RETRY_AFTER_SECS: u64 = 60;

/// Why the collector could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "cannot load TLS certificate {} with key {}: {source}",
        cert.display(),
        key.display()
    )]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        source: std::io::Error,
    },
    #[error("collector server on {addr} failed: {source}")]
    Serve {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A request the collector refuses, and how it says so: status, a stable `code` for
/// machines, and a message naming the problem for people.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("too many requests from this source; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("Content-Type must be application/json (UTF-8), got {0}")]
    UnsupportedMediaType(String),
    #[error("Content-Encoding {0:?} is not supported; send gzip or no encoding")]
    UnsupportedEncoding(String),
    #[error("request body exceeds the limit of {limit} bytes on the wire")]
    BodyTooLarge { limit: usize },
    #[error("request body exceeds the limit of {limit} bytes after gunzip")]
    DecodedTooLarge { limit: usize },
    #[error("request body is not valid gzip: {0}")]
    InvalidGzip(std::io::Error),
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// A 408, which senders retry (a slow link is not a bad report), where a 400 would
    /// make them give the report up.
    #[error("request body did not arrive within the body read timeout; retry")]
    BodyTimeout,
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("report could not be re-read for redaction: {0}")]
    Reread(serde_json::Error),
    #[error("field `{field}` cannot be stored: {reason}")]
    Unstorable { field: &'static str, reason: String },
    #[error("storage is unavailable, the report was not stored; retry later")]
    StorageUnavailable,
    #[error("the collector's storage is full, the report was not stored; retry later")]
    StorageFull,
    /// `GET /healthz` when the store does not answer; the body also names the backend.
    #[error("the storage check failed; the collector log has the cause")]
    Unhealthy { backend: &'static str },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("no such endpoint: {0}")]
    NotFound(String),
    #[error("a deletion request is a JSON object {{\"secret\": \"...\"}}: {0}")]
    BadForgetRequest(String),
    /// One answer for an unknown uuid and a wrong secret, so that it does not tell
    /// which uuids exist.
    #[error(
        "no reports can be deleted with this uuid and secret: the node is unknown or already \
         deleted, or the secret is not the one its first report announced"
    )]
    WrongSecret,
    #[error(
        "this node's first report announced another deletion secret hash; a report with a \
         different one is refused and nothing was stored (a node that lost its secret starts \
         over with a new uuid)"
    )]
    HashMismatch,
}

impl ApiError {
    /// HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UnsupportedMediaType(_) | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::BodyTooLarge { .. } | Self::DecodedTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::InvalidGzip(_)
            | Self::BodyRead(_)
            | Self::Report(_)
            | Self::Reread(_)
            | Self::Unstorable { .. }
            | Self::BadForgetRequest(_) => StatusCode::BAD_REQUEST,
            Self::WrongSecret => StatusCode::FORBIDDEN,
            Self::HashMismatch => StatusCode::CONFLICT,
            Self::StorageUnavailable | Self::StorageFull | Self::Unhealthy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
        }
    }

    /// Stable machine-readable code; also the `reason` label of the rejection metric.
    pub fn code(&self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::UnsupportedEncoding(_) => "UNSUPPORTED_ENCODING",
            Self::BodyTooLarge { .. } => "BODY_TOO_LARGE",
            Self::DecodedTooLarge { .. } => "DECODED_BODY_TOO_LARGE",
            Self::InvalidGzip(_) => "INVALID_GZIP",
            Self::BodyRead(_) => "BODY_READ_FAILED",
            Self::BodyTimeout => "BODY_READ_TIMEOUT",
            Self::Report(err) => err.code(),
            Self::Reread(_) => "UNREADABLE_REPORT",
            Self::Unstorable { .. } => "INVALID_FIELD",
            Self::StorageUnavailable | Self::Unhealthy { .. } => "STORAGE_UNAVAILABLE",
            Self::StorageFull => "STORAGE_FULL",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadForgetRequest(_) => "BAD_REQUEST",
            Self::WrongSecret => "WRONG_SECRET",
            Self::HashMismatch => "DELETION_HASH_MISMATCH",
        }
    }

    /// When to ask again, for the refusals that are not the request's fault: a 503 without
    /// it leaves a sender guessing whether to retry at all.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::StorageUnavailable | Self::Unhealthy { .. } => Some(STORAGE_RETRY_AFTER_SECS),
            Self::StorageFull => Some(STORAGE_FULL_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            Self::Report(err) => err.field(),
            Self::Unstorable { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// The code of the [`ApiError`] an answer was rendered from, in its extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refused(pub(crate) &'static str);

#[derive(Serialize)]
struct ErrorBody<'a> {
    /// A failed health check answers in the shape of a passing one, plus the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backend: Option<&'static str>,
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let backend = match self {
            Self::Unhealthy { backend } => Some(backend),
            _ => None,
        };
        let body = ErrorBody {
            status: backend.map(|_| "unavailable"),
            backend,
            code: self.code(),
            message: self.to_string(),
            field: self.field(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        response.extensions_mut().insert(Refused(self.code()));
        if let Some(seconds) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
