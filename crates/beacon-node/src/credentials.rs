//! The dashboard's admin account and API keys, kept in `<data dir>/dashboard/` with
//! passwords and secrets stored only as argon2id hashes.
//!
//! The first admin password comes from `dashboard.default_password` (or
//! `EMQX_DASHBOARD__DEFAULT_PASSWORD`) at the first start; without one, a random password
//! is generated and handed back once, for the operator to read. Later starts keep the
//! stored account, as EMQX does.
//!
//! Each start also writes a local API key for the `beacon telemetry` CLI in
//! [`LOCAL_API_FILE`], readable only by the user running the node, and removes it at stop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use beacon_auth::{Busy, CheckPool};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::NodeError;

const ACCOUNTS_FILE: &str = "dashboard/accounts.json";
/// Where a running node leaves the address and key the local CLI uses.
pub const LOCAL_API_FILE: &str = "dashboard/local-api.json";

/// The admin account and API keys, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Accounts {
    admin: Admin,
    #[serde(default)]
    api_keys: Vec<ApiKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Admin {
    username: String,
    password_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ApiKey {
    key: String,
    name: String,
    secret_hash: String,
    created_at: DateTime<Utc>,
    /// Keys stored before roles existed could do everything, and still can.
    #[serde(default)]
    role: Role,
    #[serde(default)]
    expired_at: Option<DateTime<Utc>>,
}

/// What an API key may do, by EMQX's role names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Everything, including managing API keys.
    #[default]
    Administrator,
    /// Reading only (monitoring): `GET` of status, data, sent log and overview.
    Viewer,
    /// EMQX's role for its publish API, which a Beacon node does not serve: nothing.
    Publisher,
}

/// An API key as listed: everything but its secret.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct KeyInfo {
    pub(crate) name: String,
    pub(crate) api_key: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) expired_at: Option<DateTime<Utc>>,
    pub(crate) expired: bool,
    pub(crate) role: Role,
    pub(crate) enable: bool,
}

/// The outcome of checking an API key and its secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    Valid(Role),
    Expired,
    Wrong,
}

/// Why an API key could not be created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("an API key named {0:?} exists already")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] NodeError),
}

/// What the local CLI needs to call a running node's API.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalApi {
    /// The dashboard's base URL, e.g. `http://127.0.0.1:18083`.
    pub url: String,
    pub key: String,
    pub secret: String,
}

/// Verifies logins and API keys; creates keys.
pub(crate) struct Credentials {
    path: PathBuf,
    accounts: Mutex<Accounts>,
    /// SHA-256 of secrets already verified against their argon2 hash, by key: argon2 is
    /// deliberately slow, and a script sends its key with every request.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// Where the argon2 checks of logins and new API secrets run.
    pool: CheckPool,
}

