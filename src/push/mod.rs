//! Push notifications for users with no live socket (issue 16).
//!
//! # Flow
//! 1. `message.send` stores, publishes and acknowledges as before, then
//!    hands the message to [`Push::notice`]: a `try_send` into a bounded
//!    intake channel (`--push-intake`), so the message path never waits;
//!    a full intake drops the notice (counted in
//!    `hubbub_push_not_queued_total{reason="intake_full"}`).
//! 2. The intake task asks the broker's presence records (cluster-wide)
//!    which recipients have no socket on any node, skips muted
//!    conversations ([`PushFilter`]), and queues one job per device of each
//!    offline recipient in the store ([`crate::store::PushStore`]): durable,
//!    bounded per device.
//! 3. Workers on every node claim due jobs with a lease, send them
//!    ([`deliver`]), and complete, retry (exponential backoff with jitter),
//!    give up (`--push-give-up-secs`) or drop the device (404/410,
//!    gateway `rejected`).
//!
//! # The presence race
//! Presence is read after the message was published. A recipient whose
//! socket opens between that read and the job's send gets the message live
//! (or by sync) and also a notification; one whose last socket closed
//! after the event was queued to it but before it was read gets no
//! notification (the app syncs when it opens). A node that died keeps its
//! users "online" until their presence records expire (`--presence-ttl`,
//! 30 s): no notification in that window.

pub mod deliver;
pub mod metrics;
pub mod webpush;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use self::deliver::{Outcome, Sender};
use self::metrics::push as m;
use crate::broker::Broker;
use crate::config::PushConfig;
use crate::error::Error;
use crate::model::{ConversationId, Message, UserId, now_ms};
use crate::store::Store;
use crate::store::push::{Preview, PushJob};

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

/// A stored message and who may need a notification for it.
struct Notice {
    message: Message,
    recipients: Vec<UserId>,
}

/// The node's push service: intake, workers, sender.
pub struct Push {
    options: PushConfig,
    intake: mpsc::Sender<Notice>,
    intake_rx: std::sync::Mutex<Option<mpsc::Receiver<Notice>>>,
    wake: Notify,
    filter: Arc<dyn PushFilter>,
    sender: Sender,
}

