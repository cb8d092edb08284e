//! The delivery worker: claims due notifications, sends them, records
//! what became of them.
//!
//! Sends run as tasks, at most `--push-concurrency` at once, and the
//! worker keeps that many in flight: it claims again as soon as half the
//! slots are free (not when a whole batch is done), so one slow push
//! service does not hold the others back. Store round trips are shared:
//! a claimed batch's devices are read once per recipient, and every send
//! that finished by the time the worker looks is completed in one call
//! ([`crate::store::PushStore::complete_push_batch`]). Retries, drops and
//! gone devices, the rare outcomes, are one call each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::deliver::Outcome;
use super::metrics::push as m;
use super::{Push, backoff};
use crate::model::{UserId, now_ms};
use crate::store::Store;
use crate::store::push::{Device, PushJob};

/// An idle worker's poll interval grows to this many times `--push-poll-ms`.
const IDLE_SLOWDOWN: u32 = 5;
/// How often a worker recounts the queue for `hubbub_push_queue_depth`.
const DEPTH_EVERY: Duration = Duration::from_secs(5);
/// Recipients whose devices a claimed batch reads at once.
const DEVICE_READS: usize = 8;

/// One finished send.
type Finished = (PushJob, Device, Outcome);

/// Runs the worker of `push` until `stop` turns true; then waits for the
/// sends in flight and records them (the caller bounds that wait).
pub(super) async fn run(push: Arc<Push>, store: Arc<dyn Store>, node: String, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(push.options.push_poll_ms.max(10));
    let slots = push.options.push_concurrency.max(1);
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut last_depth = Instant::now() - DEPTH_EVERY;
    // Polls in a row that found nothing: an idle worker polls up to
    // IDLE_SLOWDOWN times less often (a local enqueue wakes it at once).
    let mut idle: u32 = 0;
    // The last claim filled every free slot: there may be more now.
    let mut more = true;
    let mut last_claim = Instant::now() - poll;
    let mut sent: Vec<PushJob> = Vec::new();
    // `changed()` also returns (an error) when the sender is gone: either way, stop.
    while !*stop.borrow() {
        if last_depth.elapsed() >= DEPTH_EVERY {
            last_depth = Instant::now();
            if let Ok(d) = store.push_depth().await {
                m().queue_depth.set(d as i64);
            }
        }
        // A wake (a job queued on this node) while busy left a permit.
        let woken = futures_util::FutureExt::now_or_never(push.wake.notified()).is_some();
        let free = slots - running.len();
        if free * 2 >= slots && (more || woken || last_claim.elapsed() >= poll) {
            last_claim = Instant::now();
            let lease = push.options.push_lease_ms as i64;
            let jobs = match store.claim_push(&node, now_ms(), lease, free).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(error = %e, "push: claiming notifications failed");
                    Vec::new()
                }
            };
            more = jobs.len() == free;
            idle = if jobs.is_empty() && running.is_empty() { (idle + 1).min(IDLE_SLOWDOWN) } else { 0 };
            start(&push, &store, jobs, &mut running).await;
        }
        if running.is_empty() {
            if more {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(poll * idle.max(1)) => {}
                _ = push.wake.notified() => {}
                _ = stop.changed() => break,
            }
            more = true;
            continue;
        }
        // Wait for a send to finish (then take every other finished one),
        // or for a reason to claim into the free slots.
        let first = tokio::select! {
            r = running.join_next() => r,
            _ = push.wake.notified() => { more = true; None }
            _ = tokio::time::sleep(poll) => None,
            _ = stop.changed() => break,
        };
        let mut finished: Vec<Finished> = first.into_iter().filter_map(joined).collect();
        while let Some(r) = running.try_join_next() {
            finished.extend(joined(r));
        }
        record(&push, &store, &node, finished, &mut sent).await;
    }
    // Stopping: no new claims; the sends in flight are recorded.
    while let Some(r) = running.join_next().await {
        let finished: Vec<Finished> = joined(r).into_iter().collect();
        record(&push, &store, &node, finished, &mut sent).await;
    }
}

fn joined(r: Result<Finished, tokio::task::JoinError>) -> Option<Finished> {
    match r {
        Ok(f) => Some(f),
        // A send task panicked (a bug): its lease expires and it is retried.
        Err(e) => {
            tracing::error!(error = %e, "push: a send task failed");
            None
        }
    }
}

/// Reads the devices of `jobs` (once per recipient) and starts a send task
/// per job. A job whose device is gone is dropped; one whose devices could
/// not be read waits for its lease to expire.
async fn start(push: &Arc<Push>, store: &Arc<dyn Store>, jobs: Vec<PushJob>, running: &mut JoinSet<Finished>) {
    if jobs.is_empty() {
        return;
    }
    let mut users: Vec<UserId> = jobs.iter().map(|j| j.user).collect();
    users.sort_unstable_by_key(|u| u.0);
    users.dedup();
    let reads: Vec<_> = users.into_iter().map(|u| async move { (u, store.devices(u).await) }).collect();
    let read: HashMap<UserId, Result<Vec<Device>, _>> =
        futures_util::stream::iter(reads).buffer_unordered(DEVICE_READS).collect().await;
    for job in jobs {
        let device = match read.get(&job.user) {
            Some(Ok(devices)) => devices.iter().find(|d| d.id == job.device).cloned(),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "push: device not read; the lease will expire");
                continue;
            }
            None => None,
        };
        let Some(device) = device else {
            log_err(store.drop_push(&job).await);
            continue;
        };
        let push = push.clone();
        running.spawn(async move {
            let outcome = push.sender.send(&job, &device).await;
            (job, device, outcome)
        });
    }
}

/// Records finished sends: the sent ones completed in one store call, the
/// others one call each.
async fn record(push: &Push, store: &Arc<dyn Store>, node: &str, finished: Vec<Finished>, sent: &mut Vec<PushJob>) {
    sent.clear();
    for (job, device, outcome) in finished {
        let platform = device.target.platform();
        match outcome {
            Outcome::Sent => {
                m().sent.with_label_values(&[platform]).inc();
                m().delivery_seconds.observe((now_ms() - job.first_ms).max(0) as f64 / 1000.0);
                sent.push(job);
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
                let give_up_at = job.first_ms + push.options.push_give_up_secs as i64 * 1000;
                if now_ms() >= give_up_at {
                    m().gave_up.with_label_values(&[platform]).inc();
                    tracing::warn!(device = %device.id, why, "push: gave up");
                    log_err(store.drop_push(&job).await);
                    continue;
                }
                let delay = backoff(&push.options, job.attempts);
                tracing::debug!(device = %device.id, why, delay_ms = delay, "push: retrying later");
                log_err(store.retry_push(&job, node, now_ms() + delay as i64).await);
            }
        }
    }
    if !sent.is_empty() {
        log_err(store.complete_push_batch(sent, node).await.map(|_| ()));
    }
}

fn log_err(r: Result<(), crate::error::StoreError>) {
    if let Err(e) = r {
        tracing::warn!(error = %e, "push: queue update failed (the lease expires and the job is retried)");
    }
}
