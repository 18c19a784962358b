//! Credentials for Beacon's two web front ends (the node's dashboard and REST API, the
//! collector's private console): password hashing, random secrets, login sessions and
//! the parsing of `Authorization` headers.
//!
//! This crate owns the cryptographic choices so that both front ends make them the same
//! way: passwords and API secrets are stored only as argon2id hashes, secrets are 256
//! random bits from the operating system, and secrets are compared in constant time.
//! Checks against those hashes run on a bounded pool ([`CheckPool`]), so that a flood of
//! wrong logins cannot make a front end hold unbounded memory, and sign-in attempts are
//! budgeted per (user name, address) and overall ([`LoginThrottle`]).
//!
//! It must NOT store users or keys (each front end keeps its own: the node in its data
//! directory, the collector in its database), and it knows nothing of HTTP frameworks:
//! it reads header values as plain strings.

mod header;
mod password;
mod pool;
mod secret;
mod sessions;
mod throttle;

pub use header::{basic_credentials, bearer_token};
pub use password::{AuthError, MIN_PASSWORD_CHARS, hash_password, verify_password};
pub use pool::{Busy, CheckPool, DEFAULT_WAIT, MAX_CHECKS, RETRY_AFTER};
pub use secret::{constant_time_eq, random_password, random_token};
pub use sessions::{Session, Sessions};
pub use throttle::{LoginThrottle, Throttled};
