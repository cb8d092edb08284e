//! [`ReactionStore`] on SQLite: the `reactions` table (one row per
//! (message, emoji, user)) and `user_changes` rows of kind `Reaction`. An
//! edit is one writer job: the message check, the distinct-emoji limit,
//! the row and every feed entry commit together, so the limit is exact.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::engine::map_err;
use super::{SqliteStore, require_users};
use crate::error::StoreError;
use crate::model::{ConversationId, MessageId, UserId};
use crate::store::reactions::{ReactOutcome, ReactionCount, ReactionEdit, ReactionStore};
use crate::store::read_state::ChangeKind;
use crate::store::{MESSAGE_MAX_AGE_MS, check_message_age};

/// The summary of one message, sorted by emoji, with `me` for `viewer`.
pub(super) fn summary(conn: &Connection, viewer: UserId, message: MessageId) -> rusqlite::Result<Vec<ReactionCount>> {
    let mut s = conn.prepare_cached(
        "SELECT emoji, COUNT(*), MAX(user_id = ?2) FROM reactions WHERE message_id = ?1
         GROUP BY emoji ORDER BY emoji",
    )?;
    let rows = s.query_map(params![message.0, viewer.0], |r| {
        Ok(ReactionCount { emoji: r.get(0)?, count: r.get::<_, i64>(1)? as u32, me: r.get::<_, i64>(2)? != 0 })
    })?;
    rows.collect()
}

/// Whether the edit changes the reaction set, and the refusal if any.
fn apply(conn: &Connection, e: &ReactionEdit) -> rusqlite::Result<Option<ReactOutcome>> {
    let key = params![e.message_id.0, e.emoji, e.user.0];
    if !e.add {
        let mut n =
            conn.prepare_cached("DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3")?;
        return Ok(if n.execute(key)? == 0 { Some(ReactOutcome::Unchanged(Vec::new())) } else { None });
    }
    let mut mine =
        conn.prepare_cached("SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3")?;
    if mine.exists(key)? {
        return Ok(Some(ReactOutcome::Unchanged(Vec::new())));
    }
    let present = conn
        .prepare_cached("SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2")?
        .exists(params![e.message_id.0, e.emoji])?;
    if !present {
        let distinct: i64 = conn
            .prepare_cached("SELECT COUNT(DISTINCT emoji) FROM reactions WHERE message_id = ?1")?
            .query_row([e.message_id.0], |r| r.get(0))?;
        if distinct as usize >= e.max_distinct {
            return Ok(Some(ReactOutcome::TooMany));
        }
    }
    conn.prepare_cached("INSERT INTO reactions (message_id, emoji, user_id, change_id) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![e.message_id.0, e.emoji, e.user.0, e.change.0])?;
    Ok(None)
}

fn edit(conn: &Connection, e: &ReactionEdit) -> Result<ReactOutcome, StoreError> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM messages WHERE id = ?1 AND conversation_id = ?2")
        .and_then(|mut s| s.exists(params![e.message_id.0, e.conversation.0]))
        .map_err(map_err)?;
    if !exists {
        return Ok(ReactOutcome::NoSuchMessage);
    }
    require_users(conn, &[e.user])?;
    match apply(conn, e).map_err(map_err)? {
        Some(ReactOutcome::Unchanged(_)) => {
            return Ok(ReactOutcome::Unchanged(summary(conn, e.user, e.message_id).map_err(map_err)?));
        }
        Some(refused) => return Ok(refused),
        None => {}
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO user_changes (user_id, change_id, kind, conversation_id, by_id, message_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(map_err)?;
    for owner in &e.feeds {
        let row = params![owner.0, e.change.0, ChangeKind::Reaction.code(), e.conversation.0, e.user.0, e.message_id.0];
        insert.execute(row).map_err(map_err)?;
    }
    Ok(ReactOutcome::Changed(summary(conn, e.user, e.message_id).map_err(map_err)?))
}

/// Every reaction of `user` (account deletion).
pub(super) fn delete_user_reactions(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM reactions WHERE user_id = ?1")?.execute([user.0])?;
    Ok(())
}

#[async_trait]
impl ReactionStore for SqliteStore {
    async fn edit_reaction(&self, e: &ReactionEdit) -> Result<ReactOutcome, StoreError> {
        check_message_age(crate::model::MessageId(e.change.0))?;
        let e = e.clone();
        let commit_by = e.change.unix_ms() + MESSAGE_MAX_AGE_MS;
        self.engine.write_by(Some(commit_by), move |conn| edit(conn, &e)).await
    }

    async fn reaction_summaries(
        &self,
        viewer: UserId,
        _conversation: &ConversationId,
        messages: &[MessageId],
    ) -> Result<Vec<Vec<ReactionCount>>, StoreError> {
        let messages = messages.to_vec();
        self.engine
            .read(move |conn| {
                messages.iter().map(|m| summary(conn, viewer, *m)).collect::<rusqlite::Result<_>>().map_err(map_err)
            })
            .await
    }

    async fn clear_reactions(&self, _conversation: &ConversationId, message: MessageId) -> Result<u64, StoreError> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM reactions WHERE message_id = ?1")
                    .and_then(|mut s| s.execute([message.0]))
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }
}
