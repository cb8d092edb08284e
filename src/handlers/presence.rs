//! `presence.query`, `presence.watch`, `presence.unwatch`: who is online,
//! and `presence.changed` events for watched users, across nodes.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::hub::{UserPresence, Watcher};
use crate::protocol::{PresenceReply, PresenceUsers};

/// Most usernames per request.
pub const MAX_USERNAMES: usize = 100;
/// Most users one socket may watch.
pub const MAX_WATCHED: usize = 100;

/// Resolves usernames to users, leaving unknown ones out.
async fn resolve(app: &App, r: &PresenceUsers) -> Result<Vec<UserPresence>> {
    if r.usernames.len() > MAX_USERNAMES {
        return Err(Error::LimitExceeded(format!("at most {MAX_USERNAMES} usernames per request")));
    }
    let mut out = Vec::with_capacity(r.usernames.len());
    for name in &r.usernames {
        if crate::validate::username(name).is_err() {
            continue;
        }
        if let Some(u) = app.store.user_by_username(name).await? {
            if !out.iter().any(|p: &UserPresence| p.id == u.user.id) {
                out.push(UserPresence { id: u.user.id, username: u.user.username });
            }
        }
    }
    Ok(out)
}

/// `presence.query`: the presence of each known user.
pub async fn query(app: &App, _conn: &mut ConnState, r: PresenceUsers) -> Result<Reply> {
    let users = resolve(app, &r).await?;
    reply(&PresenceReply { users: app.hub.presence(&users).await? })
}

/// `presence.watch`: watch users (bounded per socket); replies with their presence.
pub async fn watch(app: &App, conn: &mut ConnState, r: PresenceUsers) -> Result<Reply> {
    let users = resolve(app, &r).await?;
    let new = users.iter().filter(|u| !conn.watching.contains(&u.id)).count();
    if conn.watching.len() + new > MAX_WATCHED {
        return Err(Error::LimitExceeded(format!("a socket may watch at most {MAX_WATCHED} users")));
    }
    for u in &users {
        if !conn.watching.contains(&u.id) {
            let w = Watcher { id: conn.id, tx: conn.tx.clone(), control: conn.control.clone() };
            app.hub.watch(u.id, w).await;
            conn.watching.push(u.id);
        }
    }
    reply(&PresenceReply { users: app.hub.presence(&users).await? })
}

/// `presence.unwatch`: stop watching users.
pub async fn unwatch(app: &App, conn: &mut ConnState, r: PresenceUsers) -> Result<Reply> {
    let users = resolve(app, &r).await?;
    for u in &users {
        if let Some(i) = conn.watching.iter().position(|w| *w == u.id) {
            conn.watching.swap_remove(i);
            app.hub.unwatch(u.id, conn.id).await;
        }
    }
    reply(&serde_json::json!({}))
}
