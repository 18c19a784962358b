//! The probe: a [`Reading`] of a running broker's load and features in MQTT's terms,
//! and the message counting the rmqtt core does not do (its `messages.*` metrics stay 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use serde::Serialize;

/// One reading of a running broker: its load now and what its configuration enabled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// MQTT connections open now.
    pub connections: u64,
    /// Sessions held now by this node (connected, or persistent and offline); in a
    /// cluster, the other nodes' are theirs to report.
    pub sessions: u64,
    /// PUBLISH packets received from clients since start.
    pub publishes_received: u64,
    /// PUBLISH packets sent to clients since start.
    pub publishes_sent: u64,
    /// Distinct topic filters with at least one subscription; in a cluster, in the
    /// whole cluster (the replicated route table, dead nodes' routes purged).
    pub topic_filters: u64,
    /// Retained messages stored.
    pub retained_messages: u64,
    /// Delayed publishes waiting for their time.
    pub delayed_publishes: u64,
    /// Topic rewrite rules configured.
    pub rewrite_rules: u64,
    /// Auto-subscriptions configured.
    pub auto_subscriptions: u64,
    /// Sorted unique `mechanism:backend` ids of the enabled authenticators.
    pub authenticators: Vec<String>,
    /// Sorted enabled authorization source types.
    pub authorization_sources: Vec<String>,
    /// Sorted `name-version` of the rmqtt plugins running.
    pub plugins: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct MessageCounters {
    received: AtomicU64,
    sent: AtomicU64,
}

impl MessageCounters {
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Counts PUBLISH packets from clients (`MessagePublish`, which also fires for
/// publishes authorization later refuses, as EMQX's `messages.received` does) and
/// PUBLISH packets written to clients (`MessageDelivered`, retained ones included).
/// Last-will messages are not packets a client sent, so they are not "received".
pub(crate) struct CountingHandler {
    counters: Arc<MessageCounters>,
}

impl CountingHandler {
    pub(crate) fn new(counters: Arc<MessageCounters>) -> CountingHandler {
        CountingHandler { counters }
    }
}

#[async_trait]
impl Handler for CountingHandler {
    /// Always passes the accumulated result on: other handlers on these hooks
    /// (topic rewrite) deliver their work through it.
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::MessagePublish(_, from, _) if from.is_custom() => {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
            }
            Parameter::MessageDelivered(..) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        (true, acc)
    }
}
