//! The hub: this node's registry of live sockets and the one way to reach a
//! user's sockets on any node.
//!
//! Everything addressed to a user goes through the broker on the user's
//! inbox channel (`ib:<user id>`), even on one node, and comes back through
//! the [`LocalHub`] sink, which pushes it into each local socket's bounded
//! queue, stamped with its inbox position. A full queue closes that socket
//! as a slow consumer; nobody else waits for it. The node subscribes to an
//! inbox when its first local socket of that user attaches and unsubscribes
//! when the last one leaves.
//!
//! Each socket remembers its inbox position. A duplicate is dropped; a gap
//! (a lost pub/sub message) makes the socket hold live events while the
//! fill worker reads the missing entries from the broker's history; if they
//! are gone the socket gets `sync.needed`. A publish that fails (the broker
//! is down) is retried in order from a bounded outbox once it is back.

mod conn;
mod local;
pub mod outq;
mod payload;
mod presence;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Mutex as AsyncMutex, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::broker::{Broker, BrokerSink, History, Position, random_hex};
use crate::error::{BrokerError, Error};
use crate::model::{SessionId, User, UserId};

pub use conn::{ConnControl, ConnHandle, ConnId, InboxCursor, OutFrame, Released};
pub use local::{LocalHub, Watcher};
pub use presence::{UserPresence, view as presence_view};

/// Inbox channels are `ib:<user id>`.
pub const INBOX_PREFIX: &str = "ib:";
/// Presence channels are `pr:<user id>`.
pub const PRESENCE_PREFIX: &str = "pr:";

/// Publishes waiting for the broker to come back.
const OUTBOX: usize = 10_000;
/// Users whose gaps are filled at once.
const FILL_CONCURRENCY: usize = 16;

/// Which of a user's sockets a close applies to.
#[derive(Clone, Debug)]
pub enum CloseTarget {
    /// Every socket of this session.
    Session(SessionId),
    /// Every socket of the user except those of this session (if any).
    AllExcept(Option<SessionId>),
}

/// Limits and timings of the hub.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// Open sockets per user on this node.
    pub max_per_user: usize,
    /// Most events replayed to one socket on resume or gap fill; more than
    /// that and the client is told to sync instead.
    pub recover_limit: usize,
    /// Lifetime of this node's presence records (refreshed every third).
    pub presence_ttl: Duration,
}

/// What attaching a socket found out about its inbox.
#[derive(Debug, Default)]
pub struct Attached {
    /// The socket resumed and every missed event was queued for it.
    pub recovered: bool,
    /// The socket's inbox position now, if the broker could say.
    pub position: Option<Position>,
}

/// Rewrites frames replayed from inbox history (resume, gap fill) before
/// a socket gets them: history is a cache of what was published, and
/// some of it may no longer be true (a deleted message's text). The hub
/// knows no store; the app installs one ([`Hub::set_replay_filter`]).
#[async_trait::async_trait]
pub trait ReplayFilter: Send + Sync + 'static {
    /// For each of `frames`, `Some(frame)` to replace it, `None` to keep it.
    async fn rewrite(&self, frames: &[Utf8Bytes]) -> Vec<Option<Utf8Bytes>>;
}

/// The registry plus the broker: attach sockets, reach users anywhere.
pub struct Hub {
    replay: std::sync::OnceLock<Arc<dyn ReplayFilter>>,
    local: Arc<LocalHub>,
    broker: Arc<dyn Broker>,
    options: HubOptions,
    next_conn: AtomicU64,
    node: String,
    outbox: mpsc::Sender<(String, Bytes)>,
    outbox_rx: AsyncMutex<Option<mpsc::Receiver<(String, Bytes)>>>,
}

/// The inbox channel of `user`.
pub fn inbox_channel(user: UserId) -> String {
    crate::model::join_id(&[INBOX_PREFIX, itoa::Buffer::new().format(user.0)])
}

impl Hub {
    /// A hub whose broker is built by `open_broker` around the local registry.
    pub async fn new<F, Fut>(options: HubOptions, open_broker: F) -> Result<Hub, BrokerError>
    where
        F: FnOnce(Arc<dyn BrokerSink>) -> Fut,
        Fut: std::future::Future<Output = Result<Arc<dyn Broker>, BrokerError>>,
    {
        let local = Arc::new(LocalHub::new(options.recover_limit));
        let broker = open_broker(local.clone()).await?;
        let prefix = u64::from(rand_u32()) << 32;
        let (outbox, rx) = mpsc::channel(OUTBOX);
        Ok(Hub {
            replay: std::sync::OnceLock::new(),
            local,
            broker,
            options,
            next_conn: AtomicU64::new(prefix),
            node: random_hex(8),
            outbox,
            outbox_rx: AsyncMutex::new(Some(rx)),
        })
    }

    /// Installs the filter replayed history passes through (once; later
    /// calls are ignored).
    pub fn set_replay_filter(&self, filter: Arc<dyn ReplayFilter>) {
        let _ = self.replay.set(filter);
    }

