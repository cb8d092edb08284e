//! `message.history`: a page of my conversation with one user, newest first.

use super::{ConnState, Reply, message_view, page_bytes, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::ConversationId;
use crate::protocol::{HistoryReply, MessageHistory};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageHistory) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let not_found = || Error::NotFound(format!("no user named `{}`", r.with));
    validate::username(&r.with).map_err(|_| not_found())?;
    let peer = app.store.user_by_username(&r.with).await?.ok_or_else(not_found)?.user;
    let page = app.store.history(&ConversationId::direct(me, peer.id), r.before, limit).await?;
    let mut messages: Vec<_> = page.iter().map(message_view).collect();
    let cut = page_bytes::fit(&mut messages, app.config.max_reply_bytes);
    let next_before = if cut || page.len() == limit { messages.last().map(|m| m.id.clone()) } else { None };
    reply(&HistoryReply { messages, next_before })
}
