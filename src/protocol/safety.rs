//! Wire types of safety (issue 16): blocks, conversation mutes, reports.
//! `protocol.md` documents each (section "Safety").

use serde::{Deserialize, Serialize};

use super::UserView;

/// `user.block`, `user.unblock`: whom.
#[derive(Debug, Deserialize)]
pub struct BlockTarget {
    pub username: String,
}

/// Reply data of `user.block` and `user.unblock`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockReply {
    pub username: String,
    /// Whether I block them now.
    pub blocked: bool,
    /// False when nothing changed (already blocked / not blocked).
    pub changed: bool,
}

/// `user.blocks`: a page of my block list, newest block first.
#[derive(Debug, Deserialize)]
pub struct BlockList {
    /// A `next_after` from an earlier page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// Reply data of `user.blocks`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockListReply {
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; null when there is none.
    pub next_after: Option<String>,
}

/// `conversation.mute`: mute until a time (unix milliseconds), or with no end.
#[derive(Debug, Deserialize)]
pub struct ConversationMute {
    pub conversation: String,
    pub until: Option<i64>,
}

/// `conversation.unmute`.
#[derive(Debug, Deserialize)]
pub struct ConversationUnmute {
    pub conversation: String,
}

/// Reply data of `conversation.mute` and `conversation.unmute`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MuteReply {
    pub conversation_id: String,
    pub muted: bool,
    /// The mute's end (unix ms); null when not muted or muted with no end.
    pub muted_until: Option<i64>,
}

/// `report.create`: a message (`conversation` + `message_id`) or a user
/// (`username`), exactly one of the two.
#[derive(Debug, Deserialize)]
pub struct ReportCreate {
    pub conversation: Option<String>,
    pub message_id: Option<String>,
    pub username: Option<String>,
    pub reason: String,
    pub details: Option<String>,
}

/// Reply data of `report.create`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReportReply {
    pub report_id: String,
}
