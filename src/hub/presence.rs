//! Presence: a user is online while any of their sockets is open on any
//! node. The node holds a record per local user in the broker (with a TTL,
//! refreshed), publishes `presence.changed` on `pr:<user id>` when a user
//! comes online or goes offline, and fans those events out to local
//! watchers. A node that dies without closing its sockets lets its records
//! expire: its users turn offline within the TTL, without an event.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::local::Watcher;
use super::{ConnId, Hub, PRESENCE_PREFIX};
use crate::broker::{PresenceState, now_ms};
use crate::error::BrokerError;
use crate::model::{User, UserId, rfc3339};
use crate::protocol::{EventFrame, PresenceView, events};

/// A user whose presence is asked for.
#[derive(Clone, Debug)]
pub struct UserPresence {
    /// The user.
    pub id: UserId,
    /// Their username (the wire names users by it).
    pub username: String,
}

fn channel(user: UserId) -> String {
    format!("{PRESENCE_PREFIX}{user}")
}

/// The wire view of a presence state.
pub fn view(username: &str, s: PresenceState) -> PresenceView {
    PresenceView { username: username.to_owned(), online: s.online, last_seen: s.last_seen_ms.map(rfc3339) }
}

impl Hub {
    async fn announce(&self, user: &User, state: PresenceState) {
        let data = view(&user.username, state);
        let frame = EventFrame { kind: "event", event: events::PRESENCE_CHANGED, data: &data };
        let bytes = match serde_json::to_vec(&frame) {
            Ok(b) => Bytes::from(b),
            Err(e) => return tracing::warn!(error = %e, "presence: cannot encode an event"),
        };
        if let Err(e) = self.broker.publish_volatile(&channel(user.id), bytes).await {
            tracing::warn!(error = %e, user = %user.id, "presence: change not published");
        }
    }

    /// Records that `user` has a socket here; announces if they came online.
    pub(super) async fn presence_joined(&self, user: &User) {
        let key = user.id.to_string();
        match self.broker.presence_join(&key, &self.node, self.options.presence_ttl).await {
            Ok(true) => self.announce(user, PresenceState { online: true, last_seen_ms: Some(now_ms()) }).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, user = %user.id, "presence: join not recorded"),
        }
    }

    /// Records that `user` has no socket here; announces if they went offline.
    pub(super) async fn presence_left(&self, user: &User) {
        let key = user.id.to_string();
        match self.broker.presence_leave(&key, &self.node).await {
            Ok(true) => self.announce(user, PresenceState { online: false, last_seen_ms: Some(now_ms()) }).await,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, user = %user.id, "presence: leave not recorded"),
        }
    }

    /// The presence of each user, in order.
    pub async fn presence(&self, users: &[UserPresence]) -> Result<Vec<PresenceView>, BrokerError> {
        let keys: Vec<String> = users.iter().map(|u| u.id.to_string()).collect();
        let states = self.broker.presence_query(&keys).await?;
        Ok(users.iter().zip(states).map(|(u, s)| view(&u.username, s)).collect())
    }

    /// Makes `watcher` receive `presence.changed` for `user`.
    pub async fn watch(&self, user: UserId, watcher: Watcher) {
        let first = {
            let mut ws = self.local.watchers.entry(user).or_default();
            ws.retain(|w| w.id != watcher.id);
            ws.push(watcher);
            ws.len() == 1
        };
        if first {
            if let Err(e) = self.broker.subscribe(&channel(user)).await {
                tracing::warn!(error = %e, user = %user, "presence: subscribe failed; retried when the broker is back");
            }
        }
    }

    /// Ends every watch by `watcher`'s sockets of `user`'s presence, on
    /// every node (`user` blocked `watcher`). Volatile like presence
    /// events: a watch whose node missed it stops at its socket's next
    /// watch request, which checks blocks again.
    pub async fn end_watches(&self, user: UserId, watcher: UserId) -> Result<(), BrokerError> {
        let payload = Bytes::from(format!("{}{}", super::payload::END_WATCH, watcher.0));
        self.broker.publish_volatile(&channel(user), payload).await
    }

    /// Stops `conn` watching `user`.
    pub async fn unwatch(&self, user: UserId, conn: ConnId) {
        let last = self
            .local
            .watchers
            .remove_if_mut(&user, |_, ws| {
                ws.retain(|w| w.id != conn);
                ws.is_empty()
            })
            .is_some();
        if last {
            if let Err(e) = self.broker.unsubscribe(&channel(user)).await {
                tracing::warn!(error = %e, user = %user, "presence: unsubscribe failed");
            }
        }
    }

    /// Refreshes this node's presence records every third of their TTL
    /// (recreating them after the broker lost them).
    pub(super) async fn presence_refresher(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let every = (self.options.presence_ttl / 3).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            let keys: Vec<String> = self.local.users.iter().map(|e| e.key().to_string()).collect();
            for chunk in keys.chunks(1000) {
                if let Err(e) = self.broker.presence_refresh(chunk, &self.node, self.options.presence_ttl).await {
                    tracing::warn!(error = %e, "presence: refresh failed");
                    break;
                }
            }
        }
    }
}