/// Recipients looked up concurrently by the intake task.
const INTAKE_CONCURRENCY: usize = 16;
/// An idle worker's poll interval grows to this many times `--push-poll-ms`.
const IDLE_SLOWDOWN: u32 = 5;
/// How often a worker recounts the queue for `hubbub_push_queue_depth`.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

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
        let (intake, rx) = mpsc::channel(options.push_intake.max(1));
        let sender = Sender { http, vapid, ttl: options.push_ttl, gateway_url: options.push_gateway_url.clone() };
        Ok(Push { options, intake, intake_rx: std::sync::Mutex::new(Some(rx)), wake: Notify::new(), filter, sender })
    }

    /// The VAPID public key clients pass as `applicationServerKey`.
    pub fn vapid_public_key(&self) -> &str {
        &self.sender.vapid.public_key
    }

    /// The push options.
    pub fn options(&self) -> &PushConfig {
        &self.options
    }

    /// Hands a stored message to the push path without waiting: `recipients`
    /// are its other participants (the sender excluded by the caller).
    pub fn notice(&self, message: &Message, recipients: Vec<UserId>) {
        if recipients.is_empty() {
            return;
        }
        let notice = Notice { message: message.clone(), recipients };
        if self.intake.try_send(notice).is_err() {
            m().not_queued.with_label_values(&["intake_full"]).inc();
        }
    }

    /// Starts the intake task and the delivery worker.
    pub fn spawn(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        node: String,
        stop: watch::Receiver<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let rx = self.intake_rx.lock().ok().and_then(|mut r| r.take());
        if let Some(rx) = rx {
            tasks.push(tokio::spawn(self.clone().intake_task(rx, store.clone(), broker, stop.clone())));
        }
        tasks.push(tokio::spawn(self.clone().worker(store, node, stop)));
        tasks
    }

    async fn intake_task(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Notice>,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let notice = tokio::select! {
                n = rx.recv() => match n { Some(n) => n, None => return },
                _ = stop.changed() => return,
            };
            let keys: Vec<String> = notice.recipients.iter().map(|u| u.to_string()).collect();
            let states = match broker.presence_query(&keys).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "push: presence unknown; no notification for this message");
                    m().not_queued.with_label_values(&["presence"]).inc();
                    continue;
                }
            };
            let offline: Vec<UserId> =
                notice.recipients.iter().zip(states).filter(|(_, s)| !s.online).map(|(u, _)| *u).collect();
            let queued = futures_util::stream::iter(offline)
                .map(|u| self.queue_for(&store, u, &notice.message))
                .buffer_unordered(INTAKE_CONCURRENCY)
                .fold(0usize, |n, q| async move { n + q })
                .await;
            if queued > 0 {
                self.wake.notify_one();
            }
        }
    }

    /// Queues a job per device of `user` for `message`; returns how many.
    async fn queue_for(&self, store: &Arc<dyn Store>, user: UserId, message: &Message) -> usize {
        if self.filter.is_muted(user, &message.conversation_id).await {
            return 0;
        }
        let devices = match store.devices(user).await {
            Ok(d) if d.is_empty() => return 0,
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, user = %user, "push: devices not read; no notification");
                m().not_queued.with_label_values(&["store"]).inc();
                return 0;
            }
        };
        let preview = store.push_preview(user).await.unwrap_or_default();
        let now = now_ms();
        let mut queued = 0;
        for d in devices {
            let collapse = match d.target.platform() {
                "gateway" => format!("c:{}", message.conversation_id.0),
                _ => format!("m:{}", message.id.0),
            };
            let job = PushJob {
                device: d.id,
                user,
                collapse,
                conversation: message.conversation_id.clone(),
                message: message.id,
                sender: if preview == Preview::None { String::new() } else { message.from.clone() },
                text: if preview == Preview::Full { message.text.clone() } else { String::new() },
                count: 1,
                version: 1,
                first_ms: now,
                due_ms: now,
                attempts: 0,
            };
            match store.enqueue_push(&job, self.options.push_max_pending).await {
                Ok(crate::store::push::Enqueued::Full) => m().not_queued.with_label_values(&["device_full"]).inc(),
                Ok(_) => queued += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "push: notification not queued");
                    m().not_queued.with_label_values(&["store"]).inc();
                }
            }
        }
        queued
    }

    async fn worker(self: Arc<Self>, store: Arc<dyn Store>, node: String, mut stop: watch::Receiver<bool>) {
        let poll = Duration::from_millis(self.options.push_poll_ms.max(10));
        let batch = self.options.push_concurrency.max(1) * 2;
        let mut last_depth = std::time::Instant::now() - DEPTH_EVERY;
        // Polls that found nothing in a row: an idle worker polls up to
        // IDLE_SLOWDOWN times less often (a local enqueue still wakes it at once).
        let mut idle: u32 = 0;
        loop {
            if last_depth.elapsed() >= DEPTH_EVERY {
                last_depth = std::time::Instant::now();
                if let Ok(d) = store.push_depth().await {
                    m().queue_depth.set(d as i64);
                }
            }
            let lease = self.options.push_lease_ms as i64;
            let jobs = match store.claim_push(&node, now_ms(), lease, batch).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "push: claiming notifications failed");
                    Vec::new()
                }
            };
            let full = jobs.len() == batch;
            idle = if jobs.is_empty() { (idle + 1).min(IDLE_SLOWDOWN) } else { 0 };
            futures_util::stream::iter(jobs)
                .for_each_concurrent(self.options.push_concurrency.max(1), |j| self.run_job(&store, &node, j))
                .await;
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll * idle.max(1)) => {}
                _ = self.wake.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Sends one claimed job and records the outcome in the queue.
    async fn run_job(&self, store: &Arc<dyn Store>, node: &str, job: PushJob) {
        let device = match store.device(job.user, job.device).await {
            Ok(Some(d)) => d,
            Ok(None) => return log_err(store.drop_push(&job).await),
            Err(e) => return tracing::warn!(error = %e, "push: device not read; the lease will expire"),
        };
        let platform = device.target.platform();
        let outcome = self.sender.send(&job, &device).await;
        match outcome {
            Outcome::Sent => {
                m().sent.with_label_values(&[platform]).inc();
                m().delivery_seconds.observe((now_ms() - job.first_ms).max(0) as f64 / 1000.0);
                log_err(store.complete_push(&job, node).await.map(|_| ()));
            }
            Outcome::Gone => {
                m().devices_dropped.inc();
                tracing::info!(device = %device.id, platform, "push: device gone; removed");
                log_err(store.remove_device(job.user, job.device).await.map(|_| ()));
                log_err(store.drop_push(&job).await);
            }
            Outcome::Refused(why) => {
                m().gave_up.with_label_values(&[platform]).inc();
                tracing::warn!(device = %device.id, why, "push: notification refused; dropped");
                log_err(store.drop_push(&job).await);
            }
            Outcome::Retry(why) => {
                m().failed.with_label_values(&[platform]).inc();
                let give_up_at = job.first_ms + self.options.push_give_up_secs as i64 * 1000;
                if now_ms() >= give_up_at {
                    m().gave_up.with_label_values(&[platform]).inc();
                    tracing::warn!(device = %device.id, why, "push: gave up");
                    return log_err(store.drop_push(&job).await);
                }
                let delay = backoff(&self.options, job.attempts);
                tracing::debug!(device = %device.id, why, delay_ms = delay, "push: retrying later");
                log_err(store.retry_push(&job, node, now_ms() + delay as i64).await);
            }
        }
    }
}

fn log_err(r: Result<(), crate::error::StoreError>) {
    if let Err(e) = r {
        tracing::warn!(error = %e, "push: queue update failed (the lease expires and the job is retried)");
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
