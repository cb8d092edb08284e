//! `group.create`: a new group with me as owner and the named users as
//! members; every member's sockets (mine but this one included) get
//! `group.member_added`. Limited to `--groups-per-hour` per user.

use super::group_access::{self as access, group_view};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{GroupId, NewGroup, Role};
use crate::protocol::{GroupCreate, GroupEnvelope, GroupMembersAdded, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: GroupCreate) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    let title = access::title(app, &r.title)?;
    let topic = access::topic(app, r.topic.as_deref().unwrap_or(""))?;
    let users = access::resolve(app, &r.members).await?;
    super::user_block::check_group_adds(app, me.id, &users).await?;
    let members: Vec<_> = users.iter().filter(|u| u.id != me.id).collect();
    if members.len() + 1 > app.config.max_group_members {
        let max = app.config.max_group_members;
        return Err(Error::LimitExceeded(format!("a group has at most {max} members")));
    }
    if !app.group_creates.try_take(&me.id) {
        return Err(Error::RateLimited("too many groups created; try again later".into()));
    }
    let new = NewGroup {
        id: GroupId(app.ids.next_id()),
        title,
        topic,
        owner: me.id,
        members: members.iter().map(|u| u.id).collect(),
    };
    let group = app.store.create_group(&new).await?;
    let everyone = app.store.group_member_ids(group.id).await?;
    let mut added = vec![user_view(&me)];
    added.extend(members.iter().map(|u| user_view(u)));
    let event = GroupMembersAdded { group: group_view(&group), members: added, by: Some(user_view(&me)) };
    access::publish(app, &everyone, events::GROUP_MEMBER_ADDED, &event, Some(conn.id)).await;
    reply(&GroupEnvelope { group: group_view(&group), role: Some(Role::Owner.as_str().into()), by: None, member: None })
}
