//! Reactions to messages: which users reacted to a message with which
//! emoji, the per-emoji counts, and the `Reaction` entries of the members'
//! change feeds. [`ReactionStore`] is the contract; `Store` requires it,
//! and every backend implements it in its own `reactions.rs`.
//! `tests/store_conformance/reactions.rs` checks it on every backend.
//!
//! Emoji validation and membership are the handlers' rules; the store
//! takes an emoji as an opaque string (compared bytewise).

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{ChangeId, ConversationId, MessageId, UserId};

/// One emoji's count on a message, and whether the viewer is among the
/// users counted (`false` where no viewer applies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    pub emoji: String,
    /// Users who reacted with this emoji (at least 1).
    pub count: u32,
    /// The viewer reacted with this emoji.
    pub me: bool,
}

/// A request to add (`add: true`) or remove `user`'s reaction `emoji` on
/// message `message_id` of `conversation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionEdit {
    pub user: UserId,
    pub conversation: ConversationId,
    pub message_id: MessageId,
    pub emoji: String,
    pub add: bool,
    /// The change id of the edit (minted by the caller, a snowflake).
    pub change: ChangeId,
    /// Users whose change feeds get a `Reaction` change (by `user`) when the
    /// reaction set changes: the conversation's members, bounded by the
    /// group size limit (the caller applies the membership rules).
    pub feeds: Vec<UserId>,
    /// A new distinct emoji beyond this many on the message is refused.
    pub max_distinct: usize,
}

/// The outcome of [`ReactionStore::edit_reaction`]. The summaries are the
/// message's counts afterwards, sorted by emoji (bytewise), with `me`
/// for `edit.user`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReactOutcome {
    /// The reaction was added or removed; the feed entries are recorded.
    Changed(Vec<ReactionCount>),
    /// Already as asked (a repeated react, or an unreact of a reaction the
    /// user does not have): nothing was written.
    Unchanged(Vec<ReactionCount>),
    /// The emoji is not on the message yet and it already has
    /// `max_distinct` distinct emoji: nothing was written.
    TooMany,
    /// No message with that id in that conversation: nothing was written.
    NoSuchMessage,
}

/// Reactions: at most one of each emoji per (message, user), counted per
/// emoji.
///
/// The limit of distinct emoji per message is exact on SQLite (one
/// transaction). On CQL a react that adds a new distinct emoji checks the
/// count again after its write and takes its row back (answering
/// `TooMany`) if the message then has more than the limit: racing new
/// emoji may all be refused, but once every racing call has returned the
/// message never has more than the limit; a summary read while they race
/// may briefly show one more.
#[async_trait]
pub trait ReactionStore: Send + Sync + 'static {
    /// Adds or removes one reaction as `edit` says, if the message is in
    /// the conversation. On `Changed`, a `Reaction` change (by
    /// `edit.user`, id `edit.change`) is in each feed of `edit.feeds`.
    /// `UserGone` (nothing left written) when `edit.user` does not exist;
    /// `Unavailable` (nothing written) when the change id is older than
    /// [`crate::store::MESSAGE_MAX_AGE_MS`] when it would commit.
    async fn edit_reaction(&self, edit: &ReactionEdit) -> Result<ReactOutcome, StoreError>;

    /// The reaction summary of each of `messages` (all of one
    /// conversation, at most a page of 200), in the order given, sorted by
    /// emoji, with `me` for `viewer`. A message without reactions (or
    /// unknown) has an empty summary. Cost per message: the message's
    /// reaction rows (bounded by members x distinct limit).
    async fn reaction_summaries(
        &self,
        viewer: UserId,
        conversation: &ConversationId,
        messages: &[MessageId],
    ) -> Result<Vec<Vec<ReactionCount>>, StoreError>;

    /// Removes every reaction on a message (for message deletion). Writes
    /// no change-feed entries (the deletion has its own). Returns how many
    /// reactions were removed. Idempotent.
    async fn clear_reactions(&self, conversation: &ConversationId, message: MessageId) -> Result<u64, StoreError>;
}
