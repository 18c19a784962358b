//! "Import reports": an admin uploads a file of reports received another way (JSON or
//! NDJSON, gzip accepted), the console hands it to the [`ImportReports`] it was given (the
//! collector's import: the checks and dedup of ingest) and shows what became of each
//! report. The upload is `multipart/form-data`, the only way a page without script sends
//! a file; its CSRF token is checked like every form's.

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::access::{self, SignedIn};
use crate::html::esc;
use crate::layout;
use crate::paths;
use crate::state::{Console, ImportSummary};

/// Largest upload taken, on the wire: a browser's request is held in memory whole.
const MAX_UPLOAD: usize = 32 << 20;
/// The file field of the form.
const FILE_FIELD: &str = "reports";

pub(crate) async fn page(
    State(console): State<Console>,
    Extension(signed_in): Extension<SignedIn>,
) -> Response {
    render(&console, &signed_in, None, StatusCode::OK)
}

pub(crate) async fn upload(
    State(console): State<Console>,
    Extension(signed_in): Extension<SignedIn>,
    request: Request,
) -> Response {
    let problem =
        |problem: String, status| render(&console, &signed_in, Some(Err(problem)), status);
    let Some(boundary) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(boundary)
        .map(str::to_owned)
    else {
        let message = "send the form's file as multipart/form-data".to_owned();
        return problem(message, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    };
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_UPLOAD).await else {
        let message = format!("the upload is larger than {} MiB", MAX_UPLOAD >> 20);
        return problem(message, StatusCode::PAYLOAD_TOO_LARGE);
    };
    let fields = form_fields(&body, &boundary);
    let csrf = field(&fields, "csrf").unwrap_or_default();
    if !access::csrf_matches(&signed_in, &String::from_utf8_lossy(csrf)) {
        return access::csrf_refused();
    }
    let Some(file) = field(&fields, FILE_FIELD).filter(|file| !file.is_empty()) else {
        return problem(
            "choose a file of reports".to_owned(),
            StatusCode::BAD_REQUEST,
        );
    };
    let Some(importer) = &console.import else {
        let message = "importing reports is not set up on this console".to_owned();
        return problem(message, StatusCode::NOT_FOUND);
    };
    match importer.import(file.to_vec()).await {
        Ok(summary) => {
            tracing::info!(
                user = ?signed_in.session.user,
                stored = summary.stored,
                replaced = summary.replaced,
                refused = summary.refused.len(),
                "console: reports imported"
            );
            render(&console, &signed_in, Some(Ok(summary)), StatusCode::OK)
        }
        Err(problem_text) => problem(problem_text, StatusCode::BAD_REQUEST),
    }
}

/// The boundary of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<&str> {
    let mut params = content_type.split(';').map(str::trim);
    let kind = params.next()?;
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|param| param.split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// The named fields of a `multipart/form-data` body, in order (RFC 7578): each part
/// starts after a `--boundary` line, has its headers, an empty line, then its content up
/// to the next `\r\n--boundary`. A malformed body gives the fields read before the fault.
fn form_fields<'a>(body: &'a [u8], boundary: &str) -> Vec<(String, &'a [u8])> {
    let delimiter = format!("\r\n--{boundary}");
    let mut fields = Vec::new();
    let Some(mut rest) = body.strip_prefix(&delimiter.as_bytes()[2..]) else {
        return fields;
    };
    while let Some(part) = rest.strip_prefix(b"\r\n") {
        let Some(end) = find(part, delimiter.as_bytes()) else {
            break;
        };
        rest = &part[end + delimiter.len()..];
        let part = &part[..end];
        let Some(head_end) = find(part, b"\r\n\r\n") else {
            continue;
        };
        if let Some(name) = field_name(&String::from_utf8_lossy(&part[..head_end])) {
            fields.push((name, &part[head_end + 4..]));
        }
    }
    fields
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `name` of a part's `Content-Disposition: form-data; name="..."` header.
fn field_name(head: &str) -> Option<String> {
    let disposition = head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(value)
    })?;
    disposition
        .split(';')
        .filter_map(|param| param.trim().split_once('='))
        .find(|(key, _)| *key == "name")
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

