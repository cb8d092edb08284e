//! Storage: the [`Store`] trait every backend implements, and [`open`],
//! the one function that picks a backend from the configuration.
//!
//! The trait is a contract. Each method says what it promises; every backend
//! keeps those promises, and `tests/store_conformance.rs` checks them against
//! each backend. Rules (validation, authorization, cursors) live above this
//! trait, in `handlers` and `auth`; a backend only stores and fetches.

mod cql;
pub mod groups;
pub mod lifecycle;
pub mod push;
pub mod reactions;
pub mod read_state;
pub mod safety;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::Config;
use crate::error::StoreError;
use crate::model::{
    ConversationId, ConversationSummary, DirectSend, FanoutState, FollowCounts, FollowEntry, FollowId, ItemId, Message,
    MessageId, Post, PostId, Profile, ProfileUpdate, RotateOutcome, Rotation, Session, SessionId, TimelineItem, Toggle,
    User, UserCredentials, UserId, ViewerMarks,
};

pub use cql::{ScyllaOptions, ScyllaStore};
pub use groups::GroupStore;
pub use lifecycle::LifecycleStore;
pub use push::PushStore;
pub use reactions::ReactionStore;
pub use read_state::ReadStateStore;
pub use safety::SafetyStore;
pub use sqlite::SqliteStore;
pub use sqlite::pcache as sqlite_page_cache;

/// The oldest a message id may be (its timestamp against the wall clock)
/// when the message commits: [`Store::insert_message`] and
/// [`Store::send_direct`] refuse an older one with `Unavailable` and write
/// nothing. A node that stalled after minting an id (stopped, swapped out,
/// waiting for a lock) therefore cannot make a message appear below a
/// `message.sync` cursor a client has already passed, as long as the sync
/// horizon (`--sync-horizon-ms`, 10 s) exceeds this bound; the difference
/// (5 s) is left for the commit itself. A client retry with the same nonce
/// stores the message under a fresh id.
pub const MESSAGE_MAX_AGE_MS: i64 = 5_000;

/// `Unavailable` when a message with id `id` may no longer commit (see
/// [`MESSAGE_MAX_AGE_MS`]).
fn check_message_age(id: MessageId) -> Result<(), StoreError> {
    if crate::model::now_ms() - id.unix_ms() > MESSAGE_MAX_AGE_MS {
        return Err(StoreError::Unavailable("message id older than the commit bound".into()));
    }
    Ok(())
}

/// Result of [`Store::insert_message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    /// The stored message: the new one, or the original one for a repeated nonce.
    pub message: Message,
    /// False when the (sender, nonce) pair was already stored and nothing was written.
    pub created: bool,
    /// Whether an entry for the push intake was written with the message
    /// (so waking the intake now can find work). False for a repeated
    /// nonce; the SQLite store writes an entry for a direct message only
    /// when its recipient has a device, the CQL store for every message.
    pub push_intake: bool,
}

impl Inserted {
    /// A message that was written now, with its push intake entry.
    pub fn new(m: &Message) -> Inserted {
        Inserted { message: m.clone(), created: true, push_intake: true }
    }

    /// A message that was written now; `push_intake` as the store wrote it.
    pub fn written(message: Message, push_intake: bool) -> Inserted {
        Inserted { message, created: true, push_intake }
    }

    /// The original message of a repeated (sender, nonce): nothing written.
    pub fn repeat(original: Message) -> Inserted {
        Inserted { message: original, created: false, push_intake: false }
    }
}

