//! The running agent: one tokio task that waits for the next period and sends, and the
//! handle through which the broker switches, previews and inspects it.
//!
//! Off means off: the task does nothing but wait while disabled, and a switch-off drops
//! the period in progress (timer, report build, DNS lookup, connection, request) before
//! [`AgentHandle::set_enabled`] returns. [`AgentHandle::forget`] pauses the task the same
//! way, so that no report under the old uuid is in flight while the collector deletes.
//!
//! In a cluster, the broker node carries the runtime switch and the cluster id between
//! nodes; the agent only keeps them: [`AgentHandle::adopt_switch`] takes a later change
//! made on another node (recorded even where a boot-time source keeps this node off), and
//! [`AgentHandle::adopt_cluster_uuid`] the cluster's id.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use beacon_report::Report;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::builder::{self, Inputs};
use crate::datadir::{CLUSTER_UUID_FILE, DataDir, RUNTIME_FILE};
use crate::forget::{self, Forgotten};
use crate::identity::{Identity, is_id};
use crate::probe::{BrokerProbe, SystemFacts};
use crate::rates::CounterSnapshot;
use crate::schedule::{Backoff, after, next_due, sleep_until};
use crate::sender::{Answer, Network, Sender};
use crate::sent_log::{SentLog, SentRecord};
use crate::settings::{AgentSettings, SHORT_INTERVAL};
use crate::state::{self, ReportState};
use crate::status::{Progress, TelemetryStatus, format_duration};
use crate::switch::{Decision, RuntimeSwitch};
use crate::{AgentError, SwitchError};

/// Starts agents.
#[derive(Debug)]
pub struct Agent;

impl Agent {
    /// Starts the agent on the current tokio runtime with the system's network.
    ///
    /// Reads (or creates) the ids in `data_dir`, the runtime switch and the schedule
    /// state. Errors only for a bad `telemetry.ca_file` or a missing runtime; an
    /// unwritable data directory is a warning, not an error.
    pub fn start(
        settings: AgentSettings,
        data_dir: PathBuf,
        broker: Arc<dyn BrokerProbe>,
    ) -> Result<AgentHandle, AgentError> {
        Self::start_with(settings, data_dir, broker, Network::default())
    }

    /// [`Agent::start`] with an injected network (a resolver that records names, in tests).
    pub fn start_with(
        settings: AgentSettings,
        data_dir: PathBuf,
        broker: Arc<dyn BrokerProbe>,
        network: Network,
    ) -> Result<AgentHandle, AgentError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AgentError::NoRuntime)?;
        let shared = Arc::new(Shared::load(settings, data_dir, broker, network)?);
        let enabled = shared.live().decision.enable;
        if enabled {
            // Planned now, so that a status right after the start already shows it.
            shared.schedule();
        }
        let (control, control_rx) = watch::channel(Control {
            enabled,
            generation: 0,
            shutdown: false,
        });
        let (ack_tx, ack) = watch::channel(0);
        let task = runtime.spawn(run(shared.clone(), control_rx, ack_tx));
        Ok(AgentHandle {
            shared,
            control,
            ack,
            switching: tokio::sync::Mutex::new(()),
            task: Some(task),
        })
    }
}

/// What the handle tells the task. `generation` counts switch changes, so that the
/// handle can wait until the task has seen (and acted on) a change.
#[derive(Debug, Clone, Copy)]
struct Control {
    enabled: bool,
    generation: u64,
    shutdown: bool,
}

/// The broker's handle on a running agent. Dropping it stops the agent's task.
#[derive(Debug)]
pub struct AgentHandle {
    shared: Arc<Shared>,
    control: watch::Sender<Control>,
    ack: watch::Receiver<u64>,
    switching: tokio::sync::Mutex<()>,
    task: Option<JoinHandle<()>>,
}

impl AgentHandle {
    /// Whether telemetry runs, which source decided, and where the schedule stands.
    pub fn status(&self) -> TelemetryStatus {
        self.shared.status()
    }

