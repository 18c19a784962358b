//! The cluster engine: rmqtt's raft cluster plugin (`rmqtt-cluster-raft`) set up
//! from EMQX's keys, and an opaque request/answer channel between the nodes.
//!
//! Every node derives the same numbers from the same seeds (see [`ClusterConfig`]):
//! rmqtt node id = 1-based position of the name in the seeds sorted by name, cluster
//! (rmqtt gRPC) port = the seed's port, raft port = that + 1000, raft bootstrapper =
//! the first seed by name. The facts behind these choices were measured and are in
//! `docs/notes/rmqtt-cluster.md`.
//!
//! The channel carries bytes this crate never interprets: a peer's request goes to
//! the one [`ClusterAnswerer`] the embedder installs, as rmqtt gRPC messages of
//! Beacon's own type [`REQUEST_TYPE`]. The engine also pings every peer each second
//! with [`PING_TYPE`], which tells which nodes are alive; the raft leader then
//! purges the routes of nodes unseen for [`DEAD_AFTER`] (see `upkeep.rs`).
//!
//! Limits of rmqtt 0.24 that Beacon lives with:
//! - The raft plugin cannot be stopped: its thread runs until the process ends, so a
//!   process runs at most one cluster node for good (tests run several in one process).
//! - If raft fails to start after its port was checked free, the plugin calls
//!   `std::process::exit(-1)` from its thread; Beacon cannot catch that.
//! - A follower whose bootstrapper (the first seed) is not up within ~30 s at a cold
//!   start fails to start (`Leader does not exist`); start the first seed too.
//! - Raft state is in memory; with 2 of 3 nodes down (no quorum) the survivor accepts no
//!   connections and restarted nodes cannot join (rmqtt issue #330): restart every node.

mod channel;
mod config;
mod upkeep;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use rmqtt::context::{CircuitBreakerConfig, ServerContext, ServerContextBuilder};
use rmqtt::grpc::{GrpcClients, GrpcServer, Message, MessageReply, MessageType};
use rmqtt::types::NodeId;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{error, info};

use crate::BrokerError;
use crate::plugin_toml::{self, TomlValue};

pub(crate) use channel::ChannelHandler;
pub use config::ClusterConfig;
pub(crate) use config::{DEFAULT_NODE_NAME, parse};

/// Beacon's requests between nodes; rmqtt reserves types below 1000 (raft uses 198).
pub const REQUEST_TYPE: MessageType = 1001;
/// The engine's own liveness ping.
pub const PING_TYPE: MessageType = 1002;
/// A peer that answered no ping for this long is dead: the leader purges its routes.
pub const DEAD_AFTER: Duration = Duration::from_secs(10);

/// rmqtt's default of 10 s holds a publish (and a takeover's kick) that long when
/// a peer is dead; 3 s was measured to be enough on a loaded machine.
const GRPC_CLIENT_TIMEOUT: &str = "3s";
/// rmqtt's default of 30 s kept a restarted node out of the others' view for 25 s.
const CIRCUIT_BREAKER_OPEN: Duration = Duration::from_secs(3);
/// Tasks each of rmqtt's task queues holds before its senders wait (rmqtt's default:
/// 300,000). Forwarding a publish to another node is one such task, so this bounds what a
/// node queues for its peers when clients publish faster than the cluster forwards.
const TASK_QUEUE_MAX: usize = 10_000;

/// Answers the requests peers send with [`Cluster::ask_all`].
#[async_trait::async_trait]
pub trait ClusterAnswerer: Send + Sync {
    async fn answer(&self, request: Vec<u8>) -> Vec<u8>;
}

/// Why a peer's answer is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// No answer within the time asked (the peer may be down or overloaded).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be delivered (connection refused, circuit open, ...).
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The peer runs, but nothing answers yet (starting, or no answerer installed).
    #[error("peer not ready to answer")]
    NotReady,
    /// The peer answered with something this channel does not send.
    #[error("unexpected reply from peer: {0}")]
    Unexpected(String),
}

/// This node's part of a running cluster; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    scx: ServerContext,
    config: ClusterConfig,
    /// Every seed's name by rmqtt node id.
    names: BTreeMap<NodeId, String>,
    /// rmqtt's clients to the other nodes (from the cluster plugin).
    clients: GrpcClients,
    channel: Arc<channel::Channel>,
}

