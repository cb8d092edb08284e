//! The broker carries bytes between nodes on named channels, keeps a short
//! history per channel so a reader can catch up by offset, and holds the
//! small amount of shared state nodes need (presence, worker-id leases). It
//! never looks inside a payload (no store, no protocol here); the hub does.
//!
//! [`open`] is the one function that picks a backend: the in-process
//! [`MemoryBroker`] (default) or the [`RedisBroker`] (`--redis`). The
//! in-process broker loops every publish straight back to this node's sink,
//! so one node runs exactly the code path a cluster runs.
//!
//! # Positions
//! Every publish with history gets a [`Position`]: an `epoch` (a random
//! string that changes whenever the channel's history is lost, e.g. it
//! expired or Redis restarted empty) and an `offset` (1, 2, 3, ... without
//! holes within one epoch). A reader that saw offset `n` of epoch `e` can ask
//! for everything after `n`; if the epoch changed or the entries were trimmed
//! the answer says so and the reader falls back to the store.

mod memory;
mod redis;
mod shard;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::Config;
use crate::error::BrokerError;

pub use memory::MemoryBroker;
pub use redis::RedisBroker;

/// Most channels one batched publish sends in one script call (bounds the
/// time one call holds a Redis instance).
pub const PUBLISH_MANY_CHUNK: usize = 256;

/// Where an entry sits in a channel's history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// Changes whenever the channel's history was lost; offsets restart then.
    pub epoch: String,
    /// 1 for the first entry of an epoch, then contiguous. 0: nothing yet.
    pub offset: u64,
}

/// One entry read back from history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's offset in its epoch.
    pub offset: u64,
    /// The bytes that were published.
    pub payload: Bytes,
}

/// The answer to [`Broker::history`].
#[derive(Clone, Debug)]
pub struct History {
    /// The channel's latest position (offset 0 when it has no entries yet).
    pub top: Position,
    /// Entries after the requested offset, oldest first, at most `limit`.
    pub entries: Vec<Entry>,
    /// True when `entries` are exactly `after + 1 ..= top.offset`: nothing
    /// was trimmed and nothing was cut off by `limit`.
    pub complete: bool,
}

/// Whether a user is online, as the broker's shared presence records say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PresenceState {
    /// Some node holds an unexpired presence record for the key.
    pub online: bool,
    /// Milliseconds since the Unix epoch when the key was last seen online.
    pub last_seen_ms: Option<i64>,
}

/// Tuning shared by both backends.
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Entries kept per channel.
    pub history_size: usize,
    /// How long a channel's history lives after its last publish, at least
    /// (Redis keeps it up to a sixteenth longer: it refreshes the expiry
    /// once per sixteenth, not on every publish).
    pub history_ttl: Duration,
    /// Longest any single backend call may take.
    pub timeout: Duration,
}

impl BrokerOptions {
    /// The options the configuration names.
    pub fn from_config(config: &Config) -> BrokerOptions {
        BrokerOptions {
            history_size: config.history_size.max(1),
            history_ttl: Duration::from_secs(config.history_ttl.max(1)),
            timeout: Duration::from_millis(config.broker_timeout_ms.max(1)),
        }
    }
}

/// Receives what the broker delivers for channels this node subscribed to.
pub trait BrokerSink: Send + Sync + 'static {
    /// Called once per payload published on a subscribed channel, in publish
    /// order per channel. `position` is set for publishes with history and
    /// `None` for volatile ones. Must not block.
    fn deliver(&self, channel: &str, position: Option<Position>, payload: Bytes);

    /// True while this node has a local reader of `channel`. The broker asks
    /// before it (un)subscribes, so racing subscribe/unsubscribe calls end in
    /// the state the registry is in, whatever order they ran in.
    fn wants(&self, channel: &str) -> bool;

    /// Called after the broker re-established a lost subscription link:
    /// anything published meanwhile may have been missed on every channel.
    /// Must not block.
    fn resync(&self);
}

