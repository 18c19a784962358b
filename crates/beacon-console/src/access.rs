//! Who may use the console: login and logout, the session cookie, CSRF checks on forms,
//! and the two gates (pages: session only; data API: session or API token).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use beacon_auth::{Busy, Session, bearer_token, constant_time_eq, random_token};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::ConsoleError;
use crate::filters;
use crate::layout;
use crate::paths;
use crate::state::Console;
use beacon_auth::Throttled;

/// The login session's cookie; the OpenAPI document names it too.
pub(crate) const SESSION_COOKIE: &str = "beacon_console";
/// Double-submit token of the login form (there is no session yet to hold one).
const LOGIN_COOKIE: &str = "beacon_console_login";
const LOGIN_FORM_LIFETIME_SECS: u32 = 1800;

/// The logged-in person of a page request.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub(crate) session: Session,
    token: String,
}

/// Pages: a live session, or a redirect to the login page that comes back here after.
pub(crate) async fn require_session(
    State(console): State<Console>,
    mut request: Request,
    next: Next,
) -> Response {
    let signed_in = match live_session(&console, request.headers()).await {
        Ok(signed_in) => signed_in,
        Err(error) => return layout::error_page(&error),
    };
    match signed_in {
        Some((session, token)) => {
            request.extensions_mut().insert(SignedIn { session, token });
            next.run(request).await
        }
        None => {
            let back = request
                .uri()
                .path_and_query()
                .map_or(paths::HOME, |p| p.as_str());
            let target = format!("{}?next={}", paths::LOGIN, filters::encode(back));
            Redirect::to(&target).into_response()
        }
    }
}

/// Data API: a session cookie or `Authorization: Bearer <API token>`, else 401.
pub(crate) async fn require_api_access(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
    {
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        return match console.store.api_token_user(&hash).await {
            Ok(Some(_)) => next.run(request).await,
            Ok(None) => unauthorized("the API token is unknown or was revoked"),
            Err(error) => ConsoleError::from(error).into_response(),
        };
    }
    match live_session(&console, headers).await {
        Ok(Some(_)) => next.run(request).await,
        Ok(None) => {
            unauthorized("log in to the console, or send Authorization: Bearer <API token>")
        }
        Err(error) => error.into_response(),
    }
}

/// The session of the request's cookie and its token, if it is live and its user still
/// exists with the password it signed in with: a user removed or given a new password (by
/// the CLI, maybe on another collector) is logged out at once.
async fn live_session(
    console: &Console,
    headers: &HeaderMap,
) -> Result<Option<(Session, String)>, ConsoleError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let Some(session) = console.sessions.get(token) else {
        return Ok(None);
    };
    let current = console.store.password_hash(&session.user).await?;
    if current.as_deref() != Some(session.stamp.as_str()) {
        console.sessions.revoke_user(&session.user);
        return Ok(None);
    }
    Ok(Some((session, token.to_owned())))
}

fn unauthorized(message: &str) -> Response {
    let body = json!({"code": "UNAUTHORIZED", "message": message});
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"beacon-console\""),
    );
    response
}

#[derive(Debug, Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// The login form, with a fresh double-submit token in a cookie and in the form.
pub(crate) async fn login_form(
    State(console): State<Console>,
    Query(query): Query<NextQuery>,
) -> Response {
    login_page(&console, StatusCode::OK, query.next.as_deref(), None)
}

fn login_page(
    console: &Console,
    status: StatusCode,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    let csrf = random_token();
    let cookie = cookie_header(console, LOGIN_COOKIE, &csrf, Some(LOGIN_FORM_LIFETIME_SECS));
    let page = layout::login(&csrf, safe_next(next), error);
    (status, [(header::SET_COOKIE, cookie)], page).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

pub(crate) async fn login(
    State(console): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return forbidden("the login form expired or did not come from this console; reload it");
    }
    // Served without connect info (a test's plain router), every client shares one source.
    let source = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.0.0.ip());
    if let Err(throttled) = console.logins.attempt(&form.username, source) {
        // `?`: the typed name is quoted and escaped, so it cannot forge a log line.
        tracing::info!(user = ?form.username, ?throttled, "console: login throttled");
        let message = match throttled {
            Throttled::Pair(_) => "Too many sign-in attempts for this user name from here.",
            Throttled::Global(_) => "Too many sign-in attempts on this console right now.",
        };
        return try_later(&console, form.next.as_deref(), message, throttled.seconds());
    }
    let stamp = match check_password(&console, &form.username, form.password).await {
        Ok(Checked::Matches(stamp)) => stamp,
        Ok(Checked::Busy(busy)) => {
            tracing::info!(user = ?form.username, "console: login turned away, checks busy");
            let message = "Too many sign-ins are being checked right now.";
            return try_later(
                &console,
                form.next.as_deref(),
                message,
                busy.retry_after.as_secs(),
            );
        }
        Ok(Checked::Refused) => {
            tracing::info!(user = ?form.username, "console: login refused");
            return login_page(
                &console,
                StatusCode::UNAUTHORIZED,
                form.next.as_deref(),
                Some("Wrong user name or password."),
            );
        }
        Err(error) => return layout::error_page(&error),
    };
    let (token, _) = console.sessions.create(&form.username, &stamp);
    tracing::info!(user = ?form.username, "console: logged in");
    let session = cookie_header(&console, SESSION_COOKIE, &token, None);
    let expired_form = cookie_header(&console, LOGIN_COOKIE, "", Some(0));
    let mut response = Redirect::to(safe_next(form.next.as_deref())).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session);
    headers.append(header::SET_COOKIE, expired_form);
    response
}

