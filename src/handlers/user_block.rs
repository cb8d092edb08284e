//! `user.block`, `user.unblock`, `user.blocks`, and the block rules other
//! handlers apply. A block is one-way in the store and acts both ways on
//! direct messages and follows: neither side can message or follow the
//! other while it stands (the blocker unblocks first). Only the blocked
//! user is kept out of the blocker's presence and group adds. Blocking
//! ends follows in both directions and, on every node, the blocked user's
//! presence watches of the blocker. The blocked user is not told; see
//! protocol.md ("Safety") for what each refusal says.

use super::lookup::user_named;
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result, StoreError, bad_request};
use crate::model::{User, UserId};
use crate::protocol::{BlockList, BlockListReply, BlockReply, BlockTarget};
use crate::store::safety::BlockOutcome;
use crate::validate;

/// Default and largest page of `user.blocks`.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

/// `forbidden` when either of `me` and `peer` blocks the other: the
/// message says which side acts, never that the peer blocked me.
/// The same rule `Store::send_direct` applies with its write
/// ([`crate::store::check_blocks`]), worded for `what`.
pub async fn check_direct(app: &App, me: UserId, peer: UserId, what: &str) -> Result<()> {
    match crate::store::check_blocks(&*app.store, me, peer).await {
        Err(StoreError::SenderBlocks) => {
            Err(Error::Forbidden(format!("you blocked this user; unblock them to {what}")))
        }
        Err(StoreError::RecipientBlocks) => Err(Error::Forbidden(format!("you cannot {what} this user"))),
        other => Ok(other?),
    }
}

/// `forbidden` naming the first of `users` who blocks `adder` (a group
/// add is refused whole).
pub async fn check_group_adds(app: &App, adder: UserId, users: &[User]) -> Result<()> {
    let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
    let blockers = app.store.blockers_of(adder, &ids).await?;
    match users.iter().find(|u| blockers.contains(&u.id)) {
        Some(u) => Err(Error::Forbidden(format!("`{}` cannot be added to a group by you", u.username))),
        None => Ok(()),
    }
}

pub async fn block(app: &App, conn: &mut ConnState, r: BlockTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let target = user_named(app, &r.username).await?;
    if target.id == me {
        return Err(bad_request("you cannot block yourself"));
    }
    let changed = match app.store.block(me, target.id, app.ids.next_id(), app.config.max_blocks).await? {
        BlockOutcome::Added => true,
        BlockOutcome::Already => false,
        BlockOutcome::Full => {
            return Err(Error::LimitExceeded(format!("you can block at most {} users", app.config.max_blocks)));
        }
    };
    // Follows end both ways (the blocked side may be deleted meanwhile).
    app.store.remove_follow(me, target.id).await?;
    match app.store.remove_follow(target.id, me).await {
        Ok(_) | Err(StoreError::UserGone) => {}
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = app.hub.end_watches(me, target.id).await {
        tracing::warn!(error = %e, "block stored; presence watches not ended on every node");
    }
    reply(&BlockReply { username: target.username, blocked: true, changed })
}

pub async fn unblock(app: &App, conn: &mut ConnState, r: BlockTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let target = user_named(app, &r.username).await?;
    let changed = app.store.unblock(me, target.id).await?;
    reply(&BlockReply { username: target.username, blocked: false, changed })
}

pub async fn list(app: &App, conn: &mut ConnState, r: BlockList) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let before = match r.after.as_deref() {
        None => None,
        Some(a) => {
            Some(a.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| bad_request("after must be a next_after"))?)
        }
    };
    let page = app.store.blocks(me, before, limit).await?;
    let next_after = if page.len() == limit { page.last().map(|b| b.id.to_string()) } else { None };
    let mut users = Vec::with_capacity(page.len());
    for b in &page {
        // Deletion removes blocks; one racing it is left out.
        if let Some(u) = app.store.user_by_id(b.user).await? {
            users.push(user_view(&u));
        }
    }
    reply(&BlockListReply { users, next_after })
}