    /// Sets the runtime switch and persists it in the data directory, as a new change
    /// (see [`AgentHandle::runtime_switch`]) made on this node.
    ///
    /// Enabling is refused while the config file, the environment or `DO_NOT_TRACK` says
    /// off ([`SwitchError::Locked`] names it), and is saved before it takes effect.
    /// Disabling always takes effect: when this returns, any period in progress has been
    /// dropped and nothing more is sent. Asking for the current state is
    /// [`SwitchError::AlreadyInState`], unless a boot-time source holds this node off
    /// while the runtime setting (the cluster's) says on: switching off is a change then.
    pub async fn set_enabled(&self, enable: bool) -> Result<TelemetryStatus, SwitchError> {
        let _one_at_a_time = self.switching.lock().await;
        let (decided, current, uuid) = {
            let live = self.shared.live();
            let current = live.runtime.clone();
            (live.decision.enable, current, live.identity.uuid.clone())
        };
        let runtime_says_other = current.as_ref().is_some_and(|r| r.enable != enable);
        if decided == enable && !runtime_says_other {
            return Err(SwitchError::AlreadyInState { enabled: enable });
        }
        if let Some(by) = self.shared.settings.switches.boot_off().filter(|_| enable) {
            return Err(SwitchError::Locked { by });
        }
        let switch = RuntimeSwitch::next(enable, current.as_ref(), &uuid);
        info!(
            enable,
            version = switch.version,
            "telemetry switched at runtime"
        );
        self.apply_switch(switch).await?;
        Ok(self.status())
    }

    /// Takes `switch`, a change made on another node of the cluster, when it is later than
    /// the one this node holds ([`RuntimeSwitch::supersedes`]); returns whether it did.
    ///
    /// It is recorded and persisted even while a boot-time source holds this node off (the
    /// node stays off, naming that source). A switch-off takes effect as
    /// [`AgentHandle::set_enabled`]'s does; a switch-on is saved before it takes effect.
    pub async fn adopt_switch(&self, switch: RuntimeSwitch) -> Result<bool, SwitchError> {
        let _one_at_a_time = self.switching.lock().await;
        if !switch.supersedes(self.shared.live().runtime.as_ref()) {
            return Ok(false);
        }
        info!(
            enable = switch.enable,
            version = switch.version,
            origin = %switch.origin,
            "telemetry switch adopted from the cluster"
        );
        self.apply_switch(switch).await?;
        Ok(true)
    }

    /// The runtime setting this node holds, with its version; `None` when never set.
    pub fn runtime_switch(&self) -> Option<RuntimeSwitch> {
        self.shared.live().runtime.clone()
    }

    /// This node's telemetry id (`node.uuid`).
    pub fn uuid(&self) -> String {
        self.shared.live().identity.uuid.clone()
    }

    /// The cluster's telemetry id as this node reports it (`cluster.uuid`).
    pub fn cluster_uuid(&self) -> String {
        self.shared.live().identity.cluster_uuid.clone()
    }

    /// Reports `cluster_uuid` (the cluster's, as its owner gives it) from now on, and keeps
    /// it in `cluster.uuid` for the next starts; this node's own id is given up, as EMQX
    /// does when a node joins a cluster. Returns whether it changed. A value that is not
    /// an id is refused; a data directory that cannot be written keeps it in memory, with a
    /// warning, as for the ids made at start.
    pub fn adopt_cluster_uuid(&self, cluster_uuid: &str) -> Result<bool, AgentError> {
        if !is_id(cluster_uuid) {
            return Err(AgentError::NotAnId {
                value: cluster_uuid.to_owned(),
            });
        }
        let mut live = self.shared.live();
        if live.identity.cluster_uuid == cluster_uuid {
            return Ok(false);
        }
        self.shared
            .data
            .save(CLUSTER_UUID_FILE, cluster_uuid.as_bytes());
        info!(
            old = %live.identity.cluster_uuid,
            new = %cluster_uuid,
            "this node now reports the cluster's cluster_uuid"
        );
        live.identity.cluster_uuid = cluster_uuid.to_owned();
        Ok(true)
    }

