use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use rmqtt::context::ServerContext;
use rmqtt::hook::{Register, Type};
use rmqtt::server::MqttServer;
use rmqtt::types::{Id, ListenerId};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::BrokerError;
use crate::authn::AuthnHandler;
use crate::authz::AuthzHandler;
use crate::cluster::{Cluster, ClusterPlan, RunningCluster};
use crate::config::BrokerConfig;
use crate::listeners::{self, Bound};
use crate::plugins::{self, PlannedPlugin, StartedPlugin};
use crate::probe::{CountingHandler, MessageCounters, Reading};

/// EMQX's id for the listener `listeners.tcp.default`, the one [`RunningBroker::mqtt_addr`] names.
const TCP_DEFAULT: &str = "tcp:default";

/// Starts brokers. Each has its own rmqtt context: several can run in one process.
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Binds the MQTT listeners, starts the plugins and hooks the configuration asks
    /// for, then serves clients in a background task until [`RunningBroker::shutdown`].
    pub async fn start(config: BrokerConfig) -> Result<RunningBroker, BrokerError> {
        // The listeners first: a taken port is the likeliest failure, and nothing
        // needs undoing yet.
        let bound = listeners::bind_all(
            &config.listeners,
            config.authentication.is_empty(),
            config.session,
        )?;
        let listeners: Vec<(String, SocketAddr)> =
            bound.iter().map(|b| (b.id.clone(), b.addr)).collect();
        let mut cluster = match &config.cluster {
            Some(cluster) => Some(ClusterPlan::prepare(cluster).await?),
            None => None,
        };
        let planned = plugins::plan(&config, cluster.as_ref());
        let scx = context(&planned, cluster.as_ref()).await;
        if let Some(cluster) = &mut cluster {
            cluster.serve_grpc(&scx);
        }
        let counters = Arc::new(MessageCounters::default());
        let hooks = install_hooks(&scx, &config, &counters, cluster.as_ref()).await;
        let started = match plugins::start(&scx, &planned).await {
            Ok(started) => started,
            Err(e) => {
                hooks.stop().await;
                return Err(e);
            }
        };
        let cluster = match cluster {
            Some(plan) => Some(plan.started(&scx).await),
            None => None,
        };
        let server = (!bound.is_empty()).then(|| serve(&scx, bound));
        info!(listeners = ?listeners, plugins = started.len(), "MQTT broker started");
        Ok(RunningBroker {
            configured: Configured::of(&config),
            scx,
            listeners,
            server,
            hooks,
            plugins: started,
            counters,
            cluster,
        })
    }
}

async fn context(planned: &[PlannedPlugin], cluster: Option<&ClusterPlan>) -> ServerContext {
    let builder = planned.iter().fold(ServerContext::new(), |builder, p| {
        builder.plugins_config_map_add(p.name(), p.config())
    });
    let builder = match cluster {
        Some(cluster) => cluster.context(builder),
        None => builder,
    };
    builder
        // The busy check refuses clients under a high load average and keeps a
        // monitoring task alive forever; a shared CI machine trips it.
        .busy_check_enable(false)
        .build()
        .await
}

async fn install_hooks(
    scx: &ServerContext,
    config: &BrokerConfig,
    counters: &Arc<MessageCounters>,
    cluster: Option<&ClusterPlan>,
) -> Box<dyn Register> {
    let register = scx.extends.hook_mgr().register();
    if let Some(cluster) = cluster {
        // Ahead of the cluster plugin's handler, which ignores types it does not own.
        let handler = Box::new(cluster.handler());
        register
            .add_priority(Type::GrpcMessageReceived, 100, handler)
            .await;
    }
    for typ in [Type::MessagePublish, Type::MessageDelivered] {
        let handler = CountingHandler::new(Arc::clone(counters));
        register.add(typ, Box::new(handler)).await;
    }
    if !config.authentication.is_empty() {
        let handler = AuthnHandler::new(config.authentication.clone());
        register
            .add(Type::ClientAuthenticate, Box::new(handler))
            .await;
    }
    if config.authorization.is_active() {
        let authorization = Arc::new(config.authorization.clone());
        for typ in [Type::ClientSubscribeCheckAcl, Type::MessagePublishCheckAcl] {
            let handler = AuthzHandler::new(Arc::clone(&authorization));
            register.add(typ, Box::new(handler)).await;
        }
    }
    register.start().await;
    register
}

