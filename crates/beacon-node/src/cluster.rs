//! The cluster as this node sees it, and the meaning of what the nodes tell each other.
//!
//! The engine ([`beacon_broker::Cluster`], rmqtt's raft plugin) carries opaque requests
//! between the nodes; this module gives them meaning. Each node answers a peer with its
//! [`Info`] (ids, runtime switch, uptime, load), and asks every peer for theirs every
//! [`POLL_EVERY`]. A peer that has not answered for [`DOWN_AFTER`] is down: it leaves
//! `nodes_uuid` and `num_cluster_sessions`, and `/api/v5/nodes` shows it stopped.
//!
//! Two settings belong to the cluster. Raft's own state lives in memory and is closed
//! to Beacon's data, so each node keeps its copy in its data directory (the agent's
//! files) and the nodes reconcile at every poll:
//! - `cluster_uuid` is the raft leader's: every other node adopts the leader's value when
//!   it differs, so a node that ran alone before joining gives its own up.
//! - the runtime telemetry switch: a change is pushed to every peer at once
//!   ([`push_switch`]), and each poll adopts a later version a peer holds, so a node that
//!   was down when it changed learns it when it rejoins. A boot-time "off" (environment,
//!   config file, `DO_NOT_TRACK`) stays the node's own: the agent records the cluster's
//!   value and stays off, naming that source.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use beacon_agent::RuntimeSwitch;
use beacon_broker::{Cluster, ClusterAnswerer, ClusterError};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::api::NodeState;

/// How often every peer is asked for its [`Info`].
pub(crate) const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a peer may take to answer one request.
const ASK_TIMEOUT: Duration = Duration::from_millis(1500);
/// A peer that has not answered for this long is down. Several polls long, so that a
/// peer slowed down by load does not flap in and out of `nodes_uuid`.
pub(crate) const DOWN_AFTER: Duration = Duration::from_secs(10);

/// What a node asks a peer, as JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "ask", rename_all = "snake_case")]
enum Request {
    /// The peer's [`Info`].
    Info,
    /// Take this runtime switch if it is later than the peer's; answered with its [`Info`].
    Set { switch: RuntimeSwitch },
}

/// What a node tells its peers about itself, as JSON. Fields a newer node adds are
/// ignored by older ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Info {
    /// The node's EMQX name (`node.name`).
    pub(crate) name: String,
    pub(crate) uuid: String,
    pub(crate) cluster_uuid: String,
    /// The runtime switch the node holds; `None` when never set.
    pub(crate) switch: Option<RuntimeSwitch>,
    pub(crate) uptime_ms: u64,
    pub(crate) connections: u64,
    /// Sessions held by the node itself.
    pub(crate) sessions: u64,
    /// Beacon's version.
    pub(crate) version: String,
}

/// This node's view of its peers: the last [`Info`] each gave, and when.
pub(crate) struct Membership {
    cluster: Cluster,
    peers: Mutex<BTreeMap<String, Peer>>,
}

struct Peer {
    info: Option<Info>,
    seen: Instant,
    /// Whether the node's log last said the peer is up.
    logged_up: bool,
}

impl Peer {
    fn live_info(&self) -> Option<&Info> {
        self.info
            .as_ref()
            .filter(|_| self.seen.elapsed() < DOWN_AFTER)
    }
}

/// One line of `GET /api/v5/nodes`, in EMQX's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct NodeRow {
    pub(crate) node: String,
    /// `running` or `stopped`.
    pub(crate) node_status: &'static str,
    /// Milliseconds since the node started; 0 when stopped.
    pub(crate) uptime: u64,
    /// MQTT connections open on the node now; 0 when stopped.
    pub(crate) connections: u64,
    /// Beacon's version on the node; the last one it gave when stopped, `None` if never.
    pub(crate) version: Option<String>,
}

