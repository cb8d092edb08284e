//! The Redis broker: one command connection (auto-reconnecting) and one
//! pub/sub link per Redis instance, channels and keys spread over instances
//! by a consistent hash. Each channel's history is a capped Redis Stream
//! next to a small hash holding its epoch and last offset; a Lua script
//! appends and publishes in one step. Every call has a timeout.

mod pubsub;
mod scripts;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::shard;
use super::{Broker, BrokerOptions, BrokerSink, Entry, History, Position, PresenceState, now_ms, random_hex};
use crate::error::BrokerError;
use pubsub::{Link, PREFIX, Reconcile};

/// How long a last-seen stamp is kept.
const LAST_SEEN_TTL_SECS: u64 = 30 * 24 * 3600;

struct Instance {
    cmd: ConnectionManager,
    link: mpsc::Sender<Reconcile>,
}

struct Scripts {
    publish: Script,
    publish_many: Script,
    history: Script,
    lease: Script,
    release: Script,
    join: Script,
    leave: Script,
    bucket: Script,
}

/// Redis pub/sub between nodes, Redis Streams for history.
pub struct RedisBroker {
    instances: Vec<Instance>,
    scripts: Scripts,
    options: BrokerOptions,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(e.to_string())
}

fn stream_key(channel: &str) -> String {
    format!("{PREFIX}h:{channel}")
}

fn meta_key(channel: &str) -> String {
    format!("{PREFIX}m:{channel}")
}

/// The TTL (seconds) a publish sets when it refreshes a channel's history
/// expiry: `ttl` plus a sixteenth (at least one second), so a busy channel
/// refreshes at most once per sixteenth of `ttl` and idle history lives
/// between `ttl` and this long after its last event.
fn refreshed_ttl(ttl: Duration) -> u64 {
    let secs = ttl.as_secs().max(1);
    secs + (secs / 16).max(1)
}

/// A volatile publish's message: `"v\n"` then the payload (no position).
fn volatile_message(payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(payload.len() + 2);
    msg.extend_from_slice(b"v\n");
    msg.extend_from_slice(payload);
    msg
}

fn presence_keys(key: &str) -> (String, String) {
    (format!("{PREFIX}pr:{key}"), format!("{PREFIX}ls:{key}"))
}