/// One rmqtt server for every listener, each under its own rmqtt id (1, 2, ...), by
/// which rmqtt finds that listener's settings for its connections.
fn serve(scx: &ServerContext, bound: Vec<Bound>) -> JoinHandle<()> {
    let server = bound
        .into_iter()
        .zip(1..=ListenerId::MAX)
        .fold(MqttServer::new(scx.clone()), |server, (b, id)| {
            server.listener_by_id(b.listener, id)
        })
        .build();
    tokio::spawn(async move {
        if let Err(e) = server.run().await {
            error!(error = %format!("{e:#}"), "MQTT listener stopped");
        }
    })
}

/// What the configuration enabled, read with the broker's load.
#[derive(Debug, Clone)]
struct Configured {
    rewrite_rules: u64,
    auto_subscriptions: u64,
    authenticators: Vec<String>,
    authorization_sources: Vec<String>,
}

impl Configured {
    fn of(config: &BrokerConfig) -> Configured {
        Configured {
            rewrite_rules: count(config.rewrite.len()),
            auto_subscriptions: count(config.auto_subscribe.len()),
            authenticators: sorted_unique(config.authentication.iter().map(|a| a.id())),
            authorization_sources: sorted_unique(config.authorization.source_types()),
        }
    }
}

/// A broker serving clients. Dropping it closes the listener without
/// disconnecting clients; [`RunningBroker::shutdown`] does both.
pub struct RunningBroker {
    scx: ServerContext,
    listeners: Vec<(String, SocketAddr)>,
    server: Option<JoinHandle<()>>,
    hooks: Box<dyn Register>,
    plugins: Vec<StartedPlugin>,
    counters: Arc<MessageCounters>,
    configured: Configured,
    cluster: Option<RunningCluster>,
}

impl RunningBroker {
    /// This node's part of the cluster; `None` when it runs alone.
    pub fn cluster(&self) -> Option<Cluster> {
        self.cluster.as_ref().map(|c| c.cluster.clone())
    }

    /// The address `listeners.tcp.default` really bound (the real port when 0 was
    /// asked); `None` when it is disabled.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(id, _)| id == TCP_DEFAULT)
            .map(|(_, addr)| *addr)
    }

    /// Every listener by EMQX's id (`tcp:default`, `ssl:default`, `ws:internal`, ...)
    /// with the address it really bound.
    pub fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.listeners.clone()
    }

    /// Reads the broker now; message counts count from this broker's start.
    pub async fn probe(&self) -> Reading {
        let scx = &self.scx;
        let topic_filters = scx.extends.router().await.topics().count();
        let retained = scx.extends.retain().await.count().await;
        let delayed = scx.extends.delayed_sender().await.len().await;
        let configured = self.configured.clone();
        Reading {
            connections: non_negative(scx.connections.count()),
            sessions: non_negative(scx.sessions.count()),
            publishes_received: self.counters.received(),
            publishes_sent: self.counters.sent(),
            topic_filters: non_negative(topic_filters),
            retained_messages: non_negative(retained),
            delayed_publishes: count(delayed),
            rewrite_rules: configured.rewrite_rules,
            auto_subscriptions: configured.auto_subscriptions,
            authenticators: configured.authenticators,
            authorization_sources: configured.authorization_sources,
            plugins: self.active_plugins(),
        }
    }

    fn active_plugins(&self) -> Vec<String> {
        sorted_unique(
            self.plugins
                .iter()
                .filter(|p| self.scx.plugins.is_active(p.name))
                .map(|p| format!("{}-{}", p.name, p.version)),
        )
    }

    /// Closes the listeners (their ports are free when this returns), disconnects every
    /// client, and stops hooks and plugins.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            if let Err(e) = server.await
                && !e.is_cancelled()
            {
                warn!(error = %e, "MQTT listener task failed");
            }
        }
        disconnect_all(&self.scx).await;
        self.hooks.stop().await;
        plugins::stop(&self.scx, &self.plugins).await;
        info!("MQTT broker stopped");
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl fmt::Debug for RunningBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningBroker")
            .field("listeners", &self.listeners)
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

/// Kicks each session as an administrator would; rmqtt closes the connection.
async fn disconnect_all(scx: &ServerContext) {
    let ids: Vec<Id> = scx.extends.shared().await.iter().map(|e| e.id()).collect();
    for id in ids {
        let mut entry = scx.extends.shared().await.entry(id);
        if let Err(e) = entry.kick(true, true, true).await {
            debug!(error = %format!("{e:#}"), "session did not acknowledge disconnect");
        }
    }
}

fn non_negative(n: isize) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn sorted_unique(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut items: Vec<String> = items.into_iter().collect();
    items.sort();
    items.dedup();
    items
}
