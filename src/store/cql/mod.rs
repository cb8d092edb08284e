//! The ScyllaDB (and Apache Cassandra 4+) backend of [`Store`].
//!
//! Thin by design: each trait method maps onto one or a few prepared
//! statements (a Rust loop over small statements where the data spans
//! partitions, with the cost said on the method). Rules, validation,
//! merging and cursors stay above the trait; key arithmetic is in [`keys`].
//!
//! # Layout
//! - [`options`]: flags, connecting (bounded in time), migrate.
//! - [`schema`]: the embedded `cql/` files.
//! - [`statements`]: the (name, kind, CQL) table, prepared once.
//! - [`exec`]: running statements, paging, LWT outcomes, error mapping.
//! - [`keys`]: buckets, search prefixes, timestamps (pure).
//! - [`binds`]: the bound values of the wide statements (order and types tested).
//! - [`rows`]: `DeserializeRow` structs and their model conversions.
//! - [`counts`]: like, repost and follow counts (counter tables).
//! - `accounts`, `sessions`, `messages`, `social`, `delete`, `posts`, `groups`: the methods.

mod accounts;
mod binds;
mod counts;
#[cfg(test)]
mod decode_tests;
mod delete;
mod device_slots;
mod exec;
mod groups;
mod intake_cursor;
pub mod keys;
mod lifecycle;
mod messages;
pub mod options;
mod posts;
mod push;
mod push_intake;
mod reactions;
mod read_state;
mod rows;
mod safety;
pub mod schema;
mod sessions;
mod social;
mod statements;

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use self::exec::Db;
pub use self::options::ScyllaOptions;
use self::posts::Timeline;
use self::social::Side;
use self::statements::Statements;
use super::{Inserted, Store};
use crate::error::StoreError;
use crate::model::{
    ConversationId, ConversationSummary, DirectSend, FanoutState, FollowCounts, FollowEntry, FollowId, ItemId, Message,
    MessageId, Post, PostId, Profile, ProfileUpdate, RotateOutcome, Rotation, Session, SessionId, TimelineItem, Toggle,
    User, UserCredentials, UserId, ViewerMarks,
};

/// Storage on a ScyllaDB or Cassandra 4+ cluster.
pub struct ScyllaStore {
    db: Db,
    keyspace: String,
    closed: AtomicBool,
}

impl ScyllaStore {
    /// Connects to the keyspace of `o` and prepares every statement. Fails
    /// fast (`Unavailable`) when no node answers, and with a hint to run
    /// `hubbub migrate` when the schema is missing.
    pub async fn open(o: &ScyllaOptions) -> Result<ScyllaStore, StoreError> {
        let session = options::connect(o, Some(&o.keyspace)).await.map_err(|e| match e {
            StoreError::Backend(m) | StoreError::Unavailable(m) if m.contains("eyspace") => {
                StoreError::Backend(format!("{m} (create it with `hubbub migrate` or start with --scylla-migrate)"))
            }
            other => other,
        })?;
        let st = Statements::prepare(&session).await?;
        Ok(ScyllaStore { db: Db { session, st }, keyspace: o.keyspace.clone(), closed: AtomicBool::new(false) })
    }

    /// Applies the schema (`cql/` files) to the keyspace of `o`.
    pub async fn migrate(o: &ScyllaOptions) -> Result<(), StoreError> {
        options::migrate(o).await
    }

    /// Drops this store's keyspace (tests run in a fresh one each). Works
    /// after [`Store::close`].
    pub async fn drop_keyspace(&self) -> Result<(), StoreError> {
        options::drop_keyspace(&self.db.session, &self.keyspace).await
    }

    fn live(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) { Err(StoreError::Unavailable("store closed".into())) } else { Ok(()) }
    }
}

