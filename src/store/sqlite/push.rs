//! [`PushStore`] on SQLite: `push_devices`, `push_settings` and
//! `push_jobs` (schema version 12; the intake, version 13, in `push_intake.rs`). Each queue operation is one writer job,
//! so a claim and a merge never interleave.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::engine::map_err;
use super::{SqliteStore, push_intake};
use crate::error::StoreError;
use crate::model::{ConversationId, MessageId, SessionId, UserId};
use crate::store::push::{
    Device, DeviceId, DeviceTarget, Enqueued, Intake, IntakeCursor, Preview, PushJob, PushStore, Registered,
};

const DEVICE_COLS: &str = "device_id, user_id, session_id, platform, address, p256dh, auth, app_id, data, created_at";
const JOB_COLS: &str = "device_id, user_id, collapse_key, conversation_id, message_id, sender, body, merged, version, \
                        first_ms, due_ms, attempts";

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    let platform: String = r.get(3)?;
    let address: String = r.get(4)?;
    let target = if platform == "gateway" {
        DeviceTarget::Gateway { pushkey: address, app_id: r.get(7)?, data: r.get(8)? }
    } else {
        DeviceTarget::WebPush { endpoint: address, p256dh: r.get(5)?, auth: r.get(6)? }
    };
    Ok(Device {
        id: DeviceId(r.get(0)?),
        user: UserId(r.get(1)?),
        session: SessionId(r.get(2)?),
        target,
        created_ms: r.get(9)?,
    })
}

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<PushJob> {
    Ok(PushJob {
        device: DeviceId(r.get(0)?),
        user: UserId(r.get(1)?),
        collapse: r.get(2)?,
        conversation: ConversationId(r.get(3)?),
        message: MessageId(r.get(4)?),
        sender: r.get(5)?,
        text: r.get(6)?,
        count: r.get(7)?,
        version: r.get(8)?,
        first_ms: r.get(9)?,
        due_ms: r.get(10)?,
        attempts: r.get(11)?,
    })
}

/// The (p256dh, auth, app_id, data) columns of a target.
fn target_cols(t: &DeviceTarget) -> (&str, &str, &str, &str) {
    match t {
        DeviceTarget::WebPush { p256dh, auth, .. } => (p256dh, auth, "", ""),
        DeviceTarget::Gateway { app_id, data, .. } => ("", "", app_id, data),
    }
}

fn devices(conn: &Connection, user: UserId) -> rusqlite::Result<Vec<Device>> {
    let mut s =
        conn.prepare_cached(&format!("SELECT {DEVICE_COLS} FROM push_devices WHERE user_id = ?1 ORDER BY device_id"))?;
    s.query_map([user.0], device_from_row)?.collect()
}

fn add_device(conn: &Connection, d: &Device, max: usize) -> rusqlite::Result<Registered> {
    let existing = devices(conn, d.user)?;
    let count = existing.len();
    let (p256dh, auth, app_id, data) = target_cols(&d.target);
    let same = existing
        .into_iter()
        .find(|e| e.target.platform() == d.target.platform() && e.target.address() == d.target.address());
    if let Some(e) = same {
        conn.prepare_cached(
            "UPDATE push_devices SET session_id = ?3, p256dh = ?4, auth = ?5, app_id = ?6, data = ?7
             WHERE user_id = ?1 AND device_id = ?2",
        )?
        .execute(params![d.user.0, e.id.0, d.session.0, p256dh, auth, app_id, data])?;
        return Ok(Registered::Updated(Device { id: e.id, created_ms: e.created_ms, ..d.clone() }));
    }
    if count >= max {
        return Ok(Registered::Full);
    }
    conn.prepare_cached(&format!(
        "INSERT INTO push_devices ({DEVICE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        d.id.0,
        d.user.0,
        d.session.0,
        d.target.platform(),
        d.target.address(),
        p256dh,
        auth,
        app_id,
        data,
        d.created_ms
    ])?;
    Ok(Registered::New(d.clone()))
}

