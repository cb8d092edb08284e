//! [`PushStore`] on CQL (`cql/010_push.cql`). Devices and settings are
//! plain writes in the user's partition. The queue lives in 16 shard
//! partitions and every write to it is a lightweight transaction, so a
//! merge, a claim and a completion of one job never overwrite each other:
//! each is conditioned on the version or lease it read. Claiming scans the
//! shards (bounded: at most `max_per_device` jobs per device), so a poll
//! costs O(queue depth) reads; the queue is expected to stay small.

use std::collections::BTreeMap;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::ScyllaStore;
use super::exec::Lwt;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{ConversationId, MessageId, SessionId, UserId};
use crate::store::push::{
    Device, DeviceId, DeviceTarget, Enqueued, Intake, IntakeCursor, Preview, PushJob, PushStore, Registered,
};

/// Job chains an intake batch writes concurrently.
const ENQUEUE_CONCURRENCY: usize = 16;

/// Partitions of `push_jobs`.
const JOB_SHARDS: i64 = 16;

/// How often a merge or insert is tried again when a racing LWT changed the row.
const LWT_TRIES: usize = 5;

pub(super) type DeviceRow = (i64, i64, String, String, String, String, String, String, String, i64);
pub(super) type JobRow = (i64, i64, String, String, i64, String, String, i32, i64, i64, i64, i32, i64);

fn shard(device: DeviceId) -> i32 {
    device.0.rem_euclid(JOB_SHARDS) as i32
}

/// `items` grouped by the job shard of their device, order kept within a
/// group. LWTs on one partition contend (Paxos): run at once, a burst to
/// one device timed out and left jobs leased to nobody for a lease, so a
/// shard's LWTs run one after another and only shards run at once.
fn by_shard<T>(items: Vec<T>, device: impl Fn(&T) -> DeviceId) -> Vec<Vec<T>> {
    let mut groups: BTreeMap<i32, Vec<T>> = BTreeMap::new();
    for item in items {
        groups.entry(shard(device(&item))).or_default().push(item);
    }
    groups.into_values().collect()
}

fn device_of(r: DeviceRow) -> Device {
    let (id, user, session, platform, address, p256dh, auth, app_id, data, created_ms) = r;
    let target = if platform == "gateway" {
        DeviceTarget::Gateway { pushkey: address, app_id, data }
    } else {
        DeviceTarget::WebPush { endpoint: address, p256dh, auth }
    };
    Device { id: DeviceId(id), user: UserId(user), session: SessionId(session), target, created_ms }
}

/// The job and its `lease_until`.
fn job_of(r: JobRow) -> (PushJob, i64) {
    let (device, user, collapse, conv, message, sender, text, merged, version, first_ms, due_ms, attempts, lease) = r;
    let job = PushJob {
        device: DeviceId(device),
        user: UserId(user),
        collapse,
        conversation: ConversationId(conv),
        message: MessageId(message),
        sender,
        text,
        count: merged.max(0) as u32,
        version,
        first_ms,
        due_ms,
        attempts: attempts.max(0) as u32,
    };
    (job, lease)
}

fn lwt_unknown() -> StoreError {
    StoreError::Unavailable("push queue write timed out".into())
}

impl ScyllaStore {
    async fn write_device(&self, d: &Device) -> Result<(), StoreError> {
        let (p256dh, auth, app_id, data) = match &d.target {
            DeviceTarget::WebPush { p256dh, auth, .. } => (p256dh.as_str(), auth.as_str(), "", ""),
            DeviceTarget::Gateway { app_id, data, .. } => ("", "", app_id.as_str(), data.as_str()),
        };
        let row = (d.user.0, d.id.0, &d.session.0, d.target.platform(), d.target.address(), p256dh, auth, app_id);
        let values = (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, data, d.created_ms);
        self.db.write(Q::PushDeviceInsert, values).await
    }

    async fn read_job(&self, device: DeviceId, collapse: &str) -> Result<Option<(PushJob, i64)>, StoreError> {
        let row: Option<JobRow> = self.db.one_serial(Q::PushJobGet, (shard(device), device.0, collapse)).await?;
        Ok(row.map(job_of))
    }

    async fn insert_job(&self, j: &PushJob) -> Result<Lwt, StoreError> {
        let values = (
            shard(j.device),
            j.device.0,
            &j.collapse,
            j.user.0,
            &j.conversation.0,
            j.message.0,
            &j.sender,
            &j.text,
            j.count as i32,
            j.version,
            j.first_ms,
            j.due_ms,
            j.attempts as i32,
            "",
            0_i64,
        );
        self.db.lwt(Q::PushJobInsert, values).await
    }

    async fn merge_job(&self, pending: &PushJob, j: &PushJob) -> Result<Lwt, StoreError> {
        let newest = if j.message > pending.message { j } else { pending };
        let values = (
            newest.message.0,
            &newest.sender,
            &newest.text,
            pending.count as i32 + 1,
            pending.version + 1,
            shard(j.device),
            j.device.0,
            &j.collapse,
            pending.version,
        );
        self.db.lwt(Q::PushJobMerge, values).await
    }

