//! "Import reports": an admin uploads a file of reports received another way (JSON or
//! NDJSON, gzip accepted), the console hands it to the [`ImportReports`] it was given (the
//! collector's import: the checks and dedup of ingest) and shows what became of each
//! report. The upload is `multipart/form-data`, the only way a page without script sends
//! a file; its CSRF token is checked like every form's.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::access::{self, SignedIn};
use crate::html::esc;
use crate::layout;
use crate::paths;
use crate::state::{Console, ImportSummary};

/// Largest upload taken, on the wire: a browser's request is held in memory whole.
pub(crate) const MAX_UPLOAD: usize = 32 << 20;
/// The file field of the form.
const FILE_FIELD: &str = "reports";
/// The form's CSRF token field, as in every console form.
const CSRF_FIELD: &str = "csrf";

pub(crate) async fn page(
    State(console): State<Console>,
    Extension(signed_in): Extension<SignedIn>,
) -> Response {
    render(&console, &signed_in, None, StatusCode::OK)
}

pub(crate) async fn upload(
    State(console): State<Console>,
    Extension(signed_in): Extension<SignedIn>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let problem =
        |problem: String, status| render(&console, &signed_in, Some(Err(problem)), status);
    let Ok(form) = form else {
        let message = "send the form's file as multipart/form-data".to_owned();
        return problem(message, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    };
    let upload = match Upload::read(form).await {
        Ok(upload) => upload,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let message = format!("the upload is larger than {} MiB", MAX_UPLOAD >> 20);
            return problem(message, StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(e) => return problem(e.body_text(), e.status()),
    };
    if !access::csrf_matches(&signed_in, &upload.csrf) {
        return access::csrf_refused();
    }
    let Some(file) = upload.file.filter(|file| !file.is_empty()) else {
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

/// The form's fields; others are ignored.
#[derive(Default)]
struct Upload {
    csrf: String,
    file: Option<Bytes>,
}

impl Upload {
    async fn read(mut form: Multipart) -> Result<Upload, MultipartError> {
        let mut upload = Upload::default();
        while let Some(field) = form.next_field().await? {
            match field.name() {
                Some(CSRF_FIELD) => upload.csrf = field.text().await?,
                Some(FILE_FIELD) => upload.file = Some(field.bytes().await?),
                _ => {}
            }
        }
        Ok(upload)
    }
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
         class=\"filters\"><input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{csrf}\">\
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
