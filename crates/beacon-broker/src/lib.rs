//! Beacon's MQTT broker node: embeds the rmqtt broker library and answers probes of
//! its live numbers.
//!
//! This crate owns reading the broker's EMQX-named settings from a
//! [`beacon_config::Config`] ([`BrokerConfig`]), running rmqtt with EMQX's MQTT
//! listeners (`tcp`, `ssl`, `ws`, `wss`; see `listeners.rs`),
//! the retained-message, delayed-publish, topic-rewrite and auto-subscription
//! plugins, password authentication and rule-based authorization ([`Broker`]), and
//! the probe: a [`Reading`] of its load and features in MQTT's terms, with the
//! messages in and out that the rmqtt core does not count.
//!
//! It also owns clustering (`cluster.rs`): rmqtt's raft cluster plugin set up from
//! EMQX's `node.name` / `cluster.*` keys ([`ClusterConfig`]), a replicated route
//! table kept free of dead nodes' routes, and an opaque request/answer channel
//! between nodes ([`Cluster`]) whose bytes it never interprets.
//!
//! It must NOT know about telemetry (switches, reports, sending: that is
//! `beacon-agent`; `beacon-node` turns a [`Reading`] into the agent's), the dashboard
//! or REST API, or the command line. It never writes plugin configuration files:
//! rmqtt plugins get their settings as inline TOML in the context's config map.
//!
//! rmqtt logs through the `log` crate; a `tracing` subscriber with its `log`
//! bridge (tracing-subscriber's default) shows those lines too.

mod authn;
mod authz;
mod autosub;
mod broker;
mod cluster;
mod config;
mod error;
mod listeners;
mod plugin_toml;
mod plugins;
mod probe;
mod rewrite;
mod setting;

pub use broker::{Broker, RunningBroker};
pub use cluster::{Cluster, ClusterAnswerer, ClusterConfig, ClusterError};
pub use config::BrokerConfig;
pub use error::BrokerError;
pub use probe::Reading;