    async fn release_job(&self, j: &PushJob, owner: &str, due_ms: i64, attempts: u32) -> Result<(), StoreError> {
        let values = ("", 0_i64, due_ms, attempts as i32, shard(j.device), j.device.0, &j.collapse, owner);
        self.db.lwt(Q::PushJobRelease, values).await.map(|_| ())
    }
}

#[async_trait]
impl PushStore for ScyllaStore {
    async fn add_device(&self, device: &Device, max: usize) -> Result<Registered, StoreError> {
        self.live()?;
        let existing = self.devices(device.user).await?;
        let same = existing
            .iter()
            .find(|e| e.target.platform() == device.target.platform() && e.target.address() == device.target.address());
        if let Some(e) = same {
            let updated = Device { id: e.id, created_ms: e.created_ms, ..device.clone() };
            self.write_device(&updated).await?;
            return Ok(Registered::Updated(updated));
        }
        if existing.len() >= max || !self.claim_device_slot(device, &existing, max).await? {
            return Ok(Registered::Full);
        }
        self.write_device(device).await?;
        Ok(Registered::New(device.clone()))
    }

    async fn devices(&self, user: UserId) -> Result<Vec<Device>, StoreError> {
        self.live()?;
        let rows: Vec<DeviceRow> = self.db.rows(Q::PushDevices, (user.0,)).await?;
        Ok(rows.into_iter().map(device_of).collect())
    }

    async fn device(&self, user: UserId, id: DeviceId) -> Result<Option<Device>, StoreError> {
        self.live()?;
        let row: Option<DeviceRow> = self.db.one(Q::PushDeviceGet, (user.0, id.0)).await?;
        Ok(row.map(device_of))
    }

    async fn remove_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError> {
        let found = self.device(user, id).await?.is_some();
        self.db.write(Q::PushDeviceDelete, (user.0, id.0)).await?;
        self.free_device_slot(user, id).await?;
        Ok(found)
    }

    async fn remove_devices(&self, user: UserId, session: Option<&SessionId>) -> Result<u64, StoreError> {
        let devices = self.devices(user).await?;
        let Some(session) = session else {
            self.db.write(Q::PushDevicesDelete, (user.0,)).await?;
            self.free_all_device_slots(user).await?;
            return Ok(devices.len() as u64);
        };
        let mine: Vec<&Device> = devices.iter().filter(|d| &d.session == session).collect();
        for d in &mine {
            self.db.write(Q::PushDeviceDelete, (user.0, d.id.0)).await?;
            self.free_device_slot(user, d.id).await?;
        }
        Ok(mine.len() as u64)
    }

    async fn set_push_preview(&self, user: UserId, preview: Preview) -> Result<(), StoreError> {
        self.live()?;
        self.db.write(Q::PushSettingSet, (user.0, preview.as_str())).await
    }

    async fn push_preview(&self, user: UserId) -> Result<Preview, StoreError> {
        self.live()?;
        let row: Option<(Option<String>,)> = self.db.one(Q::PushSettingGet, (user.0,)).await?;
        Ok(row.and_then(|(p,)| p).as_deref().and_then(Preview::parse).unwrap_or_default())
    }

    async fn enqueue_push(&self, job: &PushJob, max_per_device: usize) -> Result<Enqueued, StoreError> {
        self.live()?;
        for _ in 0..LWT_TRIES {
            if let Some((pending, _)) = self.read_job(job.device, &job.collapse).await? {
                if pending.message == job.message {
                    // Carried already (a retried intake batch).
                    return Ok(Enqueued::Merged);
                }
                match self.merge_job(&pending, job).await? {
                    Lwt::Applied => return Ok(Enqueued::Merged),
                    Lwt::NotApplied => continue,
                    Lwt::Unknown => return Err(lwt_unknown()),
                }
            }
            let keys: Vec<(String,)> = self.db.rows(Q::PushJobsOfDevice, (shard(job.device), job.device.0)).await?;
            if keys.len() >= max_per_device {
                return Ok(Enqueued::Full);
            }
            match self.insert_job(job).await? {
                Lwt::Applied => return Ok(Enqueued::New),
                Lwt::NotApplied => continue,
                Lwt::Unknown => return Err(lwt_unknown()),
            }
        }
        Err(StoreError::Unavailable("push queue: too many racing writes to one job".into()))
    }

