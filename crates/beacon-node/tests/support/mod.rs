//! Starting a node for a test: ephemeral ports, a known admin password, and telemetry
//! that never sends during the test.

use std::path::Path;

use beacon_config::Config;
use beacon_node::{Node, NodeOptions, RunningNode};

pub const PASSWORD: &str = "test-admin-password";

/// A node on ephemeral ports with `extra` config and `env` as its environment.
pub async fn start(dir: &Path, extra: &str, env: &[(&str, &str)]) -> RunningNode {
    let text = format!(
        "listeners.tcp.default.bind = \"127.0.0.1:0\"\n\
         dashboard.listeners.http.bind = \"127.0.0.1:0\"\n\
         dashboard.default_password = \"{PASSWORD}\"\n\
         telemetry.url = \"http://127.0.0.1:9/api/telemetry\"\n\
         telemetry.initial_delay = 1h\n{extra}"
    );
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
    let config = Config::from_str(&text, &dir.join("emqx.conf"), env).expect("test config");
    Node::start(NodeOptions {
        config,
        data_dir: dir.join("data"),
        do_not_track: None,
    })
    .await
    .expect("node starts")
}