#[async_trait]
impl Store for ScyllaStore {
    async fn create_user(&self, user: &UserCredentials) -> Result<(), StoreError> {
        self.live()?;
        self.create_user_cql(user).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserCredentials>, StoreError> {
        self.live()?;
        self.user_by_username_cql(username).await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.live()?;
        self.user_by_id_cql(id).await
    }

    async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        self.live()?;
        self.profile_cql(id).await
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>, StoreError> {
        self.live()?;
        self.search_users_cql(prefix, limit).await
    }

    async fn update_profile(&self, id: UserId, update: &ProfileUpdate) -> Result<Option<Profile>, StoreError> {
        self.live()?;
        self.update_profile_cql(id, update).await
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool, StoreError> {
        self.live()?;
        self.set_password_hash_cql(id, password_hash).await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.live()?;
        self.delete_user_cql(id).await
    }

    async fn add_follow(&self, follower: UserId, followee: UserId, id: FollowId) -> Result<bool, StoreError> {
        self.live()?;
        // add_follow_cql reads the follower first (UserGone) with the followee.
        let created = self.add_follow_cql(follower, followee, id).await?;
        if let Err(e) = self.require_users(&[follower]).await {
            self.remove_follow_cql(follower, followee).await?;
            return Err(e);
        }
        Ok(created)
    }

    async fn follow_counts(&self, user: UserId) -> Result<FollowCounts, StoreError> {
        self.live()?;
        self.follow_counts_cql(user).await
    }

    async fn followers(
        &self,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError> {
        self.live()?;
        self.follow_page_cql(Side::Followers, user, after, limit).await
    }

    async fn following(
        &self,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError> {
        self.live()?;
        self.follow_page_cql(Side::Following, user, after, limit).await
    }

    async fn remove_follow(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError> {
        self.live()?;
        self.require_users(&[follower]).await?;
        self.remove_follow_cql(follower, followee).await
    }

    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.live()?;
        self.create_session_cql(session).await
    }

    async fn live_session_user(&self, id: &SessionId, now_ms: i64) -> Result<Option<UserId>, StoreError> {
        self.live()?;
        self.live_session_user_cql(id, now_ms).await
    }

    async fn rotate_refresh(&self, id: &SessionId, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        self.live()?;
        self.rotate_refresh_cql(id, rotation).await
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.live()?;
        self.revoke_session_cql(id).await
    }

    async fn revoke_user_sessions(&self, user: UserId, keep: Option<&SessionId>) -> Result<u64, StoreError> {
        self.live()?;
        self.revoke_user_sessions_cql(user, keep).await
    }

    async fn insert_message(&self, message: &Message) -> Result<Inserted, StoreError> {
        self.live()?;
        self.insert_message_cql(message).await
    }

    async fn send_direct(&self, send: &DirectSend) -> Result<Option<Inserted>, StoreError> {
        self.live()?;
        self.send_direct_cql(send).await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.live()?;
        self.history_cql(conversation, before, limit).await
    }

    async fn messages_since(&self, user: UserId, after: MessageId, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.live()?;
        self.messages_since_cql(user, after, limit).await
    }

    async fn conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        self.live()?;
        self.conversations_cql(user, before, limit).await
    }

    async fn create_post(
        &self,
        id: PostId,
        author: UserId,
        text: &str,
        fanout: FanoutState,
    ) -> Result<bool, StoreError> {
        self.live()?;
        self.create_post_cql(id, author, text, fanout).await
    }

    async fn posts(&self, ids: &[PostId]) -> Result<Vec<Post>, StoreError> {
        self.live()?;
        self.posts_cql(ids).await
    }

    async fn delete_post(&self, id: PostId) -> Result<bool, StoreError> {
        self.live()?;
        self.delete_post_cql(id).await
    }

    async fn set_like(&self, post: PostId, user: UserId, like: bool) -> Result<Option<Toggle>, StoreError> {
        self.live()?;
        self.require_users(&[user]).await?;
        let toggle = self.set_like_cql(post, user, like).await?;
        if let Err(e) = self.require_users(&[user]).await {
            self.set_like_cql(post, user, false).await?;
            return Err(e);
        }
        Ok(toggle)
    }

    async fn add_repost(
        &self,
        post: PostId,
        user: UserId,
        item: ItemId,
        fanout: FanoutState,
    ) -> Result<Option<Toggle>, StoreError> {
        self.live()?;
        self.require_users(&[user]).await?;
        let toggle = self.add_repost_cql(post, user, item, fanout).await?;
        if let Err(e) = self.require_users(&[user]).await {
            self.remove_repost_cql(post, user).await?;
            return Err(e);
        }
        Ok(toggle)
    }

    async fn remove_repost(&self, post: PostId, user: UserId) -> Result<Option<Toggle>, StoreError> {
        self.live()?;
        self.require_users(&[user]).await?;
        self.remove_repost_cql(post, user).await
    }

    async fn viewer_marks(&self, viewer: UserId, posts: &[PostId]) -> Result<Vec<(PostId, ViewerMarks)>, StoreError> {
        self.live()?;
        self.viewer_marks_cql(viewer, posts).await
    }

    async fn user_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        self.live()?;
        self.timeline_cql(Timeline::User, user, before, limit).await
    }

    async fn home_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        self.live()?;
        self.timeline_cql(Timeline::Home, user, before, limit).await
    }

    async fn unfanned_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        self.live()?;
        self.unfanned_items_cql(user, before, limit).await
    }

    async fn follow_ids(&self, user: UserId) -> Result<Vec<(UserId, FollowId)>, StoreError> {
        self.live()?;
        self.follow_ids_cql(user).await
    }

    async fn fan_out(&self, item: &TimelineItem, users: &[UserId]) -> Result<(), StoreError> {
        self.live()?;
        self.fan_out_cql(item, users).await
    }

    async fn set_fanout(&self, item: ItemId, state: FanoutState) -> Result<(), StoreError> {
        self.live()?;
        self.set_fanout_cql(item, state).await
    }

    async fn pending_fanout(&self, limit: usize) -> Result<Vec<TimelineItem>, StoreError> {
        self.live()?;
        self.pending_fanout_cql(limit).await
    }

    async fn trim_home(&self, before: ItemId) -> Result<u64, StoreError> {
        self.live()?;
        self.trim_home_cql(before).await
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
