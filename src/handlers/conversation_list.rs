//! `conversation.list`: my direct conversations and groups, most recent
//! first (a group without messages sorts by its creation), merged from the
//! store's two lists, each read up to the page size.

use super::group_access::{group_view, message_views};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::Result;
use crate::model::{ConversationKind, MessageId};
use crate::protocol::{ConversationList, ConversationListReply, ConversationView};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: ConversationList) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let direct = app.store.conversations(me, r.before, limit).await?;
    let groups = app.store.group_conversations(me, r.before, limit).await?;
    let mut entries: Vec<(MessageId, ConversationView)> = Vec::with_capacity(direct.len() + groups.len());
    for c in direct {
        let last = message_views(app, std::slice::from_ref(&c.last_message)).await?.pop();
        let view = ConversationView {
            conversation_id: c.conversation_id.to_string(),
            kind: ConversationKind::Direct.as_str().into(),
            with: Some(user_view(&c.peer)),
            group: None,
            last_message: last,
        };
        entries.push((c.last_message.id, view));
    }
    for g in groups {
        let last = match &g.last_message {
            Some(m) => message_views(app, std::slice::from_ref(m)).await?.pop(),
            None => None,
        };
        let view = ConversationView {
            conversation_id: g.group.conversation_id().to_string(),
            kind: ConversationKind::Group.as_str().into(),
            with: None,
            group: Some(group_view(&g.group)),
            last_message: last,
        };
        entries.push((g.activity(), view));
    }
    entries.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    entries.truncate(limit);
    let next_before = if entries.len() == limit { entries.last().map(|(at, _)| at.to_string()) } else { None };
    reply(&ConversationListReply { conversations: entries.into_iter().map(|(_, v)| v).collect(), next_before })
}
