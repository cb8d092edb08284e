//! `conversation.list`: my direct conversations and groups, most recent
//! first (a group without messages sorts by its creation), merged from the
//! store's two lists, each with its unread count and my read pointer; the
//! first page also carries the unread total over my most recent
//! conversations.

use super::group_access::{group_view, message_views};
use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::Result;
use crate::model::{ConversationId, ConversationKind, ConversationSummary, GroupSummary, Message, MessageId};
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
    let mut entries: Vec<Entry> =
        direct.into_iter().map(Entry::Direct).chain(groups.into_iter().map(Entry::Group)).collect();
    entries.sort_by_key(|e| std::cmp::Reverse(e.activity()));
    entries.truncate(want);
    let ids: Vec<ConversationId> = entries.iter().map(Entry::id).collect();
    let mut unread = app.store.unread(me, &ids, UNREAD_CAP).await?;
    let mut mutes = app.store.mutes(me, &ids[..ids.len().min(limit)]).await?.into_iter();
    let now = crate::model::now_ms();
    let (unread_total, unread_total_capped) = if first {
        let sum: u64 = unread.iter().map(|u| u64::from(u.count)).sum();
        let capped = sum > u64::from(UNREAD_CAP) || unread.iter().any(|u| u.capped);
        (Some(sum.min(u64::from(UNREAD_CAP)) as u32), Some(capped))
    } else {
        (None, None)
    };
    // Views only for the page: the rest of the scope counted toward the total.
    entries.truncate(limit);
    unread.truncate(limit);
    let next_before = if entries.len() == limit { entries.last().map(|e| e.activity().to_string()) } else { None };
    let lasts: Vec<Message> = entries.iter().filter_map(|e| e.last_message().cloned()).collect();
    let mut last_views = message_views(app, &lasts).await?;
    super::reaction_views::attach(app, me, &lasts, &mut last_views).await?;
    let mut last_views = last_views.into_iter();
    let mut conversations = Vec::with_capacity(entries.len());
    for (e, u) in entries.into_iter().zip(unread) {
        let (muted, muted_until) = super::conversation_mute::mute_view(mutes.next().flatten(), now);
        let last_message = if e.last_message().is_some() { last_views.next() } else { None };
        let (kind, with, group) = match &e {
            Entry::Direct(c) => (ConversationKind::Direct, Some(user_view(&c.peer)), None),
            Entry::Group(g) => (ConversationKind::Group, None, Some(group_view(&g.group))),
        };
        conversations.push(ConversationView {
            conversation_id: e.id().to_string(),
            kind: kind.as_str().into(),
            with,
            group,
            last_message,
            unread: u.count,
            unread_capped: u.capped,
            read_up_to: u.read_up_to.map(|m| m.to_string()),
            muted,
            muted_until,
        });
    }
    reply(&ConversationListReply { conversations, next_before, unread_total, unread_total_capped })
}

/// One conversation of either kind, before its view is built.
enum Entry {
    Direct(ConversationSummary),
    Group(GroupSummary),
}

impl Entry {
    /// Where it sorts: its last message, or a silent group's creation.
    fn activity(&self) -> MessageId {
        match self {
            Entry::Direct(c) => c.last_message.id,
            Entry::Group(g) => g.activity(),
        }
    }

    fn id(&self) -> ConversationId {
        match self {
            Entry::Direct(c) => c.conversation_id.clone(),
            Entry::Group(g) => g.group.conversation_id(),
        }
    }

    fn last_message(&self) -> Option<&Message> {
        match self {
            Entry::Direct(c) => Some(&c.last_message),
            Entry::Group(g) => g.last_message.as_ref(),
        }
    }
}
