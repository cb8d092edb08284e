//! Each node's stored push intake cursor on CQL (`push_intake_cursor`,
//! `cql/013_push_intake_cursor.cql`; see [`crate::store::push`]), and the
//! keyspace's intake floor that `hubbub migrate` writes when it creates the
//! intake table.
//!
//! Monotonic without a read-before-write race: every write is an LWT. A
//! save first tries `UPDATE ... IF cursor < ?` (the usual case: one Paxos
//! round); when that does not apply, a serial read tells whether a cursor
//! at least as high is stored (done) or none is (`INSERT ... IF NOT
//! EXISTS`); a write that raced in between is met by trying again.

use scylla::client::session::Session;
use scylla::statement::unprepared::Statement;

use super::ScyllaStore;
use super::exec::Lwt;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{MessageId, now_ms};
use crate::snowflake::floor_for_ms;
use crate::store::push::IntakeCursor;

/// The row holding the keyspace's intake floor (worker ids are 0..1023).
const FLOOR_NODE: i32 = -1;
/// How far before `hubbub migrate` started the floor lies: ids are minted
/// on every node's own clock, which may run behind the migrating host's.
const FLOOR_MARGIN_MS: i64 = 5 * 60_000;
/// Saves that lose this many races in a row give up (retried next time).
const SAVE_ATTEMPTS: usize = 4;

impl ScyllaStore {
    /// `node`'s stored cursor, else the keyspace's floor (serial reads: a
    /// save whose Paxos round is unfinished is completed first).
    pub(super) async fn read_intake_cursor(&self, node: i64) -> Result<Option<IntakeCursor>, StoreError> {
        let own: Option<(i64,)> = self.db.one_serial(Q::PushCursorGet, (node_key(node)?,)).await?;
        if let Some((c,)) = own {
            return Ok(Some(IntakeCursor::Stored(MessageId(c))));
        }
        let floor: Option<(i64,)> = self.db.one_serial(Q::PushCursorGet, (FLOOR_NODE,)).await?;
        Ok(floor.map(|(c,)| IntakeCursor::Floor(MessageId(c))))
    }

    /// Raises `node`'s stored cursor to `cursor` (see the module doc).
    pub(super) async fn write_intake_cursor(&self, node: i64, cursor: MessageId) -> Result<(), StoreError> {
        let key = node_key(node)?;
        for _ in 0..SAVE_ATTEMPTS {
            match self.db.lwt(Q::PushCursorAdvance, (cursor.0, key, cursor.0)).await? {
                Lwt::Applied => return Ok(()),
                Lwt::Unknown => return Err(unknown()),
                Lwt::NotApplied => {}
            }
            let stored: Option<(i64,)> = self.db.one_serial(Q::PushCursorGet, (key,)).await?;
            match stored {
                Some((c,)) if c >= cursor.0 => return Ok(()),
                Some(_) => continue,
                None => match self.db.lwt(Q::PushCursorInit, (key, cursor.0)).await? {
                    Lwt::Applied => return Ok(()),
                    Lwt::NotApplied => continue,
                    Lwt::Unknown => return Err(unknown()),
                },
            }
        }
        Err(StoreError::Unavailable("push intake cursor: too many racing saves".into()))
    }
}

fn node_key(node: i64) -> Result<i32, StoreError> {
    i32::try_from(node).map_err(|_| StoreError::Backend(format!("intake node {node} out of range")))
}

fn unknown() -> StoreError {
    StoreError::Unavailable("push intake cursor: save timed out (outcome unknown)".into())
}

/// True when `keyspace` has no push intake table yet (before `migrate`
/// applies the schema files).
pub(super) async fn intake_table_missing(session: &Session, keyspace: &str) -> Result<bool, StoreError> {
    let st = Statement::new("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = ?");
    let res = session
        .query_unpaged(st, (keyspace, "push_intake"))
        .await
        .map_err(|e| StoreError::Backend(format!("reading system_schema.tables: {e}")))?;
    let rows = res.into_rows_result().map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(rows.rows_num() == 0)
}

/// The floor for a keyspace whose intake table is created by a migration
/// that started at `started_ms`: no entry can be older.
pub(super) fn floor_for(started_ms: i64) -> MessageId {
    MessageId(floor_for_ms(started_ms - FLOOR_MARGIN_MS))
}

/// Writes the keyspace's intake floor unless one is there (`migrate`, after
/// it created the intake table; the session's keyspace is set).
pub(super) async fn write_floor(session: &Session, floor: MessageId) -> Result<(), StoreError> {
    let st = Statement::new("INSERT INTO push_intake_cursor (node, cursor) VALUES (?, ?) IF NOT EXISTS");
    session
        .query_unpaged(st, (FLOOR_NODE, floor.0))
        .await
        .map_err(|e| StoreError::Backend(format!("writing the push intake floor: {e}")))?;
    tracing::info!(floor = floor.0, at_ms = now_ms(), "push intake floor written (a new intake table)");
    Ok(())
}
