//! `conversation.list`: my direct conversations and groups, most recent
//! first (a group without messages sorts by its creation), merged from the
//! store's two lists, each with its unread count and my read pointer; the
//! first page also carries the unread total over my most recent
//! conversations.

use super::group_access::{group_view, message_views};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::Result;
use crate::model::{ConversationId, ConversationKind, MessageId};
use crate::protocol::{ConversationList, ConversationListReply, ConversationView};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// Unread counts are exact up to this many; past it a count is reported
/// as the cap with `unread_capped` (clients show "999+"). The store reads
/// at most `UNREAD_CAP + 1` messages per conversation to count.
pub const UNREAD_CAP: u32 = 999;
/// How many of my most recent conversations `unread_total` sums over.
pub const TOTAL_SCOPE: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: ConversationList) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    // The first page is a prefix of the total's scope: one read for both.
    let first = r.before.is_none();
    let want = if first { TOTAL_SCOPE.max(limit) } else { limit };
    let direct = app.store.conversations(me, r.before, want).await?;
    let groups = app.store.group_conversations(me, r.before, want).await?;
    let mut entries: Vec<(MessageId, ConversationView)> = Vec::with_capacity(direct.len() + groups.len());
    for c in direct {
        let last = message_views(app, std::slice::from_ref(&c.last_message)).await?.pop();
        let view = ConversationView {
            conversation_id: c.conversation_id.to_string(),
            kind: ConversationKind::Direct.as_str().into(),
            with: Some(user_view(&c.peer)),
            group: None,
            last_message: last,
            unread: 0,
            unread_capped: false,
            read_up_to: None,
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
            unread: 0,
            unread_capped: false,
            read_up_to: None,
        };
        entries.push((g.activity(), view));
    }
    entries.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    entries.truncate(want);
    let ids: Vec<ConversationId> = entries.iter().map(|(_, v)| ConversationId(v.conversation_id.clone())).collect();
    let unread = app.store.unread(me, &ids, UNREAD_CAP).await?;
    let (unread_total, unread_total_capped) = if first {
        let sum: u64 = unread.iter().map(|u| u64::from(u.count)).sum();
        let capped = sum > u64::from(UNREAD_CAP) || unread.iter().any(|u| u.capped);
        (Some(sum.min(u64::from(UNREAD_CAP)) as u32), Some(capped))
    } else {
        (None, None)
    };
    for ((_, view), u) in entries.iter_mut().zip(&unread) {
        view.unread = u.count;
        view.unread_capped = u.capped;
        view.read_up_to = u.read_up_to.map(|m| m.to_string());
    }
    entries.truncate(limit);
    let next_before = if entries.len() == limit { entries.last().map(|(at, _)| at.to_string()) } else { None };
    let conversations = entries.into_iter().map(|(_, v)| v).collect();
    reply(&ConversationListReply { conversations, next_before, unread_total, unread_total_capped })
}