fn field<'a>(fields: &[(String, &'a [u8])], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, content)| *content)
}

fn render(
    console: &Console,
    signed_in: &SignedIn,
    outcome: Option<Result<ImportSummary, String>>,
    status: StatusCode,
) -> Response {
    let outcome = match outcome {
        Some(Ok(summary)) => summary_html(&summary),
        Some(Err(problem)) => format!(
            "<p class=\"error\" id=\"import-error\">{}</p>",
            esc(&problem)
        ),
        None => String::new(),
    };
    let unavailable = if console.import.is_none() {
        "<p class=\"error\">Importing reports is not set up on this console.</p>"
    } else {
        ""
    };
    let body = format!(
        "<section class=\"card\">{unavailable}{outcome}<p class=\"note\">Reports received \
         another way than over the network, such as a node's <code>beacon telemetry \
         export</code> carried out of an air-gapped site: one JSON report or NDJSON (one \
         report per line), gzip accepted, up to {max} MiB. Each report takes the path of \
         ingest: the same checks and limits, one report per node and day.</p>\
         <form method=\"post\" action=\"{action}\" enctype=\"multipart/form-data\" \
         class=\"filters\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>File <input type=\"file\" name=\"{FILE_FIELD}\" id=\"import-file\" required>\
         </label><button type=\"submit\" id=\"import-button\">Import</button></form></section>",
        max = MAX_UPLOAD >> 20,
        action = paths::IMPORT,
        csrf = esc(&signed_in.session.csrf),
    );
    (
        status,
        layout::plain("Import reports", &signed_in.session, &body),
    )
        .into_response()
}

fn summary_html(summary: &ImportSummary) -> String {
    let rows: String = summary
        .refused
        .iter()
        .map(|refused| {
            let line = refused
                .line
                .map_or_else(|| "the file".to_owned(), |line| line.to_string());
            format!(
                "<tr><td>{line}</td><td>{}</td><td>{}</td></tr>",
                esc(&refused.code),
                esc(&refused.message)
            )
        })
        .collect();
    let table = if rows.is_empty() {
        String::new()
    } else {
        format!(
            "<table id=\"import-refused\"><tr><th>Line</th><th>Code</th><th>Why it was \
             refused</th></tr>{rows}</table>"
        )
    };
    format!(
        "<div id=\"import-summary\"><p>Imported <b id=\"import-accepted\">{accepted}</b> \
         reports: <span id=\"import-stored\">{stored}</span> stored, <span \
         id=\"import-replaced\">{replaced}</span> replaced a report of the same node and \
         day; <b id=\"import-refused-count\">{refused}</b> refused.</p>{table}</div>",
        accepted = summary.stored + summary.replaced,
        stored = summary.stored,
        replaced = summary.replaced,
        refused = summary.refused.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_fields_are_read_by_name_binary_content_kept() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n\
            --XyZ\r\nContent-Disposition: form-data; name=\"reports\"; filename=\"r.gz\"\r\n\
            Content-Type: application/gzip\r\n\r\n\x1f\x8b\r\n--X\0\r\n--XyZ--\r\n";
        let fields = form_fields(body, "XyZ");
        assert_eq!(field(&fields, "csrf"), Some(&b"tok"[..]));
        assert_eq!(field(&fields, "reports"), Some(&b"\x1f\x8b\r\n--X\0"[..]));
        assert_eq!(field(&fields, "filename"), None);
    }

    #[test]
    fn the_boundary_comes_from_a_multipart_content_type_only() {
        assert_eq!(
            boundary("multipart/form-data; boundary=----WebKit12"),
            Some("----WebKit12")
        );
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\""),
            Some("a b")
        );
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(boundary("multipart/form-data"), None);
    }

    #[test]
    fn a_truncated_body_gives_the_fields_before_the_fault() {
        let body = b"--B\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nt\r\n--B\r\n\
            Content-Disposition: form-data; name=\"reports\"\r\n\r\nno end";
        let fields = form_fields(body, "B");
        assert_eq!(field(&fields, "csrf"), Some(&b"t"[..]));
        assert_eq!(field(&fields, "reports"), None);
    }
}
