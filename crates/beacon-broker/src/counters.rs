//! Message counters the rmqtt core does not keep (its `messages.*` metrics stay 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};

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
