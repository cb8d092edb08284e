//! Push notifications' durable state (issue 16): each user's push devices,
//! the per-user payload setting, and the outbound notification queue.
//! [`PushStore`] is the contract; `Store` requires it, and every backend
//! implements it in its own `push.rs`. `tests/store_conformance/push.rs`
//! checks it on every backend.
//!
//! The queue holds one row per (device, collapse key). A Web Push job's
//! key is its message id (one notification per message; the push service
//! collapses by the `Topic` header); a gateway job's key is its
//! conversation, so a message arriving while one is pending for that
//! conversation merges into it (newest message, count + 1). Workers lease
//! due rows for a while ([`PushStore::claim_push`]); a lease that expires
//! (its node crashed) is claimed again, so a job is sent twice only when a
//! node died between sending it and completing it.
//!
//! # The intake
//! A message that may need notifications is recorded as an **intake
//! entry** in the same write as the message itself (the same SQLite
//! transaction; the same round of CQL writes), keyed by the node that
//! minted its id (the snowflake's worker id). That node's intake task
//! reads its entries in batches ([`PushStore::push_intake`]), decides who
//! is offline, and turns a whole batch into jobs in one call
//! ([`PushStore::enqueue_push_batch`]), which also deletes the entries.
//! So an acknowledged message's notifications survive a crash: the entry
//! is stored before the ack, and deleted only with (after, on CQL) the
//! jobs it produced. Each node stores how far its intake got
//! ([`PushStore::save_intake_cursor`]), so a restart resumes there.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{ConversationId, MessageId, SessionId, UserId};

/// A push device's id (a snowflake; strings on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub i64);

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where and how a device is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceTarget {
    /// A browser's Web Push subscription (RFC 8030/8291).
    WebPush {
        /// The push service URL to POST to.
        endpoint: String,
        /// The subscription's P-256 public key (base64url, uncompressed point).
        p256dh: String,
        /// The subscription's 16-byte auth secret (base64url).
        auth: String,
    },
    /// An app reached through the Matrix push gateway.
    Gateway {
        /// The gateway's device token.
        pushkey: String,
        /// The app the gateway knows the token for.
        app_id: String,
        /// Opaque JSON object passed back to the gateway (`"{}"` when none).
        data: String,
    },
}

impl DeviceTarget {
    /// The platform's code: `webpush` or `gateway`.
    pub fn platform(&self) -> &'static str {
        match self {
            DeviceTarget::WebPush { .. } => "webpush",
            DeviceTarget::Gateway { .. } => "gateway",
        }
    }

    /// What identifies the device at its platform (endpoint or pushkey):
    /// one device per address per user.
    pub fn address(&self) -> &str {
        match self {
            DeviceTarget::WebPush { endpoint, .. } => endpoint,
            DeviceTarget::Gateway { pushkey, .. } => pushkey,
        }
    }
}

/// A registered push device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub id: DeviceId,
    pub user: UserId,
    /// The login session that registered it (its logout removes it).
    pub session: SessionId,
    pub target: DeviceTarget,
    /// Registration time, Unix ms (the gateway's `pushkey_ts`).
    pub created_ms: i64,
}

/// The outcome of [`PushStore::add_device`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registered {
    /// Stored as a new device.
    New(Device),
    /// The user already had a device with this address: its keys and
    /// session were replaced, its id kept.
    Updated(Device),
    /// The user already has the maximum number of devices: nothing stored.
    Full,
}

/// What a notification's payload may carry (`settings.update {push_preview}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Preview {
    /// Sender and text (the default).
    #[default]
    Full,
    /// The sender only.
    Sender,
    /// Nothing but "new message".
    None,
}

impl Preview {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Preview::Full => "full",
            Preview::Sender => "sender",
            Preview::None => "none",
        }
    }

    /// The setting with that name.
    pub fn parse(s: &str) -> Option<Preview> {
        match s {
            "full" => Some(Preview::Full),
            "sender" => Some(Preview::Sender),
            "none" => Some(Preview::None),
            _ => None,
        }
    }
}

