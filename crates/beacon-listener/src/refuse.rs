//! Request heads too large for the services, refused in the JSON error shape
//! `{"code", "message"}` of both services' APIs.
//!
//! hyper refuses what breaks its own limits (431, 414, and 400 for a malformed request)
//! with an empty body, before any service runs, so it cannot be given a body. Its limits
//! are therefore set above these, so that a head between the two is refused here, in JSON;
//! only a head beyond hyper's limits, or one hyper cannot parse, gets hyper's empty answer.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest path and query accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest sum of header names and values (plus `": "` and CRLF each) accepted.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields accepted.
pub const MAX_HEADERS: usize = 100;
/// hyper's read buffer: it refuses a head still incomplete when the buffer holds this
/// much, which bounds memory per connection.
pub(crate) const HYPER_MAX_HEAD: usize = 64 * 1024;
/// hyper's own header count limit, above [`MAX_HEADERS`].
pub(crate) const HYPER_MAX_HEADERS: usize = 1000;

/// Refuses a request whose URI or headers exceed the limits above.
pub(crate) async fn oversized_head(request: Request, next: Next) -> Response {
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return refusal(
            StatusCode::URI_TOO_LONG,
            "URI_TOO_LONG",
            &format!("the request target exceeds {MAX_URI_BYTES} bytes"),
        );
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HEADERS_TOO_LARGE",
            &format!("the request headers exceed {MAX_HEADERS} fields or {MAX_HEADER_BYTES} bytes"),
        );
    }
    next.run(request).await
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    // Neither string needs JSON escaping: both are fixed text and numbers.
    let body = format!(r#"{{"code":"{code}","message":"{message}"}}"#);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