impl Cluster {
    /// This node's EMQX name.
    pub fn node_name(&self) -> &str {
        self.inner.config.node_name()
    }

    /// The other seeds' names, sorted.
    pub fn peers(&self) -> Vec<String> {
        self.inner.config.peers()
    }

    /// Sends `request` to every other seed concurrently; each answer or error (peer
    /// down, timeout, not ready) per peer name, sorted by name. Empty without peers.
    pub async fn ask_all(
        &self,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Vec<(String, Result<Vec<u8>, ClusterError>)> {
        let mut asks = JoinSet::new();
        for (id, (_, client)) in self.inner.clients.iter() {
            let name = self.name_of(*id);
            let mut client = client.clone();
            let message = Message::Data(request.clone());
            asks.spawn(async move {
                let sent = client.send_message(REQUEST_TYPE, message, Some(timeout));
                let reply = tokio::time::timeout(timeout, sent).await;
                (name, answer_of(reply, timeout))
            });
        }
        let mut answers = Vec::with_capacity(asks.len());
        while let Some(joined) = asks.join_next().await {
            match joined {
                Ok(answer) => answers.push(answer),
                Err(e) => error!(error = %e, "cluster request task failed"),
            }
        }
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        answers
    }

    /// Installs the one answerer of requests from peers, replacing any earlier one.
    /// Until one is installed, peers get [`ClusterError::NotReady`].
    pub fn answer_with(&self, answerer: Arc<dyn ClusterAnswerer>) {
        self.inner.channel.install(answerer);
    }

    /// The EMQX name of the raft leader as this node sees it, if any.
    pub async fn leader(&self) -> Option<String> {
        let id = leader_id(&self.inner.scx).await?;
        self.inner.names.get(&id).cloned()
    }

    fn name_of(&self, id: NodeId) -> String {
        self.inner
            .names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("rmqtt node {id}"))
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_name", &self.node_name())
            .field("peers", &self.peers())
            .finish_non_exhaustive()
    }
}

