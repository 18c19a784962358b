//! Starting and stopping a node: broker, agent, the broker's probe, the cluster's
//! membership (when the broker runs in one) and the HTTP side.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_agent::{Agent, AgentSettings, BrokerProbe};
use beacon_auth::{LoginThrottle, MIN_PASSWORD_CHARS, Sessions};
use beacon_broker::{Broker, BrokerConfig};
use beacon_config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::NodeError;
use crate::api::{self, NodeState};
use crate::cluster::{self, Membership};
use crate::credentials::{self, Credentials, KeyError, LOCAL_API_FILE, LocalApi, Role};
use crate::host::AllowedHosts;
use crate::probe::LiveProbe;

/// EMQX's dashboard address; loopback, so a fresh node exposes nothing to the network.
pub const DEFAULT_DASHBOARD_BIND: &str = "127.0.0.1:18083";
const DEFAULT_USERNAME: &str = "admin";
const PASSWORD_KEY: &str = "dashboard.default_password";
/// Dashboard logins end after this long without use.
const SESSION_IDLE: Duration = Duration::from_secs(2 * 3600);
/// Sign-in attempts per (user name, address), in a row and per minute: a person mistyping
/// never meets it, a guesser gets 5 a minute.
const LOGINS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(5).expect("non-zero");
/// Sign-in attempts per minute over every (user name, address); only attempts their pair
/// allowed count, so one address cannot use it up.
const LOGINS_PER_MINUTE_OVERALL: NonZeroU32 = NonZeroU32::new(60).expect("non-zero");
/// The name of the API key each start makes for the local CLI.
const LOCAL_KEY_NAME: &str = "local cli";

/// What a node is started from.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The HOCON config with the `EMQX_*` environment already overlaid.
    pub config: Config,
    pub data_dir: PathBuf,
    /// The value of `DO_NOT_TRACK`, if set.
    pub do_not_track: Option<String>,
}

/// Starts nodes.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Starts the broker, the telemetry agent and the dashboard listener.
    pub async fn start(options: NodeOptions) -> Result<RunningNode, NodeError> {
        let NodeOptions {
            config,
            data_dir,
            do_not_track,
        } = options;
        let settings = AgentSettings::from_config(&config, do_not_track)?;
        let dashboard_addr = dashboard_bind(&config)?;
        let limits = crate::listen::limits(&config)?;
        let allowed_hosts = AllowedHosts::from_config(&config, dashboard_addr)?;
        let (credentials, generated_password) = Credentials::load_or_create(
            &data_dir,
            &config
                .string("dashboard.default_username")?
                .map_or_else(|| DEFAULT_USERNAME.to_owned(), |s| s.value),
            configured_password(&config)?.as_deref(),
        )?;
        let listener = tokio::net::TcpListener::bind(dashboard_addr)
            .await
            .map_err(|source| NodeError::DashboardBind {
                addr: dashboard_addr,
                source,
            })?;
        let http_addr = listener
            .local_addr()
            .map_err(|source| NodeError::DashboardBind {
                addr: dashboard_addr,
                source,
            })?;
        let broker_config = BrokerConfig::from_config(&config)?;
        let node_name = broker_config.node_name().to_owned();
        let broker = Arc::new(Broker::start(broker_config).await?);
        let membership = broker.cluster().map(|c| Arc::new(Membership::new(c)));
        let probe = Arc::new(LiveProbe::new(membership.clone()));
        probe.probe(&broker).await;
        let prober = probe.spawn_prober(Arc::clone(&broker));
        let agent_probe: Arc<dyn BrokerProbe> = Arc::clone(&probe) as Arc<dyn BrokerProbe>;
        let agent = Agent::start(settings, data_dir.clone(), agent_probe)?;
        let local_api = local_api_key(&credentials, &data_dir, http_addr)?;
        let state = Arc::new(NodeState {
            agent,
            mqtt_addr: broker.mqtt_addr(),
            broker,
            probe,
            credentials,
            sessions: Sessions::new(SESSION_IDLE),
            logins: LoginThrottle::new(
                LOGINS_PER_MINUTE,
                LOGINS_PER_MINUTE,
                LOGINS_PER_MINUTE_OVERALL,
            ),
            allowed_hosts,
            started_at: Instant::now(),
            node_name,
            cluster: membership,
        });
        let membership_poll = cluster::start(&state);
        let (stop, stopped) = oneshot::channel();
        let app = api::router(Arc::clone(&state));
        let server = crate::listen::serve_dashboard(listener, http_addr, limits, app, stopped)?;
        let mqtt = listing(&state.broker.listeners());
        tracing::info!(dashboard = %http_addr, %mqtt, "node started");
        Ok(RunningNode {
            state: Some(state),
            http_addr,
            server: Some(server),
            stop: Some(stop),
            prober,
            membership_poll,
            generated_password,
            local_api_file: local_api,
        })
    }
}

