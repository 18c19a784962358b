//! HTML text: escaping, the document around a page's body, and the stylesheet. It knows
//! no console path and no console type: callers pass what a page shows and links to.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// Text made safe inside HTML elements and quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A whole document: `body` under `title`, styled by the sheet at `stylesheet`.
pub(crate) fn document(title: &str, stylesheet: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Beacon console</title>\
         <link rel=\"stylesheet\" href=\"{stylesheet}\"></head><body>{body}</body></html>",
        esc(title)
    ))
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

const STYLE: &str = include_str!("style.css");
