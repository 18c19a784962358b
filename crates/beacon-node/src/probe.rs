//! The broker's probe as the agent and the dashboard read it, and the one conversion of
//! the broker's [`Reading`] into the agent's [`BrokerReading`].
//!
//! The agent reads synchronously, while the broker answers asynchronously, so a task
//! probes the broker every second and keeps the latest reading; the REST API probes
//! before answering, so that what it shows is the broker's state at that moment. In a
//! cluster, the peers' part (their ids, their sessions) comes from the latest answers
//! they gave this node (`cluster.rs`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use beacon_agent::{BrokerProbe, BrokerReading};
use beacon_broker::{Reading, RunningBroker};
use serde::Serialize;
use serde_json::{Map, json};

use crate::cluster::{Info, Membership};

/// How often the broker is probed without being asked.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The latest reading, and message rates over the last probe interval.
pub(crate) struct LiveProbe {
    latest: Mutex<Latest>,
    /// The node's peers, when it runs in a cluster.
    cluster: Option<Arc<Membership>>,
}

#[derive(Default)]
struct Latest {
    reading: Reading,
    at: Option<Instant>,
    rates: Rates,
}

/// Messages per second, for the dashboard (the report computes its own over its period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Rates {
    pub(crate) received_per_second: f64,
    pub(crate) sent_per_second: f64,
}

impl LiveProbe {
    pub(crate) fn new(cluster: Option<Arc<Membership>>) -> Self {
        Self {
            latest: Mutex::default(),
            cluster,
        }
    }

    /// The latest reading, without probing.
    pub(crate) fn reading(&self) -> Reading {
        self.latest().reading.clone()
    }

    /// Sessions in the cluster: this node's in `reading`, and those of the running peers.
    pub(crate) fn cluster_sessions(&self, reading: &Reading) -> u64 {
        reading.sessions + sessions_of(&self.live_peers())
    }

    fn live_peers(&self) -> Vec<Info> {
        self.cluster
            .as_ref()
            .map_or_else(Vec::new, |cluster| cluster.live_peers())
    }

    fn latest(&self) -> MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Probes the broker now.
    pub(crate) async fn probe(&self, broker: &RunningBroker) -> Reading {
        let reading = broker.probe().await;
        let now = Instant::now();
        let mut latest = self.latest();
        // Rates need a span long enough to mean something; a probe right after another
        // (an API call) keeps the rates of the last regular one.
        if let Some(at) = latest
            .at
            .filter(|at| now.duration_since(*at) >= PROBE_EVERY / 2)
        {
            let seconds = now.duration_since(at).as_secs_f64();
            let per_second = |new: u64, old: u64| new.saturating_sub(old) as f64 / seconds;
            latest.rates = Rates {
                received_per_second: per_second(
                    reading.publishes_received,
                    latest.reading.publishes_received,
                ),
                sent_per_second: per_second(reading.publishes_sent, latest.reading.publishes_sent),
            };
            latest.at = Some(now);
        } else if latest.at.is_none() {
            latest.at = Some(now);
        }
        latest.reading = reading.clone();
        reading
    }

    pub(crate) fn rates(&self) -> Rates {
        self.latest().rates
    }

    /// Probes every [`PROBE_EVERY`] until the task is aborted.
    pub(crate) fn spawn_prober(
        self: &Arc<Self>,
        broker: Arc<RunningBroker>,
    ) -> tokio::task::JoinHandle<()> {
        let live = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PROBE_EVERY);
            loop {
                ticks.tick().await;
                live.probe(&broker).await;
            }
        })
    }
}

impl BrokerProbe for LiveProbe {
    fn read(&self) -> BrokerReading {
        let peers = self.live_peers();
        for_the_agent(&self.latest().reading, &peers)
    }
}

fn sessions_of(peers: &[Info]) -> u64 {
    peers.iter().map(|peer| peer.sessions).sum()
}

/// The broker's reading and the running peers' answers in the report's terms, as EMQX
/// counts them: clients and messages are this node's, topics (the broker's replicated
/// route table) and sessions the cluster's. Beacon has no rule engine, data bridges,
/// gateways or ExHook: those are reported empty, honestly.
fn for_the_agent(reading: &Reading, peers: &[Info]) -> BrokerReading {
    BrokerReading {
        num_clients: reading.connections,
        num_cluster_sessions: reading.sessions + sessions_of(peers),
        messages_received: reading.publishes_received,
        messages_sent: reading.publishes_sent,
        num_topics: reading.topic_filters,
        retained: reading.retained_messages,
        delayed: reading.delayed_publishes,
        topic_rewrite: reading.rewrite_rules,
        auto_subscribe: reading.auto_subscriptions,
        authn: reading.authenticators.clone(),
        authz: reading.authorization_sources.clone(),
        // EMQX lists listener-specific authenticators here; Beacon's are all global.
        authn_listener: json!({}),
        active_plugins: reading.plugins.clone(),
        num_rules: 0,
        bridges: Default::default(),
        gateways: Map::new(),
        exhook_servers: Vec::new(),
        nodes_uuid: peers.iter().map(|peer| peer.uuid.clone()).collect(),
    }
}
