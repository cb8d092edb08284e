//! Wire types of reactions (issue 15): `message.react`,
//! `message.unreact`, the `message.reactions` event, and the reaction
//! summary message views and `change.sync` carry. `protocol.md` documents
//! each.

use serde::{Deserialize, Serialize};

use crate::model::{ConversationId, MessageId};

/// `message.react` and `message.unreact`.
#[derive(Debug, Deserialize)]
pub struct MessageReact {
    /// The message's conversation (its `conversation_id`).
    pub conversation: ConversationId,
    pub message_id: MessageId,
    /// One emoji (see protocol.md for the exact rule).
    pub emoji: String,
}

/// One emoji's count on a message, as the receiving user sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReactionView {
    pub emoji: String,
    pub count: u32,
    /// I reacted with this emoji.
    pub me: bool,
}

/// One emoji's count, without `me` (the `message.reactions` event is the
/// same frame for every member).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReactionCountView {
    pub emoji: String,
    pub count: u32,
}

/// Reply data of `message.react` and `message.unreact`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageReactReply {
    pub conversation_id: String,
    pub message_id: String,
    /// The message's reactions now, sorted by emoji, with my `me` flags.
    pub reactions: Vec<ReactionView>,
    /// False when nothing changed (already reacted / not reacted).
    pub changed: bool,
}

/// Data of the `message.reactions` event, to every member's sockets.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageReactionsEvent {
    pub conversation_id: String,
    pub message_id: String,
    /// The change's id in every member's change feed.
    pub change_id: String,
    /// The username of who reacted or took the reaction back.
    pub by: String,
    pub emoji: String,
    /// True: `by` added `emoji`; false: `by` took it back.
    pub reacted: bool,
    /// Counts after the change, sorted by emoji. A client keeps its own
    /// `me` flags, and sets `me` of `emoji` to `reacted` when `by` is itself.
    pub reactions: Vec<ReactionCountView>,
}