fn answer_of(
    reply: Result<rmqtt::Result<MessageReply>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Result<Vec<u8>, ClusterError> {
    match reply {
        Err(_) => Err(ClusterError::Timeout(timeout)),
        Ok(Err(e)) => Err(ClusterError::Unreachable(format!("{e:#}"))),
        Ok(Ok(MessageReply::Data(bytes))) => Ok(bytes),
        // rmqtt's default reply when no hook handled the message: the peer's hooks
        // are not started yet.
        Ok(Ok(MessageReply::Success)) => Err(ClusterError::NotReady),
        Ok(Ok(MessageReply::Error(e))) if e == channel::NO_ANSWERER => Err(ClusterError::NotReady),
        Ok(Ok(other)) => Err(ClusterError::Unexpected(format!("{other:?}"))),
    }
}

/// The raft leader's rmqtt id as this node sees it; `None` while there is none.
async fn leader_id(scx: &ServerContext) -> Option<NodeId> {
    let status = scx.extends.shared().await.health_status().await.ok()?;
    status.leader_id.filter(|id| *id > 0)
}

/// A cluster about to start: the configuration with this node's addresses resolved
/// and checked free.
pub(crate) struct ClusterPlan {
    config: ClusterConfig,
    id: NodeId,
    grpc_addr: SocketAddr,
    raft_addr: SocketAddr,
    channel: Arc<channel::Channel>,
    /// The cluster gRPC server, aborted if the broker fails to start.
    server: Option<JoinHandle<()>>,
}

impl ClusterPlan {
    /// Resolves this node's host and checks both its ports can be bound: rmqtt only
    /// logs a taken gRPC port, and exits the process on a taken raft port.
    pub(crate) async fn prepare(config: &ClusterConfig) -> Result<ClusterPlan, BrokerError> {
        let (id, seed) = config.own();
        let grpc_addr = resolve(seed.bare_host(), seed.port).await?;
        let raft_addr = SocketAddr::new(grpc_addr.ip(), seed.raft_port());
        for (role, addr) in [("gRPC", grpc_addr), ("raft", raft_addr)] {
            // std sets SO_REUSEADDR, as rmqtt does: a port left in TIME_WAIT by a
            // killed predecessor passes, a port another process listens on does not.
            TcpListener::bind(addr).map_err(|e| BrokerError::ClusterBind {
                role,
                addr: addr.to_string(),
                detail: e.to_string(),
            })?;
        }
        Ok(ClusterPlan {
            config: config.clone(),
            id,
            grpc_addr,
            raft_addr,
            channel: Arc::new(channel::Channel::new(config.node_name())),
            server: None,
        })
    }

    /// The rmqtt context settings of a cluster node.
    pub(crate) fn context(&self, builder: ServerContextBuilder) -> ServerContextBuilder {
        builder
            .node_id(self.id)
            .task_exec_queue_max(TASK_QUEUE_MAX)
            .circuit_breaker_config(CircuitBreakerConfig {
                wait_duration_in_open: CIRCUIT_BREAKER_OPEN,
                ..CircuitBreakerConfig::default()
            })
    }

    /// The handler answering peers' requests and pings.
    pub(crate) fn handler(&self) -> ChannelHandler {
        ChannelHandler::new(Arc::clone(&self.channel))
    }

    /// Inline TOML for `rmqtt-cluster-raft`.
    pub(crate) fn plugin_config(&self) -> String {
        let addrs = |addr: fn(&config::Seed) -> String| {
            let list = self
                .config
                .numbered()
                .map(|(id, seed)| TomlValue::Str(format!("{id}@{}", addr(seed))))
                .collect();
            TomlValue::List(list)
        };
        plugin_toml::document(vec![
            // The raft thread's own runtime; rmqtt's default of 6 is for big servers.
            ("worker_threads", TomlValue::Int(2)),
            ("node_grpc_addrs", addrs(config::Seed::grpc_addr)),
            ("raft_peer_addrs", addrs(config::Seed::raft_addr)),
            ("laddr", TomlValue::Str(self.raft_addr.to_string())),
            (
                "leader_id",
                TomlValue::Int(plugin_int(self.config.leader_id())),
            ),
            (
                "node_grpc_client_timeout",
                TomlValue::Str(GRPC_CLIENT_TIMEOUT.into()),
            ),
            ("task_exec_queue_workers", TomlValue::Int(64)),
            (
                "health",
                TomlValue::Table(vec![("exit_on_node_unavailable", TomlValue::Bool(false))]),
            ),
            // Without the table, serde's derived Default leaves reuseaddr off and a
            // node restarted after SIGKILL cannot bind its raft port (TIME_WAIT).
            (
                "raft",
                TomlValue::Table(vec![("grpc_reuseaddr", TomlValue::Bool(true))]),
            ),
        ])
    }

    /// Serves peers on the cluster port; rmqtt's embedder must do this itself, before
    /// the cluster plugin starts.
    pub(crate) fn serve_grpc(&mut self, scx: &ServerContext) {
        let server = GrpcServer::new(scx.clone());
        let addr = self.grpc_addr;
        info!(%addr, node = self.config.node_name(), "serving cluster gRPC");
        self.server = Some(tokio::spawn(async move {
            if let Err(e) = server.listen_and_serve(addr, true, false).await {
                error!(error = %format!("{e:#}"), "cluster gRPC server stopped");
            }
        }));
    }

    /// The running cluster, once the cluster plugin has started.
    pub(crate) async fn started(mut self, scx: &ServerContext) -> RunningCluster {
        let clients = scx.extends.shared().await.get_grpc_clients();
        let names = self
            .config
            .numbered()
            .map(|(id, seed)| (id, seed.name.clone()))
            .collect();
        let cluster = Cluster {
            inner: Arc::new(Inner {
                scx: scx.clone(),
                config: self.config.clone(),
                names,
                clients,
                channel: Arc::clone(&self.channel),
            }),
        };
        let upkeep = upkeep::spawn(cluster.clone());
        RunningCluster {
            cluster,
            tasks: self.server.take().into_iter().chain([upkeep]).collect(),
        }
    }
}

impl Drop for ClusterPlan {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// The cluster side of a running broker: the handle its users get, and the tasks
/// (gRPC server, upkeep) that end with the broker. rmqtt's raft thread cannot be
/// stopped: it runs until the process ends.
pub(crate) struct RunningCluster {
    pub(crate) cluster: Cluster,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RunningCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn plugin_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The first address `host` resolves to (an IP literal resolves to itself).
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, BrokerError> {
    let failed = |detail: String| BrokerError::ClusterBind {
        role: "gRPC",
        addr: format!("{host}:{port}"),
        detail,
    };
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| failed(format!("cannot resolve the host: {e}")))?
        .next()
        .ok_or_else(|| failed("the host resolves to no address".into()))
}
