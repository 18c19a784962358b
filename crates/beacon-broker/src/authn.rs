//! Password authentication against users listed in the config file.
//!
//! EMQX 5 names, one authenticator kind:
//! ```hocon
//! authentication = [{
//!   mechanism = password_based, backend = built_in_database, enable = true
//!   user_id_type = username            # or clientid
//!   password_hash_algorithm { name = sha256, salt_position = suffix }  # plain | sha256 | sha512
//!   users = [                          # Beacon's stand-in for EMQX's user database
//!     {user_id = "alice", password = "secret"}                       # hashed at load
//!     {user_id = "bob", password_hash = "<hex>", salt = "s", is_superuser = true}
//!   ]
//! }]
//! ```
//! The chain works as in EMQX: an authenticator that does not know the client
//! passes it on; a known client with a wrong password is refused; a client no
//! authenticator knows is refused. With no enabled authenticator, anyone may connect.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use beacon_config::Config;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, ConnectInfo};
use sha2::{Digest, Sha256, Sha512};
use tracing::debug;

use crate::BrokerError;
use crate::setting::Setting;

const KEY: &str = "authentication";
const MECHANISM: &str = "password_based";
const BACKEND: &str = "built_in_database";

#[derive(Debug, Clone)]
pub(crate) struct Authenticator {
    by_client_id: bool,
    hashing: Hashing,
    users: HashMap<String, UserRecord>,
}

impl Authenticator {
    /// The EMQX id of this authenticator kind, as reported in telemetry.
    pub(crate) fn id(&self) -> String {
        format!("{MECHANISM}:{BACKEND}")
    }

    fn check(&self, info: &ConnectInfo) -> Decision {
        let user_id: Option<&str> = if self.by_client_id {
            Some(info.client_id())
        } else {
            info.username().map(|u| &**u)
        };
        let Some(user) = user_id.and_then(|id| self.users.get(id)) else {
            return Decision::Ignore;
        };
        let password = info.password().map(|p| p.as_ref()).unwrap_or_default();
        let computed = self.hashing.digest(password, &user.salt);
        if constant_time_eq(&computed, &user.expected) {
            Decision::Allow(user.is_superuser)
        } else {
            Decision::Deny
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Plain,
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy)]
enum SaltPosition {
    Prefix,
    Suffix,
    Disable,
}

#[derive(Debug, Clone, Copy)]
struct Hashing {
    hash: Hash,
    salt_position: SaltPosition,
}

impl Hashing {
    fn digest(&self, password: &[u8], salt: &[u8]) -> Vec<u8> {
        let salted = match self.salt_position {
            SaltPosition::Prefix => [salt, password].concat(),
            SaltPosition::Suffix => [password, salt].concat(),
            SaltPosition::Disable => password.to_vec(),
        };
        match self.hash {
            Hash::Plain => salted,
            Hash::Sha256 => Sha256::digest(&salted).to_vec(),
            Hash::Sha512 => Sha512::digest(&salted).to_vec(),
        }
    }
}

#[derive(Clone)]
struct UserRecord {
    expected: Vec<u8>,
    salt: Vec<u8>,
    is_superuser: bool,
}

/// Hashes and salts stay out of logs.
impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("is_superuser", &self.is_superuser)
            .finish_non_exhaustive()
    }
}

enum Decision {
    Ignore,
    Allow(bool),
    Deny,
}

pub(crate) fn parse(config: &Config) -> Result<Vec<Authenticator>, BrokerError> {
    let Some(list) = Setting::lookup(config, KEY) else {
        return Ok(Vec::new());
    };
    let mut chain = Vec::new();
    for item in list.items()? {
        if item.bool_or("enable", true)? {
            chain.push(parse_authenticator(&item)?);
        }
    }
    Ok(chain)
}

fn parse_authenticator(item: &Setting<'_>) -> Result<Authenticator, BrokerError> {
    let mechanism = item.required("mechanism")?.text()?;
    let backend = item.required("backend")?.text()?;
    if mechanism != MECHANISM || backend != BACKEND {
        return Err(item.invalid(format!(
            "{mechanism}:{backend} is not supported; Beacon supports mechanism = {MECHANISM} \
             with backend = {BACKEND}, or enable = false"
        )));
    }
    if let Some(bootstrap) = item.field("bootstrap_file") {
        return Err(bootstrap.invalid("not supported; list the users under `users` instead"));
    }
    let by_client_id = match item.field("user_id_type") {
        Some(kind) => kind.one_of(&["username", "clientid"])? == "clientid",
        None => false,
    };
    let hashing = parse_hashing(item.field("password_hash_algorithm"))?;
    let users = match item.field("users") {
        Some(list) => parse_users(&list, hashing)?,
        None => HashMap::new(),
    };
    Ok(Authenticator {
        by_client_id,
        hashing,
        users,
    })
}

