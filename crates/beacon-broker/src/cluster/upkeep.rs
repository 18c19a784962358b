//! Keeps the replicated route table true, so `num_topics` counts only live routes.
//!
//! rmqtt's raft state machine keeps the routes of a node that was killed, even after
//! it restarts (a fresh process never removes its old entries). So, measured to work
//! in `docs/notes/rmqtt-cluster.md`:
//! - each node removes the routes under its own id that were created before it
//!   started (they arrive with the raft log shortly after joining);
//! - the raft leader removes the routes of peers that answered no ping for
//!   [`DEAD_AFTER`]. A node cut off that long loses its routes too; its clients'
//!   subscriptions come back when they reconnect, as they must to a node that died.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rmqtt::grpc::{Message, MessageReply};
use rmqtt::types::{Id, NodeId, TopicFilter};
use rmqtt::utils::timestamp_millis;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info};

use super::{Cluster, DEAD_AFTER, PING_TYPE, leader_id};

const TICK: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_millis(1500);
/// Routes of this node's previous life come with the raft catch-up right after
/// joining: look for them every tick this long, then every [`SLOW_SCAN_EVERY`] ticks.
const OWN_SCAN_WINDOW: Duration = Duration::from_secs(60);
const SLOW_SCAN_EVERY: u64 = 30;
/// A removal is a raft proposal rmqtt retries by itself; propose again only if the
/// route is still there after this.
const PROPOSE_AGAIN_AFTER: Duration = Duration::from_secs(30);

pub(super) fn spawn(cluster: Cluster) -> JoinHandle<()> {
    tokio::spawn(run(cluster))
}

async fn run(cluster: Cluster) {
    let scx = cluster.inner.scx.clone();
    let me = scx.node.id();
    let started = Instant::now();
    let started_ms = timestamp_millis();
    // Peers get the grace of one DEAD_AFTER from our start before they count as dead.
    let mut last_seen: BTreeMap<NodeId, Instant> = cluster
        .inner
        .clients
        .keys()
        .map(|id| (*id, started))
        .collect();
    let mut proposed = HashMap::new();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for tick in 0u64.. {
        ticker.tick().await;
        ping(&cluster, &mut last_seen).await;
        proposed.retain(|_, at: &mut Instant| at.elapsed() < PROPOSE_AGAIN_AFTER);
        if started.elapsed() < OWN_SCAN_WINDOW || tick % SLOW_SCAN_EVERY == 0 {
            let stale = |id: &Id| id.node_id == me && id.create_time < started_ms;
            purge(
                &cluster,
                stale,
                &mut proposed,
                "left by this node's previous run",
            )
            .await;
        }
        let dead: Vec<NodeId> = last_seen
            .iter()
            .filter(|(_, seen)| seen.elapsed() >= DEAD_AFTER)
            .map(|(id, _)| *id)
            .collect();
        if !dead.is_empty() && leader_id(&scx).await == Some(me) {
            let of_dead = |id: &Id| dead.contains(&id.node_id);
            purge(
                &cluster,
                of_dead,
                &mut proposed,
                "of a node that stopped answering",
            )
            .await;
        }
    }
}

/// Pings every peer at once; a peer that answers is seen now.
async fn ping(cluster: &Cluster, last_seen: &mut BTreeMap<NodeId, Instant>) {
    let mut pings = JoinSet::new();
    for (id, (_, client)) in cluster.inner.clients.iter() {
        let (id, mut client) = (*id, client.clone());
        pings.spawn(async move {
            let sent =
                client.send_message(PING_TYPE, Message::Data(Vec::new()), Some(PING_TIMEOUT));
            let reply = tokio::time::timeout(PING_TIMEOUT, sent).await;
            (id, matches!(reply, Ok(Ok(MessageReply::Data(_)))))
        });
    }
    while let Some(joined) = pings.join_next().await {
        if let Ok((id, true)) = joined {
            last_seen.insert(id, Instant::now());
        }
    }
}

/// Proposes the removal of every route whose subscriber `stale` picks.
async fn purge(
    cluster: &Cluster,
    stale: impl Fn(&Id) -> bool,
    proposed: &mut HashMap<(TopicFilter, Id), Instant>,
    why: &str,
) {
    let router = cluster.inner.scx.extends.router().await;
    let victims: Vec<(TopicFilter, Id)> = router
        .relations()
        .iter()
        .flat_map(|entry| {
            let topic_filter = entry.key().clone();
            entry
                .value()
                .values()
                .filter(|(id, _)| stale(id))
                .map(|(id, _)| (topic_filter.clone(), id.clone()))
                .collect::<Vec<_>>()
        })
        .filter(|victim| !proposed.contains_key(victim))
        .collect();
    if victims.is_empty() {
        return;
    }
    info!(routes = victims.len(), why, "removing stale cluster routes");
    for (topic_filter, id) in victims {
        if let Err(e) = router.remove(&topic_filter, id.clone()).await {
            debug!(error = %format!("{e:#}"), "stale route removal not proposed");
        }
        proposed.insert((topic_filter, id), Instant::now());
    }
}