/// `tcp:default 0.0.0.0:1883, ssl:default 0.0.0.0:8883`, or `none`.
fn listing(listeners: &[(String, SocketAddr)]) -> String {
    if listeners.is_empty() {
        return "none".to_owned();
    }
    let each: Vec<String> = listeners
        .iter()
        .map(|(id, addr)| format!("{id} {addr}"))
        .collect();
    each.join(", ")
}

/// `dashboard.default_password`, refused when shorter than [`MIN_PASSWORD_CHARS`];
/// empty counts as unset (a random password is generated).
fn configured_password(config: &Config) -> Result<Option<String>, NodeError> {
    let Some(password) = config.string(PASSWORD_KEY)? else {
        return Ok(None);
    };
    let length = password.value.chars().count();
    if length == 0 {
        return Ok(None);
    }
    if length < MIN_PASSWORD_CHARS {
        return Err(NodeError::WeakPassword {
            key: PASSWORD_KEY,
            origin: password.origin.to_string(),
            min: MIN_PASSWORD_CHARS,
        });
    }
    Ok(Some(password.value))
}

/// `dashboard.listeners.http.bind`: EMQX writes a port alone (`18083`) or `IP:PORT`.
fn dashboard_bind(config: &Config) -> Result<SocketAddr, NodeError> {
    const KEY: &str = "dashboard.listeners.http.bind";
    let default = DEFAULT_DASHBOARD_BIND.parse().expect("a valid address");
    if let Ok(Some(port)) = config.u64(KEY) {
        let port = u16::try_from(port.value).map_err(|_| beacon_config::ConfigError::Type {
            key: KEY.to_owned(),
            origin: port.origin.clone(),
            expected: "a TCP port or IP:PORT",
            found: port.value.to_string(),
        })?;
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    Ok(config.socket_addr(KEY)?.map_or(default, |a| a.value))
}

/// Makes this run's API key for the local CLI and leaves it where only this user reads it.
fn local_api_key(
    credentials: &Credentials,
    data_dir: &std::path::Path,
    http_addr: SocketAddr,
) -> Result<PathBuf, NodeError> {
    credentials.revoke_api_key(LOCAL_KEY_NAME)?;
    let (key, secret) = credentials
        .create_api_key(LOCAL_KEY_NAME, Role::Administrator, None)
        .map_err(|error| match error {
            KeyError::Store(error) => error,
            // Just revoked, under the same name: only a concurrent start could race here.
            KeyError::NameTaken(_) => NodeError::LocalKeyTaken,
        })?;
    let path = data_dir.join(LOCAL_API_FILE);
    let host = if http_addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], http_addr.port()))
    } else {
        http_addr
    };
    let local = LocalApi {
        url: format!("http://{host}"),
        key,
        secret,
    };
    credentials::write_private(&path, &local)?;
    Ok(path)
}

/// A node serving MQTT clients and the dashboard until [`RunningNode::shutdown`].
pub struct RunningNode {
    state: Option<Arc<NodeState>>,
    http_addr: SocketAddr,
    server: Option<JoinHandle<()>>,
    stop: Option<oneshot::Sender<()>>,
    prober: JoinHandle<()>,
    /// Polls the cluster's peers; `None` when the node runs alone.
    membership_poll: Option<JoinHandle<()>>,
    generated_password: Option<String>,
    local_api_file: PathBuf,
}

impl RunningNode {
    /// Where the MQTT listener really bound; `None` when it is disabled.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.state.as_ref().and_then(|s| s.mqtt_addr)
    }

    /// Every MQTT listener by EMQX's id (`tcp:default`, `ssl:default`, ...) with the
    /// address it really bound.
    pub fn mqtt_listeners(&self) -> Vec<(String, SocketAddr)> {
        self.state
            .as_ref()
            .map(|s| s.broker.listeners())
            .unwrap_or_default()
    }

    /// Where the dashboard and REST API really bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The admin password generated at this first start, to show the operator once.
    pub fn generated_password(&self) -> Option<&str> {
        self.generated_password.as_deref()
    }

    /// Stops the dashboard, the agent (dropping any send in progress) and the broker.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.prober.abort();
        let _ = (&mut self.prober).await;
        if let Some(poll) = self.membership_poll.take() {
            poll.abort();
            let _ = poll.await;
        }
        if let Err(error) = std::fs::remove_file(&self.local_api_file) {
            tracing::debug!(%error, "local API key file already gone");
        }
        let Some(state) = self.state.take() else {
            return;
        };
        match Arc::try_unwrap(state) {
            Ok(state) => {
                state.agent.shutdown().await;
                match Arc::try_unwrap(state.broker) {
                    Ok(broker) => broker.shutdown().await,
                    Err(_) => tracing::warn!("broker still in use at shutdown; dropping it"),
                }
            }
            Err(_) => tracing::warn!("node state still in use at shutdown; dropping it"),
        }
        tracing::info!("node stopped");
    }
}