pub(super) fn enqueue(conn: &Connection, j: &PushJob, max: usize) -> rusqlite::Result<Enqueued> {
    let pending: Option<i64> = conn
        .prepare_cached("SELECT message_id FROM push_jobs WHERE device_id = ?1 AND collapse_key = ?2")?
        .query_row(params![j.device.0, j.collapse], |r| r.get(0))
        .optional()?;
    if pending == Some(j.message.0) {
        // Carried already (a retried intake batch): nothing to count.
        return Ok(Enqueued::Merged);
    }
    if let Some(message) = pending {
        // Newer message: its content; older (ids are only k-sorted): keep.
        let newer = j.message.0 > message;
        conn.prepare_cached(
            "UPDATE push_jobs SET merged = merged + 1, version = version + 1,
             message_id = CASE WHEN ?3 THEN ?4 ELSE message_id END,
             sender = CASE WHEN ?3 THEN ?5 ELSE sender END,
             body = CASE WHEN ?3 THEN ?6 ELSE body END
             WHERE device_id = ?1 AND collapse_key = ?2",
        )?
        .execute(params![j.device.0, j.collapse, newer, j.message.0, j.sender, j.text])?;
        return Ok(Enqueued::Merged);
    }
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM push_jobs WHERE device_id = ?1")?
        .query_row([j.device.0], |r| r.get(0))?;
    if n as usize >= max {
        return Ok(Enqueued::Full);
    }
    conn.prepare_cached(&format!(
        "INSERT INTO push_jobs ({JOB_COLS}, lease_owner, lease_until)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, '', 0)"
    ))?
    .execute(params![
        j.device.0,
        j.user.0,
        j.collapse,
        j.conversation.0,
        j.message.0,
        j.sender,
        j.text,
        j.count,
        j.version,
        j.first_ms,
        j.due_ms,
        j.attempts
    ])?;
    Ok(Enqueued::New)
}

fn claim(conn: &Connection, owner: &str, now: i64, lease_ms: i64, limit: usize) -> rusqlite::Result<Vec<PushJob>> {
    let jobs = conn
        .prepare_cached(&format!(
            "SELECT {JOB_COLS} FROM push_jobs WHERE due_ms <= ?1 AND lease_until <= ?1 ORDER BY due_ms LIMIT ?2"
        ))?
        .query_map(params![now, limit as i64], job_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut lease = conn.prepare_cached(
        "UPDATE push_jobs SET lease_owner = ?3, lease_until = ?4 WHERE device_id = ?1 AND collapse_key = ?2",
    )?;
    for j in &jobs {
        lease.execute(params![j.device.0, j.collapse, owner, now + lease_ms])?;
    }
    Ok(jobs)
}

/// Deletes a sent job at its version (true), or releases `owner`'s lease
/// of it when a merge changed it meanwhile (false).
fn complete(conn: &Connection, j: &PushJob, owner: &str) -> rusqlite::Result<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM push_jobs WHERE device_id = ?1 AND collapse_key = ?2 AND version = ?3")?
        .execute(params![j.device.0, j.collapse, j.version])?;
    if deleted > 0 {
        return Ok(true);
    }
    conn.prepare_cached(
        "UPDATE push_jobs SET lease_until = 0, lease_owner = ''
         WHERE device_id = ?1 AND collapse_key = ?2 AND lease_owner = ?3",
    )?
    .execute(params![j.device.0, j.collapse, owner])?;
    Ok(false)
}

#[async_trait]
impl PushStore for SqliteStore {
    async fn add_device(&self, device: &Device, max: usize) -> Result<Registered, StoreError> {
        let d = device.clone();
        self.engine.write(move |conn| add_device(conn, &d, max).map_err(map_err)).await
    }

    async fn devices(&self, user: UserId) -> Result<Vec<Device>, StoreError> {
        self.engine.read(move |conn| devices(conn, user).map_err(map_err)).await
    }

