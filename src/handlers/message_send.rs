//! `message.send`: store a direct message (the store resolves the recipient
//! in the same step), then deliver `message.new` to the recipient's sockets
//! and the sender's other sockets, then acknowledge.
//! A repeated nonce returns the original message and delivers it again:
//! the first attempt may have committed after its caller was told
//! `unavailable` (or failed before publishing), and then this retry is the
//! only chance to push it. Clients de-duplicate `message.new` by id.

use super::{ConnState, Reply, event_frame, message_view, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{DirectSend, MessageId};
use crate::protocol::{MessageEnvelope, MessageSend, events};
use crate::validate;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageSend) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    validate::message_text(&r.text, app.config.max_message_chars)?;
    if let Some(n) = &r.nonce {
        validate::nonce(n)?;
    }
    let not_found = || Error::NotFound(format!("no user named `{}`", r.to));
    validate::username(&r.to).map_err(|_| not_found())?;
    let send = DirectSend {
        id: MessageId(app.ids.next_id()),
        from: me,
        to_username: r.to.clone(),
        text: r.text,
        nonce: r.nonce,
    };
    let stored = app.store.send_direct(&send).await?.ok_or_else(not_found)?;
    let to_id = stored.message.to_id;
    let envelope = MessageEnvelope { message: message_view(&stored.message) };

    let frame = event_frame(events::MESSAGE_NEW, &envelope)?;
    // Stored already: a broker failure delays delivery (the hub's outbox
    // publishes it again once the broker is back; clients resume or
    // sync), it never loses the message, so the sender still gets its ack.
    if let Err(e) = app.hub.send_to_user(to_id, &frame, None).await {
        tracing::warn!(error = %e, "message stored but not published to the recipient");
    }
    if to_id != send.from.id {
        if let Err(e) = app.hub.send_to_user(send.from.id, &frame, Some(conn.id)).await {
            tracing::warn!(error = %e, "message stored but not published to the sender's devices");
        }
    }
    reply(&envelope)
}
