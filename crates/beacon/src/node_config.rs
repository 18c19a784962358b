//! Reading a node's configuration the way `beacon broker` and `beacon telemetry` share:
//! the HOCON file, the `EMQX_*` environment over it, and `DO_NOT_TRACK`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use beacon_config::Config;

/// The config file EMQX operators expect, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "etc/emqx.conf";

/// Where the node's config and data live, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct NodePaths {
    /// HOCON config file [default: etc/emqx.conf, used when present].
    #[arg(long, value_name = "FILE", env = "BEACON_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory: node ids, telemetry state, dashboard accounts.
    #[arg(
        long,
        value_name = "DIR",
        env = "BEACON_DATA_DIR",
        default_value = "data",
        global = true
    )]
    pub data_dir: PathBuf,
}

impl NodePaths {
    /// The config with the environment applied. A file named with --config must exist;
    /// the default one is optional, so a fresh checkout starts with defaults.
    pub fn load(&self) -> anyhow::Result<Config> {
        let (path, required) = match &self.config {
            Some(path) => (path.as_path(), true),
            None => (Path::new(DEFAULT_CONFIG), false),
        };
        Config::load(Some(path), required, beacon_config::process_env())
            .with_context(|| format!("cannot load the configuration {}", path.display()))
    }
}

/// The value of `DO_NOT_TRACK`, if set.
pub fn do_not_track() -> Option<String> {
    std::env::var("DO_NOT_TRACK").ok()
}