    async fn device(&self, user: UserId, id: DeviceId) -> Result<Option<Device>, StoreError> {
        self.engine
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {DEVICE_COLS} FROM push_devices WHERE user_id = ?1 AND device_id = ?2"
                ))
                .and_then(|mut s| s.query_row(params![user.0, id.0], device_from_row).optional())
                .map_err(map_err)
            })
            .await
    }

    async fn remove_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM push_devices WHERE user_id = ?1 AND device_id = ?2")
                    .and_then(|mut s| s.execute(params![user.0, id.0]))
                    .map(|n| n > 0)
                    .map_err(map_err)
            })
            .await
    }

    async fn remove_devices(&self, user: UserId, session: Option<&SessionId>) -> Result<u64, StoreError> {
        let session = session.map(|s| s.0.clone());
        self.engine
            .write(move |conn| {
                let n = match &session {
                    Some(s) => conn
                        .prepare_cached("DELETE FROM push_devices WHERE user_id = ?1 AND session_id = ?2")
                        .and_then(|mut st| st.execute(params![user.0, s])),
                    None => conn
                        .prepare_cached("DELETE FROM push_devices WHERE user_id = ?1")
                        .and_then(|mut st| st.execute([user.0])),
                };
                n.map(|n| n as u64).map_err(map_err)
            })
            .await
    }

    async fn set_push_preview(&self, user: UserId, preview: Preview) -> Result<(), StoreError> {
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO push_settings (user_id, preview) VALUES (?1, ?2)
                     ON CONFLICT (user_id) DO UPDATE SET preview = excluded.preview",
                )
                .and_then(|mut s| s.execute(params![user.0, preview.as_str()]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn push_preview(&self, user: UserId) -> Result<Preview, StoreError> {
        self.engine
            .read(move |conn| {
                let v: Option<String> = conn
                    .prepare_cached("SELECT preview FROM push_settings WHERE user_id = ?1")
                    .and_then(|mut s| s.query_row([user.0], |r| r.get(0)).optional())
                    .map_err(map_err)?;
                Ok(v.as_deref().and_then(Preview::parse).unwrap_or_default())
            })
            .await
    }

    async fn enqueue_push(&self, job: &PushJob, max_per_device: usize) -> Result<Enqueued, StoreError> {
        let j = job.clone();
        self.engine.write(move |conn| enqueue(conn, &j, max_per_device).map_err(map_err)).await
    }

    async fn push_intake(
        &self,
        node: i64,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<Intake>, StoreError> {
        self.engine.read(move |conn| push_intake::read(conn, node, (after, upto), limit).map_err(map_err)).await
    }

    async fn intake_cursor(&self, node: i64) -> Result<Option<IntakeCursor>, StoreError> {
        let stored = self.engine.read(move |conn| push_intake::cursor(conn, node).map_err(map_err)).await?;
        Ok(stored.map(IntakeCursor::Stored))
    }

    async fn save_intake_cursor(&self, node: i64, cursor: MessageId) -> Result<(), StoreError> {
        self.engine.write(move |conn| push_intake::save_cursor(conn, node, cursor).map_err(map_err)).await
    }

    async fn enqueue_push_batch(
        &self,
        jobs: &[PushJob],
        max_per_device: usize,
        done: &[MessageId],
    ) -> Result<Vec<Enqueued>, StoreError> {
        let (jobs, done) = (jobs.to_vec(), done.to_vec());
        self.engine
            .write(move |conn| push_intake::enqueue_batch(conn, &jobs, max_per_device, &done).map_err(map_err))
            .await
    }

    async fn claim_push(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<PushJob>, StoreError> {
        let owner = owner.to_owned();
        self.engine.write(move |conn| claim(conn, &owner, now_ms, lease_ms, limit).map_err(map_err)).await
    }

    async fn complete_push(&self, job: &PushJob, owner: &str) -> Result<bool, StoreError> {
        let (j, owner) = (job.clone(), owner.to_owned());
        self.engine.write(move |conn| complete(conn, &j, &owner).map_err(map_err)).await
    }

    async fn complete_push_batch(&self, jobs: &[PushJob], owner: &str) -> Result<Vec<bool>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let (jobs, owner) = (jobs.to_vec(), owner.to_owned());
        // One writer job (its own savepoint): all or none.
        self.engine
            .write(move |conn| {
                jobs.iter().map(|j| complete(conn, j, &owner)).collect::<rusqlite::Result<_>>().map_err(map_err)
            })
            .await
    }

    async fn retry_push(&self, job: &PushJob, owner: &str, due_ms: i64) -> Result<(), StoreError> {
        let (j, owner) = (job.clone(), owner.to_owned());
        self.engine
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE push_jobs SET lease_until = 0, lease_owner = '', due_ms = ?4, attempts = ?5
                     WHERE device_id = ?1 AND collapse_key = ?2 AND lease_owner = ?3",
                )
                .and_then(|mut s| s.execute(params![j.device.0, j.collapse, owner, due_ms, j.attempts + 1]))
                .map(|_| ())
                .map_err(map_err)
            })
            .await
    }

    async fn drop_push(&self, job: &PushJob) -> Result<(), StoreError> {
        let j = job.clone();
        self.engine
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM push_jobs WHERE device_id = ?1 AND collapse_key = ?2")
                    .and_then(|mut s| s.execute(params![j.device.0, j.collapse]))
                    .map(|_| ())
                    .map_err(map_err)
            })
            .await
    }

    async fn push_depth(&self) -> Result<u64, StoreError> {
        self.engine
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM push_jobs", [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }
}