impl Membership {
    pub(crate) fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            peers: Mutex::new(BTreeMap::new()),
        }
    }

    fn peers(&self) -> MutexGuard<'_, BTreeMap<String, Peer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The [`Info`] of every peer that answered within [`DOWN_AFTER`], by name.
    pub(crate) fn live_peers(&self) -> Vec<Info> {
        self.peers()
            .values()
            .filter_map(|peer| peer.live_info().cloned())
            .collect()
    }

    fn live_peer(&self, name: &str) -> Option<Info> {
        self.peers().get(name).and_then(|p| p.live_info().cloned())
    }

    /// Every seed of the cluster but this node, running or stopped, sorted by name.
    pub(crate) fn peer_rows(&self) -> Vec<NodeRow> {
        let peers = self.peers();
        self.cluster
            .peers()
            .into_iter()
            .map(|name| {
                let peer = peers.get(&name);
                match peer.and_then(Peer::live_info) {
                    Some(info) => NodeRow {
                        node: name,
                        node_status: "running",
                        uptime: info.uptime_ms,
                        connections: info.connections,
                        version: Some(info.version.clone()),
                    },
                    None => NodeRow {
                        node: name,
                        node_status: "stopped",
                        uptime: 0,
                        connections: 0,
                        version: peer
                            .and_then(|p| p.info.as_ref())
                            .map(|i| i.version.clone()),
                    },
                }
            })
            .collect()
    }

    /// Keeps what the peers answered, and logs peers coming up and going down.
    fn record(&self, answers: Vec<(String, Result<Vec<u8>, ClusterError>)>) {
        let mut peers = self.peers();
        for (name, answer) in answers {
            let info = match answer.map(|bytes| serde_json::from_slice::<Info>(&bytes)) {
                Ok(Ok(info)) => info,
                Ok(Err(error)) => {
                    debug!(peer = %name, %error, "a peer's answer was not understood");
                    continue;
                }
                Err(error) => {
                    debug!(peer = %name, %error, "a peer did not answer");
                    continue;
                }
            };
            let peer = peers.entry(name.clone()).or_insert(Peer {
                info: None,
                seen: Instant::now(),
                logged_up: false,
            });
            if !peer.logged_up {
                info!(peer = %name, "cluster peer is up");
            }
            *peer = Peer {
                info: Some(info),
                seen: Instant::now(),
                logged_up: true,
            };
        }
        for (name, peer) in peers.iter_mut() {
            if peer.logged_up && peer.live_info().is_none() {
                info!(peer = %name, after = ?DOWN_AFTER, "cluster peer is down: no answer");
                peer.logged_up = false;
            }
        }
    }
}

/// Answers peers and starts polling them, when the node runs in a cluster; the poll
/// ends when the task is aborted or the node's state is dropped.
pub(crate) fn start(state: &Arc<NodeState>) -> Option<JoinHandle<()>> {
    let membership = state.cluster.as_ref()?;
    // Weak: the engine keeps the answerer for as long as the broker runs, and it must
    // not keep the node's state (and so the broker) alive.
    membership.cluster.answer_with(Arc::new(Answerer {
        state: Arc::downgrade(state),
    }));
    let node = Arc::downgrade(state);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(state) = node.upgrade() else {
                return;
            };
            poll(&state).await;
        }
    }))
}

/// Asks every peer for its [`Info`], then reconciles the cluster's two settings.
async fn poll(state: &NodeState) {
    let Some(membership) = &state.cluster else {
        return;
    };
    let answers = membership
        .cluster
        .ask_all(encode(&Request::Info), ASK_TIMEOUT)
        .await;
    membership.record(answers);
    let leader = membership.cluster.leader().await;
    adopt_leaders_cluster_uuid(state, membership, leader.as_deref());
    adopt_latest_switch(state, membership).await;
}

/// Takes the raft leader's `cluster_uuid` when this node is not the leader.
fn adopt_leaders_cluster_uuid(state: &NodeState, membership: &Membership, leader: Option<&str>) {
    let Some(leader) = leader.filter(|l| *l != membership.cluster.node_name()) else {
        return;
    };
    let Some(info) = membership.live_peer(leader) else {
        return;
    };
    if let Err(error) = state.agent.adopt_cluster_uuid(&info.cluster_uuid) {
        warn!(%leader, %error, "keeping this node's cluster_uuid: the leader's is not an id");
    }
}