/// Publish/subscribe between nodes, with a short history per channel, plus
/// the shared records nodes need (presence, leases). Every method either
/// finishes within the configured timeout or fails with
/// [`BrokerError::Unavailable`].
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Appends `payload` to `channel`'s history and publishes it to every
    /// node subscribed to it (this one included), as one atomic step, and
    /// returns its position. Delivery is at most once; history lets a
    /// reader fill what it missed.
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<Position, BrokerError>;

    /// [`Broker::publish`] of the same `payload` on each of `channels` (a
    /// group event to every member's inbox), batched: one round trip per
    /// backend instance (Redis: one script call per instance holding any
    /// of the channels, in chunks of [`PUBLISH_MANY_CHUNK`]), not one per
    /// channel. Each channel gets its own position, as if published alone;
    /// the answer has one result per channel, in order. A failure of one
    /// instance fails only its channels.
    async fn publish_many(&self, channels: &[String], payload: Bytes) -> Vec<Result<Position, BrokerError>>;

    /// Publishes `payload` without history or position (presence changes).
    async fn publish_volatile(&self, channel: &str, payload: Bytes) -> Result<(), BrokerError>;

    /// [`Broker::publish_volatile`] of the same `payload` on each of
    /// `channels` (a typing signal to every member of a group), batched:
    /// one round trip per backend instance (Redis: one pipeline of
    /// `PUBLISH` per instance holding any of the channels, in chunks of
    /// [`PUBLISH_MANY_CHUNK`]). No history, no position. Returns how many
    /// channels were not published (a failed instance fails its channels).
    async fn publish_volatile_many(&self, channels: &[String], payload: Bytes) -> usize;

    /// The latest position of `channel` and at most `limit` entries after
    /// `after`, oldest first. A channel with no history gets a fresh epoch,
    /// so the returned position can be resumed from later.
    async fn history(&self, channel: &str, after: u64, limit: usize) -> Result<History, BrokerError>;

    /// Starts delivering `channel` to this node's sink if the sink still
    /// [`wants`](BrokerSink::wants) it; resolves once that is in effect.
    async fn subscribe(&self, channel: &str) -> Result<(), BrokerError>;

    /// Stops delivering `channel` unless the sink wants it again. Idempotent.
    async fn unsubscribe(&self, channel: &str) -> Result<(), BrokerError>;

    /// Takes one token from the token bucket `key` shared by every node
    /// (`capacity` tokens, refilled at `per_sec`; created full), in one
    /// atomic step. `Ok(false)`: the bucket is empty. The in-process broker
    /// keeps the buckets in memory (bounded like `KeyedBuckets`); Redis in
    /// one script call on the key's instance, with the broker timeout, the
    /// bucket expiring once it would be full again. Callers choose what a
    /// failure means (the per-user write budget falls back to this node's
    /// own bucket).
    async fn take_token(&self, key: &str, capacity: f64, per_sec: f64) -> Result<bool, BrokerError>;

    /// Takes or renews the lease `name` for `holder` for `ttl`. `Ok(false)`:
    /// another holder has it.
    async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, BrokerError>;

    /// Gives the lease `name` up if `holder` has it.
    async fn release(&self, name: &str, holder: &str) -> Result<(), BrokerError>;

    /// Records that `node` has `key` online for `ttl`. `Ok(true)` when no
    /// node had it online before (the key just came online).
    async fn presence_join(&self, key: &str, node: &str, ttl: Duration) -> Result<bool, BrokerError>;

    /// Extends `node`'s records for `keys` by `ttl` (recreating lost ones).
    async fn presence_refresh(&self, keys: &[String], node: &str, ttl: Duration) -> Result<(), BrokerError>;

    /// Removes `node`'s record for `key` and stamps its last-seen time.
    /// `Ok(true)` when no node has it online any more (it went offline).
    async fn presence_leave(&self, key: &str, node: &str) -> Result<bool, BrokerError>;

    /// The presence of each key, in the order given.
    async fn presence_query(&self, keys: &[String]) -> Result<Vec<PresenceState>, BrokerError>;

    /// Stops background work (subscriber links); waits for it to finish.
    async fn close(&self);
}

/// Opens the broker the configuration names: Redis when `--redis` lists
/// URLs, else the in-process one.
pub async fn open(config: &Config, sink: Arc<dyn BrokerSink>) -> Result<Arc<dyn Broker>, BrokerError> {
    let options = BrokerOptions::from_config(config);
    if config.redis.is_empty() {
        return Ok(Arc::new(MemoryBroker::new(sink, options)));
    }
    Ok(Arc::new(RedisBroker::connect(&config.redis, sink, options).await?))
}

/// A random lowercase hex string of `bytes` random bytes (epochs, node ids).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
