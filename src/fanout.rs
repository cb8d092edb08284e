//! Fan-out of posts and reposts to followers, off the request path.
//!
//! A new item is stored first, marked `Pending` (or `OnRead` for actors
//! with many followers), and readers merge not-yet-copied items at read
//! time, so the author's reply never waits for fan-out and a follower never
//! misses an item whose copies are late. A bounded queue feeds one worker
//! that pushes `post.new` to the followers' sockets and, for `Pending`
//! items, copies the item into each follower's home timeline, then marks it
//! `Done`. Items left `Pending` (queue full, error, crash) are picked up by
//! a periodic sweep, which also trims home timelines past their horizon.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::app::App;
use crate::error::Error;
use crate::model::{FanoutState, ItemId, TimelineItem, UserId, now_ms};
use crate::snowflake;

/// Jobs queued before `enqueue` gives up (the sweep catches up later).
pub const QUEUE: usize = 1024;
/// Followers read per store call.
const PAGE: usize = 500;
/// How often the sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// One item to deliver.
pub struct Job {
    pub item: TimelineItem,
    /// The `post.new` frame to push to followers, if any.
    pub event: Option<Utf8Bytes>,
    /// Whether to copy the item into followers' home timelines.
    pub copy: bool,
}

/// The queue's sending side, kept in [`App`].
pub struct FanoutQueue {
    tx: mpsc::Sender<Job>,
}

impl FanoutQueue {
    /// A queue and the receiver [`run`] consumes.
    pub fn new() -> (FanoutQueue, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (FanoutQueue { tx }, rx)
    }

    /// Queues a job, waiting at most a moment when the queue is full. A
    /// dropped job loses only its live event: a `Pending` item is still read
    /// by followers and copied by the next sweep.
    pub async fn enqueue(&self, job: Job) {
        if tokio::time::timeout(Duration::from_secs(1), self.tx.send(job)).await.is_err() {
            tracing::warn!("fan-out queue full: leaving an item to the sweep");
        }
    }
}

/// Runs the worker until `stop` changes.
pub async fn run(app: Arc<App>, mut rx: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            job = rx.recv() => match job {
                Some(job) => deliver(&app, job).await,
                None => return,
            },
            _ = sweep.tick() => sweep_once(&app).await,
            _ = stop.changed() => return,
        }
    }
}

async fn deliver(app: &App, job: Job) {
    if let Err(e) = deliver_inner(app, &job).await {
        tracing::warn!(error = %e, item = %job.item.id, "fan-out failed; the sweep will retry the copies");
    }
}

async fn deliver_inner(app: &App, job: &Job) -> Result<(), Error> {
    let actor = job.item.actor;
    let mut after = None;
    loop {
        let page = app.store.followers(actor, after, PAGE).await?;
        let ids: Vec<UserId> = page.iter().map(|f| f.user.id).collect();
        if job.copy && !ids.is_empty() {
            app.store.fan_out(&job.item, &ids).await?;
        }
        if let Some(frame) = &job.event {
            for id in &ids {
                if let Err(e) = app.hub.send_to_user(*id, frame, None).await {
                    tracing::debug!(error = %e, "post.new not published");
                }
            }
        }
        if page.len() < PAGE {
            break;
        }
        after = page.last().map(|f| f.follow_id);
    }
    if job.copy {
        app.store.fan_out(&job.item, &[actor]).await?;
        // Only after every copy is stored: readers (`timeline::home`) read
        // the not-yet-copied items before the copies and rely on this order.
        app.store.set_fanout(job.item.id, FanoutState::Done).await?;
    }
    Ok(())
}

async fn sweep_once(app: &App) {
    match app.store.pending_fanout(200).await {
        Ok(items) => {
            for item in items {
                deliver(app, Job { item, event: None, copy: true }).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "fan-out sweep could not list pending items"),
    }
    let horizon = ItemId(snowflake::floor_for_ms(now_ms() - app.config.home_timeline_days as i64 * 86_400_000));
    if let Err(e) = app.store.trim_home(horizon).await {
        tracing::warn!(error = %e, "could not trim home timelines");
    }
}
