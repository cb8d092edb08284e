//! Chat state that is not a message: read pointers, the per-user change
//! index that lets a client catch up on them, unread counts, and the
//! read-receipt setting. [`ReadStateStore`] is the contract; `Store`
//! requires it, and every backend implements it in its own
//! `read_state.rs`. `tests/store_conformance/read_state.rs` checks it on
//! every backend.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{ChangeId, ConversationId, MessageId, UserId};

/// What a change in a user's change feed is about. New kinds (edits,
/// deletes, reactions) are added here as the features arrive; a client
/// ignores kinds it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The user's own read pointer in a conversation moved to `message_id`.
    Read,
    /// Another member (`by`) read a conversation up to `message_id` (a read receipt).
    Receipt,
    /// A member (`by`) reacted to `message_id` or took a reaction back;
    /// readers fetch the message's current reaction summary.
    Reaction,
    /// A message (`message_id`) was edited by its author (`by`).
    Edit,
    /// A message (`message_id`) was deleted by `by` (its author, or a
    /// group's owner or admin).
    Delete,
}

impl ChangeKind {
    /// The kind's stable code in storage.
    pub fn code(self) -> i32 {
        match self {
            ChangeKind::Read => 1,
            ChangeKind::Receipt => 2,
            ChangeKind::Reaction => 5,
            ChangeKind::Edit => 3,
            ChangeKind::Delete => 4,
        }
    }

    /// The kind of a stored code; `None` for a code this version does not know.
    pub fn from_code(code: i32) -> Option<ChangeKind> {
        match code {
            1 => Some(ChangeKind::Read),
            2 => Some(ChangeKind::Receipt),
            5 => Some(ChangeKind::Reaction),
            3 => Some(ChangeKind::Edit),
            4 => Some(ChangeKind::Delete),
            _ => None,
        }
    }
}

/// One entry of a user's change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Its place in the feed.
    pub id: ChangeId,
    pub kind: ChangeKind,
    pub conversation: ConversationId,
    /// Who read: the feed's owner for `Read`, another member for
    /// `Receipt`; who edited or deleted for `Edit` and `Delete`.
    pub by: UserId,
    /// The message read up to (inclusive); the message edited or deleted.
    pub message_id: MessageId,
}

/// A request to move `user`'s read pointer in `conversation` to `message_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadMark {
    pub user: UserId,
    pub conversation: ConversationId,
    pub message_id: MessageId,
    /// The change id of the move (minted by the caller, a snowflake).
    pub change: ChangeId,
    /// Members whose change feeds get a `Receipt` change for this move
    /// (the caller applies the receipt rules).
    pub receipts_to: Vec<UserId>,
}

/// The outcome of [`ReadStateStore::mark_read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// The pointer moved forward; the changes were recorded.
    Moved,
    /// The pointer already was at or past the message: nothing was written.
    NotForward {
        /// The stored pointer.
        current: MessageId,
    },
    /// No message with that id in that conversation: nothing was written.
    NoSuchMessage,
}

/// A user's unread state in one conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unread {
    pub conversation: ConversationId,
    /// The user's read pointer (`None`: never read).
    pub read_up_to: Option<MessageId>,
    /// Messages from other members above the pointer, counted among the
    /// first `cap + 1` messages above it (see [`ReadStateStore::unread`]).
    pub count: u32,
    /// More than `cap` messages lie above the pointer: `count` may be low.
    pub capped: bool,
}

/// Read pointers, change feeds, unread counts and receipt settings.
///
/// Read pointers only move forward. Every move is recorded in the mover's
/// change feed (and, as a receipt, in the feeds the caller names), so a
/// client that was offline gets every pointer that changed while it was
/// away from [`ReadStateStore::changes_since`]. Change ids are minted
/// before the write, like message ids: a move whose change id is older
/// than [`crate::store::MESSAGE_MAX_AGE_MS`] when it would commit is
/// refused with `Unavailable` (nothing written), so a change cannot appear
/// below a feed cursor a client already passed (within the sync horizon).
#[async_trait]
pub trait ReadStateStore: Send + Sync + 'static {
    /// Moves `mark.user`'s pointer in `mark.conversation` to
    /// `mark.message_id` if that is forward of the stored pointer (or there
    /// is none) and the message belongs to the conversation. On `Moved`, a
    /// `Read` change is in the user's feed and a `Receipt` change (by the
    /// user) in each feed of `mark.receipts_to`, all with id `mark.change`.
    /// Concurrent moves of one pointer end at the largest message id,
    /// whatever order they commit in. `Unavailable` (nothing written) when
    /// the change id is too old to commit.
    async fn mark_read(&self, mark: &ReadMark) -> Result<ReadOutcome, StoreError>;

    /// `user`'s unread state in each of `conversations`, in the order
    /// given: the read pointer, and how many messages from others lie above
    /// it. Bounded: at most `cap + 1` messages above the pointer are read
    /// per conversation; `count` is exact when `capped` is false.
    async fn unread(&self, user: UserId, conversations: &[ConversationId], cap: u32)
    -> Result<Vec<Unread>, StoreError>;

    /// Up to `limit` of `user`'s changes with ids above `after`, oldest
    /// first, each once: paging with the last change's id as `after`
    /// returns every recorded change once.
    async fn changes_since(&self, user: UserId, after: ChangeId, limit: usize) -> Result<Vec<Change>, StoreError>;

    /// Sets whether `user` sends (and, by the reciprocity rule the
    /// handlers apply, receives) read receipts.
    async fn set_read_receipts(&self, user: UserId, enabled: bool) -> Result<(), StoreError>;

    /// The read-receipt setting of each of `users`, in the order given
    /// (true for a user who never changed it).
    async fn read_receipts(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError>;
}
