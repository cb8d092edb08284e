//! `message.react` / `message.unreact`: add or take back my reaction on a
//! message, then send `message.reactions` to every member's sockets (one
//! batched publish; an inbox event with a position), then acknowledge
//! with the message's reactions as I see them.
//!
//! Rules (protocol.md): the emoji is one emoji by [`crate::emoji`]'s
//! grammar (`bad_request` otherwise). A conversation I am not a member of
//! and a message that is not in the conversation are the same
//! `not_found`. One reaction of each emoji per user: reacting twice, or
//! taking back a reaction I do not have, is a no-op answered with
//! `changed: false` (two devices racing never fail). A message has at
//! most [`MAX_DISTINCT`] different emoji: a new one beyond that is
//! `limit_exceeded`; reacting with one already there still works.
//! Every member's change feed gets a `reaction` change, so `change.sync`
//! brings an offline client to the same counts.

use super::{ConnState, Reply, event_frame, reply};
use crate::app::App;
use crate::conversation;
use crate::emoji;
use crate::error::{Error, Result, bad_request};
use crate::model::ChangeId;
use crate::protocol::{MessageReact, MessageReactReply, MessageReactionsEvent, ReactionCountView, events};
use crate::store::reactions::{ReactOutcome, ReactionEdit};

use super::reaction_views::reaction_view;

/// Different emoji a message may carry.
pub const MAX_DISTINCT: usize = 20;

fn no_such_message() -> Error {
    Error::NotFound("no such message".into())
}

pub async fn react(app: &App, conn: &mut ConnState, r: MessageReact) -> Result<Reply> {
    handle(app, conn, r, true).await
}

pub async fn unreact(app: &App, conn: &mut ConnState, r: MessageReact) -> Result<Reply> {
    handle(app, conn, r, false).await
}

async fn handle(app: &App, conn: &mut ConnState, r: MessageReact, add: bool) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    if !emoji::is_reaction(&r.emoji) {
        return Err(bad_request(format!(
            "emoji must be exactly one emoji (at most {} bytes; no text, spaces or several emoji)",
            emoji::MAX_BYTES
        )));
    }
    let conv = match conversation::access(&*app.store, me.id, &r.conversation).await {
        Ok(c) => c,
        Err(Error::NotFound(_)) => return Err(no_such_message()),
        Err(e) => return Err(e),
    };
    // A tombstone takes no reactions (its reactions went with its text).
    let states = app.store.message_states(&[(conv.id.clone(), r.message_id)]).await?;
    if states.iter().any(|s| s.message_id == r.message_id && s.deleted) {
        return Err(super::lifecycle::deleted_message());
    }
    let change = ChangeId(app.ids.next_id());
    let edit = ReactionEdit {
        user: me.id,
        conversation: conv.id.clone(),
        message_id: r.message_id,
        emoji: r.emoji,
        add,
        change,
        feeds: conv.members.clone(),
        max_distinct: MAX_DISTINCT,
    };
    let (summary, changed) = match app.store.edit_reaction(&edit).await? {
        ReactOutcome::NoSuchMessage => return Err(no_such_message()),
        ReactOutcome::TooMany => {
            return Err(Error::LimitExceeded(format!("a message has at most {MAX_DISTINCT} different reactions")));
        }
        ReactOutcome::Unchanged(s) => (s, false),
        ReactOutcome::Changed(s) => (s, true),
    };
    if changed {
        let event = MessageReactionsEvent {
            conversation_id: conv.id.to_string(),
            message_id: edit.message_id.to_string(),
            change_id: change.to_string(),
            by: me.username.clone(),
            emoji: edit.emoji.clone(),
            reacted: add,
            reactions: summary.iter().map(|c| ReactionCountView { emoji: c.emoji.clone(), count: c.count }).collect(),
        };
        // Stored already: a broker failure delays the event (the hub's
        // outbox retries; clients resume or `change.sync`).
        let frame = event_frame(events::MESSAGE_REACTIONS, &event)?;
        let failed = app.hub.send_to_users(&conv.members, &frame, Some(conn.id)).await;
        if failed > 0 {
            tracing::warn!(failed, "reaction stored but not yet published to every member");
        }
    }
    reply(&MessageReactReply {
        conversation_id: conv.id.to_string(),
        message_id: edit.message_id.to_string(),
        reactions: summary.iter().map(reaction_view).collect(),
        changed,
    })
}
