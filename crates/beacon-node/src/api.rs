//! The REST API under `/api/v5` (EMQX 5's paths for telemetry, nodes and login) and the
//! routes of the dashboard's assets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use beacon_agent::{
    AgentError, AgentHandle, Forgotten, RuntimeSwitch, SwitchError, SwitchSource, TelemetryStatus,
};
use beacon_auth::{Busy, LoginThrottle, Sessions, Throttled};
use beacon_broker::RunningBroker;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::assets;
use crate::cluster::{self, Membership, NodeRow};
use crate::credentials::{Credentials, KeyCheck, KeyError, Role};
use crate::host::{ALLOWED_HOSTS_KEY, AllowedHosts};
use crate::probe::LiveProbe;

/// Everything the handlers share.
pub(crate) struct NodeState {
    pub(crate) agent: AgentHandle,
    pub(crate) broker: Arc<RunningBroker>,
    pub(crate) probe: Arc<LiveProbe>,
    pub(crate) credentials: Credentials,
    pub(crate) sessions: Sessions,
    /// Sign-in budgets per (user name, address) and overall; addresses stay in memory.
    pub(crate) logins: LoginThrottle,
    pub(crate) allowed_hosts: AllowedHosts,
    pub(crate) started_at: Instant,
    pub(crate) mqtt_addr: Option<SocketAddr>,
    /// This node's EMQX name (`node.name`).
    pub(crate) node_name: String,
    /// The peers, when the node runs in a cluster.
    pub(crate) cluster: Option<Arc<Membership>>,
}

impl NodeState {
    pub(crate) fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started_at.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

type Shared = Arc<NodeState>;

pub(crate) fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/api/v5/logout", post(logout))
        .route(
            "/api/v5/telemetry/status",
            get(telemetry_status).put(set_telemetry_status),
        )
        .route("/api/v5/telemetry/data", get(telemetry_data))
        .route("/api/v5/telemetry/sent", get(telemetry_sent))
        .route("/api/v5/telemetry/forget", post(forget_telemetry))
        .route("/api/v5/overview", get(overview))
        .route("/api/v5/nodes", get(nodes))
        .route("/api/v5/api_key", get(list_api_keys).post(create_api_key))
        .route("/api/v5/api_key/{name}", delete(revoke_api_key))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_credentials,
        ));
    Router::new()
        .route("/api/v5/login", post(login))
        .merge(protected)
        .merge(assets::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            check_host,
        ))
        .with_state(state)
}

/// Which credential a 401 refuses.
enum Refusal {
    Login,
    NoCredentials,
    Token,
    ApiKey,
    ExpiredKey,
}

/// An API error: `{"code", "message"}` as EMQX answers.
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Sent as `Retry-After` (whole seconds) when the client may try again later.
    retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// EMQX's 401 answers: the code names the kind of credential that failed, never
    /// whether a user name or a password was wrong.
    fn unauthorized(refusal: Refusal) -> Self {
        let (code, message) = match refusal {
            Refusal::Login => ("BAD_USERNAME_OR_PWD", "Auth failed"),
            // EMQX also offers `api_key.bootstrap_file` here; Beacon has no such file.
            Refusal::NoCredentials => (
                "AUTHORIZATION_HEADER_ERROR",
                "Missing authorization header. Use Basic auth with API key/secret, or Bearer \
                 token from POST /api/v5/login. API keys can be created via POST /api/v5/api_key",
            ),
            Refusal::Token => (
                "BAD_TOKEN",
                "Invalid bearer token. Use API key (Basic auth) for persistent access, or get \
                 a new bearer token by POST /api/v5/login. API keys can be created via POST \
                 /api/v5/api_key",
            ),
            Refusal::ApiKey => ("BAD_API_KEY_OR_SECRET", "Check api_key/api_secret"),
            Refusal::ExpiredKey => ("BAD_API_KEY_OR_SECRET", "API key expired"),
        };
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
    }
}

/// A full check pool: 429 at once, with the `Retry-After` the pool asks for.
impl From<Busy> for ApiError {
    fn from(busy: Busy) -> Self {
        Self {
            retry_after: Some(busy.retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                busy.to_string(),
            )
        }
    }
}

/// A used-up sign-in budget: 429 with the wait until the next attempt can succeed.
impl From<Throttled> for ApiError {
    fn from(throttled: Throttled) -> Self {
        let seconds = throttled.seconds();
        Self {
            retry_after: Some(Duration::from_secs(seconds)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                format!("too many sign-in attempts; retry in {seconds} s"),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"code": self.code, "message": self.message}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, Basic realm=\"beacon\""),
            );
        }
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: "0" would invite an immediate retry.
            let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}

/// The text of header `name`; empty when absent or not visible ASCII.
fn header_text(request: &Request, name: header::HeaderName) -> &str {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Answers 421 to a request whose `Host` is not a name of this dashboard (DNS rebinding).
async fn check_host(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let host = header_text(&request, header::HOST);
    if state.allowed_hosts.allows(host) {
        return Ok(next.run(request).await);
    }
    Err(ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "BAD_HOST",
        format!(
            "this dashboard does not answer to the host {host:?}; add the name to \
             {ALLOWED_HOSTS_KEY} to reach it by that name"
        ),
    ))
}