    /// Has the collector delete this node's reports (proved with the deletion secret in the
    /// data directory), then switches at once to new ids, a new secret and an empty record
    /// of sends, as [`crate::forget`] does for a stopped node. The next report carries the
    /// new uuid and waits the initial delay, as after a first start. When the collector
    /// does not delete, nothing changes.
    pub async fn forget(&self) -> Result<Forgotten, AgentError> {
        let _one_at_a_time = self.switching.lock().await;
        let enabled = self.shared.live().decision.enable;
        // A stopped task sends nothing, so there is nothing to pause or resume: its error
        // is not this call's.
        if enabled {
            self.signal(false).await.ok();
        }
        let forgotten = self.shared.forget().await;
        if enabled {
            self.signal(true).await.ok();
        }
        forgotten
    }

    /// The report as it would be sent now, built the same way (also while disabled).
    /// Nothing is sent and nothing is saved.
    pub fn preview(&self) -> Report {
        self.shared.build(Utc::now()).0
    }

    /// The last reports that reached the collector, oldest first.
    pub fn sent_log(&self) -> Vec<SentRecord> {
        lock(&self.shared.sent).records()
    }

    /// Stops the task, dropping any period in progress, and waits for it to end.
    pub async fn shutdown(mut self) {
        self.control.send_modify(|c| c.shutdown = true);
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            warn!(%error, "telemetry agent task ended abnormally");
        }
    }

    /// Persists and applies a runtime setting (the caller holds `switching`). A switch-on
    /// that cannot be saved is not applied; a switch-off always is.
    async fn apply_switch(&self, switch: RuntimeSwitch) -> Result<(), SwitchError> {
        let path = self.shared.data.path(RUNTIME_FILE);
        let saved = match (
            switch.enable,
            state::write_runtime(&self.shared.data, &switch),
        ) {
            (true, Err(source)) => return Err(SwitchError::Persist { path, source }),
            (_, saved) => saved,
        };
        if let Some(enabled) = self.shared.apply_runtime(switch) {
            self.signal(enabled).await?;
        }
        saved.map_err(|source| SwitchError::NotPersisted { path, source })
    }

    /// Tells the task the new state and waits until it has acted on it.
    async fn signal(&self, enable: bool) -> Result<(), SwitchError> {
        let mut generation = 0;
        self.control.send_modify(|c| {
            c.enabled = enable;
            c.generation += 1;
            generation = c.generation;
        });
        let mut ack = self.ack.clone();
        ack.wait_for(|seen| *seen >= generation)
            .await
            .map(drop)
            .map_err(|_| SwitchError::Stopped)
    }
}

impl Drop for AgentHandle {
    fn drop(&mut self) {
        self.control.send_modify(|c| c.shutdown = true);
    }
}

/// The task's loop: wait while disabled; while enabled, run periods until the switch
/// changes (which drops the period in progress) or shutdown.
async fn run(shared: Arc<Shared>, mut control: watch::Receiver<Control>, ack: watch::Sender<u64>) {
    loop {
        let now = *control.borrow_and_update();
        if !now.enabled || now.shutdown {
            shared.live().next_report_at = None;
        }
        ack.send_replace(now.generation);
        if now.shutdown {
            debug!("telemetry agent stopped");
            return;
        }
        if now.enabled {
            tokio::select! {
                changed = control.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = shared.report_forever() => {}
            }
        } else if control.changed().await.is_err() {
            return;
        }
    }
}

/// The outcome of one attempt, for the period's loop.
enum Attempt {
    Delivered,
    /// Worth trying again in this period, not before the collector's `Retry-After`.
    Retry(Option<Duration>),
    /// Not worth trying again in this period.
    GiveUp(Option<Duration>),
}

