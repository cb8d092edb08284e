//! `message.delete`: delete a message's text for everyone, then deliver
//! `message.deleted` (the tombstone) to every member's inbox (my other
//! sockets included), then acknowledge with the tombstone.
//!
//! Rules (protocol.md): the author may delete their message; in a group,
//! the owner and admins may delete anyone's (`forbidden` otherwise). The
//! text is cleared from storage; the row stays as a tombstone so history
//! pages and unread counts do not shift. Deleting a deleted message is
//! idempotent: the same tombstone is returned and nothing is sent again.
//! Each delete is a `delete` change in every member's change feed.

use super::group_access::{message_views, publish};
use super::lifecycle::{locate, no_such_message};
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::{MessageDelete, MessageEnvelope, events};
use crate::store::lifecycle::LifecycleOutcome;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageDelete) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let found = locate(app, me, &r.conversation, r.message_id).await?;
    if found.message.from_id != me && !manages(app, &found, me).await? {
        return Err(Error::Forbidden("only the author (or a group's owner or admins) may delete a message".into()));
    }
    let change = found.change(app, me);
    let fresh = !found.deleted() && app.store.delete_message(&change).await? == LifecycleOutcome::Done;
    let view = message_views(app, std::slice::from_ref(&found.message)).await?.pop().ok_or_else(no_such_message)?;
    if !view.deleted {
        // The store said "no such message" (it went with its conversation meanwhile).
        return Err(no_such_message());
    }
    // Its reactions go with its text (a repeated delete retries a clear
    // that failed; views of a tombstone show none either way).
    if let Err(e) = app.store.clear_reactions(&change.conversation, r.message_id).await {
        tracing::warn!(error = %e, "message deleted but its reactions not cleared");
    }
    let envelope = MessageEnvelope { message: view };
    if fresh {
        publish(app, &found.conversation.members, events::MESSAGE_DELETED, &envelope, Some(conn.id)).await;
    }
    reply(&envelope)
}

/// Whether `me` is an owner or admin of the group the message is in.
async fn manages(app: &App, found: &super::lifecycle::Located, me: crate::model::UserId) -> Result<bool> {
    let Some(g) = found.conversation.id.group_id() else { return Ok(false) };
    Ok(app.store.member(g, me).await?.is_some_and(|m| m.role.manages()))
}
