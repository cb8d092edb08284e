//! Wire types of chat state (issue 15): read pointers and receipts, the
//! change feed, chat settings, typing. `protocol.md` documents each.

use serde::{Deserialize, Serialize};

use crate::model::{ChangeId, ConversationId, MessageId};

/// `conversation.read`: move my read pointer to `message_id` (inclusive).
#[derive(Debug, Deserialize)]
pub struct ConversationRead {
    pub conversation: ConversationId,
    pub message_id: MessageId,
}

/// Reply data of `conversation.read`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationReadReply {
    pub conversation_id: String,
    /// My read pointer now (the one asked for, or a later one already stored).
    pub read_up_to: String,
    /// False when the pointer already was at or past `message_id` (a no-op).
    pub moved: bool,
}

/// Data of the `conversation.read` event (to my other sockets).
#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationReadEvent {
    pub conversation_id: String,
    pub read_up_to: String,
    /// The change's id in my change feed.
    pub change_id: String,
}

/// Data of the `message.read` event: a read receipt (to other members).
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageReadEvent {
    pub conversation_id: String,
    /// The username of the member who read.
    pub by: String,
    /// They read everything up to and including this message.
    pub message_id: String,
    /// The change's id in the receiving user's change feed.
    pub change_id: String,
}

/// `change.sync`: my changes after a cursor, oldest first.
#[derive(Debug, Deserialize)]
pub struct ChangeSync {
    /// A `next` from an earlier reply; absent: from the beginning.
    pub after: Option<ChangeId>,
    pub limit: Option<u32>,
}

/// One entry of `change.sync`.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct ChangeView {
    pub change_id: String,
    /// `"read"` (my pointer moved), `"receipt"` (another member read),
    /// `"reaction"`, `"edit"` or `"delete"`; clients skip kinds they do not know.
    pub kind: String,
    pub conversation_id: String,
    /// The username of who read (`read`, `receipt`), edited or deleted
    /// (`edit`, `delete`), or reacted (`reaction`).
    pub by: String,
    pub message_id: String,
    /// `reaction` only: the message's reactions now, with my `me` flags.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reactions: Option<Vec<super::ReactionView>>,
    /// `edit` and `delete`: the message as it reads now (built when the
    /// page is read, so a later edit or delete already shows).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<crate::protocol::MessageView>,
}

/// Reply data of `change.sync`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangeSyncReply {
    pub changes: Vec<ChangeView>,
    pub more: bool,
    /// Pass as `after` on the next call.
    pub next: String,
}

/// `settings.update`: absent fields keep their value.
#[derive(Debug, Deserialize)]
pub struct SettingsUpdate {
    pub read_receipts: Option<bool>,
    /// What my push notifications carry: `full`, `sender` or `none`.
    pub push_preview: Option<String>,
}

/// Reply data of `settings.get` and `settings.update`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SettingsReply {
    /// Whether I send read receipts; off also means I get none (reciprocity).
    pub read_receipts: bool,
    /// What my push notifications carry: `full` (sender and text, the
    /// default), `sender`, or `none` (just "new message").
    pub push_preview: String,
}

/// `typing.start` and `typing.stop`.
#[derive(Debug, Deserialize)]
pub struct Typing {
    pub conversation: ConversationId,
}

/// Reply data of `typing.start` and `typing.stop`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TypingReply {
    /// False when the signal was not forwarded (the per-conversation rate
    /// limit, or a stop without a forwarded start).
    pub sent: bool,
}

/// Data of the `typing.start` and `typing.stop` events.
#[derive(Debug, Serialize, Deserialize)]
pub struct TypingEvent {
    pub conversation_id: String,
    /// The username of who is typing.
    pub from: String,
    /// `typing.start` only: drop the indicator after this long unless
    /// another `typing.start` arrives.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_in_ms: Option<u64>,
}
