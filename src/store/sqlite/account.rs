//! SQLite queries for account-wide changes: password, sessions, deletion.

use rusqlite::{Connection, params};

use crate::model::{SessionId, UserId};

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
    for sql in [
        "DELETE FROM profiles WHERE user_id = ?1",
        "DELETE FROM user_search WHERE user_id = ?1",
        "DELETE FROM sessions WHERE user_id = ?1",
        "DELETE FROM follows WHERE follower_id = ?1",
        "DELETE FROM follows WHERE followee_id = ?1",
        // The recipients' sync entries of the user's messages, then the user's own.
        "DELETE FROM inbox WHERE (user_id, message_id) IN (SELECT to_id, id FROM messages WHERE from_id = ?1)",
        "DELETE FROM inbox WHERE user_id = ?1",
        // Peers' conversation-list entries with the user, then the user's own.
        "DELETE FROM conversations
         WHERE (user_id, peer_id) IN (SELECT peer_id, user_id FROM conversations WHERE user_id = ?1)",
        "DELETE FROM conversations WHERE user_id = ?1",
        "DELETE FROM messages WHERE from_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([id.0])?;
    }
    Ok(existed)
}
