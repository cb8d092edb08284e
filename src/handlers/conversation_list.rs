//! `conversation.list`: my direct conversations, most recent first, each
//! with its unread count and my read pointer; the first page also carries
//! the unread total over my most recent conversations.

use super::{ConnState, Reply, message_view, reply, user_view};
use crate::app::App;
use crate::error::Result;
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
    let mut page = app.store.conversations(me, r.before, if first { TOTAL_SCOPE.max(limit) } else { limit }).await?;
    let ids: Vec<_> = page.iter().map(|c| c.conversation_id.clone()).collect();
    let unread = app.store.unread(me, &ids, UNREAD_CAP).await?;
    let (unread_total, unread_total_capped) = if first {
        let sum: u64 = unread.iter().map(|u| u64::from(u.count)).sum();
        let capped = sum > u64::from(UNREAD_CAP) || unread.iter().any(|u| u.capped);
        (Some(sum.min(u64::from(UNREAD_CAP)) as u32), Some(capped))
    } else {
        (None, None)
    };
    page.truncate(limit);
    let next_before = if page.len() == limit { page.last().map(|c| c.last_message.id.to_string()) } else { None };
    let conversations = page
        .iter()
        .zip(&unread)
        .map(|(c, u)| ConversationView {
            conversation_id: c.conversation_id.to_string(),
            with: user_view(&c.peer),
            last_message: message_view(&c.last_message),
            unread: u.count,
            unread_capped: u.capped,
            read_up_to: u.read_up_to.map(|m| m.to_string()),
        })
        .collect();
    reply(&ConversationListReply { conversations, next_before, unread_total, unread_total_capped })
}
