//! The push intake on SQLite (`push_intake`, schema version 13; see
//! [`crate::store::push`]): entries written inside the message's own
//! transaction, read by the minting node, deleted in the transaction that
//! queues their jobs; and each node's stored cursor (`push_intake_cursor`,
//! schema version 14).

use rusqlite::{Connection, OptionalExtension, params};

use super::push::enqueue;
use super::{MESSAGE_COLUMNS, message_from_row};
use crate::model::{MessageId, UserId};
use crate::store::push::{Enqueued, Intake, PushJob, intake_node};

/// Records `id`'s intake entry in the caller's transaction. A direct
/// message (`to` given) gets one only when the recipient has a push
/// device (one index probe); a group message always gets one (its members
/// are resolved by the intake, not here, so a large group costs the
/// message path nothing extra).
pub(super) fn record(conn: &Connection, id: MessageId, to: Option<UserId>) -> rusqlite::Result<bool> {
    let node = intake_node(id);
    let written = match to {
        Some(to) => conn
            .prepare_cached(
                "INSERT OR IGNORE INTO push_intake (node, message_id)
                 SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM push_devices WHERE user_id = ?3)",
            )?
            .execute(params![node, id.0, to.0])?,
        None => conn
            .prepare_cached("INSERT OR IGNORE INTO push_intake (node, message_id) VALUES (?1, ?2)")?
            .execute(params![node, id.0])?,
    };
    Ok(written > 0)
}

/// Up to `limit` of `node`'s entries in `(after, upto]`, oldest first, with their messages.
pub(super) fn read(
    conn: &Connection,
    node: i64,
    (after, upto): (MessageId, MessageId),
    limit: usize,
) -> rusqlite::Result<Vec<Intake>> {
    let ids = conn
        .prepare_cached(
            "SELECT message_id FROM push_intake WHERE node = ?1 AND message_id > ?2 AND message_id <= ?3
             ORDER BY message_id LIMIT ?4",
        )?
        .query_map(params![node, after.0, upto.0, limit as i64], |r| r.get::<_, i64>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut get = conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1"))?;
    ids.into_iter()
        .map(|id| {
            let message = get.query_row([id], |r| message_from_row(r, 0)).optional()?;
            Ok(Intake { id: MessageId(id), message })
        })
        .collect()
}

/// Queues `jobs` and deletes the entries `done`, in the caller's transaction.
pub(super) fn enqueue_batch(
    conn: &Connection,
    jobs: &[PushJob],
    max: usize,
    done: &[MessageId],
) -> rusqlite::Result<Vec<Enqueued>> {
    let out = jobs.iter().map(|j| enqueue(conn, j, max)).collect::<rusqlite::Result<Vec<_>>>()?;
    let mut delete = conn.prepare_cached("DELETE FROM push_intake WHERE node = ?1 AND message_id = ?2")?;
    for id in done {
        delete.execute(params![intake_node(*id), id.0])?;
    }
    Ok(out)
}

/// `node`'s stored cursor. SQLite has no floor: without a cursor the
/// intake reads back the give-up window, which is one index range here.
pub(super) fn cursor(conn: &Connection, node: i64) -> rusqlite::Result<Option<MessageId>> {
    conn.prepare_cached("SELECT cursor FROM push_intake_cursor WHERE node = ?1")?
        .query_row([node], |r| r.get::<_, i64>(0))
        .optional()
        .map(|c| c.map(MessageId))
}

/// Raises `node`'s stored cursor to `cursor` (never lowers it).
pub(super) fn save_cursor(conn: &Connection, node: i64, cursor: MessageId) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO push_intake_cursor (node, cursor) VALUES (?1, ?2)
         ON CONFLICT (node) DO UPDATE SET cursor = max(cursor, excluded.cursor)",
    )?
    .execute(params![node, cursor.0])?;
    Ok(())
}
