//! `presence.query`, `presence.watch`, `presence.unwatch`: who is online,
//! and `presence.changed` events for watched users, across nodes. A user
//! who blocks me shows offline to me, and I cannot watch them.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::broker::PresenceState;
use crate::error::{Error, Result};
use crate::hub::{UserPresence, Watcher};
use crate::model::UserId;
use crate::protocol::{PresenceReply, PresenceUsers, PresenceView};

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

/// Presence views of `users` as `me` may see them: a user who blocks me
/// shows offline with no last-seen time (as someone who never came online).
async fn views(app: &App, users: &[UserPresence], blockers: &[UserId]) -> Result<Vec<PresenceView>> {
    let mut out = app.hub.presence(users).await?;
    for (v, u) in out.iter_mut().zip(users) {
        if blockers.contains(&u.id) {
            *v = crate::hub::presence_view(&u.username, PresenceState { online: false, last_seen_ms: None });
        }
    }
    Ok(out)
}

/// Those of `users` who block `me`.
async fn blockers(app: &App, me: UserId, users: &[UserPresence]) -> Result<Vec<UserId>> {
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    Ok(app.store.blockers_of(me, &ids).await?)
}

/// `presence.query`: the presence of each known user.
pub async fn query(app: &App, conn: &mut ConnState, r: PresenceUsers) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let users = resolve(app, &r).await?;
    let blocked = blockers(app, me, &users).await?;
    reply(&PresenceReply { users: views(app, &users, &blocked).await? })
}

/// `presence.watch`: watch users (bounded per socket); replies with their presence.
pub async fn watch(app: &App, conn: &mut ConnState, r: PresenceUsers) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let users = resolve(app, &r).await?;
    let blocked = blockers(app, me, &users).await?;
    let new = users.iter().filter(|u| !conn.watching.contains(&u.id)).count();
    if conn.watching.len() + new > MAX_WATCHED {
        return Err(Error::LimitExceeded(format!("a socket may watch at most {MAX_WATCHED} users")));
    }
    for u in &users {
        if blocked.contains(&u.id) {
            // No watch (and a watch from before the block ends).
            if let Some(i) = conn.watching.iter().position(|w| *w == u.id) {
                conn.watching.swap_remove(i);
                app.hub.unwatch(u.id, conn.id).await;
            }
        } else if !conn.watching.contains(&u.id) {
            let w = Watcher { id: conn.id, tx: conn.tx.clone(), control: conn.control.clone(), user: me };
            app.hub.watch(u.id, w).await;
            conn.watching.push(u.id);
        }
    }
    reply(&PresenceReply { users: views(app, &users, &blocked).await? })
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
