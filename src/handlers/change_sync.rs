//! `change.sync`: my change feed after a cursor, oldest first: my read
//! pointers, the read receipts I got, reactions, and edits and deletes of
//! messages of my conversations (each with the message as it reads now). The
//! catch-up path for changes, beside `message.sync`.
//!
//! Change ids are minted before the write commits (like message ids), so
//! the final page's cursor never passes the sync horizon (now minus
//! `sync_horizon_ms`): the next call re-reads that short window and the
//! client drops change ids it already has. Pages with `more: true` always
//! advance.

use std::collections::HashMap;

use super::group_access::message_views;
use super::{ConnState, Reply, page_bytes, reply};
use crate::app::App;
use crate::error::Result;
use crate::model::{ChangeId, Message, MessageId, UserId, now_ms};
use crate::protocol::{ChangeSync, ChangeSyncReply, ChangeView, MessageView};
use crate::snowflake;
use crate::store::read_state::{Change, ChangeKind};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 200;

fn kind_name(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Read => "read",
        ChangeKind::Receipt => "receipt",
        ChangeKind::Reaction => "reaction",
        ChangeKind::Edit => "edit",
        ChangeKind::Delete => "delete",
    }
}

pub async fn handle(app: &App, conn: &mut ConnState, r: ChangeSync) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = r.after.unwrap_or(ChangeId(0));
    let mut page = app.store.changes_since(me.id, after, limit).await?;
    let mut names: HashMap<UserId, Option<String>> = HashMap::from([(me.id, Some(me.username.clone()))]);
    let views = message_changes(app, &page).await?;
    let mut changes = Vec::with_capacity(page.len());
    for c in &page {
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(c.by) {
            e.insert(app.store.user_by_id(c.by).await?.map(|u| u.username));
        }
        let message = match c.kind {
            // The message as it reads now; gone with its conversation: skipped.
            ChangeKind::Edit | ChangeKind::Delete => match views.get(&c.message_id).cloned() {
                Some(v) => Some(v),
                None => continue,
            },
            ChangeKind::Read | ChangeKind::Receipt | ChangeKind::Reaction => None,
        };
        let by = match (names.get(&c.by), &message) {
            (Some(Some(by)), _) => by.clone(),
            // An edit or delete by an account deleted since still applies.
            (_, Some(_)) => String::new(),
            // A receipt from an account deleted since: its conversation is gone.
            _ => continue,
        };
        changes.push(ChangeView {
            change_id: c.id.to_string(),
            kind: kind_name(c.kind).into(),
            conversation_id: c.conversation.to_string(),
            by,
            message_id: c.message_id.to_string(),
            reactions: None,
            message,
        });
    }
    super::reaction_views::attach_to_changes(app, me.id, &page, &mut changes).await?;
    let cut = page_bytes::fit(&mut changes, app.config.max_reply_bytes);
    if cut {
        // Keep the page and the cursor consistent: the cursor is the last change sent.
        let last = changes.last().map(|v| v.change_id.clone());
        let keep = page.iter().position(|c| Some(c.id.to_string()) == last).map_or(0, |i| i + 1);
        page.truncate(keep);
    }
    let more = cut || page.len() == limit;
    let newest = page.last().map_or(after, |c| c.id);
    let next = if more {
        newest
    } else {
        let horizon = ChangeId(snowflake::floor_for_ms(now_ms() - app.config.sync_horizon_ms as i64));
        newest.min(horizon)
    };
    reply(&ChangeSyncReply { changes, more, next: next.to_string() })
}

/// The current views of the messages the page's edits and deletes name
/// (one read per distinct message; a page is at most [`MAX_LIMIT`]). A
/// message edited twice in the page carries the same (current) view on
/// both changes.
async fn message_changes(app: &App, page: &[Change]) -> Result<HashMap<MessageId, MessageView>> {
    let mut messages: Vec<Message> = Vec::new();
    for c in page.iter().filter(|c| matches!(c.kind, ChangeKind::Edit | ChangeKind::Delete)) {
        if messages.iter().any(|m| m.id == c.message_id) {
            continue;
        }
        if let Some(m) = app.store.message(&c.conversation, c.message_id).await? {
            messages.push(m);
        }
    }
    let views = message_views(app, &messages).await?;
    Ok(messages.iter().map(|m| m.id).zip(views).collect())
}