/// One queued notification (see the module doc for collapse keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushJob {
    pub device: DeviceId,
    /// The device's owner (the recipient).
    pub user: UserId,
    /// One pending job per (device, collapse key).
    pub collapse: String,
    pub conversation: ConversationId,
    /// The newest message the job announces.
    pub message: MessageId,
    /// The sender's username; empty when the preview setting hides it.
    pub sender: String,
    /// The message text; empty unless the preview setting is `full`.
    pub text: String,
    /// Messages merged into this job (1 for a fresh one).
    pub count: u32,
    /// Bumped by every merge: completing an older version keeps the job.
    pub version: i64,
    /// When the job was first enqueued (Unix ms): give-up and latency count from it.
    pub first_ms: i64,
    /// Not to be sent before (Unix ms).
    pub due_ms: i64,
    /// Failed sends so far.
    pub attempts: u32,
}

/// One intake entry (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intake {
    /// The message's id (the entry's key).
    pub id: MessageId,
    /// The message as stored now; `None` when it is gone (its write was
    /// undone, or its sender's account deleted): nothing to announce.
    pub message: Option<crate::model::Message>,
}

/// The worker id (node) that minted a snowflake id: the intake partition
/// its message's entry lives in.
pub fn intake_node(id: MessageId) -> i64 {
    i64::from(crate::snowflake::worker_of(id.0))
}

/// Where a node's intake may resume (see [`PushStore::intake_cursor`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntakeCursor {
    /// The cursor the node stored last: every entry at or below it was
    /// turned into jobs.
    Stored(MessageId),
    /// The node never stored one; the store holds no entry at or below
    /// this id for any node (CQL: the creation of its intake table).
    Floor(MessageId),
}

impl IntakeCursor {
    /// The id the intake may read above.
    pub fn id(self) -> MessageId {
        match self {
            IntakeCursor::Stored(id) | IntakeCursor::Floor(id) => id,
        }
    }
}

/// The outcome of [`PushStore::enqueue_push`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job.
    New,
    /// Merged into the pending job with the same (device, collapse key).
    Merged,
    /// The device already has the maximum number of pending jobs: nothing stored.
    Full,
}

