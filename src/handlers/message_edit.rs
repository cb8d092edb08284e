//! `message.edit`: replace the text of a message I sent, then deliver
//! `message.updated` to every member's inbox (my other sockets included),
//! then acknowledge with the message as it reads now.
//!
//! Rules (protocol.md): author only (`forbidden` for anyone else's); the
//! text limits of `message.send`; a deleted message cannot be edited
//! (`conflict`); no edit window and no edit count (only the latest text is
//! kept; the per-user write rate bounds edits like sends). Each edit is an
//! `edit` change in every member's change feed.

use super::group_access::{message_views, publish};
use super::lifecycle::{deleted_message, locate, no_such_message};
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::{MessageEdit, MessageEnvelope, events};
use crate::store::lifecycle::LifecycleOutcome;
use crate::validate;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageEdit) -> Result<Reply> {
    let me = conn.user()?.user.id;
    validate::message_text(&r.text, app.config.max_message_chars)?;
    let found = locate(app, me, &r.conversation, r.message_id).await?;
    if found.message.from_id != me {
        return Err(Error::Forbidden("only the author may edit a message".into()));
    }
    if found.deleted() {
        return Err(deleted_message());
    }
    let change = found.change(app, me);
    match app.store.edit_message(&change, &r.text).await? {
        LifecycleOutcome::NoSuchMessage => return Err(no_such_message()),
        LifecycleOutcome::Deleted => return Err(deleted_message()),
        LifecycleOutcome::Done => {}
    }
    let view = message_views(app, std::slice::from_ref(&found.message)).await?.pop().ok_or_else(no_such_message)?;
    let envelope = MessageEnvelope { message: view };
    publish(app, &found.conversation.members, events::MESSAGE_UPDATED, &envelope, Some(conn.id)).await;
    reply(&envelope)
}
