//! The broker's live numbers, for the agent's reports and the dashboard's overview.
//!
//! The agent reads numbers synchronously, while the broker answers asynchronously, so a
//! task refreshes a snapshot every second; the REST API refreshes it before answering, so
//! that what it shows is the broker's state at that moment.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use beacon_agent::{BrokerSnapshot, BrokerStats};
use beacon_broker::{BrokerNumbers, RunningBroker};
use serde::Serialize;
use serde_json::{Map, json};

/// How often the snapshot is refreshed without being asked.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The latest numbers, and message rates over the last refresh interval.
#[derive(Default)]
pub(crate) struct LiveStats {
    latest: Mutex<Latest>,
}

#[derive(Default)]
struct Latest {
    numbers: BrokerNumbers,
    at: Option<Instant>,
    rates: Rates,
}

/// Messages per second, for the dashboard (the report computes its own over its period).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Rates {
    pub(crate) received_per_second: f64,
    pub(crate) sent_per_second: f64,
}

impl LiveStats {
    /// Reads the broker's numbers now.
    pub(crate) async fn refresh(&self, broker: &RunningBroker) -> BrokerNumbers {
        let numbers = broker.stats().await;
        let now = Instant::now();
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        // Rates need a span long enough to mean something; a refresh right after another
        // (an API call) keeps the rates of the last regular one.
        if let Some(at) = latest
            .at
            .filter(|at| now.duration_since(*at) >= REFRESH_EVERY / 2)
        {
            let seconds = now.duration_since(at).as_secs_f64();
            let per_second = |new: u64, old: u64| new.saturating_sub(old) as f64 / seconds;
            latest.rates = Rates {
                received_per_second: per_second(
                    numbers.messages_received,
                    latest.numbers.messages_received,
                ),
                sent_per_second: per_second(numbers.messages_sent, latest.numbers.messages_sent),
            };
            latest.at = Some(now);
        } else if latest.at.is_none() {
            latest.at = Some(now);
        }
        latest.numbers = numbers.clone();
        numbers
    }

    pub(crate) fn rates(&self) -> Rates {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rates
    }

    /// Refreshes every [`REFRESH_EVERY`] until the task is aborted.
    pub(crate) fn spawn_refresher(
        self: &Arc<Self>,
        broker: Arc<RunningBroker>,
    ) -> tokio::task::JoinHandle<()> {
        let live = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(REFRESH_EVERY);
            loop {
                ticks.tick().await;
                live.refresh(&broker).await;
            }
        })
    }
}

impl BrokerStats for LiveStats {
    fn snapshot(&self) -> BrokerSnapshot {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        snapshot_of(&latest.numbers)
    }
}

/// The broker's numbers as the agent's report fields. Beacon has no rule engine, data
/// bridges, gateways or ExHook: those are reported empty, honestly.
fn snapshot_of(numbers: &BrokerNumbers) -> BrokerSnapshot {
    BrokerSnapshot {
        num_clients: numbers.num_clients,
        num_cluster_sessions: numbers.num_cluster_sessions,
        messages_received: numbers.messages_received,
        messages_sent: numbers.messages_sent,
        num_topics: numbers.num_topics,
        retained: numbers.retained,
        delayed: numbers.delayed,
        topic_rewrite: numbers.topic_rewrite,
        auto_subscribe: numbers.auto_subscribe,
        authn: numbers.authn.clone(),
        authz: numbers.authz.clone(),
        // EMQX lists listener-specific authenticators here; Beacon's are all global.
        authn_listener: json!({}),
        active_plugins: numbers.active_plugins.clone(),
        num_rules: 0,
        bridges: Default::default(),
        gateways: Map::new(),
        exhook_servers: Vec::new(),
        nodes_uuid: numbers.nodes_uuid.clone(),
    }
}
