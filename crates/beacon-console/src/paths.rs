//! Every console path, in one table: the router registers these, the navigation and the
//! forms link to them, the redirects go to them, and the OpenAPI document lists them.
//! No other file spells a console path.

use crate::chart::Chart;

/// Path prefix of every console route.
pub const PREFIX: &str = "/console";
/// The prefix with a trailing slash: redirected to [`HOME`] like [`PREFIX`].
pub(crate) const PREFIX_SLASH: &str = "/console/";

pub(crate) const LOGIN: &str = "/console/login";
pub(crate) const LOGOUT: &str = "/console/logout";
pub(crate) const TOKENS: &str = "/console/tokens";
pub(crate) const REVOKE_TOKEN: &str = "/console/tokens/revoke";
/// The "Import reports" form (GET) and its upload (POST, multipart).
pub(crate) const IMPORT: &str = "/console/import";
pub(crate) const STYLESHEET: &str = "/console/style.css";
pub(crate) const ICON: &str = "/console/icon.svg";

pub(crate) const OPENAPI: &str = "/console/api/v1/openapi.json";
pub(crate) const FILTER_CHOICES: &str = "/console/api/v1/filters";
/// One chart's answer as JSON; see [`chart_data`].
pub(crate) const CHART_DATA: &str = "/console/api/v1/charts/{chart}";
/// One file, `{name}.{csv|ndjson}`; see [`export`].
pub(crate) const EXPORT: &str = "/console/api/v1/export/{file}";

/// A dashboard page: where it is, its title (link and heading), and what it shows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub(crate) path: &'static str,
    pub(crate) title: &'static str,
    pub(crate) chart: Chart,
}

/// The dashboard pages, in navigation order.
pub(crate) const PAGES: [Page; 7] = [
    page("/console/overview", "Overview", Chart::Overview),
    page("/console/activity", "Activity", Chart::Activity),
    page("/console/versions", "Versions", Chart::Versions),
    page("/console/platforms", "Platforms", Chart::Platforms),
    page("/console/hardware", "Hardware", Chart::Hardware),
    page("/console/features", "Features", Chart::Features),
    page("/console/workload", "Workload", Chart::Workload),
];

/// Where the console opens, and where a login goes when it names no page.
pub(crate) const HOME: &str = PAGES[0].path;

const fn page(path: &'static str, title: &'static str, chart: Chart) -> Page {
    Page { path, title, chart }
}

/// The JSON answer of the chart called `name`.
pub(crate) fn chart_data(name: &str) -> String {
    CHART_DATA.replace("{chart}", name)
}

/// The export of `name` (a chart or the raw reports) in the format with `extension`.
pub(crate) fn export(name: &str, extension: &str) -> String {
    EXPORT.replace("{file}", &format!("{name}.{extension}"))
}

/// Whether `path` is a console page a login may go on to (never another site).
pub(crate) fn is_inside(path: &str) -> bool {
    path.starts_with(PREFIX_SLASH) && !path.contains("//") && !path.contains('\\')
}
