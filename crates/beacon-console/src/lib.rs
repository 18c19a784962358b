//! The collector's private console: admin login, server-rendered dashboard pages with SVG
//! charts, the JSON data API (one endpoint per chart), CSV and NDJSON exports (raw reports
//! streamed page by page, and every aggregate), an OpenAPI 3 document, and API tokens for
//! scripts. Everything lives under [`PREFIX`], so it can share a listener with ingest.
//!
//! It owns access control for these routes: pages need a login session (cookie `HttpOnly`,
//! `SameSite=Strict`, `Secure` when served over TLS; every form carries a CSRF token), the
//! data API takes a session or an API token, pages never take an API token.
//!
//! It must NOT serve or touch ingest, compute analytics itself (every number comes from
//! `beacon_store`'s [`Analytics`](beacon_store::Analytics), i.e. from the rollups), hash or
//! compare secrets its own way (that is `beacon_auth`), or load anything from the internet:
//! styles and charts are rendered here.

mod access;
mod api;
mod charts;
mod error;
mod export;
mod filters;
mod html;
mod openapi;
mod pages;
mod throttle;
mod tokens;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{get, post};
use beacon_auth::Sessions;
use beacon_store::Store;

pub use api::Chart;
pub use error::ConsoleError;

/// Path prefix of every console route.
pub const PREFIX: &str = "/console";
/// Login sessions end after this long without a request.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);

/// Sign-in attempts allowed per user name: this many a minute on average...
pub const DEFAULT_LOGINS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(5).unwrap();
/// ...and this many in a row.
pub const DEFAULT_LOGIN_BURST: NonZeroU32 = NonZeroU32::new(10).unwrap();

/// How the console is served.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure`: set when the console is served over TLS.
    pub secure_cookies: bool,
    pub session_idle: Duration,
    /// Sign-in attempts per user name, on average and in a row (see `throttle`).
    pub logins_per_minute: NonZeroU32,
    pub login_burst: NonZeroU32,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            session_idle: DEFAULT_SESSION_IDLE,
            logins_per_minute: DEFAULT_LOGINS_PER_MINUTE,
            login_burst: DEFAULT_LOGIN_BURST,
        }
    }
}

/// What every console handler shares.
#[derive(Clone)]
pub(crate) struct Console {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) logins: Arc<throttle::LoginThrottle>,
    pub(crate) secure_cookies: bool,
}

/// The console's routes, state applied, ready to merge into a service or serve alone.
pub fn router(store: Arc<dyn Store>, options: ConsoleOptions) -> Router {
    let console = Console {
        store,
        sessions: Arc::new(Sessions::new(options.session_idle)),
        logins: Arc::new(throttle::LoginThrottle::new(
            options.logins_per_minute,
            options.login_burst,
        )),
        secure_cookies: options.secure_cookies,
    };
    let pages = Router::new()
        .route("/console/overview", get(pages::overview))
        .route("/console/activity", get(pages::activity))
        .route("/console/versions", get(pages::versions))
        .route("/console/platforms", get(pages::platforms))
        .route("/console/hardware", get(pages::hardware))
        .route("/console/features", get(pages::features))
        .route("/console/workload", get(pages::workload))
        .route("/console/tokens", get(tokens::page).post(tokens::create))
        .route("/console/tokens/revoke", post(tokens::revoke))
        .route("/console/logout", post(access::logout))
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            access::require_session,
        ));
    let data = Router::new()
        .route("/console/api/v1/openapi.json", get(openapi::document))
        .route("/console/api/v1/filters", get(api::filter_choices))
        .route("/console/api/v1/charts/{chart}", get(api::chart))
        .route("/console/api/v1/export/{file}", get(export::export))
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            access::require_api_access,
        ));
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/login",
            get(access::login_form).post(access::login),
        )
        .route("/console/style.css", get(html::stylesheet))
        .merge(pages)
        .merge(data)
        .with_state(console)
}
