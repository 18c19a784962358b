//! Reading a stopped node's data directory, for `beacon telemetry status|preview|sent`
//! when the broker is not running.

use std::path::Path;

use beacon_config::Config;
use beacon_report::Report;
use chrono::Utc;

use crate::AgentError;
use crate::builder::{self, Inputs};
use crate::datadir::{DataDir, NODE_UUID_FILE};
use crate::identity::{Identity, is_id};
use crate::probe::{BrokerReading, SystemFacts};
use crate::settings::AgentSettings;
use crate::state::{self, ReportState};
use crate::status::{Progress, TelemetryStatus};

/// The status a node with this config, `DO_NOT_TRACK` value and data directory has:
/// the switch and its deciding source, and the last report. `running` is false and no
/// next report time is given.
pub fn read_status(
    data_dir: &Path,
    config: &Config,
    do_not_track: Option<String>,
) -> Result<TelemetryStatus, AgentError> {
    let settings = AgentSettings::from_config(config, do_not_track)?;
    let data = DataDir::new(data_dir.to_path_buf());
    let decision = settings
        .switches
        .resolve(state::read_runtime(&data).map(|r| r.enable));
    let uuid = data
        .read_text(NODE_UUID_FILE)
        .ok()
        .flatten()
        .filter(|id| is_id(id));
    let progress = Progress {
        uuid,
        last_report_at: ReportState::load(&data).last_report_at,
        ..Progress::default()
    };
    Ok(TelemetryStatus::new(&settings, decision, progress))
}

/// The report a node with this data directory would send, with the broker's numbers at
/// zero and `up_time` 0 (it is not running). Creates the ids if the node has none yet,
/// exactly as the node will at its first start, so the preview shows the real ids.
pub fn read_preview(data_dir: &Path) -> Report {
    let data = DataDir::new(data_dir.to_path_buf());
    let now = Utc::now();
    let facts = SystemFacts {
        node_started_at: now,
        ..SystemFacts::collect()
    };
    let state = ReportState::load(&data);
    let (report, _) = builder::build(Inputs {
        facts: &facts,
        identity: &Identity::load_or_create(&data),
        previous: state.counters.as_ref(),
        broker: BrokerReading::default(),
        now,
    });
    report
}
