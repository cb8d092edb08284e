//! SQLite queries for account-wide changes: password, sessions, deletion.

use rusqlite::{Connection, OptionalExtension, params};

use crate::model::{RotateOutcome, Rotation, SessionId, UserId};

/// Everything [`crate::store::Store::rotate_refresh`] promises, in one savepoint.
pub(super) fn rotate_refresh(conn: &Connection, id: &str, r: &Rotation) -> rusqlite::Result<RotateOutcome> {
    let live: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT user_id, refresh_hash FROM sessions WHERE id = ?1 AND revoked = 0 AND expires_at > ?2")?
        .query_row(params![id, r.now_ms], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((user, current)) = live else { return Ok(RotateOutcome::Invalid) };
    let user_id = UserId(user);
    if current != r.presented_hash {
        let used_at: Option<i64> = conn
            .prepare_cached("SELECT used_at FROM refresh_used WHERE hash = ?1 AND session_id = ?2")?
            .query_row(params![r.presented_hash, id], |row| row.get(0))
            .optional()?;
        match used_at {
            None => return Ok(RotateOutcome::Invalid),
            Some(at) if r.now_ms - at >= r.reuse_grace_ms => {
                conn.prepare_cached("UPDATE sessions SET revoked = 1 WHERE id = ?1")?.execute([id])?;
                return Ok(RotateOutcome::ReuseDetected { user_id });
            }
            Some(_) => {} // replaced moments ago: the client lost our reply
        }
    }
    conn.prepare_cached("INSERT OR IGNORE INTO refresh_used (hash, session_id, used_at) VALUES (?1, ?2, ?3)")?
        .execute(params![current, id, r.now_ms])?;
    conn.prepare_cached("UPDATE sessions SET refresh_hash = ?2, expires_at = ?3 WHERE id = ?1")?.execute(params![
        id,
        r.new_hash,
        r.new_expires_ms
    ])?;
    Ok(RotateOutcome::Rotated { user_id })
}

/// Replaces the password hash; false for an unknown user.
pub(super) fn set_password_hash(conn: &Connection, id: UserId, hash: &str) -> rusqlite::Result<bool> {
    let n = conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE id = ?1")?.execute(params![id.0, hash])?;
    Ok(n > 0)
}

/// Revokes the user's unrevoked sessions except `keep`; returns how many.
pub(super) fn revoke_user_sessions(conn: &Connection, user: UserId, keep: Option<&SessionId>) -> rusqlite::Result<u64> {
    let n = conn
        .prepare_cached("UPDATE sessions SET revoked = 1 WHERE user_id = ?1 AND revoked = 0 AND id IS NOT ?2")?
        .execute(params![user.0, keep.map(|s| s.0.as_str())])?;
    Ok(n as u64)
}

/// Everything [`crate::store::Store::delete_user`] promises, in one
/// savepoint. Runs fully even for an unknown user (cleans up leftovers).
pub(super) fn delete_user(conn: &Connection, id: UserId) -> rusqlite::Result<bool> {
    let existed = conn.prepare_cached("DELETE FROM users WHERE id = ?1")?.execute([id.0])? > 0;
    super::posts::delete_user_posts(conn, id)?;
    super::groups::leave_all(conn, id)?;
    super::safety::delete_user_safety(conn, id)?;
    super::reactions::delete_user_reactions(conn, id)?;
    for sql in [
        "DELETE FROM profiles WHERE user_id = ?1",
        "DELETE FROM user_search WHERE user_id = ?1",
        "DELETE FROM refresh_used WHERE session_id IN (SELECT id FROM sessions WHERE user_id = ?1)",
        "DELETE FROM sessions WHERE user_id = ?1",
        "DELETE FROM follows WHERE follower_id = ?1",
        "DELETE FROM follows WHERE followee_id = ?1",
        // Every conversation with the user goes, both directions: a message
        // left behind would name a username that anyone may register next.
        // Messages first (found through the user's rows), then the peers'
        // rows of those conversations (found among the peers' own rows, so
        // none is left pointing at a conversation that lost messages), then
        // the user's rows.
        // Read state: mine, and the peers' pointers in those conversations.
        "DELETE FROM read_pointers WHERE user_id = ?1",
        "DELETE FROM user_changes WHERE user_id = ?1",
        "DELETE FROM chat_settings WHERE user_id = ?1",
        // Push (issue 16): devices and setting; queued jobs of those devices
        // go too (the workers would drop them anyway).
        "DELETE FROM push_jobs WHERE user_id = ?1",
        "DELETE FROM push_devices WHERE user_id = ?1",
        "DELETE FROM push_settings WHERE user_id = ?1",
        "DELETE FROM read_pointers
         WHERE conversation_id IN (SELECT conversation_id FROM user_conversations WHERE user_id = ?1)",
        "DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages
         WHERE conversation_id IN (SELECT conversation_id FROM user_conversations WHERE user_id = ?1))",
        "DELETE FROM message_state
         WHERE conversation_id IN (SELECT conversation_id FROM user_conversations WHERE user_id = ?1)",
        "DELETE FROM messages
         WHERE conversation_id IN (SELECT conversation_id FROM user_conversations WHERE user_id = ?1)",
        "DELETE FROM user_conversations
         WHERE user_id IN (SELECT peer_id FROM user_conversations WHERE user_id = ?1)
         AND conversation_id IN (SELECT conversation_id FROM user_conversations WHERE user_id = ?1)",
        "DELETE FROM user_conversations WHERE user_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([id.0])?;
    }
    Ok(existed)
}