struct Shared {
    settings: AgentSettings,
    data: DataDir,
    facts: SystemFacts,
    broker: Arc<dyn BrokerProbe>,
    sender: Sender,
    live: Mutex<Live>,
    sent: Mutex<SentLog>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("url", &self.settings.url.as_str())
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// What changes while the agent runs.
#[derive(Debug)]
struct Live {
    /// Replaced when the node forgets its data.
    identity: Identity,
    runtime: Option<RuntimeSwitch>,
    decision: Decision,
    /// When telemetry was last switched on in this run (or the start): the initial
    /// delay counts from here, so a quick off/on flip never sends at once.
    enabled_since: DateTime<Utc>,
    state: ReportState,
    /// Earliest start of the next period after a failed one.
    not_before: Option<DateTime<Utc>>,
    /// The planned start of the next period, or the next retry inside one; `None`
    /// between periods and while disabled.
    next_report_at: Option<DateTime<Utc>>,
    consecutive_failures: u64,
    last_error: Option<String>,
}

impl Shared {
    fn load(
        settings: AgentSettings,
        data_dir: PathBuf,
        broker: Arc<dyn BrokerProbe>,
        network: Network,
    ) -> Result<Self, AgentError> {
        let sender = Sender::new(&settings, network)?;
        let data = DataDir::new(data_dir);
        let runtime = state::read_runtime(&data);
        let decision = settings
            .switches
            .resolve(runtime.as_ref().map(|r| r.enable));
        log_start(&settings, &decision);
        let live = Live {
            identity: Identity::load_or_create(&data),
            runtime,
            decision,
            enabled_since: Utc::now(),
            state: ReportState::load(&data),
            not_before: None,
            next_report_at: None,
            consecutive_failures: 0,
            last_error: None,
        };
        Ok(Self {
            facts: SystemFacts::collect(),
            sent: Mutex::new(SentLog::load(&data)),
            live: Mutex::new(live),
            settings,
            data,
            broker,
            sender,
        })
    }

    fn live(&self) -> MutexGuard<'_, Live> {
        lock(&self.live)
    }

    fn status(&self) -> TelemetryStatus {
        let live = self.live();
        let progress = Progress {
            uuid: Some(live.identity.uuid.clone()),
            running: true,
            last_report_at: live.state.last_report_at,
            next_report_at: live.next_report_at.filter(|_| live.decision.enable),
            consecutive_failures: live.consecutive_failures,
            last_error: live.last_error.clone(),
        };
        TelemetryStatus::new(&self.settings, live.decision.clone(), progress)
    }

    /// Holds `switch` as the runtime setting; returns the new decision when it changed
    /// (a boot-time source saying off keeps it off).
    fn apply_runtime(&self, switch: RuntimeSwitch) -> Option<bool> {
        let mut live = self.live();
        let was = live.decision.enable;
        live.decision = self.settings.switches.resolve(Some(switch.enable));
        live.runtime = Some(switch);
        let enabled = live.decision.enable;
        if enabled && !was {
            live.enabled_since = Utc::now();
        }
        drop(live);
        if enabled && !was {
            self.schedule();
        }
        (enabled != was).then_some(enabled)
    }

    fn build(&self, now: DateTime<Utc>) -> (Report, CounterSnapshot) {
        let broker = self.broker.read();
        let (previous, identity) = {
            let live = self.live();
            (live.state.counters, live.identity.clone())
        };
        builder::build(Inputs {
            facts: &self.facts,
            identity: &identity,
            previous: previous.as_ref(),
            broker,
            now,
        })
    }

    /// Deletes at the collector, then starts over in memory as the files just did.
    async fn forget(&self) -> Result<Forgotten, AgentError> {
        let (forgotten, identity) =
            forget::forget_with(&self.settings, &self.sender, &self.data).await?;
        *lock(&self.sent) = SentLog::default();
        let mut live = self.live();
        live.identity = identity;
        live.state = ReportState::default();
        live.enabled_since = Utc::now();
        live.not_before = None;
        live.next_report_at = None;
        live.consecutive_failures = 0;
        live.last_error = None;
        Ok(forgotten)
    }

    async fn report_forever(&self) {
        loop {
            self.one_period().await;
        }
    }

    /// Waits for the period's start, then sends, retrying with backoff until delivered
    /// or until the period ends.
    async fn one_period(&self) {
        let due = self.schedule();
        sleep_until(due).await;
        let period_end = after(due, self.settings.interval);
        let mut backoff = Backoff::for_interval(self.settings.interval);
        loop {
            let retry_after = match self.attempt().await {
                Attempt::Delivered => return self.end_period(None),
                Attempt::GiveUp(retry_after) => return self.defer(period_end, retry_after),
                Attempt::Retry(retry_after) => retry_after,
            };
            let wait = backoff.next_wait().max(retry_after.unwrap_or_default());
            let next = after(Utc::now(), wait);
            if next >= period_end {
                return self.defer(period_end, retry_after);
            }
            self.live().next_report_at = Some(next);
            sleep_until(next).await;
        }
    }

