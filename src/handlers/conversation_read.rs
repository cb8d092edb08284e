//! `conversation.read`: move my read pointer forward, then tell my other
//! sockets (`conversation.read`) and, in small conversations, the other
//! members (`message.read`, a read receipt), then acknowledge.
//!
//! Rules (protocol.md): a pointer only moves forward; asking for a message
//! at or below the stored pointer is a no-op answered with the stored
//! pointer (`moved: false`), so devices racing each other never fail. A
//! message that is not in the conversation is `not_found`. Receipts go
//! only between members who both have `read_receipts` on (reciprocity, as
//! in WhatsApp: turning them off also means seeing nobody's), and only in
//! conversations of at most [`RECEIPT_MAX_MEMBERS`] members (direct
//! conversations and small groups).

use super::{ConnState, Reply, event_frame, reply};
use crate::app::App;
use crate::conversation::{self, Conversation};
use crate::error::{Error, Result};
use crate::model::{ChangeId, UserId};
use crate::protocol::{ConversationRead, ConversationReadEvent, ConversationReadReply, MessageReadEvent, events};
use crate::store::read_state::{ReadMark, ReadOutcome};

/// Read receipts are sent in conversations with at most this many members
/// (every direct conversation, and groups up to this size); larger groups
/// get none (protocol.md, `message.read`).
pub const RECEIPT_MAX_MEMBERS: usize = 20;

/// The members who get a receipt when `me` reads `conv`.
async fn receipt_targets(app: &App, me: UserId, conv: &Conversation) -> Result<Vec<UserId>> {
    let others = conv.others(me);
    if others.is_empty() || conv.members.len() > RECEIPT_MAX_MEMBERS {
        return Ok(Vec::new());
    }
    let mut ids = vec![me];
    ids.extend(others.iter().copied());
    let on = app.store.read_receipts(&ids).await?;
    if !on.first().copied().unwrap_or(true) {
        return Ok(Vec::new());
    }
    Ok(others.into_iter().zip(on.into_iter().skip(1)).filter(|(_, on)| *on).map(|(u, _)| u).collect())
}

pub async fn handle(app: &App, conn: &mut ConnState, r: ConversationRead) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    let conv = conversation::access(&*app.store, me.id, &r.conversation).await?;
    let targets = receipt_targets(app, me.id, &conv).await?;
    let change = ChangeId(app.ids.next_id());
    let mark = ReadMark {
        user: me.id,
        conversation: conv.id.clone(),
        message_id: r.message_id,
        change,
        receipts_to: targets.clone(),
    };
    let conversation_id = conv.id.to_string();
    match app.store.mark_read(&mark).await? {
        ReadOutcome::NoSuchMessage => Err(Error::NotFound("no such message in this conversation".into())),
        ReadOutcome::NotForward { current } => {
            reply(&ConversationReadReply { conversation_id, read_up_to: current.to_string(), moved: false })
        }
        ReadOutcome::Moved => {
            let mine = ConversationReadEvent {
                conversation_id: conversation_id.clone(),
                read_up_to: r.message_id.to_string(),
                change_id: change.to_string(),
            };
            // Stored already: a broker failure delays these events (the
            // hub's outbox retries; clients resume or `change.sync`).
            let frame = event_frame(events::CONVERSATION_READ, &mine)?;
            if let Err(e) = app.hub.send_to_user(me.id, &frame, Some(conn.id)).await {
                tracing::warn!(error = %e, "read pointer stored but not published to my other sockets");
            }
            let receipt = MessageReadEvent {
                conversation_id: conversation_id.clone(),
                by: me.username.clone(),
                message_id: r.message_id.to_string(),
                change_id: change.to_string(),
            };
            let frame = event_frame(events::MESSAGE_READ, &receipt)?;
            // One batched publish for every receiving member.
            if !targets.is_empty() {
                let failed = app.hub.send_to_users(&targets, &frame, None).await;
                if failed > 0 {
                    tracing::warn!(failed, "read receipt stored but not published to every member yet");
                }
            }
            reply(&ConversationReadReply { conversation_id, read_up_to: r.message_id.to_string(), moved: true })
        }
    }
}
