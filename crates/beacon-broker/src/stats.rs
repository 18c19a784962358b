use serde::Serialize;

/// Live numbers of a running broker, named as in EMQX's telemetry report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BrokerNumbers {
    /// MQTT connections open now.
    pub num_clients: u64,
    /// Sessions held now (connected, or persistent and offline).
    pub num_cluster_sessions: u64,
    /// PUBLISH packets received from clients since start.
    pub messages_received: u64,
    /// PUBLISH packets sent to clients since start.
    pub messages_sent: u64,
    /// Distinct topic filters with at least one subscription.
    pub num_topics: u64,
    /// Retained messages stored.
    pub retained: u64,
    /// Delayed publishes waiting for their time.
    pub delayed: u64,
    /// Topic rewrite rules configured.
    pub topic_rewrite: u64,
    /// Auto-subscriptions configured.
    pub auto_subscribe: u64,
    /// Sorted unique `mechanism:backend` ids of the enabled authenticators.
    pub authn: Vec<String>,
    /// Sorted enabled authorization source types.
    pub authz: Vec<String>,
    /// Sorted `name-version` of the rmqtt plugins running.
    pub active_plugins: Vec<String>,
    /// Other nodes of the cluster: always empty, Beacon runs single nodes.
    pub nodes_uuid: Vec<String>,
}