    /// The broker's history of `channel`, through the replay filter.
    async fn history(&self, channel: &str, after: u64, limit: usize) -> Result<History, BrokerError> {
        let mut h = self.broker.history(channel, after, limit).await?;
        let Some(filter) = self.replay.get() else { return Ok(h) };
        let mut at = Vec::new();
        let mut frames = Vec::new();
        for (i, e) in h.entries.iter().enumerate() {
            if let Some(payload::Payload::Frame { except, frame }) = payload::decode(&e.payload) {
                at.push((i, except));
                frames.push(frame);
            }
        }
        if frames.is_empty() {
            return Ok(h);
        }
        for ((i, except), new) in at.into_iter().zip(filter.rewrite(&frames).await) {
            if let Some(f) = new {
                let except = (except != 0).then_some(ConnId(except));
                h.entries[i].payload = payload::encode_frame(except, &f);
            }
        }
        Ok(h)
    }

    /// The broker this hub publishes through.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.broker
    }

    /// This node's random id (presence records, leases).
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a socket as `user`'s (replacing its earlier handle if it
    /// was already attached). Refuses past the per-user limit.
    /// With `resume`, queues the inbox events after that position for the
    /// socket if the broker still has all of them (`recovered`). A broker
    /// failure does not refuse the socket: it is attached unrecovered and
    /// its inbox is checked again once the broker is back.
    pub async fn attach(&self, user: &User, handle: ConnHandle, resume: Option<Position>) -> Result<Attached, Error> {
        let resuming = resume.is_some();
        let after = resume.as_ref().map_or(0, |p| p.offset);
        handle.hold_from(resume);
        let first = {
            let mut entry = self.local.users.entry(user.id).or_default();
            if let Some(same) = entry.iter_mut().find(|c| c.id == handle.id) {
                // Re-authentication of an attached socket: replace in place.
                *same = handle.clone();
                false
            } else if entry.len() >= self.options.max_per_user {
                let max = self.options.max_per_user;
                drop(entry);
                // An entry created just now for this attempt must not linger.
                self.local.users.remove_if(&user.id, |_, v| v.is_empty());
                return Err(Error::LimitExceeded(format!("at most {max} open sockets per user")));
            } else {
                entry.push(handle.clone());
                entry.len() == 1
            }
        };
        let channel = inbox_channel(user.id);
        if first {
            if let Err(e) = self.broker.subscribe(&channel).await {
                tracing::warn!(error = %e, user = %user.id, "hub: subscribe failed; will resubscribe when the broker is back");
            }
            self.presence_joined(user).await;
        }
        let limit = if resuming { self.options.recover_limit } else { 0 };
        let history = self.history(&channel, after, limit).await;
        let released = handle.release(history, None);
        if released.refill {
            self.local.request_fill(user.id);
        }
        // Not `released.recovered`: a gap fill (after a broker reconnect) may
        // have released this socket first, moving it to the current epoch,
        // and then this release finds nothing missing although the resume
        // position was never honoured.
        Ok(Attached { recovered: resuming && handle.resumed(), position: released.position })
    }

    /// Removes a socket; unsubscribes the user's inbox after the last one.
    pub async fn detach(&self, user: &User, conn: ConnId) {
        let last = self
            .local
            .users
            .remove_if_mut(&user.id, |_, v| {
                v.retain(|c| c.id != conn);
                v.is_empty()
            })
            .is_some();
        if last {
            if let Err(e) = self.broker.unsubscribe(&inbox_channel(user.id)).await {
                tracing::warn!(error = %e, user = %user.id, "hub: unsubscribe failed");
            }
            self.presence_left(user).await;
        }
    }

    /// Publishes on `user`'s inbox; on failure queues the payload for the
    /// outbox worker, which publishes it once the broker is back.
    async fn publish_inbox(&self, user: UserId, payload: Bytes) -> Result<Position, BrokerError> {
        let channel = inbox_channel(user);
        let started = std::time::Instant::now();
        let published = self.broker.publish(&channel, payload.clone()).await;
        crate::metrics::global().broker_publish_seconds.observe(crate::metrics::since(started));
        match published {
            Ok(p) => Ok(p),
            Err(e) => {
                if self.outbox.try_send((channel, payload)).is_err() {
                    tracing::error!(user = %user, "hub: outbox full; the event is dropped (the client will sync)");
                }
                Err(e)
            }
        }
    }

    /// Sends a serialized frame to every socket of `user`, on every node,
    /// except the socket `except` (the one that asked). Returns the event's
    /// inbox position. On failure the event is retried later.
    pub async fn send_to_user(
        &self,
        user: UserId,
        frame: &Utf8Bytes,
        except: Option<ConnId>,
    ) -> Result<Position, BrokerError> {
        self.publish_inbox(user, payload::encode_frame(except, frame)).await
    }

    /// [`Hub::send_to_user`] for each of `users` (a group event to every
    /// member), in one batched broker publish (one round trip per broker
    /// instance). `except` is a connection id, unique across nodes, so the
    /// same payload serves every inbox. Inboxes whose publish failed are
    /// queued for the outbox worker like a failed single publish. Returns
    /// how many publishes failed.
    pub async fn send_to_users(&self, users: &[UserId], frame: &Utf8Bytes, except: Option<ConnId>) -> usize {
        let payload = payload::encode_frame(except, frame);
        let channels: Vec<String> = users.iter().map(|u| inbox_channel(*u)).collect();
        let started = std::time::Instant::now();
        let results = self.broker.publish_many(&channels, payload.clone()).await;
        crate::metrics::global().broker_publish_seconds.observe(crate::metrics::since(started));
        let mut failed = 0;
        for (channel, r) in channels.into_iter().zip(results) {
            if r.is_err() {
                failed += 1;
                if self.outbox.try_send((channel, payload.clone())).is_err() {
                    tracing::error!("hub: outbox full; a group event is dropped (the client will sync)");
                }
            }
        }
        failed
    }

    /// Sends an ephemeral frame (typing) to `user`'s live sockets on every
    /// node, except `except`: a volatile publish on the user's inbox
    /// channel, so it takes no inbox position, is never in history (resume
    /// does not replay it), and is not retried when the broker is down. A
    /// socket whose queue is more than half full does not get it.
    pub async fn send_ephemeral(
        &self,
        user: UserId,
        frame: &Utf8Bytes,
        except: Option<ConnId>,
    ) -> Result<(), BrokerError> {
        self.broker.publish_volatile(&inbox_channel(user), payload::encode_frame(except, frame)).await
    }

    /// [`Hub::send_ephemeral`] to each of `users` (typing in a group), in
    /// one batched volatile publish (one round trip per broker instance).
    /// Returns how many inboxes it was not published to (lost, never retried).
    pub async fn send_ephemeral_to_users(&self, users: &[UserId], frame: &Utf8Bytes, except: Option<ConnId>) -> usize {
        let channels: Vec<String> = users.iter().map(|u| inbox_channel(*u)).collect();
        self.broker.publish_volatile_many(&channels, payload::encode_frame(except, frame)).await
    }

    /// Closes some of `user`'s sockets, on every node, with `code`.
    pub async fn close_sockets(&self, user: UserId, target: CloseTarget, code: u16) -> Result<(), BrokerError> {
        self.publish_inbox(user, payload::encode_close(code, &target)).await.map(|_| ())
    }

    /// True if one more socket of `user` may attach on this node.
    pub fn has_room(&self, user: UserId) -> bool {
        self.local.local_count(user) < self.options.max_per_user
    }

    /// Sockets of `user` attached on this node.
    pub fn local_count(&self, user: UserId) -> usize {
        self.local.local_count(user)
    }

    /// Starts the hub's background work (gap filling, the outbox, presence
    /// refresh); each task ends when `stop` turns true.
    pub async fn spawn_tasks(self: &Arc<Self>, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![
            tokio::spawn(self.clone().fill_worker(stop.clone())),
            tokio::spawn(self.clone().presence_refresher(stop.clone())),
        ];
        if let Some(rx) = self.outbox_rx.lock().await.take() {
            tasks.push(tokio::spawn(self.clone().outbox_worker(rx, stop)));
        }
        tasks
    }

    async fn fill_worker(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.local.fill_wake.notified() => {}
                _ = stop.changed() => return,
            }
            let users = self.local.take_fills();
            let hub: &Hub = &self;
            futures_util::stream::iter(users).for_each_concurrent(FILL_CONCURRENCY, |u| hub.fill_user(u)).await;
        }
    }

    /// Fills the gap of every holding socket of `user` from history.
    async fn fill_user(&self, user: UserId) {
        let holding: Vec<ConnHandle> = self
            .local
            .users
            .get(&user)
            .map(|v| v.iter().filter(|c| c.holding()).cloned().collect())
            .unwrap_or_default();
        let channel = inbox_channel(user);
        for c in holding {
            let (epoch, last) = c.position();
            let after = if epoch.is_some() { last } else { 0 };
            let limit = if epoch.is_some() { self.options.recover_limit } else { 0 };
            // On failure the socket goes on live and the client is told to sync.
            let history = self.history(&channel, after, limit).await;
            if c.release(history, Some("gap")).refill {
                self.local.request_fill(user);
            }
        }
    }

    async fn outbox_worker(self: Arc<Self>, mut rx: mpsc::Receiver<(String, Bytes)>, mut stop: watch::Receiver<bool>) {
        loop {
            let (channel, payload) = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => return },
                _ = stop.changed() => return,
            };
            let mut backoff = Duration::from_millis(100);
            loop {
                match self.broker.publish(&channel, payload.clone()).await {
                    Ok(_) => break,
                    Err(e) => tracing::debug!(error = %e, channel, "hub: outbox publish failed; retrying"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests;
