//! Beacon's MQTT broker node: embeds the rmqtt broker library and exposes the live
//! numbers telemetry reports.
//!
//! This crate owns reading the broker's EMQX-named settings from a
//! [`beacon_config::Config`] ([`BrokerConfig`]), running rmqtt with one TCP listener,
//! the retained-message, delayed-publish, topic-rewrite and auto-subscription
//! plugins, password authentication and rule-based authorization ([`Broker`]), and
//! counting messages in and out, which the rmqtt core does not ([`BrokerNumbers`]).
//!
//! It must NOT know about telemetry (switches, reports, sending: that is
//! `beacon-agent`, which gets these numbers through its own trait), the dashboard
//! or REST API, or the command line. It never writes plugin configuration files:
//! rmqtt plugins get their settings as inline TOML in the context's config map.
//!
//! rmqtt logs through the `log` crate; a `tracing` subscriber with its `log`
//! bridge (tracing-subscriber's default) shows those lines too.

mod authn;
mod authz;
mod autosub;
mod broker;
mod config;
mod counters;
mod error;
mod plugin_toml;
mod plugins;
mod rewrite;
mod setting;
mod stats;

pub use broker::{Broker, RunningBroker};
pub use config::BrokerConfig;
pub use error::BrokerError;
pub use stats::BrokerNumbers;