/// EMQX's default for the built-in database is sha256 with the salt as suffix.
fn parse_hashing(setting: Option<Setting<'_>>) -> Result<Hashing, BrokerError> {
    let Some(setting) = setting else {
        return Ok(Hashing {
            hash: Hash::Sha256,
            salt_position: SaltPosition::Suffix,
        });
    };
    let hash = match setting
        .required("name")?
        .one_of(&["plain", "sha256", "sha512"])?
    {
        "plain" => Hash::Plain,
        "sha512" => Hash::Sha512,
        _ => Hash::Sha256,
    };
    let salt_position = match setting.field("salt_position") {
        Some(p) => match p.one_of(&["prefix", "suffix", "disable"])? {
            "prefix" => SaltPosition::Prefix,
            "disable" => SaltPosition::Disable,
            _ => SaltPosition::Suffix,
        },
        None if matches!(hash, Hash::Plain) => SaltPosition::Disable,
        None => SaltPosition::Suffix,
    };
    Ok(Hashing {
        hash,
        salt_position,
    })
}

fn parse_users(
    list: &Setting<'_>,
    hashing: Hashing,
) -> Result<HashMap<String, UserRecord>, BrokerError> {
    let mut users = HashMap::new();
    for item in list.items()? {
        let user_id = item.required("user_id")?.text()?;
        let record = parse_user(&item, hashing)?;
        if users.insert(user_id.clone(), record).is_some() {
            return Err(item.invalid(format!("user_id `{user_id}` is listed twice")));
        }
    }
    Ok(users)
}

fn parse_user(item: &Setting<'_>, hashing: Hashing) -> Result<UserRecord, BrokerError> {
    let is_superuser = item.bool_or("is_superuser", false)?;
    match (item.field("password"), item.field("password_hash")) {
        (Some(password), None) => {
            let password = password.text()?;
            Ok(UserRecord {
                expected: hashing.digest(password.as_bytes(), b""),
                salt: Vec::new(),
                is_superuser,
            })
        }
        (None, Some(hash)) => {
            let salt = match item.field("salt") {
                Some(salt) => salt.text()?.into_bytes(),
                None => Vec::new(),
            };
            Ok(UserRecord {
                expected: stored_hash(&hash, hashing)?,
                salt,
                is_superuser,
            })
        }
        _ => Err(item.invalid("give exactly one of `password` or `password_hash`")),
    }
}

/// EMQX stores sha hashes as lower-case hex and plain passwords as they are.
fn stored_hash(setting: &Setting<'_>, hashing: Hashing) -> Result<Vec<u8>, BrokerError> {
    let text = setting.text()?;
    match hashing.hash {
        Hash::Plain => Ok(text.into_bytes()),
        Hash::Sha256 | Hash::Sha512 => {
            hex::decode(text.trim()).map_err(|e| setting.invalid(format!("not a hex digest: {e}")))
        }
    }
}

/// Compares without an early exit, so response time does not reveal how much of a
/// guessed password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `ClientAuthenticate` hook running the chain.
pub(crate) struct AuthnHandler {
    chain: Arc<Vec<Authenticator>>,
}

impl AuthnHandler {
    pub(crate) fn new(chain: Vec<Authenticator>) -> AuthnHandler {
        AuthnHandler {
            chain: Arc::new(chain),
        }
    }

    fn authenticate(&self, info: &ConnectInfo) -> AuthResult {
        for authenticator in self.chain.iter() {
            match authenticator.check(info) {
                Decision::Ignore => continue,
                Decision::Allow(superuser) => return AuthResult::Allow(superuser, None),
                Decision::Deny => return AuthResult::BadUsernameOrPassword,
            }
        }
        AuthResult::NotAuthorized
    }
}

#[async_trait]
impl Handler for AuthnHandler {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let Parameter::ClientAuthenticate(info) = param else {
            return (true, acc);
        };
        let result = self.authenticate(info);
        if !matches!(result, AuthResult::Allow(..)) {
            debug!(client_id = %info.client_id(), ?result, "MQTT client refused by authentication");
        }
        (false, Some(HookResult::AuthResult(result)))
    }
}
