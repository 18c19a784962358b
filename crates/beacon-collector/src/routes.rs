//! The collector's routes: which path and method reach which handler (public and
//! private), the rate limit shared by the routes that take work from the public (ingest
//! and delete), refusal counting for ingest, request latency and the request span.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, Refused};
use crate::forget::forget;
use crate::health::{healthz, render_metrics, settle};
use crate::ingest::ingest;
use crate::state::AppState;

/// Path of the ingest endpoint, as EMQX nodes post to it.
pub const INGEST_PATH: &str = "/api/telemetry";
pub const HEALTH_PATH: &str = "/healthz";
pub const METRICS_PATH: &str = "/metrics";
/// Private: answers once every report acknowledged before it is counted.
pub(crate) const SETTLE_PATH: &str = "/settle";
/// Self-service deletion of one node's reports.
pub const FORGET_PATH: &str = "/api/telemetry/{uuid}";

/// The collector's public routes: ingest, deletion, health. The rate limit needs the peer
/// address: serve this with `into_make_service_with_connect_info::<SocketAddr>()` (as
/// [`crate::BoundCollector::serve`] does), otherwise requests are not rate limited.
pub fn router(state: AppState) -> Router {
    let limited = middleware::from_fn_with_state(state.clone(), limit_rate);
    let counted = middleware::from_fn_with_state(state.clone(), count_refusals);
    let routes = Router::new()
        .route(
            INGEST_PATH,
            post(ingest)
                .route_layer(limited.clone())
                .fallback(method_not_allowed)
                .layer(counted),
        )
        .route(
            FORGET_PATH,
            delete(forget)
                .route_layer(limited)
                .fallback(method_not_allowed),
        )
        .route(HEALTH_PATH, get(healthz).fallback(method_not_allowed))
        .fallback(not_found);
    observed(routes, state)
}

/// The routes that are not for the public: `/metrics` and `/settle`. They go with the
/// console (on its own listener unless told otherwise), and have no fallback so that they
/// merge with it.
pub fn private_router(state: AppState) -> Router {
    let routes = Router::new()
        .route(
            METRICS_PATH,
            get(render_metrics).fallback(method_not_allowed),
        )
        .route(SETTLE_PATH, post(settle).fallback(method_not_allowed));
    observed(routes, state)
}

/// Request latency by route and the request span.
fn observed(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// One budget per source address, shared by every route that has this layer.
async fn limit_rate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    // Without connect info (a router served by someone else) there is no key to limit on.
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        state
            .limiter()
            .check(peer.ip())
            .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    }
    Ok(next.run(request).await)
}

/// Counts every refused report by its code, whichever step refused it.
async fn count_refusals(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(Refused(code)) = response.extensions().get::<Refused>() {
        state.metrics().rejected(code);
        tracing::debug!(code, "report refused");
    }
    response
}

/// The request span names method and path only: the peer address must never reach logs.
fn request_span(request: &Request) -> tracing::Span {
    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
}

/// Records request latency by route; unknown paths share one label.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = match request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(INGEST_PATH) => INGEST_PATH,
        Some(HEALTH_PATH) => HEALTH_PATH,
        Some(METRICS_PATH) => METRICS_PATH,
        Some(SETTLE_PATH) => SETTLE_PATH,
        Some(FORGET_PATH) => FORGET_PATH,
        _ => "unmatched",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics().request(route, started.elapsed());
    response
}

/// Axum adds the `Allow` header to what a method fallback returns.
async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    }
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(request.uri().path().to_owned())
}