/// Lets a request through with a live session token (`Bearer`, the admin) or an API key
/// (`Basic`) whose role allows it.
async fn require_credentials(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = header_text(&request, header::AUTHORIZATION);
    let role = if let Some(token) = beacon_auth::bearer_token(header) {
        state
            .sessions
            .get(token)
            .map(|_| Role::Administrator)
            .ok_or(Refusal::Token)
    } else if let Some((key, secret)) = beacon_auth::basic_credentials(header) {
        match state.credentials.check_api_key(&key, &secret).await? {
            KeyCheck::Valid(role) => Ok(role),
            KeyCheck::Expired => Err(Refusal::ExpiredKey),
            KeyCheck::Wrong => Err(Refusal::ApiKey),
        }
    } else {
        Err(Refusal::NoCredentials)
    };
    let role = role.map_err(ApiError::unauthorized)?;
    if !permitted(role, request.method(), request.uri().path()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!(
                "an API key with role {role:?} cannot {} {}",
                request.method(),
                request.uri().path()
            ),
        ));
    }
    Ok(next.run(request).await)
}

/// Whether `role` may call `method path`: viewers read (never API keys), publishers have
/// nothing to publish to on a Beacon node.
fn permitted(role: Role, method: &Method, path: &str) -> bool {
    match role {
        Role::Administrator => true,
        Role::Viewer => {
            (method == Method::GET || method == Method::HEAD)
                && !path.starts_with("/api/v5/api_key")
        }
        Role::Publisher => false,
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let login: Login = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON object with \"username\" and \"password\": {e}"
        ))
    })?;
    // A typed name is untrusted: `?` escapes newlines and control characters, so that it
    // cannot forge log lines. The address is never logged.
    if let Err(throttled) = state.logins.attempt(&login.username, peer.ip()) {
        tracing::info!(user = ?login.username, ?throttled, "dashboard login throttled");
        return Err(throttled.into());
    }
    let valid = state
        .credentials
        .check_login(&login.username, &login.password)
        .await?;
    if !valid {
        tracing::info!(user = ?login.username, "dashboard login refused");
        return Err(ApiError::unauthorized(Refusal::Login));
    }
    let username = state.credentials.admin_name();
    // The admin password comes from the configuration and cannot change while running.
    let (token, _) = state.sessions.create(&username, "");
    Ok(Json(json!({"token": token, "username": username})))
}

async fn logout(State(state): State<Shared>, headers: HeaderMap) -> StatusCode {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(beacon_auth::bearer_token)
    {
        state.sessions.revoke(token);
    }
    StatusCode::NO_CONTENT
}

/// The agent's status plus what the dashboard needs to explain the toggle.
#[derive(Serialize)]
struct StatusAnswer {
    #[serde(flatten)]
    status: TelemetryStatus,
    /// When a boot-time source forces telemetry off: who, and why the toggle cannot help.
    locked_by: Option<String>,
    /// The runtime setting (the cluster's, in a cluster) and its version; `None` when never
    /// set. A locked node holds it too, without following it.
    runtime_switch: Option<RuntimeSwitch>,
}

impl StatusAnswer {
    fn new(status: TelemetryStatus, runtime_switch: Option<RuntimeSwitch>) -> Self {
        let locked = !status.enable
            && matches!(
                status.source,
                SwitchSource::ConfigFile { .. }
                    | SwitchSource::Environment { .. }
                    | SwitchSource::DoNotTrack
            );
        let locked_by = locked.then(|| status.source.to_string());
        Self {
            status,
            locked_by,
            runtime_switch,
        }
    }
}

async fn telemetry_status(State(state): State<Shared>) -> Json<StatusAnswer> {
    Json(StatusAnswer::new(
        state.agent.status(),
        state.agent.runtime_switch(),
    ))
}

async fn set_telemetry_status(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<Json<StatusAnswer>, ApiError> {
    let enable = enable_field(&body)?;
    match state.agent.set_enabled(enable).await {
        // The switch is the cluster's: every peer gets it before the answer.
        Ok(status) => {
            cluster::push_switch(&state).await;
            Ok(Json(StatusAnswer::new(
                status,
                state.agent.runtime_switch(),
            )))
        }
        Err(error @ (SwitchError::AlreadyInState { .. } | SwitchError::Locked { .. })) => {
            Err(ApiError::bad_request(error.to_string()))
        }
        Err(error) => Err(ApiError::internal(error.to_string())),
    }
}

/// The `enable` boolean of a `{"enable": bool}` body, or an error naming what is wrong.
fn enable_field(body: &[u8]) -> Result<bool, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(ApiError::bad_request(
            "request body must be a JSON object like {\"enable\": false}",
        ));
    };
    if let Some(unknown) = object.keys().find(|k| *k != "enable") {
        return Err(ApiError::bad_request(format!(
            "unknown field \"{unknown}\": only \"enable\" can be set"
        )));
    }
    match object.get("enable") {
        Some(Value::Bool(enable)) => Ok(*enable),
        Some(other) => Err(ApiError::bad_request(format!(
            "field \"enable\" must be true or false, got {other}"
        ))),
        None => Err(ApiError::bad_request("field \"enable\" is required")),
    }
}

