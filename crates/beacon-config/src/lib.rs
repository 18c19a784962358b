//! Beacon's generic configuration layer, in the style of EMQX 5.
//!
//! This crate owns reading the broker's HOCON config file (default `etc/emqx.conf`),
//! overlaying `EMQX_*` environment variables for this boot, and handing out typed
//! values that remember where they came from (the file and line, or the variable).
//!
//! It must NOT know what any key means: no telemetry switch logic, no defaults for
//! particular keys, no precedence rules beyond "environment overrides file". Callers
//! (the agent, the broker) decide semantics; they get [`Config::file_value`] and
//! [`Config::env_value`] separately when a decision needs every source.
//!
//! A file is either parsed completely or refused with `path:line:column`; the
//! parser is never run in a permissive mode, and unbalanced brackets that the parser
//! would tolerate are refused here (see `document.rs`).

mod config;
mod convert;
mod document;
mod duration;
mod env;
mod error;

use std::fmt;
use std::path::PathBuf;

pub use config::{Config, process_env};
pub use duration::parse_duration;
pub use error::ConfigError;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built into the program; no operator set it.
    Default,
    /// The HOCON config file; `line` is where the key was assigned, when known.
    File { path: PathBuf, line: Option<usize> },
    /// An `EMQX_*` environment variable of this boot.
    Env { var: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line: None } => write!(f, "config file {}", path.display()),
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "config file {} line {line}", path.display()),
            Origin::Env { var } => write!(f, "environment {var}"),
        }
    }
}

/// A value together with the source that set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Sourced<T> {
    /// Transforms the value, keeping its origin.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            origin: self.origin,
        }
    }
}
