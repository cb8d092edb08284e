//! The hub: this node's registry of live sockets, sharded by user
//! (`dashmap`), and the one way to reach a user's sockets on any node.
//!
//! Everything addressed to a user goes through the broker on the user's
//! inbox channel (`ib:<user id>`), even on one node, and comes back through
//! [`LocalHub::deliver`], which pushes it into each local socket's bounded
//! queue. A full queue closes that socket as a slow consumer; nobody else
//! waits for it. The node subscribes to an inbox when its first local socket
//! of that user attaches and unsubscribes when the last one leaves.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::broker::{Broker, BrokerSink};
use crate::error::{BrokerError, Error};
use crate::metrics;
use crate::model::{SessionId, UserId};
use crate::protocol::close;

/// Identifies one socket, unique across nodes for practical purposes
/// (a random node prefix and a counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Out-of-band control of one socket: a way to ask it to close.
#[derive(Debug, Default)]
pub struct ConnControl {
    reason: OnceLock<(u16, &'static str)>,
    notify: Notify,
}

impl ConnControl {
    /// Asks the socket to close with `code`; the first request wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.reason.set((code, reason)).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Resolves once [`Self::close`] was called, with its code and reason.
    pub async fn closed(&self) -> (u16, &'static str) {
        loop {
            if let Some(r) = self.reason.get() {
                return *r;
            }
            self.notify.notified().await;
        }
    }
}

/// What the hub keeps for one attached socket.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    pub id: ConnId,
    pub session: SessionId,
    pub tx: mpsc::Sender<Utf8Bytes>,
    pub control: Arc<ConnControl>,
}

/// Which of a user's sockets a close applies to.
#[derive(Clone, Debug)]
pub enum CloseTarget {
    /// Every socket of this session.
    Session(SessionId),
    /// Every socket of the user except those of this session (if any).
    AllExcept(Option<SessionId>),
}

/// The node-local socket registry; the broker's sink.
#[derive(Default)]
pub struct LocalHub {
    users: DashMap<UserId, Vec<ConnHandle>>,
}

fn inbox_channel(user: UserId) -> String {
    format!("ib:{user}")
}

// Payload format on an inbox channel (text header line, then body):
//   "F <except conn id or 0>\n<frame>"            deliver a frame
//   "C <code> S <session>\n"                      close one session's sockets
//   "C <code> X <session or ->\n"                 close all but a session's
fn encode_frame(except: Option<ConnId>, frame: &Utf8Bytes) -> Bytes {
    let header = format!("F {}\n", except.map_or(0, |c| c.0));
    let mut b = BytesMut::with_capacity(header.len() + frame.len());
    b.put_slice(header.as_bytes());
    b.put_slice(frame.as_bytes());
    b.freeze()
}

fn encode_close(code: u16, target: &CloseTarget) -> Bytes {
    let s = match target {
        CloseTarget::Session(s) => format!("C {code} S {s}\n"),
        CloseTarget::AllExcept(s) => {
            format!("C {code} X {}\n", s.as_ref().map_or("-", |s| s.0.as_str()))
        }
    };
    Bytes::from(s)
}

