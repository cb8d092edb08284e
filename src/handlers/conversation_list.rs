//! `conversation.list`: my direct conversations, most recent first.

use super::{ConnState, Reply, message_view, reply, user_view};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{ConversationList, ConversationListReply, ConversationView};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: ConversationList) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let page = app.store.conversations(me, r.before, limit).await?;
    let next_before = if page.len() == limit { page.last().map(|c| c.last_message.id.to_string()) } else { None };
    let conversations = page
        .iter()
        .map(|c| ConversationView {
            conversation_id: c.conversation_id.to_string(),
            with: user_view(&c.peer),
            last_message: message_view(&c.last_message),
        })
        .collect();
    reply(&ConversationListReply { conversations, next_before })
}
