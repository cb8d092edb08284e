//! Wire types of the message lifecycle (issue 15): edits, deletes and
//! replies. `protocol.md` documents each.

use serde::{Deserialize, Serialize};

use crate::model::{ConversationId, MessageId};

/// `message.edit`: replace the text of a message I sent.
#[derive(Debug, Deserialize)]
pub struct MessageEdit {
    pub conversation: ConversationId,
    pub message_id: MessageId,
    pub text: String,
}

/// `message.delete`: delete a message (mine; in a group, an owner or
/// admin may delete anyone's).
#[derive(Debug, Deserialize)]
pub struct MessageDelete {
    pub conversation: ConversationId,
    pub message_id: MessageId,
}

/// The message a message replies to, as it reads when the view is built.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplyView {
    pub message_id: String,
    /// The original's sender (empty when their account was deleted).
    pub from: String,
    /// Its first characters (at most `REPLY_PREVIEW_CHARS`, cut on a char
    /// boundary); empty when deleted.
    pub preview: String,
    /// The original was deleted (or is gone).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deleted: bool,
}

/// Most characters of a reply preview.
pub const REPLY_PREVIEW_CHARS: usize = 80;
