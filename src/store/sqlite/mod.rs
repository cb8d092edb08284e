//! The SQLite backend of [`Store`]: the default, embedded, single-file store.

mod account;
mod engine;
mod groups;
mod lifecycle;
pub mod pcache;
mod posts;
mod push;
mod push_intake;
mod reactions;
mod read_state;
mod safety;
mod schema;
mod social;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use self::engine::{Engine, map_err};
use self::social::Side;
use super::{Inserted, Store};
use crate::config::SyncMode;
use crate::error::StoreError;
use crate::model::{
    ConversationId, ConversationSummary, DirectSend, FanoutState, FollowCounts, FollowEntry, FollowId, ItemId, Message,
    MessageId, Post, PostId, Profile, ProfileUpdate, RotateOutcome, Rotation, Session, SessionId, TimelineItem, Toggle,
    User, UserCredentials, UserId, ViewerMarks,
};

/// SQLite storage in one file, WAL mode, `synchronous=FULL` (or NORMAL with `--sync normal`).
pub struct SqliteStore {
    engine: Engine,
}

impl SqliteStore {
    /// Opens or creates the database at `path`; every call times out after `timeout`.
    pub async fn open(path: &Path, timeout: Duration) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, timeout, SyncMode::Full).await
    }

    /// [`SqliteStore::open`] with writes answered as `sync` says
    /// (`--sync`: what a crash or a power loss may take, config.rs).
    pub async fn open_with(path: &Path, timeout: Duration, sync: SyncMode) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore { engine: Engine::open(path, timeout, sync).await? })
    }
}

const MESSAGE_COLUMNS: &str = "m.id, m.conversation_id, m.from_id, m.from_name, m.to_id, m.to_name, m.text, m.nonce";

fn message_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: MessageId(r.get(at)?),
        conversation_id: ConversationId(r.get(at + 1)?),
        from_id: UserId(r.get(at + 2)?),
        from: r.get(at + 3)?,
        to_id: UserId(r.get(at + 4)?),
        to: r.get(at + 5)?,
        text: r.get(at + 6)?,
        nonce: r.get(at + 7)?,
    })
}

fn user_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(at)?),
        username: r.get(at + 1)?,
        display_name: r.get(at + 2)?,
        created_at_ms: r.get(at + 3)?,
    })
}

/// `Err(UserGone)` unless every one of `users` exists (checked inside the
/// write's transaction, so a concurrent account deletion is either before
/// it and refuses the write, or after it and removes what it wrote).
fn require_users(conn: &Connection, users: &[UserId]) -> Result<(), StoreError> {
    for u in users {
        let exists = conn
            .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
            .and_then(|mut s| s.exists([u.0]))
            .map_err(map_err)?;
        if !exists {
            return Err(StoreError::UserGone);
        }
    }
    Ok(())
}

/// The message `from` already stored with `nonce`, if any (no nonce: none).
fn stored_for_nonce(conn: &Connection, from: UserId, nonce: Option<&str>) -> Result<Option<Message>, StoreError> {
    let Some(nonce) = nonce else { return Ok(None) };
    conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.from_id = ?1 AND m.nonce = ?2"))
        .and_then(|mut s| s.query_row(params![from.0, nonce], |r| message_from_row(r, 0)).optional())
        .map_err(map_err)
}

/// The recipient of a direct message to `username_key` from `from`, checked
/// as one statement on the writer (it was four: the sender's row, the
/// recipient's, and a block each way): `None` when nobody has that name;
/// `UserGone` when the sender no longer exists; `SenderBlocks` or
/// `RecipientBlocks` when either blocks the other (the sender's block
/// first; a message to oneself is never blocked).
fn direct_recipient(conn: &Connection, from: UserId, username_key: &str) -> Result<Option<User>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT u.id, u.username, u.display_name, u.created_at,
                    EXISTS (SELECT 1 FROM blocks WHERE blocker_id = s.id AND blocked_id = u.id),
                    EXISTS (SELECT 1 FROM blocks WHERE blocker_id = u.id AND blocked_id = s.id)
             FROM users s LEFT JOIN users u ON u.username_key = ?2
             WHERE s.id = ?1",
        )
        .and_then(|mut s| {
            s.query_row(params![from.0, username_key], |r| {
                let to = match r.get::<_, Option<i64>>(0)? {
                    Some(_) => Some(user_from_row(r, 0)?),
                    None => None,
                };
                Ok((to, r.get::<_, bool>(4)?, r.get::<_, bool>(5)?))
            })
            .optional()
        })
        .map_err(map_err)?;
    let Some((to, sender_blocks, recipient_blocks)) = row else { return Err(StoreError::UserGone) };
    match to {
        Some(to) if to.id != from && sender_blocks => Err(StoreError::SenderBlocks),
        Some(to) if to.id != from && recipient_blocks => Err(StoreError::RecipientBlocks),
        to => Ok(to),
    }
}

