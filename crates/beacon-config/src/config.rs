use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::document::{self, Document};
use crate::env::{self, EnvOverride};
use crate::{ConfigError, Origin, Sourced};

/// The config file (if any) with the environment overlaid, plus where each value came from.
///
/// Keys are dotted paths (`telemetry.enable`); an empty key means the whole tree.
#[derive(Clone)]
pub struct Config {
    file: Option<LoadedFile>,
    env_tree: Value,
    env_vars: Vec<EnvOverride>,
    merged: Value,
}

#[derive(Clone)]
struct LoadedFile {
    path: PathBuf,
    document: Document,
}

impl Config {
    /// Loads `path` if given and present (a missing file is an error naming the path
    /// only when `required`), then overlays the `EMQX_*` variables of `env`.
    ///
    /// `env` is the whole environment (e.g. [`process_env`]); only `EMQX_*` variables
    /// override keys, but all of them serve `${VAR}` substitutions in the file.
    pub fn load(
        path: Option<&Path>,
        required: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let Some(path) = path else {
            return Self::assemble(None, &env);
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let text = document::utf8(&bytes).map_err(|at| at.in_file(path))?;
                Self::from_str(text, path, env)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !required => {
                debug!(path = %path.display(), "no config file; using environment only");
                Self::assemble(None, &env)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ConfigError::Missing {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses `text` as if read from `path` (for tests and embedded defaults), then overlays env.
    pub fn from_str(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let substitutions: HashMap<String, String> = env.iter().cloned().collect();
        let document =
            document::parse_document(text, path, &substitutions).map_err(|at| at.in_file(path))?;
        debug!(path = %path.display(), "config file parsed");
        let file = LoadedFile {
            path: path.to_path_buf(),
            document,
        };
        Self::assemble(Some(file), &env)
    }

    /// No file and no environment: every lookup answers `None`.
    pub fn empty() -> Config {
        Config {
            file: None,
            env_tree: Value::Object(Map::new()),
            env_vars: Vec::new(),
            merged: Value::Object(Map::new()),
        }
    }

    fn assemble(file: Option<LoadedFile>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut config = Config::empty();
        if let Some(file) = &file {
            config.merged = file.document.tree.clone();
        }
        config.file = file;
        for found in env::overrides(env)? {
            let key = found.path.join(".");
            debug!(var = %found.var, %key, "environment overrides config key");
            set_path(&mut config.env_tree, &found.path, found.value.clone());
            set_path(&mut config.merged, &found.path, found.value.clone());
            config.env_vars.push(found);
        }
        Ok(config)
    }

    /// The config file that was read, if one was.
    pub fn file_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// Raw value at a dotted path, as JSON.
    pub fn get(&self, key: &str) -> Option<Sourced<&Value>> {
        let path = segments(key);
        let value = lookup(&self.merged, &path)?;
        let origin = self
            .env_setting(&path)
            .or_else(|| self.file_origin(&path))
            .or_else(|| self.env_below(&path))?;
        Some(Sourced { value, origin })
    }

    /// Typed getters: `Ok(None)` when the key is absent; a value of another type is
    /// an error naming the key and its source. See [`Sourced::to_bool`] and siblings
    /// for what each accepts.
    pub fn bool(&self, key: &str) -> Result<Option<Sourced<bool>>, ConfigError> {
        self.get(key).map(|v| v.to_bool(key)).transpose()
    }

    pub fn string(&self, key: &str) -> Result<Option<Sourced<String>>, ConfigError> {
        self.get(key).map(|v| v.to_text(key)).transpose()
    }

    pub fn u64(&self, key: &str) -> Result<Option<Sourced<u64>>, ConfigError> {
        self.get(key).map(|v| v.to_u64(key)).transpose()
    }

    pub fn duration(&self, key: &str) -> Result<Option<Sourced<Duration>>, ConfigError> {
        self.get(key).map(|v| v.to_duration(key)).transpose()
    }

    pub fn socket_addr(&self, key: &str) -> Result<Option<Sourced<SocketAddr>>, ConfigError> {
        self.get(key).map(|v| v.to_socket_addr(key)).transpose()
    }

    pub fn string_list(&self, key: &str) -> Result<Option<Sourced<Vec<String>>>, ConfigError> {
        self.get(key).map(|v| v.to_string_list(key)).transpose()
    }

    /// Only the value the file gave, ignoring the environment. With [`Config::env_value`]
    /// this lets a caller weigh each source separately (the telemetry switch does).
    pub fn file_value(&self, key: &str) -> Option<Sourced<&Value>> {
        let path = segments(key);
        let value = lookup(&self.file.as_ref()?.document.tree, &path)?;
        let origin = self.file_origin(&path)?;
        Some(Sourced { value, origin })
    }

    /// See [`Config::file_value`]. For a sub-tree assembled from several variables,
    /// the origin names the first of them.
    pub fn env_value(&self, key: &str) -> Option<Sourced<&Value>> {
        let path = segments(key);
        let value = lookup(&self.env_tree, &path)?;
        let origin = self.env_setting(&path).or_else(|| self.env_below(&path))?;
        Some(Sourced { value, origin })
    }

    /// Sub-tree at a path (e.g. "listeners.tcp"), for the broker's lists of listeners / rules.
    pub fn subtree(&self, key: &str) -> Option<&Value> {
        lookup(&self.merged, &segments(key))
    }

    fn file_origin(&self, path: &[&str]) -> Option<Origin> {
        let file = self.file.as_ref()?;
        lookup(&file.document.tree, path)?;
        let owned: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        Some(Origin::File {
            path: file.path.clone(),
            line: file.document.lines.get(&owned).copied(),
        })
    }

    /// The variable that set `path` itself or one of its ancestors; variables are
    /// applied shallowest first, so the last match is the one whose value is visible.
    fn env_setting(&self, path: &[&str]) -> Option<Origin> {
        self.env_vars
            .iter()
            .rev()
            .find(|o| is_prefix(&o.path, path))
            .map(|o| Origin::Env { var: o.var.clone() })
    }

    /// A variable that set something inside `path`, for sub-trees env created.
    fn env_below(&self, path: &[&str]) -> Option<Origin> {
        self.env_vars
            .iter()
            .find(|o| o.path.len() > path.len() && is_prefix(path, &o.path))
            .map(|o| Origin::Env { var: o.var.clone() })
    }
}

/// Values can hold secrets (`dashboard.default_password`), so only sources are shown.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vars: Vec<&str> = self.env_vars.iter().map(|o| o.var.as_str()).collect();
        f.debug_struct("Config")
            .field("file", &self.file_path())
            .field("env_vars", &vars)
            .finish_non_exhaustive()
    }
}

/// The process environment for [`Config::load`]. Unlike `std::env::vars`, this does
/// not panic on a non-UTF-8 entry; such entries are skipped, with a warning when
/// they look like config overrides.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(
            |(name, value)| match (name.into_string(), value.into_string()) {
                (Ok(name), Ok(value)) => Some((name, value)),
                (Ok(name), Err(_)) if name.starts_with("EMQX_") => {
                    warn!(var = %name, "ignoring environment variable whose value is not UTF-8");
                    None
                }
                _ => None,
            },
        )
        .collect()
}

fn segments(key: &str) -> Vec<&str> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    }
}

fn lookup<'v>(root: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter()
        .try_fold(root, |node, segment| node.as_object()?.get(*segment))
}

fn is_prefix<A: PartialEq<B>, B>(prefix: &[A], path: &[B]) -> bool {
    prefix.len() <= path.len() && prefix.iter().zip(path).all(|(a, b)| a == b)
}

/// Sets `value` at `path`, replacing any non-object found on the way: the
/// environment overrides whatever shape the file gave. Existing keys keep their place.
fn set_path(root: &mut Value, path: &[String], value: Value) {
    *root = with_path(std::mem::take(root), path, value);
}

fn with_path(node: Value, path: &[String], value: Value) -> Value {
    let Some((head, rest)) = path.split_first() else {
        return value;
    };
    let mut map = match node {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let child = map.get_mut(head).map(std::mem::take).unwrap_or_default();
    map.insert(head.clone(), with_path(child, rest, value));
    Value::Object(map)
}
