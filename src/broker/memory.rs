//! The in-process broker: a single node's loopback. A publish is handed to
//! the local sink at once, in the caller's task, so per-channel order is the
//! publish order.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Broker, BrokerSink};
use crate::error::BrokerError;

/// Delivers every publish to this node's own sink.
pub struct MemoryBroker {
    sink: Arc<dyn BrokerSink>,
}

impl MemoryBroker {
    /// A broker that loops publishes back to `sink`.
    pub fn new(sink: Arc<dyn BrokerSink>) -> Self {
        MemoryBroker { sink }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), BrokerError> {
        // The sink drops payloads for channels with no local subscriber, so
        // tracking subscriptions here would only duplicate the hub's registry.
        self.sink.deliver(channel, payload);
        Ok(())
    }

    async fn subscribe(&self, _channel: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn unsubscribe(&self, _channel: &str) -> Result<(), BrokerError> {
        Ok(())
    }
}
