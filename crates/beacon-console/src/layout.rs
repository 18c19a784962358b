//! The console's page layouts: the dashboard (navigation that keeps the filters, the
//! filter bar), the plain frame of the API tokens page, the login and message pages, and
//! a failed request shown as a page.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use beacon_auth::Session;
use beacon_store::FilterChoices as Choices;

use crate::error::ConsoleError;
use crate::filters::Filters;
use crate::html::{self, esc};
use crate::paths::{self, PAGES, Page};

/// A dashboard page: navigation (links keep the filters), the filter bar, `body`.
pub(crate) fn dashboard(
    page: &Page,
    session: &Session,
    filters: &Filters,
    choices: &Choices,
    body: &str,
) -> Html<String> {
    let query = filters.query_string();
    let nav: String = PAGES
        .iter()
        .map(
            |Page {
                 path: href,
                 title: label,
                 ..
             }| {
                let current = if *href == page.path {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                format!("<a href=\"{href}?{}\"{current}>{label}</a>", esc(&query))
            },
        )
        .collect();
    let filter_bar = filter_bar(page.path, filters, choices);
    frame(
        page.title,
        &format!(
            "{header}<main><h1>{title}</h1>{filter_bar}{body}</main>",
            header = header_bar(&nav, session),
            title = esc(page.title),
        ),
    )
}

/// A page outside the dashboard's filters (API tokens).
pub(crate) fn plain(title: &str, session: &Session, body: &str) -> Html<String> {
    let nav: String = PAGES
        .iter()
        .map(|page| format!("<a href=\"{}\">{}</a>", page.path, page.title))
        .collect();
    frame(
        title,
        &format!(
            "{}<main><h1>{}</h1>{body}</main>",
            header_bar(&nav, session),
            esc(title)
        ),
    )
}

fn header_bar(nav: &str, session: &Session) -> String {
    format!(
        "<header><span class=\"brand\">Beacon telemetry</span><nav>{nav}</nav>\
         <div class=\"who\"><a href=\"{import}\" id=\"nav-import\">Import reports</a>\
         <a href=\"{tokens}\">API tokens</a>\
         <span id=\"signed-in-user\">{user}</span>\
         <form method=\"post\" action=\"{logout}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" id=\"logout\">Log out</button></form></div></header>",
        import = paths::IMPORT,
        tokens = paths::TOKENS,
        logout = paths::LOGOUT,
        user = esc(&session.user),
        csrf = esc(&session.csrf),
    )
}

fn filter_bar(path: &str, filters: &Filters, choices: &Choices) -> String {
    let options = |name: &str, values: &[String], chosen: &Option<String>| {
        let mut html = format!("<option value=\"\">All {name}</option>");
        for value in values {
            let selected = if chosen.as_deref() == Some(value) {
                " selected"
            } else {
                ""
            };
            html.push_str(&format!(
                "<option value=\"{v}\"{selected}>{v}</option>",
                v = esc(value)
            ));
        }
        html
    };
    let quick: String = [4u64, 13, 26, 52]
        .iter()
        .map(|weeks| {
            format!(
                "<a class=\"quick\" href=\"{path}?{}\">{weeks} w</a>",
                esc(&filters.last_weeks(*weeks).query_string())
            )
        })
        .collect();
    format!(
        "<form class=\"filters\" id=\"filters\" method=\"get\" action=\"{path}\">\
         <label>From <input type=\"date\" name=\"from\" id=\"filter-from\" value=\"{from}\"></label>\
         <label>To <input type=\"date\" name=\"to\" id=\"filter-to\" value=\"{to}\"></label>\
         <label>Version <select name=\"version\" id=\"filter-version\">{versions}</select></label>\
         <label>OS <select name=\"os\" id=\"filter-os\">{os}</select></label>\
         <button type=\"submit\" id=\"apply-filters\">Apply</button>\
         <span class=\"quicks\">Last {quick}</span></form>",
        from = filters.from,
        to = filters.to,
        versions = options("versions", &choices.versions, &filters.version),
        os = options("OSes", &choices.os, &filters.os),
    )
}

/// The console's own files, linked from every page.
const ASSETS: html::Assets = html::Assets {
    stylesheet: paths::STYLESHEET,
    icon: paths::ICON,
};

fn frame(title: &str, body: &str) -> Html<String> {
    html::document(title, &ASSETS, body)
}

pub(crate) fn login(csrf: &str, next: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    frame(
        "Log in",
        &format!(
            "<main class=\"login\"><h1>Beacon telemetry console</h1>{error}\
             <form method=\"post\" action=\"{login}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\
             <label>User <input name=\"username\" id=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input type=\"password\" name=\"password\" id=\"password\" \
             autocomplete=\"current-password\" required></label>\
             <button type=\"submit\" id=\"login-button\">Log in</button></form></main>",
            login = paths::LOGIN,
            csrf = esc(csrf),
            next = esc(next),
        ),
    )
}

pub(crate) fn message_page(title: &str, message: &str) -> Html<String> {
    frame(
        title,
        &format!(
            "<main class=\"login\"><h1>{}</h1><p class=\"error\">{}</p>\
             <p><a href=\"{home}\">Back to the console</a></p></main>",
            esc(title),
            esc(message),
            home = paths::HOME,
        ),
    )
}

/// A failed page request, as a page with the error's status.
pub(crate) fn error_page(error: &ConsoleError) -> Response {
    let title = match error.status() {
        StatusCode::BAD_REQUEST => "Cannot show this",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Storage unavailable",
    };
    (error.status(), message_page(title, &error.to_string())).into_response()
}
