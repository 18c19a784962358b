use std::io;
use std::path::PathBuf;

use crate::Origin;

/// Why configuration could not be loaded or a value could not be read as the asked type.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid HOCON; nothing of it was used.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file exists but could not be read (permissions, not UTF-8, a directory, ...).
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The file was required but does not exist.
    #[error("config file {} not found", path.display())]
    Missing { path: PathBuf },
    /// A value exists but is not of the asked type.
    #[error("{}", type_message(key, origin, expected, found))]
    Type {
        key: String,
        origin: Origin,
        expected: &'static str,
        found: String,
    },
    /// An `EMQX_*` variable whose value cannot be used.
    #[error("environment {var}: {message}")]
    EnvSyntax { var: String, message: String },
}

/// The variable name already identifies the key, so it is not repeated for env values.
fn type_message(key: &str, origin: &Origin, expected: &str, found: &str) -> String {
    match origin {
        Origin::Env { .. } => format!("{origin}: expected {expected}, found {found}"),
        Origin::Default | Origin::File { .. } => {
            format!("{origin}: {key}: expected {expected}, found {found}")
        }
    }
}