/// Durable storage of users, profiles, follows, sessions and messages.
///
/// Every method either completes durably or returns an error; an `Ok` from a
/// write means the data survives a process crash. `StoreError::Unavailable`
/// means "retry later" (timeout, overload, shutting down): the write may or
/// may not have happened, so writes that can be retried carry an idempotency
/// key (the message nonce).
///
/// Writes a user makes (messages, follows, likes, reposts) check that the
/// acting user (and a message's recipient) still exists, atomically with the
/// write (SQLite: in its transaction; CQL: written, then checked again and
/// undone if the account is gone, with deletion removing the user row
/// first). They fail with `StoreError::UserGone` and leave nothing behind:
/// once [`Store::delete_user`] returned, no write of that user succeeds.
#[async_trait]
pub trait Store:
    GroupStore + ReadStateStore + SafetyStore + ReactionStore + LifecycleStore + PushStore + Send + Sync + 'static
{
    // ---- users --------------------------------------------------------

    /// Creates a user with a default profile and indexes it for
    /// [`Store::search_users`] (see [`search_terms`]). Usernames are unique
    /// case-insensitively: `Err(Conflict("username"))` when the name is taken.
    async fn create_user(&self, user: &UserCredentials) -> Result<(), StoreError>;

    /// Finds a user by username, case-insensitively, with credentials.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserCredentials>, StoreError>;

    /// Finds a user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// A user's profile; defaults (empty bio, no color, no avatar) when the
    /// user never changed it. `None` when the user does not exist.
    async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError>;

    /// Up to `limit` users one of whose [`search_terms`] starts with
    /// `prefix`, compared case-insensitively and literally (no wildcards:
    /// `%` and `_` are plain characters). Order: the user whose username
    /// equals `prefix` (case-insensitively) first, then by lowercase
    /// username. Each user at most once. An empty prefix matches everyone.
    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>, StoreError>;

    /// Applies the fields `update` sets, in one atomic write, and returns the
    /// profile as stored afterwards. Fields left `None` keep their values.
    /// A new display name re-indexes the user's search terms in the same
    /// write. `None` when the user does not exist (nothing is written).
    async fn update_profile(&self, id: UserId, update: &ProfileUpdate) -> Result<Option<Profile>, StoreError>;

    /// Replaces a user's password hash. False when the user does not exist.
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool, StoreError>;

    /// Deletes a user and everything that is theirs, atomically: the user
    /// and credentials, the profile and search terms, every session (so the
    /// user's tokens stop working at once), follows in both directions (so
    /// others' counts drop), and every direct conversation with the user,
    /// both directions, with both sides' sync and conversation-list entries
    /// (a message left behind would carry a username that anyone may
    /// register next). The user leaves every group as by
    /// [`GroupStore::remove_group_member`] (succession, last member ends
    /// it); their group messages stay readable to the rest, and readers
    /// show them as from a deleted account (their `from_id` names no user).
    /// The user's read pointers, change feed and chat settings go too, and
    /// so do the peers' read pointers in the deleted direct conversations.
    /// Blocks and mutes go in both directions, and a ban with them;
    /// reports stay (they hold snapshots of the names and text).
    /// The user's reactions go (the messages' counts drop; no change-feed
    /// entry is written for that).
    /// The username is free again afterwards; a new account
    /// with it has a new id and so none of the old conversations. Returns
    /// false when the user did not exist. Idempotent.
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError>;

    // ---- follows ------------------------------------------------------

    /// Records that `follower` follows `followee`, with `id` as the follow's
    /// id (its place in both lists). True when the follow is new; false when
    /// it already existed (nothing changes, the original id is kept) or when
    /// `followee` does not exist (nothing is written). `UserGone` when
    /// `follower` does not exist.
    async fn add_follow(&self, follower: UserId, followee: UserId, id: FollowId) -> Result<bool, StoreError>;

    /// Follower and following counts of `user`. Each follow that
    /// [`Store::add_follow`] makes and each one [`Store::remove_follow`] or
    /// [`Store::delete_user`] (of either side) removes moves them once.
    /// Zero for an unknown user.
    ///
    /// Exact on SQLite: counted from the follows (an index range), they
    /// always equal the lengths of the [`Store::followers`] and
    /// [`Store::following`] lists. On CQL they are counters (one single-row
    /// read) moved after the follow itself changed: exact while no count
    /// update failed, and off by at most the number of follows, unfollows
    /// or deletions whose count update failed or timed out (such an update
    /// is never retried: it may have been applied). Never negative.
    async fn follow_counts(&self, user: UserId) -> Result<FollowCounts, StoreError>;

    /// Up to `limit` users following `user`, newest follow first, with
    /// follow ids below `after` (all if `None`). Paging with the last
    /// entry's `follow_id` as `after` visits each follower once.
    async fn followers(
        &self,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError>;

    /// Up to `limit` users `user` follows, newest follow first, with follow
    /// ids below `after` (all if `None`); paged like [`Store::followers`].
    async fn following(
        &self,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError>;

    /// Removes the follow of `followee` by `follower`. True when there was
    /// one. Idempotent. `UserGone` when `follower` does not exist.
    async fn remove_follow(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError>;

    // ---- sessions -----------------------------------------------------

    /// Stores a new login session with the hash of its first refresh secret.
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The owner of a session if it is live: present, not revoked, not
    /// expired at `now_ms`, and its user still exists.
    async fn live_session_user(&self, id: &SessionId, now_ms: i64) -> Result<Option<UserId>, StoreError>;

    /// Atomically checks a presented refresh-secret hash against a live
    /// session.
    /// - The current hash, or a hash this session replaced less than
    ///   `reuse_grace_ms` ago: the session's secret becomes `new_hash`, its
    ///   expiry `new_expires_ms`, the replaced hash is remembered as used,
    ///   `Rotated`.
    /// - A hash this session replaced longer ago: the session is revoked,
    ///   `ReuseDetected`.
    /// - Any other hash (never issued for this session), or no live
    ///   session: nothing changes, `Invalid`.
    async fn rotate_refresh(&self, id: &SessionId, rotation: &Rotation) -> Result<RotateOutcome, StoreError>;

    /// Revokes a session. Returns false if it was not live. Idempotent.
    async fn revoke_session(&self, id: &SessionId) -> Result<bool, StoreError>;

    /// Revokes every live session of `user` except `keep` (all of them when
    /// `None`), atomically. Returns how many were revoked. Idempotent.
    async fn revoke_user_sessions(&self, user: UserId, keep: Option<&SessionId>) -> Result<u64, StoreError>;

    // ---- messages -----------------------------------------------------

    /// Stores a direct message, indexes it for both participants' sync and
    /// conversation lists. When the message has a nonce and the same sender
    /// already stored one with that nonce, stores nothing and returns the
    /// original (`created: false`). `UserGone` (nothing stored) when the
    /// sender or the recipient does not exist; `Unavailable` (nothing
    /// stored) when the id is older than [`MESSAGE_MAX_AGE_MS`] by the time
    /// it would commit.
    async fn insert_message(&self, message: &Message) -> Result<Inserted, StoreError>;

    /// Resolves `send.to_username` (case-insensitively) and stores the
    /// message to that user as [`Store::insert_message`] does, nonce, user
    /// and age rules included. `Ok(None)`: no user has that name, nothing
    /// was stored. A block between the two, either way, refuses it
    /// ([`StoreError::SenderBlocks`], [`StoreError::RecipientBlocks`]).
    ///
    /// The default looks the name up, then inserts. A backend that can do
    /// both in one step overrides it (SQLite: one writer job, so the send
    /// costs one trip to the store and a recipient deleted in between
    /// never gets rows; CQL: the name lookup and the sender's existence
    /// check run concurrently).
    async fn send_direct(&self, send: &DirectSend) -> Result<Option<Inserted>, StoreError> {
        let Some(to) = self.user_by_username(&send.to_username).await? else {
            return Ok(None);
        };
        check_blocks(self, send.from.id, to.user.id).await?;
        self.insert_message(&send.to_message(&to.user)).await.map(Some)
    }

    /// Up to `limit` messages of a conversation with ids below `before`
    /// (all if `None`), newest first.
    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Up to `limit` messages sent or received by `user` with ids above
    /// `after`, oldest first, each once: paging with the last message's id
    /// as `after` returns every stored message once, whatever order the
    /// messages committed in (ids are only k-sorted across nodes).
    async fn messages_since(&self, user: UserId, after: MessageId, limit: usize) -> Result<Vec<Message>, StoreError>;

    /// Up to `limit` of `user`'s conversations whose last message id is
    /// below `before` (all if `None`), most recent first.
    async fn conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    // ---- posts --------------------------------------------------------

    /// Stores a post by `author` and its item on the author's timeline
    /// (item id = post id) with fan-out state `fanout`. False (nothing
    /// written) when the author does not exist.
    async fn create_post(
        &self,
        id: PostId,
        author: UserId,
        text: &str,
        fanout: FanoutState,
    ) -> Result<bool, StoreError>;

    /// The posts among `ids` that exist, with authors and like and repost
    /// counts, in any order. Counts are read in O(1) per post and follow
    /// the same contract as [`Store::follow_counts`]: exact on SQLite; on
    /// CQL exact while no count update failed, else off by at most the
    /// number of likes, unlikes, reposts and unreposts (deleted users'
    /// included) whose count update failed or timed out.
    async fn posts(&self, ids: &[PostId]) -> Result<Vec<Post>, StoreError>;

    /// Deletes a post with its likes, its reposts, and every timeline item
    /// (user and home) showing it. False when it did not exist. Idempotent.
    async fn delete_post(&self, id: PostId) -> Result<bool, StoreError>;

    /// Records (`like: true`) or removes a like by `user`. The post's like
    /// count moves (by one) only when the like set changes (`changed`), and
    /// the returned count is the post's count afterwards, under the count
    /// contract of [`Store::posts`]. On CQL a timed-out toggle is read back:
    /// `changed` then says whether the set is now as asked, so a toggle
    /// that timed out while another toggle of the same (post, user) raced
    /// it may report the other's change and move the count a second time.
    /// `None` when the post does not exist (nothing written); `UserGone`
    /// when `user` does not.
    async fn set_like(&self, post: PostId, user: UserId, like: bool) -> Result<Option<Toggle>, StoreError>;

    /// Records a repost of `post` by `user` with timeline item `item` (fan-out
    /// state `fanout`). A second repost by the same user changes nothing
    /// (`changed: false`). The repost count moves only on a change, and the
    /// returned count is as in [`Store::set_like`]. `None` when the post
    /// does not exist; `UserGone` when `user` does not.
    async fn add_repost(
        &self,
        post: PostId,
        user: UserId,
        item: ItemId,
        fanout: FanoutState,
    ) -> Result<Option<Toggle>, StoreError>;

    /// Removes `user`'s repost of `post` and its timeline items (user and
    /// home); the repost count moves only on a change, as in
    /// [`Store::add_repost`]. `None` when the post does not exist;
    /// `UserGone` when `user` does not.
    async fn remove_repost(&self, post: PostId, user: UserId) -> Result<Option<Toggle>, StoreError>;

    /// Whether `viewer` liked / reposted each of `posts` (absent: neither).
    async fn viewer_marks(&self, viewer: UserId, posts: &[PostId]) -> Result<Vec<(PostId, ViewerMarks)>, StoreError>;

    // ---- timelines ----------------------------------------------------

    /// Up to `limit` items on `user`'s own timeline (their posts and
    /// reposts) with ids below `before` (all if `None`), newest first.
    async fn user_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError>;

    /// Up to `limit` items copied into `user`'s home timeline (fan-out on
    /// write) with ids below `before`, newest first. Items are not filtered
    /// by who `user` follows now; readers apply their rules.
    async fn home_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError>;

    /// Up to `limit` items not yet copied into home timelines (state
    /// `OnRead` or `Pending`) whose actor is `user` or someone `user`
    /// follows, with ids below `before`, newest first.
    async fn unfanned_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError>;

    /// Everyone `user` follows, with each follow's id. The list is bounded
    /// by the follow limit the handlers enforce.
    async fn follow_ids(&self, user: UserId) -> Result<Vec<(UserId, FollowId)>, StoreError>;

    /// Copies `item` into the home timelines of `users` (idempotent).
    async fn fan_out(&self, item: &TimelineItem, users: &[UserId]) -> Result<(), StoreError>;

    /// Sets an item's fan-out state (no-op for an unknown item).
    async fn set_fanout(&self, item: ItemId, state: FanoutState) -> Result<(), StoreError>;

    /// Up to `limit` items still `Pending`, oldest first (for recovery).
    async fn pending_fanout(&self, limit: usize) -> Result<Vec<TimelineItem>, StoreError>;

    /// Deletes home-timeline copies with ids below `before`; returns how many.
    async fn trim_home(&self, before: ItemId) -> Result<u64, StoreError>;

    // ---- lifecycle ----------------------------------------------------

    /// Finishes pending writes and releases the backend. Calls after it fail
    /// with `Unavailable`.
    async fn close(&self);
}

/// The lowercase terms a user is found by in [`Store::search_users`]: the
/// username and each whitespace-separated word of the display name, without
/// duplicates. Every backend indexes exactly these.
pub fn search_terms(username: &str, display_name: &str) -> Vec<String> {
    let mut terms = vec![username.to_lowercase()];
    for word in display_name.split_whitespace().map(str::to_lowercase) {
        if !terms.contains(&word) {
            terms.push(word);
        }
    }
    terms
}

/// Opens the backend the configuration names: ScyllaDB when `--scylla`
/// lists contact points (applying the schema first with
/// `--scylla-migrate`), else SQLite in the data directory.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    if !config.scylla_nodes.is_empty() {
        let options = ScyllaOptions::from_config(config)?;
        if config.scylla_migrate {
            ScyllaStore::migrate(&options).await?;
        }
        return Ok(Arc::new(ScyllaStore::open(&options).await?));
    }
    let store = SqliteStore::open_with(&config.data_dir.join("hubbub.db"), config.store_timeout(), config.sync).await?;
    Ok(Arc::new(store))
}

/// Brings the configured backend's schema up to date (`hubbub migrate`):
/// the `cql/` files on ScyllaDB, the built-in migrations on SQLite.
pub async fn migrate(config: &Config) -> Result<(), StoreError> {
    if !config.scylla_nodes.is_empty() {
        return ScyllaStore::migrate(&ScyllaOptions::from_config(config)?).await;
    }
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| StoreError::Backend(format!("creating {}: {e}", config.data_dir.display())))?;
    let store = SqliteStore::open(&config.data_dir.join("hubbub.db"), config.store_timeout()).await?;
    store.close().await;
    Ok(())
}

/// Refuses a direct message between `from` and `to` when either blocks the
/// other (both reads at once); a message to oneself is never blocked.
pub async fn check_blocks<S: Store + ?Sized>(store: &S, from: UserId, to: UserId) -> Result<(), StoreError> {
    if from == to {
        return Ok(());
    }
    let (from_list, to_list) = ([from], [to]);
    let (mine, theirs) = tokio::try_join!(store.blockers_of(to, &from_list), store.blockers_of(from, &to_list))?;
    if !mine.is_empty() {
        return Err(StoreError::SenderBlocks);
    }
    if !theirs.is_empty() {
        return Err(StoreError::RecipientBlocks);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::search_terms;

    #[test]
    fn search_terms_are_the_lowercase_username_and_display_name_words() {
        assert_eq!(search_terms("Ann_B", "Ann  Élise ann_b"), ["ann_b", "ann", "élise"]);
        assert_eq!(search_terms("zed", ""), ["zed"]);
    }
}
