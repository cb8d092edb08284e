//! Push notifications for users with no live socket (issue 16).
//!
//! # Flow
//! 1. `message.send` stores the message and, in the same write, an
//!    **intake entry** for it (SQLite: same transaction, only when a
//!    direct message's recipient has a device; CQL: same round of
//!    writes), then publishes and acknowledges, then wakes the intake
//!    ([`Push::wake`]). Nothing else is added to the message path.
//! 2. The intake task ([`intake`]) of the node that minted the message
//!    reads its entries in batches, asks the broker's presence records
//!    (cluster-wide, one query per batch) which recipients have no socket
//!    on any node, skips muted conversations ([`PushFilter`]), and queues
//!    one job per device of each offline recipient in the store
//!    ([`crate::store::PushStore`]), deleting the batch's entries in the
//!    same call. A failed pass is retried; nothing is dropped.
//! 3. Workers on every node ([`worker`]) claim due jobs with a lease,
//!    send them ([`deliver`]), and complete, retry (exponential backoff
//!    with jitter), give up (`--push-give-up-secs`) or drop the device
//!    (404/410, gateway `rejected`).
//!
//! # What a crash does
//! An acknowledged message's entry is durable, so its notifications are
//! queued after any crash once the minting node (its worker id) runs
//! again. A crash between queuing a batch's jobs and deleting its entries
//! (CQL only: SQLite does both in one transaction) queues them again: a
//! job still pending is not changed, but one already sent is sent again
//! (a duplicate). A crash between sending a job and completing it sends
//! it again after its lease (`--push-lease-ms`). Entries whose node never
//! comes back stay unread (documented in README "Push notifications").
//! The intake's cursor is stored about once a second ([`cursor`]): a
//! restart resumes there and re-reads at most that window, whose done
//! entries are deleted already.
//!
//! # The presence race
//! Presence is read by the intake, after the message was published. A
//! recipient whose socket opens between that read and the job's send gets
//! the message live (or by sync) and also a notification; one whose last
//! socket closed after the event was queued to it but before it was read
//! gets no notification (the app syncs when it opens). A node that died
//! keeps its users "online" until their presence records expire
//! (`--presence-ttl`, 30 s): no notification in that window.

mod cursor;
pub mod deliver;
mod intake;
pub mod metrics;
pub mod webpush;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use self::deliver::Sender;
use crate::broker::Broker;
use crate::config::PushConfig;
use crate::error::Error;
use crate::model::{ConversationId, UserId};
use crate::store::Store;

/// Decides whether a user wants no push for a conversation.
#[async_trait::async_trait]
pub trait PushFilter: Send + Sync + 'static {
    /// True when `user` muted `conversation` now.
    async fn is_muted(&self, user: UserId, conversation: &ConversationId) -> bool;
}

/// The mutes of `conversation.mute`, read from the store
/// ([`crate::store::SafetyStore::muted`]). When the store cannot answer,
/// the conversation counts as not muted: a notification too many rather
/// than a message nobody hears about (logged).
pub struct StoreMutes(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl PushFilter for StoreMutes {
    async fn is_muted(&self, user: UserId, conversation: &ConversationId) -> bool {
        match self.0.muted(user, conversation, crate::model::now_ms()).await {
            Ok(muted) => muted,
            Err(e) => {
                tracing::warn!(error = %e, user = %user, "push: mute not read; notifying");
                false
            }
        }
    }
}

/// The node's push service: intake, workers, sender.
pub struct Push {
    options: PushConfig,
    /// This node's snowflake worker id: the intake partition it reads.
    worker: i64,
    intake_wake: Notify,
    wake: Notify,
    filter: Arc<dyn PushFilter>,
    sender: Sender,
}

impl Push {
    /// Loads (or generates) the VAPID key and builds the HTTP client.
    pub fn new(config: &crate::config::Config, filter: Arc<dyn PushFilter>) -> Result<Push, Error> {
        let options = config.push.clone();
        let vapid = webpush::Vapid::load_or_generate(
            options.vapid_private_key.as_deref(),
            &config.data_dir,
            &options.vapid_subject,
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(options.push_http_timeout_ms))
            .connect_timeout(Duration::from_millis(options.push_http_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("push HTTP client: {e}")))?;
        let sender = Sender { http, vapid, ttl: options.push_ttl, gateway_url: options.push_gateway_url.clone() };
        let worker = i64::from(config.worker_id);
        Ok(Push { options, worker, intake_wake: Notify::new(), wake: Notify::new(), filter, sender })
    }

    /// The VAPID public key clients pass as `applicationServerKey`.
    pub fn vapid_public_key(&self) -> &str {
        &self.sender.vapid.public_key
    }

    /// The push options.
    pub fn options(&self) -> &PushConfig {
        &self.options
    }

    /// Tells the intake that a message was stored (its entry is in the
    /// store already): the next pass starts now instead of after a poll
    /// interval. Never waits.
    pub fn wake(&self) {
        self.intake_wake.notify_one();
    }

    /// Starts the intake task and the delivery worker.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        node: String,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let intake = intake::run(self.clone(), store.clone(), broker, self.worker, stop.clone());
        vec![tokio::spawn(intake), tokio::spawn(worker::run(self.clone(), store, node, stop))]
    }
}

/// The delay before attempt `attempts + 1`: base * 2^attempts, at most the
/// configured maximum, then a random point in its upper half (jitter, so
/// notifications failing together do not retry together).
pub fn backoff(o: &PushConfig, attempts: u32) -> u64 {
    let full = o.push_retry_base_ms.saturating_mul(1u64 << attempts.min(30)).min(o.push_retry_max_ms).max(1);
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    full / 2 + u64::from_le_bytes(r) % (full - full / 2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let o = crate::config::Config::with_data_dir("/tmp").push;
        for attempts in 0..40 {
            let full = (o.push_retry_base_ms << attempts.min(30)).min(o.push_retry_max_ms);
            let d = backoff(&o, attempts);
            assert!(d >= full / 2 && d <= full, "{attempts}: {d}");
        }
    }
}