impl RedisBroker {
    /// The indexes of `channels` grouped by the Redis instance that owns
    /// them, in chunks of at most `PUBLISH_MANY_CHUNK`: one call each for
    /// the batched publishes.
    fn batches(&self, channels: &[String]) -> Vec<Vec<usize>> {
        let mut by_instance: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, c) in channels.iter().enumerate() {
            by_instance.entry(shard::pick(c, self.instances.len())).or_default().push(i);
        }
        by_instance
            .into_values()
            .flat_map(|idx| idx.chunks(super::PUBLISH_MANY_CHUNK).map(<[usize]>::to_vec).collect::<Vec<_>>())
            .collect()
    }

    /// Connects to every URL (failing if any is unreachable) and starts one
    /// pub/sub link per instance.
    pub async fn connect(
        urls: &[String],
        sink: Arc<dyn BrokerSink>,
        options: BrokerOptions,
    ) -> Result<Self, BrokerError> {
        let (stop, stop_rx) = watch::channel(false);
        let mut instances = Vec::with_capacity(urls.len());
        let mut tasks = Vec::with_capacity(urls.len());
        for url in urls {
            let client = redis::Client::open(url.as_str()).map_err(|e| unavailable(format!("redis URL {url}: {e}")))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.timeout))
                .set_response_timeout(Some(options.timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(2));
            let cmd = tokio::time::timeout(options.timeout, ConnectionManager::new_with_config(client.clone(), config))
                .await
                .map_err(|_| unavailable(format!("connecting to {url} timed out")))?
                .map_err(|e| unavailable(format!("connecting to {url}: {e}")))?;
            let (link, requests) = mpsc::channel(pubsub::QUEUE);
            let l = Link { client, sink: sink.clone(), requests, stop: stop_rx.clone(), timeout: options.timeout };
            tasks.push(tokio::spawn(l.run()));
            instances.push(Instance { cmd, link });
        }
        if instances.is_empty() {
            return Err(unavailable("no redis URL given"));
        }
        let scripts = Scripts {
            publish: Script::new(scripts::PUBLISH),
            publish_many: Script::new(scripts::PUBLISH_MANY),
            history: Script::new(scripts::HISTORY),
            lease: Script::new(scripts::LEASE),
            release: Script::new(scripts::RELEASE),
            join: Script::new(scripts::PRESENCE_JOIN),
            leave: Script::new(scripts::PRESENCE_LEAVE),
            bucket: Script::new(scripts::TOKEN_BUCKET),
        };
        Ok(RedisBroker { instances, scripts, options, stop, tasks: Mutex::new(tasks) })
    }

    fn instance(&self, name: &str) -> &Instance {
        &self.instances[shard::pick(name, self.instances.len())]
    }

    fn cmd(&self, name: &str) -> ConnectionManager {
        self.instance(name).cmd.clone()
    }

    /// Runs `f` within the configured timeout, mapping every failure.
    async fn timed<T>(&self, f: impl Future<Output = redis::RedisResult<T>>) -> Result<T, BrokerError> {
        match tokio::time::timeout(self.options.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("redis call timed out")),
        }
    }

    /// One [`scripts::PUBLISH_MANY`] call for `channels[i]` for each `i` of
    /// `idx` (all on one instance).
    async fn publish_chunk(
        &self,
        channels: &[String],
        idx: &[usize],
        payload: &Bytes,
    ) -> Result<Vec<(String, u64)>, BrokerError> {
        let Some(first) = idx.first() else { return Ok(Vec::new()) };
        let mut conn = self.cmd(&channels[*first]);
        let mut inv = self.scripts.publish_many.prepare_invoke();
        for i in idx {
            inv.key(stream_key(&channels[*i])).key(meta_key(&channels[*i]));
        }
        inv.arg(payload.as_ref())
            .arg(self.options.history_size)
            .arg(self.options.history_ttl.as_secs())
            .arg(refreshed_ttl(self.options.history_ttl))
            .arg(random_hex(6));
        for i in idx {
            inv.arg(format!("{PREFIX}{}", channels[*i]));
        }
        self.timed(inv.invoke_async(&mut conn)).await
    }

    async fn reconcile(&self, channel: &str) -> Result<(), BrokerError> {
        let (done, answer) = oneshot::channel();
        let req = Reconcile { channel: channel.to_owned(), done };
        let link = &self.instance(channel).link;
        tokio::time::timeout(self.options.timeout, link.send(req))
            .await
            .map_err(|_| unavailable("pub/sub request queue full"))?
            .map_err(|_| unavailable("pub/sub link stopped"))?;
        tokio::time::timeout(self.options.timeout * 2, answer)
            .await
            .map_err(|_| unavailable("pub/sub request timed out"))?
            .map_err(|_| unavailable("pub/sub link stopped"))?
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// Reads one XRANGE entry: `[id, [field, value, ...]]` with id `<offset>-1`.
fn entry(v: &Value) -> Option<Entry> {
    let Value::Array(parts) = v else { return None };
    let id = text(parts.first()?)?;
    let offset = id.split_once('-')?.0.parse().ok()?;
    let Value::Array(fields) = parts.get(1)? else { return None };
    let payload = match fields.get(1)? {
        Value::BulkString(b) => Bytes::copy_from_slice(b),
        _ => return None,
    };
    Some(Entry { offset, payload })
}

fn parse_history(v: &Value, after: u64) -> Option<History> {
    let Value::Array(parts) = v else { return None };
    let epoch = text(parts.first()?)?;
    let top = int(parts.get(1)?)?;
    let entries: Vec<Entry> = match parts.get(2)? {
        Value::Array(es) => es.iter().map(entry).collect::<Option<_>>()?,
        _ => Vec::new(),
    };
    let complete = after >= top
        || (entries.first().map(|e| e.offset) == Some(after + 1) && entries.last().map(|e| e.offset) == Some(top));
    Some(History { top: Position { epoch, offset: top }, entries, complete })
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<Position, BrokerError> {
        let mut conn = self.cmd(channel);
        let mut inv = self.scripts.publish.key(stream_key(channel));
        inv.key(meta_key(channel))
            .arg(format!("{PREFIX}{channel}"))
            .arg(payload.as_ref())
            .arg(self.options.history_size)
            .arg(self.options.history_ttl.as_secs())
            .arg(refreshed_ttl(self.options.history_ttl))
            .arg(random_hex(6));
        let (epoch, offset): (String, u64) = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(Position { epoch, offset })
    }

    async fn publish_many(&self, channels: &[String], payload: Bytes) -> Vec<Result<Position, BrokerError>> {
        let calls = self.batches(channels).into_iter();
        let calls = calls.map(|idx| {
            let payload = payload.clone();
            async move {
                let got = self.publish_chunk(channels, &idx, &payload).await;
                (idx, got)
            }
        });
        let mut out: Vec<Result<Position, BrokerError>> =
            channels.iter().map(|_| Err(unavailable("not published"))).collect();
        for (idx, got) in futures_util::future::join_all(calls).await {
            match got {
                Ok(positions) if positions.len() == idx.len() => {
                    for (i, (epoch, offset)) in idx.into_iter().zip(positions) {
                        out[i] = Ok(Position { epoch, offset });
                    }
                }
                Ok(_) => idx.into_iter().for_each(|i| out[i] = Err(unavailable("unexpected publish reply"))),
                Err(e) => idx.into_iter().for_each(|i| out[i] = Err(unavailable(&e))),
            }
        }
        out
    }

    async fn publish_volatile(&self, channel: &str, payload: Bytes) -> Result<(), BrokerError> {
        let mut conn = self.cmd(channel);
        let msg = volatile_message(&payload);
        let mut c = redis::cmd("PUBLISH");
        c.arg(format!("{PREFIX}{channel}")).arg(msg);
        let _: i64 = self.timed(c.query_async(&mut conn)).await?;
        Ok(())
    }

    async fn publish_volatile_many(&self, channels: &[String], payload: Bytes) -> usize {
        let msg = volatile_message(&payload);
        let calls = self.batches(channels).into_iter();
        let msg = &msg;
        let calls = calls.map(|idx| async move {
            let Some(first) = idx.first() else { return 0 };
            let mut conn = self.cmd(&channels[*first]);
            let mut pipe = redis::pipe();
            for i in &idx {
                pipe.cmd("PUBLISH").arg(format!("{PREFIX}{}", channels[*i])).arg(msg.as_slice()).ignore();
            }
            let got: Result<(), BrokerError> = self.timed(pipe.query_async(&mut conn)).await;
            if got.is_err() { idx.len() } else { 0 }
        });
        futures_util::future::join_all(calls).await.into_iter().sum()
    }

    async fn history(&self, channel: &str, after: u64, limit: usize) -> Result<History, BrokerError> {
        let mut conn = self.cmd(channel);
        let mut inv = self.scripts.history.key(stream_key(channel));
        inv.key(meta_key(channel)).arg(after).arg(limit).arg(random_hex(6)).arg(self.options.history_ttl.as_secs());
        let v: Value = self.timed(inv.invoke_async(&mut conn)).await?;
        parse_history(&v, after).ok_or_else(|| unavailable("unexpected history reply"))
    }

    async fn subscribe(&self, channel: &str) -> Result<(), BrokerError> {
        self.reconcile(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), BrokerError> {
        self.reconcile(channel).await
    }

    async fn take_token(&self, key: &str, capacity: f64, per_sec: f64) -> Result<bool, BrokerError> {
        let mut conn = self.cmd(key);
        let mut inv = self.scripts.bucket.key(format!("{PREFIX}tb:{key}"));
        inv.arg(capacity.max(1.0)).arg(per_sec.max(0.0) / 1000.0);
        let got: i64 = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(got == 1)
    }

    async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, BrokerError> {
        let mut conn = self.cmd(name);
        let mut inv = self.scripts.lease.key(format!("{PREFIX}lease:{name}"));
        inv.arg(holder).arg(ttl.as_millis().max(1) as u64);
        let got: i64 = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(got == 1)
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), BrokerError> {
        let mut conn = self.cmd(name);
        let mut inv = self.scripts.release.key(format!("{PREFIX}lease:{name}"));
        inv.arg(holder);
        let _: i64 = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(())
    }

    async fn presence_join(&self, key: &str, node: &str, ttl: Duration) -> Result<bool, BrokerError> {
        let (set, seen) = presence_keys(key);
        let mut conn = self.cmd(key);
        let now = now_ms();
        let ttl_ms = ttl.as_millis().max(1) as i64;
        let mut inv = self.scripts.join.key(set);
        inv.key(seen).arg(node).arg(now).arg(now + ttl_ms).arg(LAST_SEEN_TTL_SECS).arg(ttl_ms);
        let before: i64 = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(before == 0)
    }

    async fn presence_refresh(&self, keys: &[String], node: &str, ttl: Duration) -> Result<(), BrokerError> {
        let now = now_ms();
        let ttl_ms = ttl.as_millis().max(1) as i64;
        let mut by_instance: HashMap<usize, redis::Pipeline> = HashMap::new();
        for k in keys {
            let (set, seen) = presence_keys(k);
            let p = by_instance.entry(shard::pick(k, self.instances.len())).or_default();
            p.cmd("ZADD").arg(&set).arg(now + ttl_ms).arg(node).ignore();
            p.cmd("PEXPIRE").arg(&set).arg(ttl_ms).ignore();
            p.cmd("SET").arg(&seen).arg(now).arg("EX").arg(LAST_SEEN_TTL_SECS).ignore();
        }
        for (i, p) in by_instance {
            let mut conn = self.instances[i].cmd.clone();
            let () = self.timed(p.query_async(&mut conn)).await?;
        }
        Ok(())
    }

    async fn presence_leave(&self, key: &str, node: &str) -> Result<bool, BrokerError> {
        let (set, seen) = presence_keys(key);
        let mut conn = self.cmd(key);
        let mut inv = self.scripts.leave.key(set);
        inv.key(seen).arg(node).arg(now_ms()).arg(LAST_SEEN_TTL_SECS);
        let left: i64 = self.timed(inv.invoke_async(&mut conn)).await?;
        Ok(left == 0)
    }

    async fn presence_query(&self, keys: &[String]) -> Result<Vec<PresenceState>, BrokerError> {
        let now = now_ms();
        let mut out = vec![PresenceState::default(); keys.len()];
        let mut by_instance: HashMap<usize, (redis::Pipeline, Vec<usize>)> = HashMap::new();
        for (idx, k) in keys.iter().enumerate() {
            let (set, seen) = presence_keys(k);
            let (p, idxs) = by_instance.entry(shard::pick(k, self.instances.len())).or_default();
            p.cmd("ZCOUNT").arg(&set).arg(format!("({now}")).arg("+inf");
            p.cmd("GET").arg(&seen);
            idxs.push(idx);
        }
        for (i, (p, idxs)) in by_instance {
            let mut conn = self.instances[i].cmd.clone();
            let replies: Vec<Value> = self.timed(p.query_async(&mut conn)).await?;
            for (n, idx) in idxs.into_iter().enumerate() {
                let online = replies.get(2 * n).and_then(int).unwrap_or(0) > 0;
                let last_seen_ms = replies.get(2 * n + 1).and_then(text).and_then(|s| s.parse().ok());
                out[idx] = PresenceState { online, last_seen_ms };
            }
        }
        Ok(out)
    }

    async fn close(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}