impl LocalHub {
    fn deliver_frame(&self, user: UserId, except: u64, frame: Utf8Bytes) {
        let Some(conns) = self.users.get(&user) else { return };
        let m = metrics::global();
        for c in conns.iter().filter(|c| c.id.0 != except) {
            match c.tx.try_send(frame.clone()) {
                Ok(()) => m.events_delivered.inc(),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    m.slow_consumer_closes.inc();
                    tracing::debug!(user = %user, conn = c.id.0, "outbound queue full: closing slow consumer");
                    c.control.close(close::SLOW_CONSUMER, "slow consumer: reconnect and sync");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    fn deliver_close(&self, user: UserId, code: u16, target: CloseTarget) {
        let Some(conns) = self.users.get(&user) else { return };
        for c in conns.iter() {
            let hit = match &target {
                CloseTarget::Session(s) => &c.session == s,
                CloseTarget::AllExcept(s) => s.as_ref() != Some(&c.session),
            };
            if hit {
                c.control.close(code, "session ended");
            }
        }
    }

    /// Local sockets of `user` on this node.
    pub fn local_count(&self, user: UserId) -> usize {
        self.users.get(&user).map_or(0, |v| v.len())
    }
}

impl BrokerSink for LocalHub {
    fn deliver(&self, channel: &str, payload: Bytes) {
        let Some(user) = channel.strip_prefix("ib:").and_then(|s| s.parse().ok()).map(UserId) else {
            return;
        };
        let Some(nl) = payload.iter().position(|b| *b == b'\n') else { return };
        let header = String::from_utf8_lossy(&payload[..nl]).into_owned();
        let mut parts = header.split(' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("F"), Some(except), None, None) => {
                let except = except.parse().unwrap_or(0);
                if let Ok(frame) = Utf8Bytes::try_from(payload.slice(nl + 1..)) {
                    self.deliver_frame(user, except, frame);
                }
            }
            (Some("C"), Some(code), Some(kind), Some(session)) => {
                let code = code.parse().unwrap_or(close::SESSION_REVOKED);
                let target = match (kind, session) {
                    ("S", s) => CloseTarget::Session(SessionId(s.to_owned())),
                    ("X", "-") => CloseTarget::AllExcept(None),
                    (_, s) => CloseTarget::AllExcept(Some(SessionId(s.to_owned()))),
                };
                self.deliver_close(user, code, target);
            }
            _ => tracing::warn!(channel, "hub: ignoring a malformed broker payload"),
        }
    }
}

/// The registry plus the broker: attach sockets, reach users anywhere.
pub struct Hub {
    local: Arc<LocalHub>,
    broker: Arc<dyn Broker>,
    max_per_user: usize,
    next_conn: AtomicU64,
}

impl Hub {
    /// A hub whose broker is built by `open_broker` around the local registry.
    pub async fn new<F, Fut>(max_per_user: usize, open_broker: F) -> Result<Hub, BrokerError>
    where
        F: FnOnce(Arc<dyn BrokerSink>) -> Fut,
        Fut: std::future::Future<Output = Result<Arc<dyn Broker>, BrokerError>>,
    {
        let local = Arc::new(LocalHub::default());
        let broker = open_broker(local.clone()).await?;
        let prefix = u64::from(rand_u32()) << 32;
        Ok(Hub { local, broker, max_per_user, next_conn: AtomicU64::new(prefix) })
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Registers a socket as `user`'s. Refuses past the per-user limit.
    pub async fn attach(&self, user: UserId, handle: ConnHandle) -> Result<(), Error> {
        let first = {
            let mut entry = self.local.users.entry(user).or_default();
            if entry.len() >= self.max_per_user {
                return Err(Error::LimitExceeded(format!("at most {} open sockets per user", self.max_per_user)));
            }
            entry.push(handle);
            entry.len() == 1
        };
        if first {
            self.broker.subscribe(&inbox_channel(user)).await?;
        }
        Ok(())
    }

    /// Removes a socket; unsubscribes the user's inbox after the last one.
    pub async fn detach(&self, user: UserId, conn: ConnId) {
        let last = self
            .local
            .users
            .remove_if_mut(&user, |_, v| {
                v.retain(|c| c.id != conn);
                v.is_empty()
            })
            .is_some();
        if last {
            if let Err(e) = self.broker.unsubscribe(&inbox_channel(user)).await {
                tracing::warn!(error = %e, user = %user, "hub: unsubscribe failed");
            }
        }
    }

    /// Sends a serialized frame to every socket of `user`, on every node,
    /// except the socket `except` (the one that asked).
    pub async fn send_to_user(
        &self,
        user: UserId,
        frame: &Utf8Bytes,
        except: Option<ConnId>,
    ) -> Result<(), BrokerError> {
        let started = std::time::Instant::now();
        let out = self.broker.publish(&inbox_channel(user), encode_frame(except, frame)).await;
        metrics::global().broker_publish_seconds.observe(metrics::since(started));
        out
    }

    /// Closes some of `user`'s sockets, on every node, with `code`.
    pub async fn close_sockets(&self, user: UserId, target: CloseTarget, code: u16) -> Result<(), BrokerError> {
        self.broker.publish(&inbox_channel(user), encode_close(code, &target)).await
    }

    /// True if one more socket of `user` may attach on this node.
    pub fn has_room(&self, user: UserId) -> bool {
        self.local.local_count(user) < self.max_per_user
    }

    /// Sockets of `user` attached on this node.
    pub fn local_count(&self, user: UserId) -> usize {
        self.local.local_count(user)
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64, session: &str, cap: usize) -> (ConnHandle, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(cap);
        let h = ConnHandle {
            id: ConnId(id),
            session: SessionId(session.into()),
            tx,
            control: Arc::new(ConnControl::default()),
        };
        (h, rx)
    }

    #[test]
    fn frames_reach_every_socket_but_the_excepted_one() {
        let hub = LocalHub::default();
        let (a, mut ra) = handle(1, "s1", 4);
        let (b, mut rb) = handle(2, "s2", 4);
        hub.users.insert(UserId(7), vec![a, b]);
        let frame = Utf8Bytes::from("{\"x\":1}");
        hub.deliver("ib:7", encode_frame(Some(ConnId(1)), &frame));
        assert!(ra.try_recv().is_err());
        assert_eq!(rb.try_recv().unwrap(), frame);
    }

    #[test]
    fn a_full_queue_closes_only_that_socket() {
        let hub = LocalHub::default();
        let (a, _ra) = handle(1, "s1", 1);
        let (b, _rb) = handle(2, "s2", 8);
        let (ca, cb) = (a.control.clone(), b.control.clone());
        hub.users.insert(UserId(7), vec![a, b]);
        let frame = Utf8Bytes::from("{}");
        for _ in 0..3 {
            hub.deliver("ib:7", encode_frame(None, &frame));
        }
        assert_eq!(ca.reason.get().map(|r| r.0), Some(close::SLOW_CONSUMER));
        assert!(cb.reason.get().is_none());
    }

    #[test]
    fn close_targets_pick_the_right_sessions() {
        let hub = LocalHub::default();
        let (a, _ra) = handle(1, "s1", 1);
        let (b, _rb) = handle(2, "s2", 1);
        let (ca, cb) = (a.control.clone(), b.control.clone());
        hub.users.insert(UserId(7), vec![a, b]);
        hub.deliver("ib:7", encode_close(4500, &CloseTarget::Session(SessionId("s2".into()))));
        assert!(ca.reason.get().is_none());
        assert_eq!(cb.reason.get().map(|r| r.0), Some(4500));
        hub.deliver("ib:7", encode_close(4500, &CloseTarget::AllExcept(Some(SessionId("s2".into())))));
        assert_eq!(ca.reason.get().map(|r| r.0), Some(4500));
    }
}