/// The latest time (Unix ms) a message with id `id` may commit.
fn message_commit_by(id: MessageId) -> i64 {
    id.unix_ms() + super::MESSAGE_MAX_AGE_MS
}

/// Writes a message: its row (and so its conversation index entry), then
/// each participant's `user_conversations` row moves to the new last
/// message (unless a newer one is stored already: ids are only k-sorted).
/// Returns whether it wrote a push intake entry (the recipient has a device).
fn insert_message_rows(conn: &Connection, m: &Message) -> rusqlite::Result<bool> {
    let prev: Option<i64> = conn
        .prepare_cached("SELECT max(id) FROM messages WHERE conversation_id = ?1")?
        .query_row([&m.conversation_id.0], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO messages (id, conversation_id, from_id, from_name, to_id, to_name, text, nonce)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![m.id.0, m.conversation_id.0, m.from_id.0, m.from, m.to_id.0, m.to, m.text, m.nonce])?;
    let push_intake = m.to_id != m.from_id && push_intake::record(conn, m.id, Some(m.to_id))?;
    if prev.is_some_and(|p| p > m.id.0) {
        return Ok(push_intake);
    }
    // Each participant's row sits at the conversation's last message id
    // (`prev`, which no other conversation of theirs can have): move it in
    // one UPDATE, or create it (the conversation's first message).
    let sides = [(m.from_id, m.to_id), (m.to_id, m.from_id)];
    for (me, peer) in &sides[..if m.from_id == m.to_id { 1 } else { 2 }] {
        let moved = match prev {
            Some(p) => conn
                .prepare_cached(
                    "UPDATE user_conversations SET last_message_id = ?3 WHERE user_id = ?1 AND last_message_id = ?2",
                )?
                .execute(params![me.0, p, m.id.0])?,
            None => 0,
        };
        if moved > 0 {
            continue;
        }
        conn.prepare_cached(
            "INSERT INTO user_conversations (user_id, last_message_id, peer_id, conversation_id)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![me.0, m.id.0, peer.0, m.conversation_id.0])?;
    }
    Ok(push_intake)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, c: &UserCredentials) -> Result<(), StoreError> {
        let c = c.clone();
        self.engine
            .write(move |conn| {
                let res = conn
                    .prepare_cached(
                        "INSERT INTO users (id, username, username_key, display_name, password_hash, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            c.user.id.0,
                            c.user.username,
                            c.user.username.to_lowercase(),
                            c.user.display_name,
                            c.password_hash,
                            c.user.created_at_ms
                        ])
                    });
                match res {
                    Ok(_) => {
                        social::index_user(conn, c.user.id, &c.user.username, &c.user.display_name).map_err(map_err)
                    }
                    Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        Err(StoreError::Conflict("username"))
                    }
                    Err(e) => Err(map_err(e)),
                }
            })
            .await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserCredentials>, StoreError> {
        let key = username.to_lowercase();
        self.engine
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, username, display_name, created_at, password_hash FROM users WHERE username_key = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([key], |r| Ok(UserCredentials { user: user_from_row(r, 0)?, password_hash: r.get(4)? }))
                        .optional()
                })
                .map_err(map_err)
            })
            .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached("SELECT id, username, display_name, created_at FROM users WHERE id = ?1")
                    .and_then(|mut s| s.query_row([id.0], |r| user_from_row(r, 0)).optional())
                    .map_err(map_err)
            })
            .await
    }

    async fn profile(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        self.engine.read(move |conn| social::profile(conn, id).map_err(map_err)).await
    }

    async fn search_users(&self, prefix: &str, limit: usize) -> Result<Vec<User>, StoreError> {
        let prefix = prefix.to_owned();
        self.engine.read(move |conn| social::search_users(conn, &prefix, limit).map_err(map_err)).await
    }

    async fn update_profile(&self, id: UserId, update: &ProfileUpdate) -> Result<Option<Profile>, StoreError> {
        let update = update.clone();
        self.engine.write(move |conn| social::update_profile(conn, id, &update).map_err(map_err)).await
    }

    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> Result<bool, StoreError> {
        let hash = password_hash.to_owned();
        self.engine.write(move |conn| account::set_password_hash(conn, id, &hash).map_err(map_err)).await
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.engine.write(move |conn| account::delete_user(conn, id).map_err(map_err)).await
    }

    async fn add_follow(&self, follower: UserId, followee: UserId, id: FollowId) -> Result<bool, StoreError> {
        self.engine
            .write(move |conn| {
                require_users(conn, &[follower])?;
                social::add_follow(conn, follower, followee, id).map_err(map_err)
            })
            .await
    }

    async fn follow_counts(&self, user: UserId) -> Result<FollowCounts, StoreError> {
        self.engine.read(move |conn| social::follow_counts(conn, user).map_err(map_err)).await
    }

    async fn followers(
        &self,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError> {
        self.engine
            .read(move |conn| social::follow_page(conn, Side::Followers, user, after, limit).map_err(map_err))
            .await
    }

    async fn following(
        &self,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError> {
        self.engine
            .read(move |conn| social::follow_page(conn, Side::Following, user, after, limit).map_err(map_err))
            .await
    }

    async fn remove_follow(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError> {
        self.engine
            .write(move |conn| {
                require_users(conn, &[follower])?;
                social::remove_follow(conn, follower, followee).map_err(map_err)
            })
            .await
    }

    async fn create_session(&self, s: &Session) -> Result<(), StoreError> {
        let s = s.clone();
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO sessions (id, user_id, refresh_hash, expires_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut st| st.execute(params![s.id.0, s.user_id.0, s.refresh_hash, s.expires_at_ms]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn live_session_user(&self, id: &SessionId, now_ms: i64) -> Result<Option<UserId>, StoreError> {
        let id = id.0.clone();
        self.engine
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.id = ?1 AND s.revoked = 0 AND s.expires_at > ?2",
                )
                .and_then(|mut st| st.query_row(params![id, now_ms], |r| r.get(0).map(UserId)).optional())
                .map_err(map_err)
            })
            .await
    }

    async fn rotate_refresh(&self, id: &SessionId, rotation: &Rotation) -> Result<RotateOutcome, StoreError> {
        let (id, r) = (id.0.clone(), rotation.clone());
        self.engine.write(move |conn| account::rotate_refresh(conn, &id, &r).map_err(map_err)).await
    }

    async fn revoke_session(&self, id: &SessionId) -> Result<bool, StoreError> {
        let id = id.0.clone();
        self.engine
            .write(move |conn| {
                conn.execute("UPDATE sessions SET revoked = 1 WHERE id = ?1 AND revoked = 0", [id])
                    .map(|n| n > 0)
                    .map_err(map_err)
            })
            .await
    }

    async fn revoke_user_sessions(&self, user: UserId, keep: Option<&SessionId>) -> Result<u64, StoreError> {
        let keep = keep.cloned();
        self.engine.write(move |conn| account::revoke_user_sessions(conn, user, keep.as_ref()).map_err(map_err)).await
    }

    async fn insert_message(&self, m: &Message) -> Result<Inserted, StoreError> {
        let m = m.clone();
        self.engine
            .write_by(Some(message_commit_by(m.id)), move |conn| {
                require_users(conn, &[m.from_id, m.to_id])?;
                if let Some(original) = stored_for_nonce(conn, m.from_id, m.nonce.as_deref())? {
                    return Ok(Inserted::repeat(original));
                }
                let push_intake = insert_message_rows(conn, &m).map_err(map_err)?;
                Ok(Inserted::written(m, push_intake))
            })
            .await
    }

    async fn send_direct(&self, send: &DirectSend) -> Result<Option<Inserted>, StoreError> {
        let send = send.clone();
        let key = send.to_username.to_lowercase();
        self.engine
            .write_by(Some(message_commit_by(send.id)), move |conn| {
                // A retry finds its original even if a block came since; a
                // deleted sender's retry finds nothing.
                if send.nonce.is_some() {
                    require_users(conn, &[send.from.id])?;
                    if let Some(original) = stored_for_nonce(conn, send.from.id, send.nonce.as_deref())? {
                        return Ok(Some(Inserted::repeat(original)));
                    }
                }
                let Some(to) = direct_recipient(conn, send.from.id, &key)? else { return Ok(None) };
                let m = send.into_message(&to);
                let push_intake = insert_message_rows(conn, &m).map_err(map_err)?;
                Ok(Some(Inserted::written(m, push_intake)))
            })
            .await
    }

    async fn history(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let conv = conversation.0.clone();
        let before = before.map_or(i64::MAX, |b| b.0);
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m
                         WHERE m.conversation_id = ?1 AND m.id < ?2 ORDER BY m.id DESC LIMIT ?3"
                    ))
                    .map_err(map_err)?;
                let rows =
                    s.query_map(params![conv, before, limit as i64], |r| message_from_row(r, 0)).map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn messages_since(&self, user: UserId, after: MessageId, limit: usize) -> Result<Vec<Message>, StoreError> {
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM user_conversations c JOIN messages m
                         ON m.id IN (SELECT id FROM messages WHERE conversation_id = c.conversation_id
                                     AND id > ?2 ORDER BY id LIMIT ?3)
                         WHERE c.user_id = ?1 AND c.last_message_id > ?2
                         ORDER BY m.id ASC LIMIT ?3"
                    ))
                    .map_err(map_err)?;
                let rows =
                    s.query_map(params![user.0, after.0, limit as i64], |r| message_from_row(r, 0)).map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let before = before.map_or(i64::MAX, |b| b.0);
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached(&format!(
                        "SELECT u.id, u.username, u.display_name, u.created_at, {MESSAGE_COLUMNS}
                         FROM user_conversations c
                         JOIN users u ON u.id = c.peer_id
                         JOIN messages m ON m.id = c.last_message_id
                         WHERE c.user_id = ?1 AND c.last_message_id < ?2
                         ORDER BY c.last_message_id DESC LIMIT ?3"
                    ))
                    .map_err(map_err)?;
                let rows = s
                    .query_map(params![user.0, before, limit as i64], |r| {
                        let last_message = message_from_row(r, 4)?;
                        Ok(ConversationSummary {
                            conversation_id: last_message.conversation_id.clone(),
                            peer: user_from_row(r, 0)?,
                            last_message,
                        })
                    })
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn create_post(
        &self,
        id: PostId,
        author: UserId,
        text: &str,
        fanout: FanoutState,
    ) -> Result<bool, StoreError> {
        let text = text.to_owned();
        self.engine.write(move |c| posts::create_post(c, id, author, &text, fanout).map_err(map_err)).await
    }

    async fn posts(&self, ids: &[PostId]) -> Result<Vec<Post>, StoreError> {
        let ids = ids.to_vec();
        self.engine.read(move |c| posts::posts(c, &ids).map_err(map_err)).await
    }

    async fn delete_post(&self, id: PostId) -> Result<bool, StoreError> {
        self.engine.write(move |c| posts::delete_post(c, id).map_err(map_err)).await
    }

    async fn set_like(&self, post: PostId, user: UserId, like: bool) -> Result<Option<Toggle>, StoreError> {
        self.engine
            .write(move |c| {
                require_users(c, &[user])?;
                posts::set_like(c, post, user, like).map_err(map_err)
            })
            .await
    }

    async fn add_repost(
        &self,
        post: PostId,
        user: UserId,
        item: ItemId,
        fanout: FanoutState,
    ) -> Result<Option<Toggle>, StoreError> {
        self.engine
            .write(move |c| {
                require_users(c, &[user])?;
                posts::add_repost(c, post, user, item, fanout).map_err(map_err)
            })
            .await
    }

    async fn remove_repost(&self, post: PostId, user: UserId) -> Result<Option<Toggle>, StoreError> {
        self.engine
            .write(move |c| {
                require_users(c, &[user])?;
                posts::remove_repost(c, post, user).map_err(map_err)
            })
            .await
    }

    async fn viewer_marks(&self, viewer: UserId, ids: &[PostId]) -> Result<Vec<(PostId, ViewerMarks)>, StoreError> {
        let ids = ids.to_vec();
        self.engine.read(move |c| posts::viewer_marks(c, viewer, &ids).map_err(map_err)).await
    }

    async fn user_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        self.engine.read(move |c| posts::user_items(c, user, before, limit).map_err(map_err)).await
    }

    async fn home_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        self.engine.read(move |c| posts::home_items(c, user, before, limit).map_err(map_err)).await
    }

    async fn unfanned_items(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        self.engine.read(move |c| posts::unfanned_items(c, user, before, limit).map_err(map_err)).await
    }

    async fn follow_ids(&self, user: UserId) -> Result<Vec<(UserId, FollowId)>, StoreError> {
        self.engine.read(move |c| posts::follow_ids(c, user).map_err(map_err)).await
    }

    async fn fan_out(&self, item: &TimelineItem, users: &[UserId]) -> Result<(), StoreError> {
        let (item, users) = (*item, users.to_vec());
        self.engine.write(move |c| posts::fan_out(c, &item, &users).map_err(map_err)).await
    }

    async fn set_fanout(&self, item: ItemId, state: FanoutState) -> Result<(), StoreError> {
        self.engine.write(move |c| posts::set_fanout(c, item, state).map_err(map_err)).await
    }

    async fn pending_fanout(&self, limit: usize) -> Result<Vec<TimelineItem>, StoreError> {
        self.engine.read(move |c| posts::pending_fanout(c, limit).map_err(map_err)).await
    }

    async fn trim_home(&self, before: ItemId) -> Result<u64, StoreError> {
        self.engine.write(move |c| posts::trim_home(c, before).map_err(map_err)).await
    }

    async fn close(&self) {
        self.engine.close().await;
    }
}