/// Push devices, the payload setting, and the notification queue.
#[async_trait]
pub trait PushStore: Send + Sync + 'static {
    // ---- devices ------------------------------------------------------

    /// Registers `device` for `device.user`. A device of that user with
    /// the same [`DeviceTarget::address`] is updated in place (new keys,
    /// new session, id and creation time kept). Otherwise stored unless
    /// the user has `max` devices already (`Full`), exactly, also when
    /// registrations race (SQLite: one writer; CQL: an LWT-claimed slot
    /// per device, `cql/012_push_load.cql`). Two racing registrations of
    /// the same address may both be stored (two devices, same address).
    async fn add_device(&self, device: &Device, max: usize) -> Result<Registered, StoreError>;

    /// `user`'s devices, oldest first (at most the per-user maximum).
    async fn devices(&self, user: UserId) -> Result<Vec<Device>, StoreError>;

    /// One of `user`'s devices.
    async fn device(&self, user: UserId, id: DeviceId) -> Result<Option<Device>, StoreError>;

    /// Removes one of `user`'s devices. False when it was not there. Its
    /// queued jobs are dropped when claimed (the device is gone).
    async fn remove_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError>;

    /// Removes `user`'s devices registered by `session` (all of them when
    /// `None`); returns how many. Idempotent.
    async fn remove_devices(&self, user: UserId, session: Option<&SessionId>) -> Result<u64, StoreError>;

    // ---- setting ------------------------------------------------------

    /// Sets what `user`'s notifications carry.
    async fn set_push_preview(&self, user: UserId, preview: Preview) -> Result<(), StoreError>;

    /// What `user`'s notifications carry (`Full` when never set).
    async fn push_preview(&self, user: UserId) -> Result<Preview, StoreError>;

    // ---- queue --------------------------------------------------------

    /// Queues `job` (due at `job.due_ms`, version and attempts as given),
    /// or, when a job with the same (device, collapse key) is pending,
    /// merges into it: the pending job takes `job`'s message, sender and
    /// text when `job.message` is newer, its count grows by one, its
    /// version changes; its due time, first time and lease are kept.
    /// `Full` (nothing stored) when the device has `max_per_device`
    /// pending jobs and this one would be new. Queuing a message that the
    /// pending job already carries changes nothing (`Merged`): an intake
    /// batch retried after a failure does not count a message twice.
    async fn enqueue_push(&self, job: &PushJob, max_per_device: usize) -> Result<Enqueued, StoreError>;

    /// Up to `limit` intake entries of messages minted by `node` (the
    /// snowflake worker id) with ids above `after` and at most `upto`
    /// (`MessageId(i64::MAX)`: no upper bound), oldest first, each with its
    /// message as stored. On CQL a deleted entry in that range is a
    /// tombstone the read steps over: the intake reads each range of
    /// deleted entries once (see `crate::push`'s intake), never the same
    /// seconds on every pass. CQL looks back at most two days (entries
    /// older than that are not returned).
    async fn push_intake(
        &self,
        node: i64,
        after: MessageId,
        upto: MessageId,
        limit: usize,
    ) -> Result<Vec<Intake>, StoreError>;

    /// Where `node`'s intake may resume after a restart: the cursor it
    /// stored last with [`Self::save_intake_cursor`], else the store's
    /// intake floor when it has one (CQL: written by `hubbub migrate` when
    /// it created the intake table), else `None` (the caller then reads
    /// back `--push-give-up-secs`).
    async fn intake_cursor(&self, node: i64) -> Result<Option<IntakeCursor>, StoreError>;

    /// Stores `cursor` as `node`'s intake cursor, unless a higher one is
    /// stored already: the stored value only ever grows, also when two
    /// calls race (SQLite: one writer and `max()`; CQL: lightweight
    /// transactions, `IF NOT EXISTS` then `IF cursor < ?`). The caller
    /// promises that every entry of `node` at or below `cursor` was turned
    /// into jobs. `Unavailable` when the outcome is unknown (a timed-out
    /// LWT): calling again is safe.
    async fn save_intake_cursor(&self, node: i64, cursor: MessageId) -> Result<(), StoreError>;

    /// [`Self::enqueue_push`] for every job of an intake batch, then deletes
    /// the intake entries `done`: on SQLite all in one transaction; on CQL
    /// the jobs first (jobs with the same key one after another), the
    /// entries only once every job was written. An `Err` may leave some
    /// jobs queued and every entry in place: retrying the batch is safe
    /// (see `enqueue_push`). Returns one outcome per job, in no order.
    async fn enqueue_push_batch(
        &self,
        jobs: &[PushJob],
        max_per_device: usize,
        done: &[MessageId],
    ) -> Result<Vec<Enqueued>, StoreError>;

    /// Leases up to `limit` jobs due at `now_ms` whose lease (if any) has
    /// expired, to `owner` until `now_ms + lease_ms`, and returns them as
    /// stored. A leased job is not returned again before its lease ends.
    async fn claim_push(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<PushJob>, StoreError>;

    /// Deletes a job that was sent, if it is still at `job.version`. When
    /// a merge changed it meanwhile, its lease is released instead (it is
    /// due again, carrying the merged message) and this returns false.
    async fn complete_push(&self, job: &PushJob, owner: &str) -> Result<bool, StoreError>;

    /// [`Self::complete_push`] for several sent jobs in one call (SQLite:
    /// one writer transaction; CQL: the conditional deletes at once, at
    /// most 16 in flight). Returns one answer per job, in `jobs`' order.
    /// An `Err` may leave some of them done: completing a job again is
    /// safe (a deleted job is not found, and only `owner`'s lease is
    /// released).
    async fn complete_push_batch(&self, jobs: &[PushJob], owner: &str) -> Result<Vec<bool>, StoreError>;

    /// Releases `owner`'s lease of a job after a failed send: due again at
    /// `due_ms`, `attempts` one more.
    async fn retry_push(&self, job: &PushJob, owner: &str, due_ms: i64) -> Result<(), StoreError>;

    /// Deletes a job whatever its version (gave up, device gone). Idempotent.
    async fn drop_push(&self, job: &PushJob) -> Result<(), StoreError>;

    /// How many jobs are queued (leased ones included).
    async fn push_depth(&self) -> Result<u64, StoreError>;
}