/// Takes the latest runtime switch a live peer holds, when it is later than this node's.
async fn adopt_latest_switch(state: &NodeState, membership: &Membership) {
    let latest = membership
        .live_peers()
        .into_iter()
        .filter_map(|peer| peer.switch)
        .fold(None, |latest: Option<RuntimeSwitch>, switch| {
            if switch.supersedes(latest.as_ref()) {
                Some(switch)
            } else {
                latest
            }
        });
    if let Some(switch) = latest {
        adopt_switch(state, switch).await;
    }
}

async fn adopt_switch(state: &NodeState, switch: RuntimeSwitch) {
    if let Err(error) = state.agent.adopt_switch(switch).await {
        warn!(%error, "cannot take the cluster's runtime telemetry switch");
    }
}

/// Sends this node's runtime switch to every peer at once (after a change on this node);
/// a peer that misses it takes it from its next poll of this node, or when it rejoins.
pub(crate) async fn push_switch(state: &NodeState) {
    let (Some(membership), Some(switch)) = (&state.cluster, state.agent.runtime_switch()) else {
        return;
    };
    let answers = membership
        .cluster
        .ask_all(encode(&Request::Set { switch }), ASK_TIMEOUT)
        .await;
    for (peer, answer) in &answers {
        if let Err(error) = answer {
            info!(%peer, %error, "runtime switch not delivered now; the peer takes it when it answers again");
        }
    }
    membership.record(answers);
}

/// Answers the peers' requests with this node's [`Info`].
struct Answerer {
    state: Weak<NodeState>,
}

#[async_trait]
impl ClusterAnswerer for Answerer {
    async fn answer(&self, request: Vec<u8>) -> Vec<u8> {
        // A node shutting down answers nothing the asker can read: it counts as silent.
        let Some(state) = self.state.upgrade() else {
            return Vec::new();
        };
        match serde_json::from_slice(&request) {
            Ok(Request::Info) => {}
            Ok(Request::Set { switch }) => adopt_switch(&state, switch).await,
            Err(error) => debug!(%error, "a peer's request was not understood"),
        }
        encode(&own_info(&state))
    }
}

/// What this node tells its peers.
fn own_info(state: &NodeState) -> Info {
    let reading = state.probe.reading();
    Info {
        name: state.node_name.clone(),
        uuid: state.agent.uuid(),
        cluster_uuid: state.agent.cluster_uuid(),
        switch: state.agent.runtime_switch(),
        uptime_ms: state.uptime_ms(),
        connections: reading.connections,
        sessions: reading.sessions,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// These types hold strings, numbers and timestamps only: encoding cannot fail.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_infos_read_back() {
        let switch = RuntimeSwitch::next(false, None, "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E");
        let set = encode(&Request::Set {
            switch: switch.clone(),
        });
        match serde_json::from_slice(&set).expect("set") {
            Request::Set { switch: read } => assert_eq!(read, switch),
            Request::Info => panic!("read back as info"),
        }
        assert!(matches!(
            serde_json::from_slice(b"{\"ask\":\"info\"}").expect("info"),
            Request::Info
        ));
        let info = Info {
            name: "beacon1@127.0.0.1".into(),
            uuid: "5EAAF3C2-6186-11ED-AD7C-D5AAB80CED2E".into(),
            cluster_uuid: "5EAAF818-6186-11ED-AC1D-3DFDC18ED1BB".into(),
            switch: Some(switch),
            uptime_ms: 1,
            connections: 2,
            sessions: 3,
            version: "0.1.0".into(),
        };
        let mut value = serde_json::to_value(&info).expect("json");
        value["added_by_a_newer_node"] = serde_json::json!(true);
        assert_eq!(serde_json::from_value::<Info>(value).expect("read"), info);
    }
}
