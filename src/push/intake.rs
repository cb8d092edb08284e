//! The push intake task: turns this node's stored intake entries
//! ([`crate::store::push`]) into notification jobs, a batch at a time.
//!
//! One pass: read up to `--push-intake` entries not done yet (late ones
//! below the newest seen, then new ones: [`Position`]); resolve
//! every message's recipients (group members are read once per group per
//! batch); ask the broker's presence records about all of them in one
//! query; read devices, the preview setting and mutes of the offline ones
//! (concurrently, each user or (user, conversation) once); then queue all
//! the jobs and delete the entries in one store call. Any failure before
//! that call leaves every entry in place and the pass is retried after a
//! poll interval: an entry is never dropped because a lookup failed.
//! The cursor is stored now and then and read at start ([`super::cursor`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use super::Push;
use super::cursor::{self, Position};
use super::metrics::push as m;
use crate::broker::Broker;
use crate::error::Error;
use crate::model::{ConversationId, GroupId, Message, MessageId, UserId, now_ms};
use crate::snowflake::floor_for_ms;
use crate::store::push::{Device, Enqueued, Preview, PushJob};
use crate::store::{MESSAGE_MAX_AGE_MS, Store};

/// Per-user and per-mute lookups run concurrently by one pass.
const LOOKUP_CONCURRENCY: usize = 16;
/// How far behind the clock (beyond [`MESSAGE_MAX_AGE_MS`]) the cursor
/// stays, for entries whose write landed late.
const CURSOR_MARGIN_MS: i64 = 2_000;

/// An offline recipient's devices and payload setting.
struct Target {
    devices: Vec<Device>,
    preview: Preview,
}

/// Runs passes until `stop`: at once while batches come back full, else
/// after `--push-poll-ms` or when a local send wakes it.
pub(super) async fn run(
    push: Arc<Push>,
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    node: i64,
    mut stop: watch::Receiver<bool>,
) {
    let poll = Duration::from_millis(push.options.push_poll_ms.max(10));
    let limit = push.options.push_intake.max(1);
    let give_up = push.options.push_give_up_secs;
    // After a restart: the stored cursor (see `cursor`).
    let Some(start) = cursor::start(&*store, node, give_up, settled, poll, &mut stop).await else { return };
    let mut saver = cursor::Saver::new(node, start);
    let mut at = Position::new(start);
    loop {
        let read = match pass(&push, &store, &broker, node, at, limit).await {
            Ok((read, next)) => {
                at = next;
                saver.maybe_save(&*store, at.cursor).await;
                read
            }
            Err(e) => {
                tracing::warn!(error = %e, "push: intake pass failed; retried (nothing dropped)");
                m().intake_failed.inc();
                0
            }
        };
        m().intake_batch.set(read as i64);
        if read >= limit {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = push.intake_wake.notified() => {}
            _ = stop.changed() => return saver.save_on_stop(&*store, at.cursor).await,
        }
    }
}

/// The newest id every entry at or below which is surely written: an
/// entry's write lands within [`MESSAGE_MAX_AGE_MS`] of its id or is undone.
fn settled() -> MessageId {
    MessageId(floor_for_ms(now_ms() - MESSAGE_MAX_AGE_MS - CURSOR_MARGIN_MS))
}

/// One pass from `at`; returns how many entries it read and where the
/// next pass starts (unchanged on an error: the pass is retried).
async fn pass(
    push: &Push,
    store: &Arc<dyn Store>,
    broker: &Arc<dyn Broker>,
    node: i64,
    at: Position,
    limit: usize,
) -> Result<(usize, Position), Error> {
    let sweep_ms = push.options.push_poll_ms.max(10) as i64;
    let (entries, next) = at.read(&**store, node, settled(), limit, sweep_ms).await?;
    if entries.is_empty() {
        return Ok((0, next));
    }
    let done: Vec<MessageId> = entries.iter().map(|e| e.id).collect();
    let messages: Vec<Message> = entries.into_iter().filter_map(|e| e.message).collect();
    let recipients = recipients(store, &messages).await?;
    let offline = offline(broker, &recipients).await?;
    let wanted: Vec<(usize, UserId)> = recipients
        .iter()
        .enumerate()
        .flat_map(|(i, rs)| rs.iter().filter(|u| offline.contains(u)).map(move |u| (i, *u)))
        .collect();
    let targets = targets(store, wanted.iter().map(|(_, u)| *u).collect()).await?;
    let muted = mutes(push, wanted.iter().map(|(i, u)| (*u, messages[*i].conversation_id.clone())).collect()).await;
    let now = now_ms();
    let jobs: Vec<PushJob> = wanted
        .iter()
        .filter(|(i, u)| !muted.contains(&(*u, messages[*i].conversation_id.clone())))
        .filter_map(|(i, u)| targets.get(u).map(|t| (&messages[*i], t)))
        .flat_map(|(msg, t)| t.devices.iter().map(move |d| job(msg, d, t.preview, now)))
        .collect();
    let outcomes = store.enqueue_push_batch(&jobs, push.options.push_max_pending, &done).await?;
    let full = outcomes.iter().filter(|o| **o == Enqueued::Full).count();
    if full > 0 {
        m().not_queued.with_label_values(&["device_full"]).inc_by(full as u64);
    }
    if full < outcomes.len() {
        push.wake.notify_one();
    }
    Ok((done.len(), next))
}

