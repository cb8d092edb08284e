//! `group.add`: owner and admins add members (names that are unknown or
//! already members are left out); every member, the new ones included,
//! gets `group.member_added`. Refused with `limit_exceeded` past
//! `--max-group-members` (nobody is added then), and with `forbidden`
//! when one of them blocks the adder (nobody is added either).

use super::group_access::{self as access, group_view};
use super::user_block::check_group_adds;
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::AddOutcome;
use crate::protocol::{GroupAdd, GroupMembersAdded, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: GroupAdd) -> Result<Reply> {
    if r.members.is_empty() {
        return Err(bad_request("members must name at least one user"));
    }
    let (me, id, _) = access::manager(app, conn, &r.conversation).await?;
    let users = access::resolve(app, &r.members).await?;
    check_group_adds(app, me.id, &users).await?;
    let ids: Vec<_> = users.iter().map(|u| u.id).collect();
    let max = app.config.max_group_members;
    let added = match app.store.add_group_members(id, &ids, max).await? {
        AddOutcome::Added { added, .. } => added,
        AddOutcome::Full => return Err(Error::LimitExceeded(format!("a group has at most {max} members"))),
        AddOutcome::NoGroup => return Err(access::no_such_group()),
    };
    let group = access::current(app, id).await?;
    let members = users.iter().filter(|u| added.contains(&u.id)).map(user_view).collect();
    let event = GroupMembersAdded { group: group_view(&group), members, by: Some(user_view(&me)) };
    if !added.is_empty() {
        let everyone = app.store.group_member_ids(id).await?;
        access::publish(app, &everyone, events::GROUP_MEMBER_ADDED, &event, Some(conn.id)).await;
    }
    reply(&GroupMembersAdded { by: None, ..event })
}
