//! The node side of Beacon's telemetry, as a library any broker embeds.
//!
//! This crate owns: the telemetry switch and its precedence (config file, `EMQX_*`
//! environment, runtime setting, `DO_NOT_TRACK`; off is sticky), the node and cluster ids
//! (`node.uuid`, `cluster.uuid`), the probes (the system's, and the broker's through
//! [`BrokerProbe`]), building the report from their readings, the schedule (initial
//! delay, interval, jitter, persisted last report), the HTTPS sender (gzip, CA file,
//! proxy, backoff honouring `Retry-After`), and the local log of what was sent. Its
//! files live in the node's data directory.
//!
//! It must NOT know MQTT: it reads the broker through [`BrokerProbe`], in the report's
//! terms. It must NOT read or send hostnames, IP or MAC addresses, machine ids or
//! hardware serials. It must NOT touch the network while telemetry is off: no report is
//! built for sending, no name is resolved and no connection is opened. It does not serve
//! HTTP or parse command lines; the broker and the `beacon` binary expose the functions
//! here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use beacon_agent::{Agent, AgentSettings, BrokerReading};
//! let config = beacon_config::Config::load(
//!     Some("etc/emqx.conf".as_ref()), false, beacon_config::process_env())?;
//! let settings = AgentSettings::from_config(&config, std::env::var("DO_NOT_TRACK").ok())?;
//! let agent = Agent::start(settings, "data".into(), Arc::new(BrokerReading::default()))?;
//! println!("{}", serde_json::to_string(&agent.status())?);
//! agent.shutdown().await;
//! # Ok(()) }
//! ```

mod agent;
mod builder;
mod datadir;
mod error;
mod forget;
mod identity;
mod offline;
mod probe;
mod rates;
mod schedule;
mod sender;
mod sent_log;
mod settings;
mod state;
mod status;
mod switch;
mod upload;

pub use agent::{Agent, AgentHandle};
pub use error::{AgentError, SwitchError};
pub use forget::{Forgotten, forget};
pub use offline::{read_preview, read_status};
pub use probe::{BridgeCount, BrokerProbe, BrokerReading};
pub use schedule::MAX_ATTEMPTS_PER_PERIOD;
pub use sender::Network;
pub use sent_log::{SENT_LOG_CAPACITY, SentRecord, read_sent_log};
pub use settings::{
    AgentSettings, DEFAULT_INITIAL_DELAY, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_URL,
    MIN_INTERVAL, SHORT_INTERVAL,
};
pub use status::TelemetryStatus;
pub use switch::{
    BootSwitches, Decision, ENABLE_KEY, RuntimeSwitch, SwitchSource, do_not_track_set,
};
pub use upload::{Uploaded, upload};

/// Name resolution types, for injecting a resolver through [`Network`].
pub use reqwest::dns;
