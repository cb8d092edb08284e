//! `message.send`: store a message, then deliver `message.new` to every
//! socket of everyone in the conversation (the sender's other sockets
//! included), then acknowledge. To a user by name (`to`: the store
//! resolves the recipient in the same step) or to a conversation by id
//! (`conversation`: direct, or a group I am a member of; the store checks
//! membership with the write). A group message is one store write and one
//! batched publish to every member's inbox.
//! Recipients with no live socket anywhere get a push notification
//! ([`crate::push`]: the store records the obligation with the message;
//! when it wrote an intake entry, the push intake is woken without
//! waiting).
//! A repeated nonce returns the original message and delivers it again:
//! the first attempt may have committed after its caller was told
//! `unavailable` (or failed before publishing), and then this retry is the
//! only chance to push it. Clients de-duplicate `message.new` by id.
//! A direct message between two users where either blocks the other is
//! refused with `forbidden` (nothing stored; see `user_block`).
//! With `reply_to`, the target must be a message of the same conversation
//! that the sender may see and that is not deleted; the reply is recorded
//! before the message, and `message.new` carries the target's preview as
//! it read at send time (later readers build it anew).

use super::group_access::{message_views, no_such_group};
use super::user_block::check_direct;
use super::{ConnState, Reply, event_frame, lifecycle, message_view, reply};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::hub::ConnId;
use crate::model::{ConversationId, ConversationRef, DirectSend, Message, MessageId, User, UserId};
use crate::protocol::{MessageEnvelope, MessageSend, ReplyView, events};
use crate::store::Inserted;
use crate::validate;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageSend) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    send(app, me, conn.id, r).await
}

/// `message.send` by `me` from socket `conn_id` (which gets no
/// `message.new` of its own message: the reply carries it).
pub(super) async fn send(app: &App, me: User, conn_id: ConnId, r: MessageSend) -> Result<Reply> {
    validate::message_text(&r.text, app.config.max_message_chars)?;
    if let Some(n) = &r.nonce {
        validate::nonce(n)?;
    }
    let id = MessageId(app.ids.next_id());
    let (to, conversation) = match (r.to, r.conversation, r.reply_to) {
        // A reply by name: resolve the conversation first (its target must be of it).
        (Some(to), None, Some(_)) => (None, Some(direct_id_by_name(app, me.id, &to).await?)),
        (to, conversation, _) => (to, conversation),
    };
    let replying = match r.reply_to {
        Some(target) => Some(reply_target(app, &me, conversation.as_deref().unwrap_or(""), id, target).await?),
        None => None,
    };
    let stored = match (to, conversation) {
        (Some(to), None) => {
            to_name(app, DirectSend { id, from: me, to_username: to, text: r.text, nonce: r.nonce }).await?
        }
        (None, Some(c)) => to_conversation(app, &c, me, id, r.text, r.nonce).await?,
        _ => return Err(bad_request("give exactly one of `to` and `conversation`")),
    };
    let mut view = message_view(&stored.message);
    if stored.created {
        // A new message: not edited yet; its reply target as validated.
        view.reply_to = replying;
    } else {
        // A repeated nonce: the original as it reads now.
        view = message_views(app, std::slice::from_ref(&stored.message)).await?.pop().unwrap_or(view);
    }
    // Serialized once: the reply's data and the event's are the same.
    let data = reply(&MessageEnvelope { message: view })?;
    let frame = event_frame(events::MESSAGE_NEW, &data)?;
    // Stored already: a broker failure delays delivery (the hub's outbox
    // publishes it again once the broker is back; clients resume or
    // sync), it never loses the message, so the sender still gets its ack.
    let m = &stored.message;
    match m.conversation_id.group_id() {
        Some(g) => {
            let members = app.store.group_member_ids(g).await?;
            let failed = app.hub.send_to_users(&members, &frame, Some(conn_id)).await;
            if failed > 0 {
                tracing::warn!(failed, "group message stored but not yet published to every member");
            }
            if stored.push_intake {
                app.push.wake();
            }
        }
        None => {
            if let Err(e) = app.hub.send_to_user(m.to_id, &frame, None).await {
                tracing::warn!(error = %e, "message stored but not published to the recipient");
            }
            if m.to_id != m.from_id {
                if stored.push_intake {
                    app.push.wake();
                }
                if let Err(e) = app.hub.send_to_user(m.from_id, &frame, Some(conn_id)).await {
                    tracing::warn!(error = %e, "message stored but not published to the sender's devices");
                }
            }
        }
    }
    Ok(data)
}

async fn to_name(app: &App, send: DirectSend) -> Result<Inserted> {
    let not_found = || Error::NotFound(format!("no user named `{}`", send.to_username));
    validate::username(&send.to_username).map_err(|_| not_found())?;
    // Blocks are checked by the store with the write (shared by every
    // node): a block made on another node holds at once, and the send
    // costs no reads before its write (SQLite: one writer job).
    app.store.send_direct(&send).await?.ok_or_else(not_found)
}

async fn to_conversation(
    app: &App,
    conversation: &str,
    from: User,
    id: MessageId,
    text: String,
    nonce: Option<String>,
) -> Result<Inserted> {
    let no_such = || Error::NotFound("no such conversation".into());
    match ConversationId::parse(conversation) {
        Some(ConversationRef::Group(g)) => {
            let m = Message {
                id,
                conversation_id: ConversationId::group(g),
                from_id: from.id,
                from: from.username,
                to_id: UserId(0),
                to: String::new(),
                text,
                nonce,
            };
            app.store.send_group(&m).await?.ok_or_else(no_such_group)
        }
        Some(ConversationRef::Direct(a, b)) if a == from.id || b == from.id => {
            let peer = if a == from.id { b } else { a };
            let to = app.store.user_by_id(peer).await?.ok_or_else(no_such)?;
            check_direct(app, from.id, peer, "message").await?;
            let send = DirectSend { id, from, to_username: to.username.clone(), text, nonce };
            Ok(app.store.insert_message(&send.into_message(&to)).await?)
        }
        _ => Err(no_such()),
    }
}

/// The direct conversation with the user named `to` (`not_found` if none).
async fn direct_id_by_name(app: &App, me: UserId, to: &str) -> Result<String> {
    let not_found = || Error::NotFound(format!("no user named `{to}`"));
    validate::username(to).map_err(|_| not_found())?;
    let peer = app.store.user_by_username(to).await?.ok_or_else(not_found)?;
    Ok(ConversationId::direct(me, peer.user.id).to_string())
}

/// Checks that `target` is a message of `conversation` that `me` may see
/// and that is not deleted, records the reply (before the message, see
/// `LifecycleStore::set_reply`) and returns its view.
async fn reply_target(app: &App, me: &User, conversation: &str, id: MessageId, target: MessageId) -> Result<ReplyView> {
    let conv = ConversationId(conversation.to_owned());
    let found = lifecycle::locate(app, me.id, &conv, target).await.map_err(|e| match e {
        Error::NotFound(_) => Error::NotFound("no such message to reply to in this conversation".into()),
        other => other,
    })?;
    if found.deleted() {
        return Err(lifecycle::deleted_message());
    }
    app.store.set_reply(&found.conversation.id, id, target).await?;
    Ok(lifecycle::reply_view(Some(&found.message), target, found.state.as_ref()))
}
