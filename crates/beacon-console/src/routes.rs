//! The console's router: every path of [`crate::paths`] with its handler and gate, and
//! the security headers every answer carries.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use beacon_store::Store;

use crate::paths::{self, PAGES};
use crate::state::{Console, ConsoleOptions};
use crate::{access, api, export, html, import, openapi, pages, tokens};

/// The console's routes, state applied, ready to merge into a service or serve alone.
pub fn router(store: Arc<dyn Store>, options: ConsoleOptions) -> Router {
    let console = Console::new(store, options);
    let pages = PAGES
        .into_iter()
        .fold(Router::new(), |router, page| {
            router.route(page.path, pages::route(page))
        })
        .route(paths::TOKENS, get(tokens::page).post(tokens::create))
        .route(paths::REVOKE_TOKEN, post(tokens::revoke))
        .route(
            paths::IMPORT,
            get(import::page)
                .post(import::upload)
                .layer(DefaultBodyLimit::max(import::MAX_UPLOAD)),
        )
        .route(paths::LOGOUT, post(access::logout))
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            access::require_session,
        ));
    let data = Router::new()
        .route(paths::OPENAPI, get(openapi::document))
        .route(paths::FILTER_CHOICES, get(api::filter_choices))
        .route(paths::CHART_DATA, get(api::chart))
        .route(paths::EXPORT, get(export::export))
        .route_layer(middleware::from_fn_with_state(
            console.clone(),
            access::require_api_access,
        ));
    Router::new()
        .route(paths::PREFIX, get(|| async { Redirect::to(paths::HOME) }))
        .route(
            paths::PREFIX_SLASH,
            get(|| async { Redirect::to(paths::HOME) }),
        )
        .route(paths::LOGIN, get(access::login_form).post(access::login))
        .route(paths::STYLESHEET, get(html::stylesheet))
        .route(paths::ICON, get(html::icon))
        .merge(pages)
        .merge(data)
        .layer(middleware::map_response(security_headers))
        .with_state(console)
}

/// Everything the console serves is its own (no script at all, styles from its sheet,
/// charts inline SVG), so the policy allows only itself and no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'none'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Added to every answer here, in one place so that no handler can forget them. Answers
/// hold private numbers and tokens shown once, so nothing is cached unless a handler says
/// otherwise (the stylesheet does).
async fn security_headers(mut response: Response) -> Response {
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    let headers = response.headers_mut();
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
