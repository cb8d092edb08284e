//! What `message.edit`, `message.delete` and replies share: finding a
//! message a member may touch (one `not_found` for "no such message", "not
//! in that conversation" and "not a member"), the reply preview, and the
//! overlay of each message's lifecycle state (edited text, `edited_at`,
//! tombstone, reply target) on the views every reader builds. Views are
//! built at read time, so history, sync, `change.sync` and
//! `conversation.list` always show a message as it reads now.

use std::collections::HashMap;

use crate::app::App;
use crate::conversation::{self, Conversation};
use crate::error::{Error, Result};
use crate::model::{ChangeId, ConversationId, Message, MessageId, UserId, rfc3339};
use crate::protocol::{MessageView, REPLY_PREVIEW_CHARS, ReplyView};
use crate::store::lifecycle::{MessageChange, MessageState};

/// The one answer to "no such message", "not in this conversation" and
/// "not a member".
pub fn no_such_message() -> Error {
    Error::NotFound("no such message".into())
}

/// The answer to editing, replying to (or reacting to) a deleted message.
pub fn deleted_message() -> Error {
    Error::Conflict("the message was deleted".into())
}

/// A message of `conversation` that `me` may see now, with the
/// conversation (members) and the message's state.
pub struct Located {
    pub conversation: Conversation,
    pub message: Message,
    pub state: Option<MessageState>,
}

impl Located {
    /// The change `by` makes to this message now: a fresh change id, into
    /// every member's feed.
    pub fn change(&self, app: &App, by: UserId) -> MessageChange {
        MessageChange {
            conversation: self.conversation.id.clone(),
            message_id: self.message.id,
            by,
            change: ChangeId(app.ids.next_id()),
            feeds: self.conversation.members.clone(),
        }
    }

    /// Whether the message is deleted.
    pub fn deleted(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.deleted)
    }
}

/// Finds message `id` of `conversation` for `me` (a member now).
pub async fn locate(app: &App, me: UserId, conversation: &ConversationId, id: MessageId) -> Result<Located> {
    let conv = conversation::access(&*app.store, me, conversation).await.map_err(|e| match e {
        Error::NotFound(_) => no_such_message(),
        other => other,
    })?;
    let message = app.store.message(&conv.id, id).await?.ok_or_else(no_such_message)?;
    let state = app.store.message_states(&[(conv.id.clone(), id)]).await?.pop();
    Ok(Located { conversation: conv, message, state })
}

/// The first [`REPLY_PREVIEW_CHARS`] characters of `text`, cut on a char
/// boundary.
pub fn preview(text: &str) -> String {
    text.chars().take(REPLY_PREVIEW_CHARS).collect()
}

/// The reply view of an original message as it reads now (`None`: gone).
pub fn reply_view(original: Option<&Message>, id: MessageId, state: Option<&MessageState>) -> ReplyView {
    match original {
        Some(m) if !state.is_some_and(|s| s.deleted) => {
            let mut m = m.clone();
            if let Some(s) = state {
                s.apply(&mut m);
            }
            ReplyView { message_id: id.to_string(), from: m.from.clone(), preview: preview(&m.text), deleted: false }
        }
        _ => ReplyView {
            message_id: id.to_string(),
            from: original.map(|m| m.from.clone()).unwrap_or_default(),
            preview: String::new(),
            deleted: true,
        },
    }
}

/// Overlays the lifecycle state of each of `messages` on its view
/// (`views[i]` is the view of `messages[i]`): edited text and time,
/// tombstones, reply targets with previews. Two batched state reads and
/// one message read per distinct reply target of the page.
pub async fn overlay(app: &App, messages: &[Message], views: &mut [MessageView]) -> Result<()> {
    let keys: Vec<(ConversationId, MessageId)> = messages.iter().map(|m| (m.conversation_id.clone(), m.id)).collect();
    let states: HashMap<MessageId, MessageState> =
        app.store.message_states(&keys).await?.into_iter().map(|s| (s.message_id, s)).collect();
    let mut targets: Vec<(ConversationId, MessageId)> = Vec::new();
    for m in messages {
        if let Some(r) = states.get(&m.id).and_then(|s| s.reply_to) {
            if !targets.iter().any(|(_, t)| *t == r) {
                targets.push((m.conversation_id.clone(), r));
            }
        }
    }
    let mut originals: HashMap<MessageId, Message> = HashMap::new();
    for (c, t) in &targets {
        if let Some(o) = app.store.message(c, *t).await? {
            originals.insert(*t, o);
        }
    }
    let target_states: HashMap<MessageId, MessageState> =
        app.store.message_states(&targets).await?.into_iter().map(|s| (s.message_id, s)).collect();
    for (m, v) in messages.iter().zip(views.iter_mut()) {
        let Some(s) = states.get(&m.id) else { continue };
        apply_state(v, s);
        if let Some(r) = s.reply_to {
            v.reply_to = Some(reply_view(originals.get(&r), r, target_states.get(&r)));
        }
    }
    Ok(())
}

/// Applies a state record to a view: the edited text and time, or a tombstone.
pub fn apply_state(v: &mut MessageView, s: &MessageState) {
    if s.deleted {
        v.text.clear();
        v.deleted = true;
        v.edited_at = None;
    } else {
        if let Some(t) = &s.text {
            v.text.clone_from(t);
        }
        v.edited_at = s.edited_at_ms.map(rfc3339);
    }
}
