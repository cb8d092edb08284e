//! Message lifecycle: edits, deletes and replies. [`LifecycleStore`] is
//! the contract; `Store` requires it, and every backend implements it in
//! its own `lifecycle.rs`. `tests/store_conformance/lifecycle.rs` checks it
//! on every backend.
//!
//! What a message became after it was sent lives in one state record per
//! message (`message_state`: its reply target, its edited text and time,
//! whether it was deleted); readers overlay it on the stored message when
//! they build a view ([`MessageState::apply`]), so every copy of a message
//! (history, sync feeds, conversation lists) shows the same text. A delete
//! also clears the text of every stored copy (the tombstone row stays, so
//! history paging and unread counts do not shift).

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{ChangeId, ConversationId, Message, MessageId, UserId};

/// What became of one message after it was sent. Absent (no record): not
/// a reply, never edited, not deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageState {
    pub message_id: MessageId,
    /// The message it replies to (same conversation).
    pub reply_to: Option<MessageId>,
    /// When it was last edited (ms since the Unix epoch).
    pub edited_at_ms: Option<i64>,
    /// Its text since the last edit (`None` when never edited or deleted).
    pub text: Option<String>,
    /// It was deleted: its text is gone from every stored copy.
    pub deleted: bool,
}

impl MessageState {
    /// `m` as it reads now: the edited text, or no text once deleted.
    pub fn apply(&self, m: &mut Message) {
        if self.deleted {
            m.text.clear();
        } else if let Some(t) = &self.text {
            m.text.clone_from(t);
        }
    }
}

/// An edit or a delete of one message, with the change-feed entries it makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageChange {
    pub conversation: ConversationId,
    pub message_id: MessageId,
    /// Who edits or deletes (the author, or a group's owner/admin deleting).
    pub by: UserId,
    /// The change id (minted by the caller, a snowflake): the entry's id
    /// in each feed of `feeds`; its timestamp is the edit time.
    pub change: ChangeId,
    /// Users whose change feeds get the change (the members, `by` included).
    pub feeds: Vec<UserId>,
}

/// The outcome of [`LifecycleStore::edit_message`] and
/// [`LifecycleStore::delete_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleOutcome {
    /// Applied; the change is in every named feed.
    Done,
    /// The message is deleted (already, for a delete): nothing was written.
    Deleted,
    /// No message with that id in that conversation: nothing was written.
    NoSuchMessage,
}

/// Edits, deletes and replies.
///
/// Change ids are minted before the write, like message ids: a write whose
/// change id is older than [`crate::store::MESSAGE_MAX_AGE_MS`] when it
/// would commit is refused with `Unavailable` (nothing written), so an edit
/// or delete cannot appear below a feed cursor a client already passed.
/// Authorization (who may edit or delete what) is the caller's.
#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// Records that message `id` of `conversation` replies to `reply_to`.
    /// Written *before* the message itself (so a stored reply never lacks
    /// its target): a record whose message never commits is never read.
    async fn set_reply(
        &self,
        conversation: &ConversationId,
        id: MessageId,
        reply_to: MessageId,
    ) -> Result<(), StoreError>;

    /// The message `id` of `conversation` as stored (its sent text, or ""
    /// once deleted; [`MessageState::apply`] gives its current text).
    /// `None` when there is none.
    async fn message(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// The state records of those of `messages` that have one, in any
    /// order. Bounded by the caller (a page: at most a few hundred).
    async fn message_states(&self, messages: &[(ConversationId, MessageId)]) -> Result<Vec<MessageState>, StoreError>;

    /// Replaces the text of a message that is not deleted, sets its
    /// `edited_at` to the change id's time, and records an edit change in
    /// every feed of `change.feeds`, all together. Racing edits end at the
    /// one with the largest change id. `Deleted`, `NoSuchMessage`: nothing
    /// written.
    async fn edit_message(&self, change: &MessageChange, text: &str) -> Result<LifecycleOutcome, StoreError>;

    /// Deletes a message's text: marks it deleted and clears the text of
    /// every stored copy (the message row, sync feeds, conversation-list
    /// copies, an edited text), keeping the row itself; records a delete
    /// change in every feed of `change.feeds`. An edit racing the delete
    /// never brings text back. `Deleted` (already deleted, nothing
    /// written), `NoSuchMessage`.
    async fn delete_message(&self, change: &MessageChange) -> Result<LifecycleOutcome, StoreError>;
}
