//! `message.send`: store a direct message, then deliver `message.new` to the
//! recipient's sockets and the sender's other sockets, then acknowledge.
//! A repeated nonce returns the original message and delivers nothing.

use super::{ConnState, Reply, event_frame, message_view, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{ConversationId, Message, MessageId};
use crate::protocol::{MessageEnvelope, MessageSend, events};
use crate::validate;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageSend) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    validate::message_text(&r.text, app.config.max_message_chars)?;
    if let Some(n) = &r.nonce {
        validate::nonce(n)?;
    }
    validate::username(&r.to).map_err(|_| Error::NotFound(format!("no user named `{}`", r.to)))?;
    let to = app
        .store
        .user_by_username(&r.to)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user named `{}`", r.to)))?
        .user;

    let message = Message {
        id: MessageId(app.ids.next_id()),
        conversation_id: ConversationId::direct(me.id, to.id),
        from_id: me.id,
        from: me.username.clone(),
        to_id: to.id,
        to: to.username.clone(),
        text: r.text,
        nonce: r.nonce,
    };
    let stored = app.store.insert_message(&message).await?;
    let envelope = MessageEnvelope { message: message_view(&stored.message) };

    if stored.created {
        let frame = event_frame(events::MESSAGE_NEW, &envelope)?;
        // Stored already: a broker failure delays delivery (the hub's outbox
        // publishes it again once the broker is back; clients resume or
        // sync), it never loses the message, so the sender still gets its ack.
        if let Err(e) = app.hub.send_to_user(to.id, &frame, None).await {
            tracing::warn!(error = %e, "message stored but not published to the recipient");
        }
        if to.id != me.id {
            if let Err(e) = app.hub.send_to_user(me.id, &frame, Some(conn.id)).await {
                tracing::warn!(error = %e, "message stored but not published to the sender's devices");
            }
        }
    }
    reply(&envelope)
}
