//! [`LifecycleStore`] on SQLite: `message_state` (schema version 9). An
//! edit or a delete is one writer job: the message check, the state write,
//! the cleared text and every change row commit together.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::engine::map_err;
use super::{MESSAGE_COLUMNS, SqliteStore, message_from_row};
use crate::error::StoreError;
use crate::model::{ConversationId, Message, MessageId};
use crate::store::lifecycle::{LifecycleOutcome, LifecycleStore, MessageChange, MessageState};
use crate::store::read_state::ChangeKind;
use crate::store::{MESSAGE_MAX_AGE_MS, check_message_age};

/// `None`: no such message; `Some(deleted)` otherwise.
fn message_deleted(conn: &Connection, conv: &ConversationId, id: MessageId) -> rusqlite::Result<Option<bool>> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND conversation_id = ?2")?
        .exists(params![id.0, conv.0])?;
    if !exists {
        return Ok(None);
    }
    let deleted: Option<bool> = conn
        .prepare_cached("SELECT deleted FROM message_state WHERE conversation_id = ?1 AND message_id = ?2")?
        .query_row(params![conv.0, id.0], |r| r.get(0))
        .optional()?;
    Ok(Some(deleted.unwrap_or(false)))
}

fn record_changes(conn: &Connection, c: &MessageChange, kind: ChangeKind) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO user_changes (user_id, change_id, kind, conversation_id, by_id, message_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for owner in &c.feeds {
        insert.execute(params![owner.0, c.change.0, kind.code(), c.conversation.0, c.by.0, c.message_id.0])?;
    }
    Ok(())
}

fn edit(conn: &Connection, c: &MessageChange, text: &str) -> rusqlite::Result<LifecycleOutcome> {
    match message_deleted(conn, &c.conversation, c.message_id)? {
        None => return Ok(LifecycleOutcome::NoSuchMessage),
        Some(true) => return Ok(LifecycleOutcome::Deleted),
        Some(false) => {}
    }
    conn.prepare_cached(
        "INSERT INTO message_state (conversation_id, message_id, edited_at, edit_change, text)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (conversation_id, message_id) DO UPDATE
         SET edited_at = excluded.edited_at, edit_change = excluded.edit_change, text = excluded.text
         WHERE message_state.edit_change IS NULL OR message_state.edit_change < excluded.edit_change",
    )?
    .execute(params![c.conversation.0, c.message_id.0, c.change.unix_ms(), c.change.0, text])?;
    record_changes(conn, c, ChangeKind::Edit)?;
    Ok(LifecycleOutcome::Done)
}

fn delete(conn: &Connection, c: &MessageChange) -> rusqlite::Result<LifecycleOutcome> {
    match message_deleted(conn, &c.conversation, c.message_id)? {
        None => return Ok(LifecycleOutcome::NoSuchMessage),
        Some(true) => return Ok(LifecycleOutcome::Deleted),
        Some(false) => {}
    }
    conn.prepare_cached(
        "INSERT INTO message_state (conversation_id, message_id, deleted) VALUES (?1, ?2, 1)
         ON CONFLICT (conversation_id, message_id) DO UPDATE SET deleted = 1, text = NULL",
    )?
    .execute(params![c.conversation.0, c.message_id.0])?;
    conn.prepare_cached("UPDATE messages SET text = '' WHERE id = ?1")?.execute([c.message_id.0])?;
    record_changes(conn, c, ChangeKind::Delete)?;
    Ok(LifecycleOutcome::Done)
}

fn states(conn: &Connection, messages: &[(ConversationId, MessageId)]) -> rusqlite::Result<Vec<MessageState>> {
    let mut s = conn.prepare_cached(
        "SELECT reply_to, edited_at, text, deleted FROM message_state WHERE conversation_id = ?1 AND message_id = ?2",
    )?;
    let mut out = Vec::new();
    for (conv, id) in messages {
        let row = s
            .query_row(params![conv.0, id.0], |r| {
                Ok(MessageState {
                    message_id: *id,
                    reply_to: r.get::<_, Option<i64>>(0)?.map(MessageId),
                    edited_at_ms: r.get(1)?,
                    text: r.get(2)?,
                    deleted: r.get(3)?,
                })
            })
            .optional()?;
        out.extend(row);
    }
    Ok(out)
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn set_reply(
        &self,
        conversation: &ConversationId,
        id: MessageId,
        reply_to: MessageId,
    ) -> Result<(), StoreError> {
        let conv = conversation.clone();
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO message_state (conversation_id, message_id, reply_to) VALUES (?1, ?2, ?3)
                     ON CONFLICT (conversation_id, message_id) DO UPDATE SET reply_to = excluded.reply_to",
                )
                .and_then(|mut s| s.execute(params![conv.0, id.0, reply_to.0]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn message(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let conv = conversation.clone();
        self.engine
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1 AND m.conversation_id = ?2"
                ))
                .and_then(|mut s| s.query_row(params![id.0, conv.0], |r| message_from_row(r, 0)).optional())
                .map_err(map_err)
            })
            .await
    }

    async fn message_states(&self, messages: &[(ConversationId, MessageId)]) -> Result<Vec<MessageState>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let messages = messages.to_vec();
        self.engine.read(move |conn| states(conn, &messages).map_err(map_err)).await
    }

    async fn edit_message(&self, change: &MessageChange, text: &str) -> Result<LifecycleOutcome, StoreError> {
        check_message_age(MessageId(change.change.0))?;
        let (c, text) = (change.clone(), text.to_owned());
        let commit_by = c.change.unix_ms() + MESSAGE_MAX_AGE_MS;
        self.engine.write_by(Some(commit_by), move |conn| edit(conn, &c, &text).map_err(map_err)).await
    }

    async fn delete_message(&self, change: &MessageChange) -> Result<LifecycleOutcome, StoreError> {
        check_message_age(MessageId(change.change.0))?;
        let c = change.clone();
        let commit_by = c.change.unix_ms() + MESSAGE_MAX_AGE_MS;
        self.engine.write_by(Some(commit_by), move |conn| delete(conn, &c).map_err(map_err)).await
    }
}
