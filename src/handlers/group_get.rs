//! `group.get`: a group I am a member of, with my role.

use super::group_access::{self as access, group_view};
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{GroupEnvelope, GroupTarget};

pub async fn handle(app: &App, conn: &mut ConnState, r: GroupTarget) -> Result<Reply> {
    let (_, id, me) = access::membership(app, conn, &r.conversation).await?;
    let group = access::current(app, id).await?;
    reply(&GroupEnvelope { group: group_view(&group), role: Some(me.role.as_str().into()), by: None, member: None })
}
