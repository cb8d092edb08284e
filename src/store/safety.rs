//! Safety (issue 16): blocks between users, per-user conversation mutes,
//! reports for operators, and account bans. [`SafetyStore`] is the
//! contract; `Store` requires it, and every backend implements it in its
//! own `safety.rs`. `tests/store_conformance/safety.rs` checks it on every
//! backend.
//!
//! The rules that use these rows (who may message, add, follow or watch
//! whom; what a ban closes) live in the handlers and in `auth`; the store
//! only keeps the rows. Account deletion ([`crate::store::Store::delete_user`])
//! removes the user's blocks and mutes in both directions; reports stay,
//! with the usernames and message text they snapshotted.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{ConversationId, UserId};

/// A mute with no end (`conversation.mute` without `until`).
pub const MUTED_FOREVER: i64 = i64::MAX;

/// One entry of a user's block list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The blocked user.
    pub user: UserId,
    /// The block's id (a snowflake minted when it was made): its place in the list.
    pub id: i64,
}

/// The outcome of [`SafetyStore::block`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOutcome {
    /// The block is new.
    Added,
    /// The block already existed (nothing changed, the original id is kept).
    Already,
    /// The blocker already has `max` blocks: nothing was written.
    Full,
}

/// What a report is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportTarget {
    /// A message, with the text it had when it was reported.
    Message { id: i64, conversation: ConversationId, author: UserId, author_name: String, text: String },
    /// A user, with the username they had when they were reported.
    User { id: UserId, username: String },
}

/// A report made by a user for the operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// A snowflake: reports list newest first by it.
    pub id: i64,
    pub reporter: UserId,
    /// The reporter's username at report time (it survives account deletion).
    pub reporter_name: String,
    pub target: ReportTarget,
    pub reason: String,
    pub details: String,
    pub created_ms: i64,
    /// Set when an operator resolved it: (when, note).
    pub resolved: Option<(i64, String)>,
}

/// An account ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    pub user: UserId,
    pub reason: String,
    pub at_ms: i64,
}

/// Blocks, mutes, reports and bans.
#[async_trait]
pub trait SafetyStore: Send + Sync + 'static {
    // ---- blocks -------------------------------------------------------

    /// Records that `blocker` blocks `blocked` with id `id`, unless the
    /// blocker already has `max` blocks (`Full`, nothing written) or the
    /// block exists (`Already`, the original id kept). Follows between the
    /// two are not touched here: the handler ends them. `UserGone` when
    /// `blocker` does not exist.
    async fn block(&self, blocker: UserId, blocked: UserId, id: i64, max: usize) -> Result<BlockOutcome, StoreError>;

    /// Removes the block of `blocked` by `blocker`. True when there was one. Idempotent.
    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError>;

    /// Up to `limit` of `blocker`'s blocks with ids below `before` (all if
    /// `None`), newest first. Paging with the last entry's id visits each once.
    async fn blocks(&self, blocker: UserId, before: Option<i64>, limit: usize) -> Result<Vec<Block>, StoreError>;

    /// Those of `users` who block `target`, in the order given (each once).
    /// One call answers "may `target` reach any of these users?" for a
    /// message, a group add, a follow or a presence view.
    async fn blockers_of(&self, target: UserId, users: &[UserId]) -> Result<Vec<UserId>, StoreError>;

    // ---- mutes --------------------------------------------------------

    /// Mutes `conversation` for `user` until `until_ms` (unix ms;
    /// [`MUTED_FOREVER`] for no end), replacing an earlier mute.
    async fn set_mute(&self, user: UserId, conversation: &ConversationId, until_ms: i64) -> Result<(), StoreError>;

    /// Removes `user`'s mute of `conversation`. True when there was one
    /// (expired ones included). Idempotent.
    async fn unmute(&self, user: UserId, conversation: &ConversationId) -> Result<bool, StoreError>;

    /// `user`'s stored mute end of each of `conversations`, in the order
    /// given (`None`: never muted or unmuted). Expired mutes are returned
    /// as stored; callers compare with the clock.
    async fn mutes(&self, user: UserId, conversations: &[ConversationId]) -> Result<Vec<Option<i64>>, StoreError>;

    /// **The push seam**: true when `user` muted `conversation` and the
    /// mute has not ended at `now_ms`. A notifier asks this before sending
    /// a push notification for a new message; unread counts ignore mutes.
    async fn muted(&self, user: UserId, conversation: &ConversationId, now_ms: i64) -> Result<bool, StoreError> {
        let until = self.mutes(user, std::slice::from_ref(conversation)).await?;
        Ok(until.first().copied().flatten().is_some_and(|u| u > now_ms))
    }

    // ---- reports ------------------------------------------------------

    /// Stores a new report (idempotent by id).
    async fn create_report(&self, report: &Report) -> Result<(), StoreError>;

    /// Up to `limit` reports with ids below `before` (all if `None`),
    /// newest first; only unresolved ones when `open_only`. On CQL an
    /// `open_only` page may read past resolved reports (bounded by the
    /// report count).
    async fn reports(&self, open_only: bool, before: Option<i64>, limit: usize) -> Result<Vec<Report>, StoreError>;

    /// Marks report `id` resolved at `at_ms` with `note` (a second resolve
    /// replaces the note) and returns it as stored; `None` when no report
    /// has that id.
    async fn resolve_report(&self, id: i64, note: &str, at_ms: i64) -> Result<Option<Report>, StoreError>;

    // ---- bans ---------------------------------------------------------

    /// Records a ban (replacing an earlier one of the same user). Sessions
    /// are revoked by the caller ([`crate::store::Store::revoke_user_sessions`]).
    async fn set_ban(&self, ban: &Ban) -> Result<(), StoreError>;

    /// Lifts `user`'s ban. True when there was one. Idempotent.
    async fn remove_ban(&self, user: UserId) -> Result<bool, StoreError>;

    /// `user`'s ban, if banned.
    async fn ban_of(&self, user: UserId) -> Result<Option<Ban>, StoreError>;

    /// The ban of the user `session` belongs to, whatever the session's
    /// state (a ban revokes it): lets `auth.refresh` say "banned" rather
    /// than "invalid token". `None` for an unknown session or no ban.
    async fn ban_of_session(&self, session: &crate::model::SessionId) -> Result<Option<Ban>, StoreError>;
}
