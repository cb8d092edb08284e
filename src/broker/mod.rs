//! The broker carries bytes between nodes on named channels. It never looks
//! inside a payload (no store, no protocol here); the hub does.
//!
//! [`open`] is the one function that picks a backend. The in-process broker
//! loops every publish straight back to this node's sink, so one node runs
//! exactly the code path a cluster runs.

mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::Config;
use crate::error::BrokerError;

pub use memory::MemoryBroker;

/// Receives what the broker delivers for channels this node subscribed to.
pub trait BrokerSink: Send + Sync + 'static {
    /// Called once per payload published on a subscribed channel, in publish
    /// order per channel. Must not block.
    fn deliver(&self, channel: &str, payload: Bytes);
}

/// Publish/subscribe between nodes.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Publishes `payload` on `channel` to every node subscribed to it
    /// (this one included). `Ok` means the broker accepted it; delivery is
    /// at most once (the store is the source of truth).
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), BrokerError>;

    /// Starts delivering `channel` to this node's sink. Idempotent.
    async fn subscribe(&self, channel: &str) -> Result<(), BrokerError>;

    /// Stops delivering `channel` to this node's sink. Idempotent.
    async fn unsubscribe(&self, channel: &str) -> Result<(), BrokerError>;
}

/// Opens the broker the configuration names (the in-process one).
pub async fn open(_config: &Config, sink: Arc<dyn BrokerSink>) -> Result<Arc<dyn Broker>, BrokerError> {
    Ok(Arc::new(MemoryBroker::new(sink)))
}
