//! `group.members`: a page of a group's members with their roles, by user id.

use super::group_access::{self as access, member_view};
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{GroupMembers, GroupMembersReply};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 200;

pub async fn handle(app: &App, conn: &mut ConnState, r: GroupMembers) -> Result<Reply> {
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let (_, id, _) = access::membership(app, conn, &r.conversation).await?;
    let page = app.store.group_members(id, r.after, limit).await?;
    let next_after = if page.len() == limit { page.last().map(|m| m.user.id.to_string()) } else { None };
    reply(&GroupMembersReply { members: page.iter().map(member_view).collect(), next_after })
}
