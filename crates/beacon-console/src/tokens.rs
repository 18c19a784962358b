//! API tokens for scripts: listed, created (the token is shown once, only its SHA-256 is
//! stored) and revoked from a console page; forms carry the session's CSRF token.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use beacon_auth::random_token;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::access::{Posted, SignedIn};
use crate::error::ConsoleError;
use crate::html::esc;
use crate::layout;
use crate::paths;
use crate::state::Console;

const MAX_NAME: usize = 64;

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    name: String,
}

pub(crate) async fn page(
    State(console): State<Console>,
    Extension(signed_in): Extension<SignedIn>,
) -> Response {
    render(&console, &signed_in, None, StatusCode::OK).await
}

pub(crate) async fn create(State(console): State<Console>, form: Posted<TokenForm>) -> Response {
    let Posted { signed_in, fields } = form;
    let name = fields.name.trim();
    if let Err(problem) = check_name(name) {
        return render(
            &console,
            &signed_in,
            Some(Err(problem)),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let token = random_token();
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    let user = &signed_in.session.user;
    match console.store.add_api_token(name, user, &hash).await {
        Ok(true) => {
            tracing::info!(?user, token = ?name, "console: API token created");
            let shown = format!(
                "<p>Token <b>{}</b> created. Copy it now: it is not shown again.</p>\
                 <p class=\"secret\" id=\"new-token\">{token}</p>",
                esc(name)
            );
            render(&console, &signed_in, Some(Ok(shown)), StatusCode::CREATED).await
        }
        Ok(false) => {
            let problem = format!("a token called `{name}` exists already");
            render(
                &console,
                &signed_in,
                Some(Err(problem)),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(error) => layout::error_page(&ConsoleError::from(error)),
    }
}

pub(crate) async fn revoke(State(console): State<Console>, form: Posted<TokenForm>) -> Response {
    let Posted { signed_in, fields } = form;
    match console.store.remove_api_token(&fields.name).await {
        Ok(_) => {
            tracing::info!(user = ?signed_in.session.user, token = ?fields.name, "console: API token revoked");
            Redirect::to(paths::TOKENS).into_response()
        }
        Err(error) => layout::error_page(&ConsoleError::from(error)),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        return Err(format!(
            "a token name has 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

async fn render(
    console: &Console,
    signed_in: &SignedIn,
    outcome: Option<Result<String, String>>,
    status: StatusCode,
) -> Response {
    let tokens = match console.store.api_tokens().await {
        Ok(tokens) => tokens,
        Err(error) => return layout::error_page(&ConsoleError::from(error)),
    };
    let csrf = esc(&signed_in.session.csrf);
    let rows: String = tokens
        .iter()
        .map(|t| {
            format!(
                "<tr><td>{name}</td><td>{user}</td><td>{at}</td><td>\
                 <form method=\"post\" action=\"{revoke}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"name\" value=\"{name}\">\
                 <button type=\"submit\">Revoke</button></form></td></tr>",
                revoke = paths::REVOKE_TOKEN,
                name = esc(&t.name),
                user = esc(&t.user),
                at = t.created_at.format("%Y-%m-%d %H:%M UTC"),
            )
        })
        .collect();
    let outcome = match outcome {
        Some(Ok(html)) => html,
        Some(Err(problem)) => format!("<p class=\"error\">{}</p>", esc(&problem)),
        None => String::new(),
    };
    let body = format!(
        "<section class=\"card\">{outcome}<p class=\"note\">Scripts send \
         <code>Authorization: Bearer &lt;token&gt;</code> to the data API \
         (<a href=\"{openapi}\">OpenAPI document</a>). Tokens do not open \
         the pages.</p><table><tr><th>Name</th><th>Created by</th><th>Created</th><th></th></tr>\
         {rows}</table>\
         <form method=\"post\" action=\"{tokens}\" class=\"filters\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label>New token name <input name=\"name\" id=\"token-name\" required></label>\
         <button type=\"submit\" id=\"create-token\">Create token</button></form></section>",
        openapi = paths::OPENAPI,
        tokens = paths::TOKENS,
    );
    (
        status,
        layout::plain("API tokens", &signed_in.session, &body),
    )
        .into_response()
}
