//! The probe stage: what the agent reads before it builds a report. The system probes
//! read the machine and the process once; the broker is read through [`BrokerProbe`]
//! at every report attempt and preview.

mod broker;
mod system;

pub use broker::{BridgeCount, BrokerProbe, BrokerReading};
pub(crate) use system::{BEACON_VERSION, BUILD_RELFORM, BUILD_RUSTC, BUILD_TARGET, SystemFacts};
