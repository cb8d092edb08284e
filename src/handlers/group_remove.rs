//! `group.remove` (owner and admins remove a member; only the owner
//! removes an admin, nobody removes the owner) and `group.leave`. The
//! remaining members and the removed member's own sockets get
//! `group.member_removed`; when the owner leaves, the oldest admin (else
//! the oldest member) becomes owner; the last member leaving ends the group.

use super::group_access::{self as access, group_view};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::{GroupId, Role, User};
use crate::protocol::{GroupMemberRemoved, GroupMemberTarget, GroupTarget, events};

pub async fn remove(app: &App, conn: &mut ConnState, r: GroupMemberTarget) -> Result<Reply> {
    let (me, id, mine) = access::manager(app, conn, &r.conversation).await?;
    let not_member = || Error::NotFound(format!("`{}` is not a member", r.username));
    let target = access::resolve(app, std::slice::from_ref(&r.username)).await?.pop().ok_or_else(not_member)?;
    if target.id == me.id {
        return Err(bad_request("to leave a group use group.leave"));
    }
    let theirs = app.store.member(id, target.id).await?.ok_or_else(not_member)?;
    if theirs.role == Role::Owner || (theirs.role == Role::Admin && mine.role != Role::Owner) {
        return Err(Error::Forbidden("only the owner removes admins, and nobody removes the owner".into()));
    }
    finish(app, conn, id, &target, &me).await
}

pub async fn leave(app: &App, conn: &mut ConnState, r: GroupTarget) -> Result<Reply> {
    let (me, id, _) = access::membership(app, conn, &r.conversation).await?;
    finish(app, conn, id, &me, &me).await
}

/// Removes `user`, tells everyone concerned, and builds the reply.
async fn finish(app: &App, conn: &ConnState, id: GroupId, user: &User, by: &User) -> Result<Reply> {
    let removal = app.store.remove_group_member(id, user.id).await?.ok_or_else(access::no_such_group)?;
    let group = if removal.ended { None } else { app.store.group(id).await? };
    let event = GroupMemberRemoved {
        conversation_id: id.to_string(),
        user: user_view(user),
        by: user_view(by),
        new_owner_id: removal.new_owner.map(|u| u.to_string()),
        ended: removal.ended,
        group: group.as_ref().map(group_view),
    };
    let mut to = if removal.ended { Vec::new() } else { app.store.group_member_ids(id).await? };
    to.push(user.id);
    access::publish(app, &to, events::GROUP_MEMBER_REMOVED, &event, Some(conn.id)).await;
    reply(&event)
}
