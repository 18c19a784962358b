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

/// Where a document's own files are served.
pub(crate) struct Assets {
    pub(crate) stylesheet: &'static str,
    /// Without one, browsers ask for `/favicon.ico`, which is not the console's.
    pub(crate) icon: &'static str,
}

/// A whole document: `body` under `title`, styled by the sheet of `assets`.
pub(crate) fn document(title: &str, assets: &Assets, body: &str) -> Html<String> {
    let Assets { stylesheet, icon } = assets;
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Beacon console</title>\
         <link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"{stylesheet}\"></head><body>{body}</body></html>",
        esc(title)
    ))
}

pub(crate) async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

pub(crate) async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

const STYLE: &str = include_str!("style.css");
const ICON: &str = include_str!("icon.svg");