/// The login page again, 429 with `Retry-After: seconds`, saying why.
fn try_later(console: &Console, next: Option<&str>, why: &str, seconds: u64) -> Response {
    let message = format!("{why} Try again in {seconds} s.");
    let mut page = login_page(console, StatusCode::TOO_MANY_REQUESTS, next, Some(&message));
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    page
}

/// What checking a typed password gave.
enum Checked {
    /// It matches: the user's password hash, the session's stamp.
    Matches(String),
    Refused,
    /// No check could start in time.
    Busy(Busy),
}

/// Checks `password` against `user`'s hash on the console's bounded pool (argon2 is slow
/// and memory-hungry on purpose, so a flood of logins is turned away rather than queued);
/// an unknown user costs the same as a wrong password, so timing does not tell which
/// names exist.
async fn check_password(
    console: &Console,
    user: &str,
    password: String,
) -> Result<Checked, ConsoleError> {
    let stored = console.store.password_hash(user).await?;
    let known = stored.is_some();
    let phc = stored.unwrap_or_else(|| decoy_hash().to_owned());
    Ok(
        match console.checks()?.verify(phc.clone(), password).await {
            Ok(true) if known => Checked::Matches(phc),
            Ok(_) => Checked::Refused,
            Err(busy) => Checked::Busy(busy),
        },
    )
}

fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| beacon_auth::hash_password(&random_token()).unwrap_or_default())
}

/// A form posted by the signed-in person, taken only with the session's CSRF token
/// (field `csrf`); otherwise the answer is 403.
pub(crate) struct Posted<T> {
    pub(crate) signed_in: SignedIn,
    pub(crate) fields: T,
}

/// A form with no fields but its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct NoFields {}

#[derive(Debug, Deserialize)]
struct WithCsrf<T> {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    fields: T,
}

impl<S, T> FromRequest<S> for Posted<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Extension(signed_in) = Extension::<SignedIn>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Form(form) = Form::<WithCsrf<T>>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !csrf_matches(&signed_in, &form.csrf) {
            return Err(csrf_refused());
        }
        Ok(Self {
            signed_in,
            fields: form.fields,
        })
    }
}

/// Whether `token` is the session's CSRF token: [`Posted`] checks every URL-encoded form
/// with it, the import form's upload too.
pub(crate) fn csrf_matches(signed_in: &SignedIn, token: &str) -> bool {
    constant_time_eq(signed_in.session.csrf.as_bytes(), token.as_bytes())
}

/// The answer (403) to a form whose CSRF token is missing or wrong.
pub(crate) fn csrf_refused() -> Response {
    forbidden("the form's CSRF token is missing or wrong; reload the page and try again")
}

pub(crate) async fn logout(State(console): State<Console>, form: Posted<NoFields>) -> Response {
    console.sessions.revoke(&form.signed_in.token);
    let expired = cookie_header(&console, SESSION_COOKIE, "", Some(0));
    let mut response = Redirect::to(paths::LOGIN).into_response();
    response.headers_mut().append(header::SET_COOKIE, expired);
    response
}

fn forbidden(message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::message_page("Forbidden", message),
    )
        .into_response()
}

/// Only console paths are followed after login, so the login page cannot send anyone away.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if paths::is_inside(path) => path,
        _ => paths::HOME,
    }
}

fn session_token(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE).filter(|token| !token.is_empty())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn cookie_header(console: &Console, name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    let secure = if console.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    let text = format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Strict{secure}{age}",
        paths::PREFIX
    );
    // Names and values are fixed ASCII or hex tokens, always valid in a header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_console_paths_are_followed_after_login() {
        assert_eq!(
            safe_next(Some("/console/versions?os=Linux")),
            "/console/versions?os=Linux"
        );
        assert_eq!(
            safe_next(Some("https://evil.example/")),
            "/console/overview"
        );
        assert_eq!(
            safe_next(Some("/console//evil.example")),
            "/console/overview"
        );
        assert_eq!(safe_next(None), "/console/overview");
    }
}
