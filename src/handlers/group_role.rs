//! `group.role`: the owner makes a member an admin or an admin a member;
//! every member gets `group.updated` with the changed member.

use super::group_access::{self as access, group_view, member_view};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::Role;
use crate::protocol::{GroupEnvelope, GroupRole, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: GroupRole) -> Result<Reply> {
    let role = access::settable_role(&r.role)?;
    let (me, id, mine) = access::membership(app, conn, &r.conversation).await?;
    if mine.role != Role::Owner {
        return Err(Error::Forbidden("only the group's owner changes roles".into()));
    }
    let not_member = || Error::NotFound(format!("`{}` is not a member", r.username));
    let target = access::resolve(app, std::slice::from_ref(&r.username)).await?.pop().ok_or_else(not_member)?;
    if target.id == me.id {
        return Err(bad_request("the owner's role does not change (ownership passes when the owner leaves)"));
    }
    if !app.store.set_group_role(id, target.id, role).await? {
        return Err(not_member());
    }
    let member = app.store.member(id, target.id).await?.ok_or_else(not_member)?;
    let group = access::current(app, id).await?;
    let members = app.store.group_member_ids(id).await?;
    let event = GroupEnvelope {
        group: group_view(&group),
        role: None,
        by: Some(user_view(&me)),
        member: Some(member_view(&member)),
    };
    access::publish(app, &members, events::GROUP_UPDATED, &event, Some(conn.id)).await;
    reply(&GroupEnvelope { role: Some(Role::Owner.as_str().into()), by: None, ..event })
}