    /// The start of the next period: the one already planned, or a new plan.
    fn schedule(&self) -> DateTime<Utc> {
        let mut live = self.live();
        if let Some(planned) = live.next_report_at {
            return planned;
        }
        let due = next_due(
            live.enabled_since,
            self.settings.initial_delay,
            live.state.last_report_at,
            self.settings.interval,
            live.not_before,
        );
        live.next_report_at = Some(due);
        debug!(%due, "next telemetry report scheduled");
        due
    }

    /// Ends a failed period: the next one starts at `period_end`, or later if the
    /// collector asked for that.
    fn defer(&self, period_end: DateTime<Utc>, retry_after: Option<Duration>) {
        let asked = retry_after.map(|wait| after(Utc::now(), wait));
        self.end_period(Some(asked.map_or(period_end, |at| at.max(period_end))));
        debug!("telemetry report not delivered in this period; trying again in the next");
    }

    /// Clears the plan so that the next period is planned afresh, not before `not_before`.
    fn end_period(&self, not_before: Option<DateTime<Utc>>) {
        let mut live = self.live();
        live.not_before = not_before;
        live.next_report_at = None;
    }

    async fn attempt(&self) -> Attempt {
        let (report, counters) = self.build(Utc::now());
        if let Err(error) = report.validate() {
            self.note_failure(format!(
                "the built report is invalid and was not sent: {error}"
            ));
            return Attempt::GiveUp(None);
        }
        let json = report.to_json();
        let answer = match self.sender.post(&json).await {
            Ok(answer) => answer,
            Err(error) => {
                self.note_failure(error);
                return Attempt::Retry(None);
            }
        };
        self.record(&json, &answer);
        if answer.status.is_success() {
            self.note_delivered(answer.at, counters);
            return Attempt::Delivered;
        }
        self.note_failure(format!(
            "collector answered {}: {}",
            answer.status,
            answer.body.trim()
        ));
        if answer.is_retryable() {
            Attempt::Retry(answer.retry_after)
        } else {
            Attempt::GiveUp(answer.retry_after)
        }
    }

    /// Appends to the sent log: the collector answered, so the report left the machine.
    fn record(&self, json: &str, answer: &Answer) {
        let record = SentRecord {
            at: answer.at,
            url: self.settings.url.to_string(),
            status: answer.status.as_u16(),
            accepted: answer.status.is_success(),
            answer: answer.body.clone(),
            report: serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
        };
        lock(&self.sent).append(&self.data, record);
    }

    fn note_delivered(&self, at: DateTime<Utc>, counters: CounterSnapshot) {
        let state = {
            let mut live = self.live();
            if live.consecutive_failures > 0 {
                info!(
                    url = %self.settings.url,
                    failed_attempts = live.consecutive_failures,
                    "telemetry report delivered again after failures"
                );
            } else {
                info!(url = %self.settings.url, "telemetry report delivered");
            }
            live.consecutive_failures = 0;
            live.last_error = None;
            live.state = ReportState {
                last_report_at: Some(at),
                counters: Some(counters),
            };
            live.state.clone()
        };
        state.save(&self.data);
    }

    /// One warning when a failure streak starts; the retries that follow are quiet
    /// (debug), so an air-gapped machine logs one line, not one per attempt.
    fn note_failure(&self, error: String) {
        let mut live = self.live();
        live.consecutive_failures += 1;
        if live.consecutive_failures == 1 {
            warn!(
                url = %self.settings.url,
                %error,
                "telemetry report not delivered; retrying quietly with backoff, recovery will be logged"
            );
        } else {
            debug!(attempt = live.consecutive_failures, %error, "telemetry report still not delivered");
        }
        live.last_error = Some(error);
    }
}

fn log_start(settings: &AgentSettings, decision: &Decision) {
    info!(
        enable = decision.enable,
        source = %decision.source,
        url = %settings.url,
        interval = %format_duration(settings.interval),
        "telemetry agent started"
    );
    if settings.interval < SHORT_INTERVAL {
        warn!(
            interval = %format_duration(settings.interval),
            "telemetry.interval is under one hour: meant for tests and demos only"
        );
    }
}

/// A poisoned lock only means a panic elsewhere mid-update; the data is still the best
/// there is, and the agent must not panic in turn.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
