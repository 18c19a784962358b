//! The rmqtt plugins Beacon runs, and their inline configuration.

use rmqtt::context::ServerContext;
use tracing::{debug, info};

use crate::cluster::ClusterPlan;
use crate::config::{BrokerConfig, Limit};
use crate::plugin_toml::{self, TomlValue};
use crate::{BrokerError, autosub, rewrite};

/// Shown in `active_plugins` if a plugin does not report its version.
const UNKNOWN_VERSION: &str = "unknown";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plugin {
    ClusterRaft,
    Retainer,
    Delayed,
    TopicRewrite,
    AutoSubscription,
}

impl Plugin {
    /// The registry name, which is also the key of its configuration.
    fn name(self) -> &'static str {
        match self {
            Plugin::ClusterRaft => "rmqtt-cluster-raft",
            Plugin::Retainer => "rmqtt-retainer",
            Plugin::Delayed => "rmqtt-delayed",
            Plugin::TopicRewrite => "rmqtt-topic-rewrite",
            Plugin::AutoSubscription => "rmqtt-auto-subscription",
        }
    }

    /// Registers and starts the plugin (`default_startup`), mutable so it can be stopped.
    async fn start(self, scx: &ServerContext) -> rmqtt::Result<()> {
        match self {
            Plugin::ClusterRaft => rmqtt_cluster_raft::register(scx, true, false).await,
            Plugin::Retainer => rmqtt_retainer::register(scx, true, false).await,
            Plugin::Delayed => rmqtt_delayed::register(scx, true, false).await,
            Plugin::TopicRewrite => rmqtt_topic_rewrite::register(scx, true, false).await,
            Plugin::AutoSubscription => rmqtt_auto_subscription::register(scx, true, false).await,
        }
    }
}

/// A plugin to start with its configuration text.
#[derive(Debug)]
pub(crate) struct PlannedPlugin {
    plugin: Plugin,
    config: String,
}

impl PlannedPlugin {
    pub(crate) fn name(&self) -> &'static str {
        self.plugin.name()
    }

    pub(crate) fn config(&self) -> &str {
        &self.config
    }
}

/// A plugin that started, for `active_plugins`.
#[derive(Debug, Clone)]
pub(crate) struct StartedPlugin {
    pub(crate) name: &'static str,
    pub(crate) version: String,
}

/// Only the features the configuration asks for run, so `active_plugins` is honest.
/// The cluster plugin comes first: it replaces the router and the shared session
/// registry the others work through.
pub(crate) fn plan(config: &BrokerConfig, cluster: Option<&ClusterPlan>) -> Vec<PlannedPlugin> {
    let mut planned = Vec::new();
    if let Some(cluster) = cluster {
        planned.push(PlannedPlugin {
            plugin: Plugin::ClusterRaft,
            config: cluster.plugin_config(),
        });
    }
    if let Some(Limit(max)) = config.retainer {
        planned.push(PlannedPlugin {
            plugin: Plugin::Retainer,
            config: retainer_config(max),
        });
    }
    if let Some(Limit(max)) = config.delayed {
        planned.push(PlannedPlugin {
            plugin: Plugin::Delayed,
            config: delayed_config(max),
        });
    }
    if !config.rewrite.is_empty() {
        planned.push(PlannedPlugin {
            plugin: Plugin::TopicRewrite,
            config: rewrite::plugin_config(&config.rewrite),
        });
    }
    if !config.auto_subscribe.is_empty() {
        planned.push(PlannedPlugin {
            plugin: Plugin::AutoSubscription,
            config: autosub::plugin_config(&config.auto_subscribe),
        });
    }
    planned
}

fn retainer_config(max: u64) -> String {
    plugin_toml::document(vec![
        (
            "storage",
            TomlValue::Table(vec![("type", TomlValue::Str("ram".into()))]),
        ),
        ("max_retained_messages", TomlValue::Int(toml_int(max))),
    ])
}

/// EMQX refuses delayed publishes over the limit, so overflow is dropped rather
/// than published at once.
fn delayed_config(max: u64) -> String {
    let max = if max == 0 { i64::MAX } else { toml_int(max) };
    plugin_toml::document(vec![
        ("publish_max", TomlValue::Int(max)),
        ("publish_immediate", TomlValue::Bool(false)),
    ])
}

/// TOML integers are signed 64-bit; a larger limit is as good as none.
fn toml_int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Starts the planned plugins in order; on failure, stops the ones already running.
pub(crate) async fn start(
    scx: &ServerContext,
    planned: &[PlannedPlugin],
) -> Result<Vec<StartedPlugin>, BrokerError> {
    let mut started = Vec::new();
    for p in planned {
        if let Err(e) = p.plugin.start(scx).await {
            stop(scx, &started).await;
            return Err(BrokerError::Plugin {
                plugin: p.name(),
                detail: format!("{e:#}"),
            });
        }
        let version = version(scx, p.name()).await;
        info!(plugin = p.name(), %version, "rmqtt plugin started");
        started.push(StartedPlugin {
            name: p.name(),
            version,
        });
    }
    Ok(started)
}

async fn version(scx: &ServerContext, name: &str) -> String {
    let Some(entry) = scx.plugins.get(name) else {
        return UNKNOWN_VERSION.to_string();
    };
    entry
        .to_info(name)
        .await
        .ok()
        .and_then(|info| info.version)
        .unwrap_or_else(|| UNKNOWN_VERSION.to_string())
}

/// Some plugins decline to stop: the retainer holds only memory that goes with the
/// broker; the cluster plugin's raft thread runs until the process ends.
pub(crate) async fn stop(scx: &ServerContext, started: &[StartedPlugin]) {
    for p in started.iter().rev() {
        match scx.plugins.stop(p.name).await {
            Ok(stopped) => debug!(plugin = p.name, stopped, "rmqtt plugin stop requested"),
            Err(e) => debug!(plugin = p.name, error = %e, "rmqtt plugin did not stop"),
        }
    }
}