impl Credentials {
    /// Loads the accounts, creating the admin at the first start. Returns the generated
    /// password when one was made, for the caller to show once.
    pub(crate) fn load_or_create(
        data_dir: &Path,
        username: &str,
        configured_password: Option<&str>,
    ) -> Result<(Self, Option<String>), NodeError> {
        let path = data_dir.join(ACCOUNTS_FILE);
        let (accounts, generated) = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let accounts =
                    serde_json::from_str(&text).map_err(|e| NodeError::CredentialsDamaged {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                (accounts, None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (password, generated) = match configured_password {
                    Some(password) => (password.to_owned(), None),
                    None => {
                        let password = beacon_auth::random_password();
                        (password.clone(), Some(password))
                    }
                };
                let accounts = Accounts {
                    admin: Admin {
                        username: username.to_owned(),
                        password_hash: beacon_auth::hash_password(&password)?,
                    },
                    api_keys: Vec::new(),
                };
                write_private(&path, &accounts)?;
                (accounts, generated)
            }
            Err(source) => return Err(NodeError::Credentials { path, source }),
        };
        let credentials = Self {
            path,
            accounts: Mutex::new(accounts),
            verified: Mutex::default(),
            pool: CheckPool::start().map_err(NodeError::CheckThreads)?,
        };
        Ok((credentials, generated))
    }

    /// Whether `username` and `password` are the admin's; says nothing about which failed.
    /// The argon2 check runs on the bounded pool; [`Busy`] when no slot frees up in time.
    pub(crate) async fn check_login(&self, username: &str, password: &str) -> Result<bool, Busy> {
        let admin = self.lock().admin.clone();
        // Both checks always run, so the time taken does not tell which part was wrong.
        let name_ok = beacon_auth::constant_time_eq(username.as_bytes(), admin.username.as_bytes());
        let password_ok = self
            .pool
            .verify(admin.password_hash, password.to_owned())
            .await?;
        Ok(name_ok && password_ok)
    }

    pub(crate) fn admin_name(&self) -> String {
        self.lock().admin.username.clone()
    }

    /// Whether `secret` is the secret of API key `key`, and what the key may do. A secret
    /// not seen before is checked on the bounded pool, never on the caller's (async)
    /// thread; an unknown or expired key costs no check at all.
    pub(crate) async fn check_api_key(&self, key: &str, secret: &str) -> Result<KeyCheck, Busy> {
        let record = self.lock().api_keys.iter().find(|k| k.key == key).cloned();
        let Some(record) = record else {
            return Ok(KeyCheck::Wrong);
        };
        if record.expired_at.is_some_and(|at| at <= Utc::now()) {
            return Ok(KeyCheck::Expired);
        }
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let known = self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied();
        let valid = match known {
            Some(known) => beacon_auth::constant_time_eq(&known, &digest),
            None => {
                let valid = self
                    .pool
                    .verify(record.secret_hash, secret.to_owned())
                    .await?;
                if valid {
                    self.verified
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(key.to_owned(), digest);
                }
                valid
            }
        };
        Ok(if valid {
            KeyCheck::Valid(record.role)
        } else {
            KeyCheck::Wrong
        })
    }

    /// Creates an API key named `name` (unique); the secret is returned once and stored
    /// only as a hash.
    pub(crate) fn create_api_key(
        &self,
        name: &str,
        role: Role,
        expired_at: Option<DateTime<Utc>>,
    ) -> Result<(String, String), KeyError> {
        let key = format!("bk_{}", &beacon_auth::random_token()[..16]);
        let secret = beacon_auth::random_token();
        let record = ApiKey {
            key: key.clone(),
            name: name.to_owned(),
            secret_hash: beacon_auth::hash_password(&secret).map_err(NodeError::from)?,
            created_at: Utc::now(),
            role,
            expired_at,
        };
        let mut accounts = self.lock();
        if accounts.api_keys.iter().any(|k| k.name == name) {
            return Err(KeyError::NameTaken(name.to_owned()));
        }
        accounts.api_keys.push(record);
        write_private(&self.path, &*accounts)?;
        Ok((key, secret))
    }

    /// Every API key, without secrets.
    pub(crate) fn api_keys(&self) -> Vec<KeyInfo> {
        let now = Utc::now();
        self.lock()
            .api_keys
            .iter()
            .map(|k| KeyInfo {
                name: k.name.clone(),
                api_key: k.key.clone(),
                created_at: k.created_at,
                expired_at: k.expired_at,
                expired: k.expired_at.is_some_and(|at| at <= now),
                role: k.role,
                enable: true,
            })
            .collect()
    }

    /// Revokes the API key named `name`: it stops working at once. `false` if none.
    pub(crate) fn revoke_api_key(&self, name: &str) -> Result<bool, NodeError> {
        let mut accounts = self.lock();
        let (revoked, kept) = std::mem::take(&mut accounts.api_keys)
            .into_iter()
            .partition::<Vec<_>, _>(|k| k.name == name);
        accounts.api_keys = kept;
        if revoked.is_empty() {
            return Ok(false);
        }
        let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        for key in &revoked {
            verified.remove(&key.key);
        }
        drop(verified);
        write_private(&self.path, &*accounts)?;
        Ok(true)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Accounts> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Writes `value` as JSON readable only by its owner, replacing the file atomically.
pub(crate) fn write_private(path: &Path, value: &impl Serialize) -> Result<(), NodeError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |source| NodeError::Credentials {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let text = serde_json::to_vec_pretty(value).map_err(|e| failed(e.into()))?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}
