//! Storage: the [`Store`] trait every backend implements, and [`open`],
//! the one function that picks a backend from the configuration.
//!
//! The trait is a contract. Each method says what it promises; every backend
//! keeps those promises, and `tests/store_conformance.rs` checks them against
//! each backend. Rules (validation, authorization, cursors) live above this
//! trait, in `handlers` and `auth`; a backend only stores and fetches.

mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::error::StoreError;
use crate::model::{
    ConversationId, ConversationSummary, Message, MessageId, RotateOutcome, Session, SessionId,
    User, UserCredentials, UserId,
};

pub use sqlite::SqliteStore;

/// Result of [`Store::insert_message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    /// The stored message: the new one, or the original one for a repeated nonce.
    pub message: Message,
    /// False when the (sender, nonce) pair was already stored and nothing was written.
    pub created: bool,
}

/// Durable storage of users, sessions and messages.
///
/// Every method either completes durably or returns an error; an `Ok` from a
/// write means the data survives a process crash. `StoreError::Unavailable`
/// means "retry later" (timeout, overload, shutting down): the write may or
/// may not have happened, so writes that can be retried carry an idempotency
/// key (the message nonce).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- users --------------------------------------------------------

    /// Creates a user. Usernames are unique case-insensitively:
    /// `Err(Conflict("username"))` when the name is taken.
    async fn create_user(&self, user: &UserCredentials) -> Result<(), StoreError>;

    /// Finds a user by username, case-insensitively, with credentials.
    async fn user_by_username(&self, username: &str)
    -> Result<Option<UserCredentials>, StoreError>;

    /// Finds a user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    // ---- sessions -----------------------------------------------------

    /// Stores a new login session with the hash of its first refresh secret.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The owner of a session if it is live: present, not revoked, not
    /// expired at `now_ms`, and its user still exists.
    async fn live_session_user(
        &self,
        id: &SessionId,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError>;

    /// Atomically checks a presented refresh-secret hash against a live
    /// session. Current hash: replaced by `new_hash`, expiry moved to
    /// `new_expires_ms`, `Rotated`. Any other hash: the session is revoked,
    /// `ReuseDetected`. No live session: `Invalid`.
    async fn rotate_refresh(
        &self,
        id: &SessionId,
        presented_hash: &[u8],
        new_hash: &[u8],
        now_ms: i64,
        new_expires_ms: i64,
    ) -> Result<RotateOutcome, StoreError>;

    /// Revokes a session. Returns false if it was not live. Idempotent.
    async fn revoke_session(&self, id: &SessionId) -> Result<bool, StoreError>;

    // ---- messages -----------------------------------------------------

    /// Stores a direct message, indexes it for both participants' sync and
    /// conversation lists. When the message has a nonce and the same sender
    /// already stored one with that nonce, stores nothing and returns the
    /// original (`created: false`).
    async fn insert_message(&self, message: &Message) -> Result<Inserted, StoreError>;

    /// Up to `limit` messages of a conversation with ids below `before`
    /// (all if `None`), newest first.
    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Up to `limit` messages sent or received by `user` with ids above
    /// `after`, oldest first.
    async fn messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Up to `limit` of `user`'s conversations whose last message id is
    /// below `before` (all if `None`), most recent first.
    async fn conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    // ---- lifecycle ----------------------------------------------------

    /// Finishes pending writes and releases the backend. Calls after it fail
    /// with `Unavailable`.
    async fn close(&self);
}

/// Opens the backend the configuration names (SQLite in the data directory).
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let store = SqliteStore::open(&config.data_dir.join("hubbub.db"), config.store_timeout()).await?;
    Ok(Arc::new(store))
}
