//! `message.sync`: every message to or from me, and of every group I am a
//! member of now, after a cursor, oldest first (a merge of the store's
//! direct and group feeds, each read up to the page size).
//!
//! Ids are minted before the write commits, so a message can become visible
//! after one with a larger id. The final page's cursor (`next` when `more`
//! is false) therefore never passes the sync horizon (now minus
//! `sync_horizon_ms`), even if that is below `since`: the next sync re-reads
//! that short window, and the client drops ids it already has. Pages with
//! `more: true` always advance, so paging cannot loop. A page also ends
//! before passing `max_reply_bytes` (then `more` is true).

use super::group_access::message_views;
use super::{ConnState, Reply, page_bytes, reply};
use crate::app::App;
use crate::error::Result;
use crate::model::{MessageId, now_ms};
use crate::protocol::{MessageSync, SyncReply};
use crate::snowflake;
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 200;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageSync) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let mut page = app.store.messages_since(me, r.since, limit).await?;
    page.extend(app.store.group_messages_since(me, r.since, limit).await?);
    page.sort_unstable_by_key(|m| m.id);
    page.dedup_by_key(|m| m.id);
    page.truncate(limit);
    let mut messages = message_views(app, &page).await?;
    super::reaction_views::attach(app, me, &page, &mut messages).await?;
    let cut = page_bytes::fit(&mut messages, app.config.max_reply_bytes);
    page.truncate(messages.len());
    let more = cut || page.len() == limit;
    let newest = page.last().map_or(r.since, |m| m.id);
    let next = if more {
        newest
    } else {
        let horizon = MessageId(snowflake::floor_for_ms(now_ms() - app.config.sync_horizon_ms as i64));
        newest.min(horizon)
    };
    reply(&SyncReply { messages, more, next: next.to_string() })
}
