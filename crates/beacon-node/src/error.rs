//! Why a node could not start.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a node could not start; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] beacon_config::ConfigError),
    #[error(transparent)]
    Broker(#[from] beacon_broker::BrokerError),
    #[error(transparent)]
    Agent(#[from] beacon_agent::AgentError),
    #[error("cannot listen for the dashboard on {addr}: {source}")]
    DashboardBind { addr: SocketAddr, source: io::Error },
    #[error("cannot keep the dashboard credentials in {}: {source}", path.display())]
    Credentials { path: PathBuf, source: io::Error },
    #[error("dashboard credentials file {} is damaged: {reason}", path.display())]
    CredentialsDamaged { path: PathBuf, reason: String },
    #[error("another node is starting on this data directory (its local API key appeared)")]
    LocalKeyTaken,
    #[error("cannot start the threads that check passwords: {0}")]
    CheckThreads(io::Error),
    #[error(
        "{key} (from {origin}) is shorter than {min} characters: choose a longer password, \
         or leave it unset to have a random one generated at the first start"
    )]
    WeakPassword {
        key: &'static str,
        origin: String,
        min: usize,
    },
    #[error("dashboard.default_password: {0}")]
    Password(#[from] beacon_auth::AuthError),
}
