//! The console's router: every path of [`crate::paths`] with its handler and gate.

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::Redirect;
use axum::routing::{get, post};
use beacon_store::Store;

use crate::paths::{self, PAGES};
use crate::state::{Console, ConsoleOptions};
use crate::{access, api, export, html, openapi, pages, tokens};

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
        .merge(pages)
        .merge(data)
        .with_state(console)
}
