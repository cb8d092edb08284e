//! [`ReadStateStore`] on SQLite: `read_pointers`, `user_changes` and
//! `chat_settings` (schema version 8). A pointer move is one writer job:
//! the message check, the forward-only comparison and every change row
//! commit together.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::engine::map_err;
use crate::error::StoreError;
use crate::model::{ChangeId, ConversationId, MessageId, UserId};
use crate::store::read_state::{Change, ChangeKind, ReadMark, ReadOutcome, ReadStateStore, Unread};
use crate::store::{MESSAGE_MAX_AGE_MS, check_message_age};

fn mark_read(conn: &Connection, m: &ReadMark) -> rusqlite::Result<ReadOutcome> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND conversation_id = ?2")?
        .exists(params![m.message_id.0, m.conversation.0])?;
    if !exists {
        return Ok(ReadOutcome::NoSuchMessage);
    }
    let current: Option<i64> = conn
        .prepare_cached("SELECT message_id FROM read_pointers WHERE user_id = ?1 AND conversation_id = ?2")?
        .query_row(params![m.user.0, m.conversation.0], |r| r.get(0))
        .optional()?;
    if let Some(c) = current.filter(|c| *c >= m.message_id.0) {
        return Ok(ReadOutcome::NotForward { current: MessageId(c) });
    }
    conn.prepare_cached(
        "INSERT INTO read_pointers (user_id, conversation_id, message_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, conversation_id) DO UPDATE SET message_id = excluded.message_id",
    )?
    .execute(params![m.user.0, m.conversation.0, m.message_id.0])?;
    let feeds = std::iter::once((m.user, ChangeKind::Read))
        .chain(m.receipts_to.iter().filter(|u| **u != m.user).map(|u| (*u, ChangeKind::Receipt)));
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO user_changes (user_id, change_id, kind, conversation_id, by_id, message_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (owner, kind) in feeds {
        insert.execute(params![owner.0, m.change.0, kind.code(), m.conversation.0, m.user.0, m.message_id.0])?;
    }
    Ok(ReadOutcome::Moved)
}

fn unread_one(conn: &Connection, user: UserId, conv: &ConversationId, cap: u32) -> rusqlite::Result<Unread> {
    let pointer: Option<i64> = conn
        .prepare_cached("SELECT message_id FROM read_pointers WHERE user_id = ?1 AND conversation_id = ?2")?
        .query_row(params![user.0, conv.0], |r| r.get(0))
        .optional()?;
    // At most cap + 1 messages above the pointer, by the conversation index.
    let mut s = conn
        .prepare_cached("SELECT from_id FROM messages WHERE conversation_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3")?;
    let senders = s
        .query_map(params![conv.0, pointer.unwrap_or(-1), i64::from(cap) + 1], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let capped = senders.len() > cap as usize;
    let count = senders.iter().filter(|f| **f != user.0).count().min(cap as usize) as u32;
    Ok(Unread { conversation: conv.clone(), read_up_to: pointer.map(MessageId), count, capped })
}

fn changes_since(conn: &Connection, user: UserId, after: ChangeId, limit: usize) -> rusqlite::Result<Vec<Change>> {
    let mut s = conn.prepare_cached(
        "SELECT change_id, kind, conversation_id, by_id, message_id FROM user_changes
         WHERE user_id = ?1 AND change_id > ?2 ORDER BY change_id LIMIT ?3",
    )?;
    let rows = s.query_map(params![user.0, after.0, limit as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i32>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, kind, conv, by, message): (i64, i32, String, i64, i64) = row?;
        // A kind a newer version wrote is skipped (its id still advances the cursor upstream).
        let Some(kind) = ChangeKind::from_code(kind) else { continue };
        out.push(Change {
            id: ChangeId(id),
            kind,
            conversation: ConversationId(conv),
            by: UserId(by),
            message_id: MessageId(message),
        });
    }
    Ok(out)
}

#[async_trait]
impl ReadStateStore for SqliteStore {
    async fn mark_read(&self, mark: &ReadMark) -> Result<ReadOutcome, StoreError> {
        check_message_age(MessageId(mark.change.0))?;
        let mark = mark.clone();
        let commit_by = mark.change.unix_ms() + MESSAGE_MAX_AGE_MS;
        self.engine.write_by(Some(commit_by), move |conn| mark_read(conn, &mark).map_err(map_err)).await
    }

    async fn unread(
        &self,
        user: UserId,
        conversations: &[ConversationId],
        cap: u32,
    ) -> Result<Vec<Unread>, StoreError> {
        let convs = conversations.to_vec();
        self.engine
            .read(move |conn| {
                convs.iter().map(|c| unread_one(conn, user, c, cap)).collect::<rusqlite::Result<_>>().map_err(map_err)
            })
            .await
    }

    async fn changes_since(&self, user: UserId, after: ChangeId, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.engine.read(move |conn| changes_since(conn, user, after, limit).map_err(map_err)).await
    }

    async fn set_read_receipts(&self, user: UserId, enabled: bool) -> Result<(), StoreError> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO chat_settings (user_id, read_receipts) VALUES (?1, ?2)
                     ON CONFLICT (user_id) DO UPDATE SET read_receipts = excluded.read_receipts",
                )
                .and_then(|mut s| s.execute(params![user.0, enabled]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn read_receipts(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError> {
        let users = users.to_vec();
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached("SELECT read_receipts FROM chat_settings WHERE user_id = ?1")
                    .map_err(map_err)?;
                users
                    .iter()
                    .map(|u| s.query_row([u.0], |r| r.get::<_, bool>(0)).optional().map(|v| v.unwrap_or(true)))
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_err)
            })
            .await
    }
}