    async fn push_intake(
        &self,
        node: i64,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<Intake>, StoreError> {
        self.live()?;
        self.read_intake(node, (after, upto), limit).await
    }

    async fn intake_cursor(&self, node: i64) -> Result<Option<IntakeCursor>, StoreError> {
        self.live()?;
        self.read_intake_cursor(node).await
    }

    async fn save_intake_cursor(&self, node: i64, cursor: MessageId) -> Result<(), StoreError> {
        self.live()?;
        self.write_intake_cursor(node, cursor).await
    }

    async fn enqueue_push_batch(
        &self,
        jobs: &[PushJob],
        max_per_device: usize,
        done: &[MessageId],
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.live()?;
        // Jobs with the same key one after another (their LWTs would race),
        // different keys concurrently.
        let mut by_key: BTreeMap<(DeviceId, &str), Vec<&PushJob>> = BTreeMap::new();
        for j in jobs {
            by_key.entry((j.device, j.collapse.as_str())).or_default().push(j);
        }
        // Boxed before awaiting: a closure-built stream held across an
        // await in an async_trait method is not `Send` for every lifetime.
        let mut chains: Vec<BoxFuture<'_, Result<Vec<Enqueued>, StoreError>>> = Vec::new();
        for chain in by_key.into_values() {
            chains.push(Box::pin(async move {
                let mut out = Vec::with_capacity(chain.len());
                for j in chain {
                    out.push(self.enqueue_push(j, max_per_device).await?);
                }
                Ok(out)
            }));
        }
        let results: Vec<Result<Vec<Enqueued>, StoreError>> =
            futures_util::stream::iter(chains).buffer_unordered(ENQUEUE_CONCURRENCY).collect().await;
        let mut out = Vec::with_capacity(jobs.len());
        for r in results {
            out.extend(r?);
        }
        self.delete_intake(done).await?;
        Ok(out)
    }

    async fn claim_push(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<PushJob>, StoreError> {
        self.live()?;
        // Every shard read at once; the due and unleased jobs, earliest
        // due first, claimed with their LWTs at once (a job another node
        // claimed meanwhile is skipped).
        let shards = futures_util::future::try_join_all(
            (0..JOB_SHARDS as i32).map(|s| async move { self.db.rows::<JobRow>(Q::PushJobsScan, (s,)).await }),
        )
        .await?;
        let mut due: Vec<(PushJob, i64)> = shards
            .into_iter()
            .flatten()
            .map(job_of)
            .filter(|(job, lease)| job.due_ms <= now_ms && *lease <= now_ms)
            .collect();
        due.sort_by_key(|(job, _)| job.due_ms);
        due.truncate(limit);
        let claims = by_shard(due, |(job, _)| job.device).into_iter().map(|jobs| async move {
            let mut mine = Vec::new();
            for (job, lease) in jobs {
                let key =
                    (owner, now_ms + lease_ms, shard(job.device), job.device.0, &job.collapse, job.version, lease);
                // Unknown: maybe ours; its lease then expires and it is claimed again.
                match self.db.lwt(Q::PushJobClaim, key).await {
                    Ok(Lwt::Applied) => mine.push(job),
                    Ok(_) => {}
                    // The jobs claimed so far are returned, not left leased.
                    Err(e) => {
                        tracing::warn!(error = %e, "push: claiming a notification failed");
                        break;
                    }
                }
            }
            mine
        });
        Ok(futures_util::future::join_all(claims).await.into_iter().flatten().collect())
    }

    async fn complete_push(&self, job: &PushJob, owner: &str) -> Result<bool, StoreError> {
        self.live()?;
        let key = (shard(job.device), job.device.0, &job.collapse, job.version);
        match self.db.lwt(Q::PushJobComplete, key).await? {
            Lwt::Applied => Ok(true),
            Lwt::Unknown => Err(lwt_unknown()),
            Lwt::NotApplied => {
                self.release_job(job, owner, job.due_ms, job.attempts).await?;
                Ok(false)
            }
        }
    }

    async fn complete_push_batch(&self, jobs: &[PushJob], owner: &str) -> Result<Vec<bool>, StoreError> {
        // `buffered` keeps the answers in the jobs' order.
        // Shards at once, each shard's jobs one after another (see `by_shard`);
        // every job is tried even when one fails.
        let indexed: Vec<(usize, &PushJob)> = jobs.iter().enumerate().collect();
        let shards = by_shard(indexed, |(_, j)| j.device).into_iter().map(|group| async move {
            let mut out = Vec::with_capacity(group.len());
            for (i, j) in group {
                out.push((i, self.complete_push(j, owner).await));
            }
            out
        });
        let mut done = vec![false; jobs.len()];
        let mut failed = None;
        for (i, r) in futures_util::future::join_all(shards).await.into_iter().flatten() {
            match r {
                Ok(d) => done[i] = d,
                Err(e) => failed = Some(e),
            }
        }
        failed.map_or(Ok(done), Err)
    }

    async fn retry_push(&self, job: &PushJob, owner: &str, due_ms: i64) -> Result<(), StoreError> {
        self.live()?;
        self.release_job(job, owner, due_ms, job.attempts + 1).await
    }

    async fn drop_push(&self, job: &PushJob) -> Result<(), StoreError> {
        self.live()?;
        self.db.lwt(Q::PushJobDrop, (shard(job.device), job.device.0, &job.collapse)).await.map(|_| ())
    }

    async fn push_depth(&self) -> Result<u64, StoreError> {
        self.live()?;
        let mut n = 0;
        for s in 0..JOB_SHARDS as i32 {
            let rows: Vec<JobRow> = self.db.rows(Q::PushJobsScan, (s,)).await?;
            n += rows.len() as u64;
        }
        Ok(n)
    }
}