/// The report exactly as it would be sent now. While telemetry is off it is shown too
/// (EMQX answers 404), marked by the `X-Telemetry-Enabled: false` header.
async fn telemetry_data(State(state): State<Shared>) -> Response {
    state.probe.probe(&state.broker).await;
    let enabled = state.agent.status().enable;
    let mut response = Json(state.agent.preview()).into_response();
    let flag = if enabled { "true" } else { "false" };
    response
        .headers_mut()
        .insert("x-telemetry-enabled", HeaderValue::from_static(flag));
    response
}

async fn telemetry_sent(State(state): State<Shared>) -> Json<Value> {
    Json(json!({ "reports": state.agent.sent_log() }))
}

/// Has the collector delete this node's reports; the node goes on at once under new ids.
/// A collector that does not delete is a 502 naming its answer; nothing changed then.
async fn forget_telemetry(State(state): State<Shared>) -> Result<Json<Forgotten>, ApiError> {
    match state.agent.forget().await {
        Ok(forgotten) => Ok(Json(forgotten)),
        Err(error @ AgentError::Forget { .. }) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "COLLECTOR_REFUSED",
            error.to_string(),
        )),
        Err(error) => Err(ApiError::internal(error.to_string())),
    }
}

async fn overview(State(state): State<Shared>) -> Json<Value> {
    let reading = state.probe.probe(&state.broker).await;
    let rates = state.probe.rates();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "up_time_ms": state.uptime_ms(),
        "mqtt_listener": state.mqtt_addr.map(|a| a.to_string()),
        "num_clients": reading.connections,
        "num_cluster_sessions": state.probe.cluster_sessions(&reading),
        "num_topics": reading.topic_filters,
        "messages_received": reading.publishes_received,
        "messages_sent": reading.publishes_sent,
        "received_per_second": rates.received_per_second,
        "sent_per_second": rates.sent_per_second,
        "retained": reading.retained_messages,
        "delayed": reading.delayed_publishes,
    }))
}

/// EMQX's node list: this node and every other seed of its cluster, running or
/// stopped, sorted by name.
async fn nodes(State(state): State<Shared>) -> Json<Vec<NodeRow>> {
    let reading = state.probe.probe(&state.broker).await;
    let mut rows = vec![NodeRow {
        node: state.node_name.clone(),
        node_status: "running",
        uptime: state.uptime_ms(),
        connections: reading.connections,
        version: Some(env!("CARGO_PKG_VERSION").to_owned()),
    }];
    rows.extend(state.cluster.iter().flat_map(|c| c.peer_rows()));
    rows.sort_by(|a, b| a.node.cmp(&b.node));
    Json(rows)
}

#[derive(Deserialize)]
struct NewKey {
    name: String,
    #[serde(default)]
    role: Role,
    /// EMQX's forms: RFC 3339 text, seconds since the epoch, or `"infinity"` (never).
    #[serde(default)]
    expired_at: Option<Value>,
}

/// Creates an API key for scripts; the secret is shown in this answer only.
async fn create_api_key(
    State(state): State<Shared>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new: NewKey = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected a JSON object with a \"name\", and optionally \"role\" \
             (administrator, viewer, publisher) and \"expired_at\": {e}"
        ))
    })?;
    let name = new.name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(ApiError::bad_request(
            "field \"name\" must have 1 to 64 characters",
        ));
    }
    let expired_at = expiry(new.expired_at.as_ref())?;
    let (key, secret) = state
        .credentials
        .create_api_key(name, new.role, expired_at)
        .map_err(|e| match e {
            KeyError::NameTaken(_) => ApiError::bad_request(e.to_string()),
            KeyError::Store(e) => ApiError::internal(e.to_string()),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "name": name,
            "api_key": key,
            "api_secret": secret,
            "role": new.role,
            "expired_at": expired_at,
        })),
    ))
}

/// The expiry of a new key: `None` for never; a time already past is refused.
fn expiry(value: Option<&Value>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let at = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) if text == "infinity" => return Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| at.with_timezone(&Utc)),
        Some(Value::Number(seconds)) => seconds
            .as_i64()
            .and_then(|s| DateTime::from_timestamp(s, 0)),
        Some(_) => None,
    };
    let at = at.ok_or_else(|| {
        ApiError::bad_request(
            "field \"expired_at\" must be RFC 3339 time, seconds since 1970, or \"infinity\"",
        )
    })?;
    if at <= Utc::now() {
        return Err(ApiError::bad_request("field \"expired_at\" is in the past"));
    }
    Ok(Some(at))
}

/// Every API key, without secrets.
async fn list_api_keys(State(state): State<Shared>) -> Json<Value> {
    Json(json!(state.credentials.api_keys()))
}

/// Revokes the key named `name`; requests with it are refused from now on.
async fn revoke_api_key(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let revoked = state
        .credentials
        .revoke_api_key(&name)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if !revoked {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no API key is named {name:?}"),
        ));
    }
    tracing::info!(key = ?name, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
