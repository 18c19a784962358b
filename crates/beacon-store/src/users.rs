//! Console accounts shared by every collector on one database: admin users (only their
//! argon2id PHC strings are stored; hashing is `beacon-auth`'s job) and API tokens for
//! scripts (only the SHA-256 of each token: tokens are 256 random bits, so a fast hash is
//! enough and a lookup by hash needs no scan).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// An API token as listed: its name, owner and age, never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub name: String,
    pub user: String,
    pub created_at: DateTime<Utc>,
}

/// Console users and API tokens.
#[async_trait::async_trait]
pub trait Users: Send + Sync + 'static {
    /// Creates user `name`; `false` (and nothing changed) if the name is taken.
    async fn add_user(&self, name: &str, password_hash: &str) -> Result<bool, StoreError>;
    /// Replaces the password hash of `name`; `false` if there is no such user.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError>;
    /// Removes `name` and its API tokens; `false` if there is no such user.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError>;
    /// The stored PHC string of `name`.
    async fn password_hash(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Every user name, alphabetically (byte order).
    async fn user_names(&self) -> Result<Vec<String>, StoreError>;
    /// Records a token of `user` by the hex SHA-256 of the token; `false` if `name` is taken.
    async fn add_api_token(
        &self,
        name: &str,
        user: &str,
        token_sha256: &str,
    ) -> Result<bool, StoreError>;
    /// Revokes the token called `name`; `false` if there is none.
    async fn remove_api_token(&self, name: &str) -> Result<bool, StoreError>;
    /// Every token, by name.
    async fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// The user owning the token whose hex SHA-256 is `token_sha256`.
    async fn api_token_user(&self, token_sha256: &str) -> Result<Option<String>, StoreError>;
}

/// SQL shared by both backends. SQLite numbers `$n` placeholders by first appearance, not
/// by `n`, so each statement names them in increasing order.
pub(crate) mod sql {
    pub(crate) const ADD_USER: &str = "INSERT INTO console_users (name, password_hash, created_at)
        VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING";
    pub(crate) const SET_PASSWORD: &str =
        "UPDATE console_users SET password_hash = $1 WHERE name = $2";
    pub(crate) const REMOVE_TOKENS_OF: &str = "DELETE FROM api_tokens WHERE user_name = $1";
    pub(crate) const REMOVE_USER: &str = "DELETE FROM console_users WHERE name = $1";
    pub(crate) const PASSWORD_HASH: &str =
        "SELECT password_hash FROM console_users WHERE name = $1";
    pub(crate) const USER_NAMES: &str = "SELECT name FROM console_users ORDER BY name";
    pub(crate) const ADD_TOKEN: &str =
        "INSERT INTO api_tokens (token_sha256, name, user_name, created_at)
        SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM console_users WHERE name = $3)
        ON CONFLICT DO NOTHING";
    pub(crate) const REMOVE_TOKEN: &str = "DELETE FROM api_tokens WHERE name = $1";
    pub(crate) const TOKENS: &str =
        "SELECT name, user_name, created_at FROM api_tokens ORDER BY name";
    pub(crate) const TOKEN_USER: &str = "SELECT user_name FROM api_tokens WHERE token_sha256 = $1";
}
