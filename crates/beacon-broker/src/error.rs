use std::net::SocketAddr;

use beacon_config::{ConfigError, Origin};

/// Why the broker could not be configured or started.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// A value has the wrong type (reported by `beacon_config`, naming key and source).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A value has the right type but cannot be used; `key` names the exact place,
    /// list elements included (`rewrite[1].re`).
    #[error("{origin}: {key}: {message}")]
    Invalid {
        key: String,
        origin: Origin,
        message: String,
    },
    /// An MQTT listener could not be opened (address in use, no permission, a key that
    /// does not match its certificate, ...); `listener` is EMQX's id (`ssl:default`).
    #[error("cannot listen for MQTT ({listener}) on {addr}: {detail}")]
    Bind {
        listener: String,
        addr: SocketAddr,
        detail: String,
    },
    /// A cluster port of this node (rmqtt gRPC, or raft = gRPC + 1000) cannot be
    /// opened, or its host does not resolve.
    #[error("cannot listen for the cluster's {role} on {addr}: {detail}")]
    ClusterBind {
        role: &'static str,
        addr: String,
        detail: String,
    },
    /// An rmqtt plugin refused its configuration or failed to start.
    #[error("rmqtt plugin {plugin} failed to start: {detail}")]
    Plugin {
        plugin: &'static str,
        detail: String,
    },
}
