//! The receiving end of the channel: answers peers' requests ([`REQUEST_TYPE`]) with
//! the installed answerer, and their liveness pings ([`PING_TYPE`]) with this node's
//! name. Other message types (rmqtt's own) pass on untouched.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use rmqtt::grpc::{Message, MessageReply};
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};

use super::{ClusterAnswerer, PING_TYPE, REQUEST_TYPE};

/// The reply while no answerer is installed; the asking side reads it as "not ready".
pub(crate) const NO_ANSWERER: &str = "beacon cluster: no answerer installed";

pub(crate) struct Channel {
    node_name: String,
    answerer: RwLock<Option<Arc<dyn ClusterAnswerer>>>,
}

impl Channel {
    pub(crate) fn new(node_name: &str) -> Channel {
        Channel {
            node_name: node_name.to_owned(),
            answerer: RwLock::new(None),
        }
    }

    pub(crate) fn install(&self, answerer: Arc<dyn ClusterAnswerer>) {
        *self.answerer.write().unwrap_or_else(|e| e.into_inner()) = Some(answerer);
    }

    fn answerer(&self) -> Option<Arc<dyn ClusterAnswerer>> {
        self.answerer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn reply(&self, request: &[u8]) -> MessageReply {
        match self.answerer() {
            Some(answerer) => MessageReply::Data(answerer.answer(request.to_vec()).await),
            None => MessageReply::Error(NO_ANSWERER.to_owned()),
        }
    }
}

/// Hooked on `GrpcMessageReceived` ahead of the cluster plugin's own handler.
pub(crate) struct ChannelHandler {
    channel: Arc<Channel>,
}

impl ChannelHandler {
    pub(crate) fn new(channel: Arc<Channel>) -> ChannelHandler {
        ChannelHandler { channel }
    }
}

#[async_trait]
impl Handler for ChannelHandler {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        let reply = match param {
            Parameter::GrpcMessageReceived(typ, Message::Data(request)) if *typ == REQUEST_TYPE => {
                self.channel.reply(request).await
            }
            Parameter::GrpcMessageReceived(typ, _) if *typ == PING_TYPE => {
                MessageReply::Data(self.channel.node_name.clone().into_bytes())
            }
            _ => return (true, acc),
        };
        (false, Some(HookResult::GrpcMessageReply(Ok(reply))))
    }
}
