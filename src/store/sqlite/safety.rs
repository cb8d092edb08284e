//! [`SafetyStore`] on SQLite: `blocks`, `mutes`, `reports` and `bans`
//! (schema version 9). A block is one writer job: the blocker's existence,
//! the count bound and the insert commit together.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::engine::map_err;
use super::{SqliteStore, require_users};
use crate::error::StoreError;
use crate::model::{ConversationId, UserId};
use crate::store::safety::{Ban, Block, BlockOutcome, Report, ReportTarget, SafetyStore};

const REPORT_COLS: &str = "id, reporter_id, reporter_name, kind, target_id, target_name, message_id, \
     conversation_id, message_text, reason, details, created_ms, resolved_ms, resolution";

fn block(conn: &Connection, blocker: UserId, blocked: UserId, id: i64, max: usize) -> rusqlite::Result<BlockOutcome> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2")?
        .exists(params![blocker.0, blocked.0])?;
    if exists {
        return Ok(BlockOutcome::Already);
    }
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM blocks WHERE blocker_id = ?1")?
        .query_row([blocker.0], |r| r.get(0))?;
    if n as usize >= max {
        return Ok(BlockOutcome::Full);
    }
    conn.prepare_cached("INSERT INTO blocks (blocker_id, blocked_id, block_id) VALUES (?1, ?2, ?3)")?
        .execute(params![blocker.0, blocked.0, id])?;
    Ok(BlockOutcome::Added)
}

fn report_row(r: &Row<'_>) -> rusqlite::Result<Report> {
    let kind: String = r.get(3)?;
    let target = if kind == "message" {
        ReportTarget::Message {
            id: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
            conversation: ConversationId(r.get::<_, Option<String>>(7)?.unwrap_or_default()),
            author: UserId(r.get(4)?),
            author_name: r.get(5)?,
            text: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
        }
    } else {
        ReportTarget::User { id: UserId(r.get(4)?), username: r.get(5)? }
    };
    let resolved = match (r.get::<_, Option<i64>>(12)?, r.get::<_, Option<String>>(13)?) {
        (Some(at), note) => Some((at, note.unwrap_or_default())),
        _ => None,
    };
    Ok(Report {
        id: r.get(0)?,
        reporter: UserId(r.get(1)?),
        reporter_name: r.get(2)?,
        target,
        reason: r.get(9)?,
        details: r.get(10)?,
        created_ms: r.get(11)?,
        resolved,
    })
}

fn create_report(conn: &Connection, rep: &Report) -> rusqlite::Result<()> {
    let (kind, target_id, target_name, message_id, conv, text) = match &rep.target {
        ReportTarget::Message { id, conversation, author, author_name, text } => {
            ("message", author.0, author_name.as_str(), Some(*id), Some(conversation.0.as_str()), Some(text.as_str()))
        }
        ReportTarget::User { id, username } => ("user", id.0, username.as_str(), None, None, None),
    };
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO reports ({REPORT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, NULL)"
    ))?
    .execute(params![
        rep.id,
        rep.reporter.0,
        rep.reporter_name,
        kind,
        target_id,
        target_name,
        message_id,
        conv,
        text,
        rep.reason,
        rep.details,
        rep.created_ms
    ])?;
    Ok(())
}

