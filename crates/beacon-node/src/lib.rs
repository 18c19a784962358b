//! A running Beacon broker node: the MQTT broker, its telemetry agent, and the HTTP side
//! an operator uses (the EMQX-compatible REST API and the dashboard with the telemetry
//! toggle).
//!
//! This crate owns wiring those together: probing the broker for the agent (the one
//! conversion of a [`beacon_broker::Reading`] into the agent's
//! [`beacon_agent::BrokerReading`]), the meaning of what cluster nodes tell each other
//! (who runs, the cluster's `cluster_uuid`, the cluster-wide runtime switch: `cluster.rs`
//! over the broker's cluster channel), the dashboard's admin account and API keys (stored
//! hashed in the data directory), the REST API under `/api/v5`, and the dashboard's
//! assets, which are compiled into the binary so that nothing loads from the internet.
//!
//! It must NOT implement MQTT (that is `beacon-broker`) or telemetry (switches, reports,
//! sending: `beacon-agent`), and must NOT parse command lines (the `beacon` binary does).
//! No request without valid credentials reaches data: every route but the login and the
//! static assets requires a session token or an API key, and no request is answered
//! unless its `Host` names this dashboard (loopback names by default).

mod api;
mod assets;
mod cluster;
mod credentials;
mod error;
mod host;
mod listen;
mod node;
mod probe;

pub use credentials::{LOCAL_API_FILE, LocalApi};
pub use error::NodeError;
pub use node::{DEFAULT_DASHBOARD_BIND, Node, NodeOptions, RunningNode};