/// Each message's recipients: the other participant of a direct message;
/// a group's members but the sender, as they are now.
async fn recipients(store: &Arc<dyn Store>, messages: &[Message]) -> Result<Vec<Vec<UserId>>, Error> {
    let mut members: HashMap<GroupId, Vec<UserId>> = HashMap::new();
    let mut out = Vec::with_capacity(messages.len());
    for msg in messages {
        let all = match msg.conversation_id.group_id() {
            Some(g) => match members.get(&g) {
                Some(ms) => ms.clone(),
                None => {
                    let ms = store.group_member_ids(g).await?;
                    members.insert(g, ms.clone());
                    ms
                }
            },
            None => vec![msg.to_id],
        };
        out.push(all.into_iter().filter(|u| *u != msg.from_id).collect());
    }
    Ok(out)
}

/// Which of the recipients have no socket on any node (one broker query).
async fn offline(broker: &Arc<dyn Broker>, recipients: &[Vec<UserId>]) -> Result<HashSet<UserId>, Error> {
    let users: Vec<UserId> = recipients.iter().flatten().copied().collect::<HashSet<_>>().into_iter().collect();
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    let keys: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let states = broker.presence_query(&keys).await?;
    Ok(users.into_iter().zip(states).filter(|(_, s)| !s.online).map(|(u, _)| u).collect())
}

/// Devices and setting of each user with at least one device.
async fn targets(store: &Arc<dyn Store>, users: Vec<UserId>) -> Result<HashMap<UserId, Target>, Error> {
    let users: HashSet<UserId> = users.into_iter().collect();
    let reads = users.into_iter().map(|u| async move {
        let devices = store.devices(u).await?;
        if devices.is_empty() {
            return Ok::<_, Error>(None);
        }
        Ok(Some((u, Target { devices, preview: store.push_preview(u).await? })))
    });
    let found: Vec<Result<Option<(UserId, Target)>, Error>> =
        futures_util::stream::iter(reads).buffer_unordered(LOOKUP_CONCURRENCY).collect().await;
    let mut out = HashMap::new();
    for f in found {
        if let Some((u, t)) = f? {
            out.insert(u, t);
        }
    }
    Ok(out)
}

/// The (user, conversation) pairs that are muted now (the filter fails open).
async fn mutes(push: &Push, pairs: HashSet<(UserId, ConversationId)>) -> HashSet<(UserId, ConversationId)> {
    let checks = pairs.into_iter().map(|(u, c)| async move {
        let muted = push.filter.is_muted(u, &c).await;
        muted.then_some((u, c))
    });
    futures_util::stream::iter(checks)
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .filter_map(|p| async move { p })
        .collect()
        .await
}

/// The job announcing `msg` on `device`.
fn job(msg: &Message, device: &Device, preview: Preview, now: i64) -> PushJob {
    let collapse = match device.target.platform() {
        "gateway" => format!("c:{}", msg.conversation_id.0),
        _ => format!("m:{}", msg.id.0),
    };
    PushJob {
        device: device.id,
        user: device.user,
        collapse,
        conversation: msg.conversation_id.clone(),
        message: msg.id,
        sender: if preview == Preview::None { String::new() } else { msg.from.clone() },
        text: if preview == Preview::Full { msg.text.clone() } else { String::new() },
        count: 1,
        version: 1,
        first_ms: now,
        due_ms: now,
        attempts: 0,
    }
}
