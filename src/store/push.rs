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
    /// the user has `max` devices already (`Full`). On CQL the count and
    /// the write are not atomic: registrations racing each other may end
    /// one or two devices above `max`.
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
    /// pending jobs and this one would be new.
    async fn enqueue_push(&self, job: &PushJob, max_per_device: usize) -> Result<Enqueued, StoreError>;

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

    /// Releases `owner`'s lease of a job after a failed send: due again at
    /// `due_ms`, `attempts` one more.
    async fn retry_push(&self, job: &PushJob, owner: &str, due_ms: i64) -> Result<(), StoreError>;

    /// Deletes a job whatever its version (gave up, device gone). Idempotent.
    async fn drop_push(&self, job: &PushJob) -> Result<(), StoreError>;

    /// How many jobs are queued (leased ones included).
    async fn push_depth(&self) -> Result<u64, StoreError>;
}
