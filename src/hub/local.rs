//! The node-local registry: live sockets per user and presence watchers per
//! watched user, sharded by user (`dashmap`). It is the broker's sink: it
//! fans each delivered payload out to the local sockets, checking each
//! socket's inbox position, and queues users whose sockets need a gap filled.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::conn::{ConnControl, ConnHandle, ConnId};
use super::payload::{self, Payload};
use super::{CloseTarget, INBOX_PREFIX, PRESENCE_PREFIX};
use crate::broker::{BrokerSink, Position};
use crate::model::UserId;

/// A socket watching someone's presence.
#[derive(Clone, Debug)]
pub struct Watcher {
    /// The watching socket.
    pub id: ConnId,
    /// Its queue.
    pub tx: super::outq::OutSender,
    /// Its close control (a full queue closes it).
    pub control: Arc<ConnControl>,
    /// The watching socket's user (a block by the watched user ends the watch).
    pub user: UserId,
}

/// The node-local socket registry; the broker's sink.
pub struct LocalHub {
    pub(super) users: DashMap<UserId, Vec<ConnHandle>>,
    pub(super) watchers: DashMap<UserId, Vec<Watcher>>,
    fills: Mutex<HashSet<UserId>>,
    pub(super) fill_wake: Notify,
    hold_limit: usize,
}

fn user_of(channel: &str, prefix: &str) -> Option<UserId> {
    channel.strip_prefix(prefix)?.parse().ok().map(UserId)
}

impl LocalHub {
    /// An empty registry; a socket holds at most `hold_limit` events while
    /// its gap is filled.
    pub fn new(hold_limit: usize) -> Self {
        LocalHub {
            users: DashMap::new(),
            watchers: DashMap::new(),
            fills: Mutex::default(),
            fill_wake: Notify::new(),
            hold_limit: hold_limit.max(1),
        }
    }

    /// Local sockets of `user` on this node.
    pub fn local_count(&self, user: UserId) -> usize {
        self.users.get(&user).map_or(0, |v| v.len())
    }

    /// Asks the fill worker to look at `user`'s holding sockets.
    pub fn request_fill(&self, user: UserId) {
        self.fills.lock().unwrap_or_else(|p| p.into_inner()).insert(user);
        self.fill_wake.notify_one();
    }

    /// Takes the users waiting for a fill.
    pub fn take_fills(&self) -> Vec<UserId> {
        self.fills.lock().unwrap_or_else(|p| p.into_inner()).drain().collect()
    }

    fn deliver_inbox(&self, user: UserId, pos: Option<Position>, raw: &Bytes) {
        let Some(msg) = payload::decode(raw) else {
            tracing::warn!(user = %user, "hub: ignoring a malformed inbox payload");
            return;
        };
        let Some(conns) = self.users.get(&user) else { return };
        let stamped = match (&msg, &pos) {
            (Payload::Frame { frame, .. }, Some(p)) => Some(payload::with_pos(frame, p)),
            (Payload::Frame { frame, .. }, None) => Some(frame.clone()),
            _ => None,
        };
        let mut gap = false;
        for c in conns.iter() {
            let mine = match &msg {
                Payload::Frame { except, .. } => stamped.clone().filter(|_| c.id.0 != *except),
                Payload::Close { code, target } => {
                    let hit = match target {
                        CloseTarget::Session(s) => &c.session == s,
                        CloseTarget::AllExcept(s) => s.as_ref() != Some(&c.session),
                    };
                    if hit {
                        c.control.close(*code, crate::protocol::close::reason(*code));
                    }
                    None
                }
            };
            match &pos {
                Some(p) => gap |= c.offer(p, mine, self.hold_limit),
                // Volatile publishes on an inbox are ephemeral (typing).
                None => {
                    if let Some(f) = mine {
                        c.push_ephemeral(f);
                    }
                }
            }
        }
        drop(conns);
        if gap {
            self.request_fill(user);
        }
    }

    fn deliver_presence(&self, user: UserId, raw: &Bytes) {
        // `U <user id>`: that user's watches of `user` end (a block). The
        // entry stays, maybe empty, so the sockets' own unwatch at close
        // still unsubscribes the channel.
        if let Some(rest) = raw.strip_prefix(payload::END_WATCH.as_bytes()) {
            let watcher = std::str::from_utf8(rest).ok().and_then(|s| s.trim().parse::<i64>().ok());
            if let (Some(w), Some(mut ws)) = (watcher, self.watchers.get_mut(&user)) {
                ws.retain(|x| x.user.0 != w);
            }
            return;
        }
        let Ok(frame) = Utf8Bytes::try_from(raw.clone()) else { return };
        let Some(ws) = self.watchers.get(&user) else { return };
        for w in ws.iter() {
            if let Err(super::outq::TrySendError::Full) = w.tx.try_send(frame.clone()) {
                crate::metrics::global().slow_consumer_closes.inc();
                w.control.close(crate::protocol::close::SLOW_CONSUMER, "slow consumer: reconnect and resume");
            }
        }
    }
}

impl BrokerSink for LocalHub {
    fn deliver(&self, channel: &str, position: Option<Position>, payload: Bytes) {
        if let Some(user) = user_of(channel, INBOX_PREFIX) {
            self.deliver_inbox(user, position, &payload);
        } else if let Some(user) = user_of(channel, PRESENCE_PREFIX) {
            self.deliver_presence(user, &payload);
        }
    }

    fn wants(&self, channel: &str) -> bool {
        if let Some(user) = user_of(channel, INBOX_PREFIX) {
            self.users.contains_key(&user)
        } else if let Some(user) = user_of(channel, PRESENCE_PREFIX) {
            self.watchers.contains_key(&user)
        } else {
            false
        }
    }

    fn resync(&self) {
        let mut gapped = Vec::new();
        for entry in self.users.iter() {
            for c in entry.value() {
                c.hold();
            }
            gapped.push(*entry.key());
        }
        tracing::info!(users = gapped.len(), "hub: link re-established; checking every local inbox for gaps");
        for u in gapped {
            self.request_fill(u);
        }
    }
}
