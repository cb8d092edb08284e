//! `group.update`: title and topic (owner and admins); every member gets
//! `group.updated`.

use super::group_access::{self as access, group_view};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::{Result, bad_request};
use crate::model::GroupUpdate as Update;
use crate::protocol::{GroupEnvelope, GroupUpdate, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: GroupUpdate) -> Result<Reply> {
    let (me, id, m) = access::manager(app, conn, &r.conversation).await?;
    let update = Update {
        title: r.title.as_deref().map(|t| access::title(app, t)).transpose()?,
        topic: r.topic.as_deref().map(|t| access::topic(app, t)).transpose()?,
    };
    if update.title.is_none() && update.topic.is_none() {
        return Err(bad_request("nothing to change: give title or topic"));
    }
    let group = app.store.update_group(id, &update).await?.ok_or_else(access::no_such_group)?;
    let members = app.store.group_member_ids(id).await?;
    let event = GroupEnvelope { group: group_view(&group), role: None, by: Some(user_view(&me)), member: None };
    access::publish(app, &members, events::GROUP_UPDATED, &event, Some(conn.id)).await;
    reply(&GroupEnvelope { group: group_view(&group), role: Some(m.role.as_str().into()), by: None, member: None })
}