fn reports(conn: &Connection, open_only: bool, before: Option<i64>, limit: usize) -> rusqlite::Result<Vec<Report>> {
    let mut s = conn.prepare_cached(&format!(
        "SELECT {REPORT_COLS} FROM reports WHERE id < ?1 AND (?2 = 0 OR resolved_ms IS NULL) ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = s.query_map(params![before.unwrap_or(i64::MAX), open_only, limit as i64], report_row)?;
    rows.collect()
}

fn resolve_report(conn: &Connection, id: i64, note: &str, at: i64) -> rusqlite::Result<Option<Report>> {
    conn.prepare_cached("UPDATE reports SET resolved_ms = ?2, resolution = ?3 WHERE id = ?1")?
        .execute(params![id, at, note])?;
    conn.prepare_cached(&format!("SELECT {REPORT_COLS} FROM reports WHERE id = ?1"))?
        .query_row([id], report_row)
        .optional()
}

/// Removes `user`'s blocks and mutes, both directions (the peers' mutes
/// of the user's direct conversations too), and any ban (for account
/// deletion, before the conversation rows go; reports stay).
pub(super) fn delete_user_safety(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    for sql in [
        "DELETE FROM blocks WHERE blocker_id = ?1",
        "DELETE FROM blocks WHERE blocked_id = ?1",
        "DELETE FROM mutes WHERE user_id = ?1",
        // The peers' mutes of our direct conversations (they go too).
        "DELETE FROM mutes
         WHERE conversation_id IN (SELECT conversation_id FROM user_conversations WHERE user_id = ?1)",
        "DELETE FROM bans WHERE user_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([user.0])?;
    }
    Ok(())
}

#[async_trait]
impl SafetyStore for SqliteStore {
    async fn block(&self, blocker: UserId, blocked: UserId, id: i64, max: usize) -> Result<BlockOutcome, StoreError> {
        self.engine
            .write(move |conn| {
                require_users(conn, &[blocker])?;
                block(conn, blocker, blocked, id, max).map_err(map_err)
            })
            .await
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2")
                    .and_then(|mut s| s.execute(params![blocker.0, blocked.0]))
                    .map(|n| n > 0)
                    .map_err(map_err)
            })
            .await
    }

    async fn blocks(&self, blocker: UserId, before: Option<i64>, limit: usize) -> Result<Vec<Block>, StoreError> {
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached(
                        "SELECT blocked_id, block_id FROM blocks WHERE blocker_id = ?1 AND block_id < ?2
                         ORDER BY block_id DESC LIMIT ?3",
                    )
                    .map_err(map_err)?;
                let rows = s
                    .query_map(params![blocker.0, before.unwrap_or(i64::MAX), limit as i64], |r| {
                        Ok(Block { user: UserId(r.get(0)?), id: r.get(1)? })
                    })
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn blockers_of(&self, target: UserId, users: &[UserId]) -> Result<Vec<UserId>, StoreError> {
        let users = users.to_vec();
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached("SELECT 1 FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2")
                    .map_err(map_err)?;
                let mut out: Vec<UserId> = Vec::new();
                for u in users {
                    if !out.contains(&u) && s.exists(params![u.0, target.0]).map_err(map_err)? {
                        out.push(u);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn set_mute(&self, user: UserId, conversation: &ConversationId, until_ms: i64) -> Result<(), StoreError> {
        let conv = conversation.0.clone();
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO mutes (user_id, conversation_id, until_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id, conversation_id) DO UPDATE SET until_ms = excluded.until_ms",
                )
                .and_then(|mut s| s.execute(params![user.0, conv, until_ms]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn unmute(&self, user: UserId, conversation: &ConversationId) -> Result<bool, StoreError> {
        let conv = conversation.0.clone();
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM mutes WHERE user_id = ?1 AND conversation_id = ?2")
                    .and_then(|mut s| s.execute(params![user.0, conv]))
                    .map(|n| n > 0)
                    .map_err(map_err)
            })
            .await
    }

    async fn mutes(&self, user: UserId, conversations: &[ConversationId]) -> Result<Vec<Option<i64>>, StoreError> {
        let convs = conversations.to_vec();
        self.engine
            .read(move |conn| {
                let mut s = conn
                    .prepare_cached("SELECT until_ms FROM mutes WHERE user_id = ?1 AND conversation_id = ?2")
                    .map_err(map_err)?;
                convs
                    .iter()
                    .map(|c| s.query_row(params![user.0, c.0], |r| r.get::<_, i64>(0)).optional())
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(map_err)
            })
            .await
    }

    async fn create_report(&self, report: &Report) -> Result<(), StoreError> {
        let report = report.clone();
        self.engine.write(move |conn| create_report(conn, &report).map_err(map_err)).await
    }

    async fn reports(&self, open_only: bool, before: Option<i64>, limit: usize) -> Result<Vec<Report>, StoreError> {
        self.engine.read(move |conn| reports(conn, open_only, before, limit).map_err(map_err)).await
    }

    async fn resolve_report(&self, id: i64, note: &str, at_ms: i64) -> Result<Option<Report>, StoreError> {
        let note = note.to_owned();
        self.engine.write(move |conn| resolve_report(conn, id, &note, at_ms).map_err(map_err)).await
    }

    async fn set_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        let ban = ban.clone();
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO bans (user_id, reason, at_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id) DO UPDATE SET reason = excluded.reason, at_ms = excluded.at_ms",
                )
                .and_then(|mut s| s.execute(params![ban.user.0, ban.reason, ban.at_ms]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn remove_ban(&self, user: UserId) -> Result<bool, StoreError> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM bans WHERE user_id = ?1")
                    .and_then(|mut s| s.execute([user.0]))
                    .map(|n| n > 0)
                    .map_err(map_err)
            })
            .await
    }

    async fn ban_of(&self, user: UserId) -> Result<Option<Ban>, StoreError> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached("SELECT reason, at_ms FROM bans WHERE user_id = ?1")
                    .and_then(|mut s| {
                        s.query_row([user.0], |r| Ok(Ban { user, reason: r.get(0)?, at_ms: r.get(1)? })).optional()
                    })
                    .map_err(map_err)
            })
            .await
    }

    async fn ban_of_session(&self, session: &crate::model::SessionId) -> Result<Option<Ban>, StoreError> {
        let id = session.0.clone();
        self.engine
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT b.user_id, b.reason, b.at_ms FROM sessions s JOIN bans b ON b.user_id = s.user_id
                     WHERE s.id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([id], |r| Ok(Ban { user: UserId(r.get(0)?), reason: r.get(1)?, at_ms: r.get(2)? }))
                        .optional()
                })
                .map_err(map_err)
            })
            .await
    }
}
