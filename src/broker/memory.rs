//! The in-process broker: a single node's loopback. A publish is appended to
//! the channel's bounded ring and handed to the local sink at once, under one
//! lock, so per-channel order is offset order. Rings idle past the history
//! TTL are dropped (their channel gets a new epoch when used again).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Broker, BrokerOptions, BrokerSink, Entry, History, Position, PresenceState, now_ms, random_hex};
use crate::error::BrokerError;

/// Publishes between sweeps of idle rings.
const SWEEP_EVERY: u64 = 1024;

struct Ring {
    epoch: String,
    top: u64,
    entries: VecDeque<(u64, Bytes)>,
    touched: Instant,
}

#[derive(Default)]
struct Presence {
    nodes: HashMap<String, i64>,
    last_seen_ms: Option<i64>,
}

impl Presence {
    fn live(&mut self, now: i64) -> usize {
        self.nodes.retain(|_, exp| *exp > now);
        self.nodes.len()
    }
}

#[derive(Default)]
struct State {
    rings: HashMap<String, Ring>,
    publishes: u64,
    presence: HashMap<String, Presence>,
    leases: HashMap<String, (String, Instant)>,
    buckets: HashMap<String, crate::ratelimit::TokenBucket>,
}

/// Delivers every publish to this node's own sink, with history in memory.
pub struct MemoryBroker {
    sink: Arc<dyn BrokerSink>,
    options: BrokerOptions,
    state: Mutex<State>,
}

impl MemoryBroker {
    /// A broker that loops publishes back to `sink`.
    pub fn new(sink: Arc<dyn BrokerSink>, options: BrokerOptions) -> Self {
        MemoryBroker { sink, options, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a ring half-written in
        // a way later calls would misread, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `payload` to `channel`'s ring (capped) and delivers it with
    /// its position: the one step of `publish` and `publish_many`. Runs
    /// under the lock so the sink sees offsets in order; the sink never
    /// blocks and never calls back into the broker.
    fn append(&self, st: &mut State, channel: &str, payload: Bytes) -> Position {
        let r = ring(&mut st.rings, channel, self.options.history_ttl);
        r.top += 1;
        r.entries.push_back((r.top, payload.clone()));
        while r.entries.len() > self.options.history_size {
            r.entries.pop_front();
        }
        let pos = Position { epoch: r.epoch.clone(), offset: r.top };
        if self.sink.wants(channel) {
            self.sink.deliver(channel, Some(pos.clone()), payload);
        }
        pos
    }
}

fn ring<'a>(rings: &'a mut HashMap<String, Ring>, channel: &str, ttl: Duration) -> &'a mut Ring {
    let now = Instant::now();
    let fresh = || Ring { epoch: random_hex(6), top: 0, entries: VecDeque::new(), touched: now };
    let r = rings.entry(channel.to_owned()).or_insert_with(fresh);
    if now.duration_since(r.touched) > ttl {
        *r = fresh();
    }
    r.touched = now;
    r
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<Position, BrokerError> {
        let mut st = self.state();
        st.publishes += 1;
        if st.publishes % SWEEP_EVERY == 0 {
            let ttl = self.options.history_ttl;
            st.rings.retain(|_, r| r.touched.elapsed() <= ttl);
        }
        Ok(self.append(&mut st, channel, payload))
    }

    async fn publish_many(&self, channels: &[String], payload: Bytes) -> Vec<Result<Position, BrokerError>> {
        // One lock for the whole batch; each ring advances as in `publish`.
        let mut st = self.state();
        let mut out = Vec::with_capacity(channels.len());
        for channel in channels {
            out.push(Ok(self.append(&mut st, channel, payload.clone())));
        }
        st.publishes += channels.len() as u64;
        out
    }

    async fn publish_volatile(&self, channel: &str, payload: Bytes) -> Result<(), BrokerError> {
        if self.sink.wants(channel) {
            self.sink.deliver(channel, None, payload);
        }
        Ok(())
    }

    async fn publish_volatile_many(&self, channels: &[String], payload: Bytes) -> usize {
        for channel in channels {
            if self.sink.wants(channel) {
                self.sink.deliver(channel, None, payload.clone());
            }
        }
        0
    }

    async fn history(&self, channel: &str, after: u64, limit: usize) -> Result<History, BrokerError> {
        let mut st = self.state();
        let r = ring(&mut st.rings, channel, self.options.history_ttl);
        let entries: Vec<Entry> = r
            .entries
            .iter()
            .filter(|(o, _)| *o > after)
            .take(limit)
            .map(|(o, p)| Entry { offset: *o, payload: p.clone() })
            .collect();
        let complete = after >= r.top
            || (entries.first().map(|e| e.offset) == Some(after + 1)
                && entries.last().map(|e| e.offset) == Some(r.top));
        Ok(History { top: Position { epoch: r.epoch.clone(), offset: r.top }, entries, complete })
    }

    async fn subscribe(&self, _channel: &str) -> Result<(), BrokerError> {
        // Publishes ask the sink whether it wants the channel, so tracking
        // subscriptions here would only duplicate the hub's registry.
        Ok(())
    }

    async fn unsubscribe(&self, _channel: &str) -> Result<(), BrokerError> {
        Ok(())
    }

    async fn take_token(&self, key: &str, capacity: f64, per_sec: f64) -> Result<bool, BrokerError> {
        let mut st = self.state();
        let ok = st
            .buckets
            .entry(key.to_owned())
            .or_insert_with(|| crate::ratelimit::TokenBucket::new(capacity.max(1.0), per_sec.max(0.0)))
            .try_take();
        if st.buckets.len() > crate::ratelimit::SWEEP_AT {
            st.buckets.retain(|_, b| !b.is_full());
        }
        Ok(ok)
    }

    async fn lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, BrokerError> {
        let mut st = self.state();
        let now = Instant::now();
        match st.leases.get(name) {
            Some((h, exp)) if h != holder && *exp > now => Ok(false),
            _ => {
                st.leases.insert(name.to_owned(), (holder.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release(&self, name: &str, holder: &str) -> Result<(), BrokerError> {
        let mut st = self.state();
        if st.leases.get(name).is_some_and(|(h, _)| h == holder) {
            st.leases.remove(name);
        }
        Ok(())
    }

    async fn presence_join(&self, key: &str, node: &str, ttl: Duration) -> Result<bool, BrokerError> {
        let now = now_ms();
        let mut st = self.state();
        let p = st.presence.entry(key.to_owned()).or_default();
        let before = p.live(now);
        p.nodes.insert(node.to_owned(), now + ttl.as_millis() as i64);
        p.last_seen_ms = Some(now);
        Ok(before == 0)
    }

    async fn presence_refresh(&self, keys: &[String], node: &str, ttl: Duration) -> Result<(), BrokerError> {
        let now = now_ms();
        let mut st = self.state();
        for k in keys {
            let p = st.presence.entry(k.clone()).or_default();
            p.nodes.insert(node.to_owned(), now + ttl.as_millis() as i64);
            p.last_seen_ms = Some(now);
        }
        Ok(())
    }

    async fn presence_leave(&self, key: &str, node: &str) -> Result<bool, BrokerError> {
        let now = now_ms();
        let mut st = self.state();
        let p = st.presence.entry(key.to_owned()).or_default();
        p.nodes.remove(node);
        p.last_seen_ms = Some(now);
        Ok(p.live(now) == 0)
    }

    async fn presence_query(&self, keys: &[String]) -> Result<Vec<PresenceState>, BrokerError> {
        let now = now_ms();
        let mut st = self.state();
        Ok(keys
            .iter()
            .map(|k| match st.presence.get_mut(k) {
                None => PresenceState::default(),
                Some(p) => PresenceState { online: p.live(now) > 0, last_seen_ms: p.last_seen_ms },
            })
            .collect())
    }

    async fn close(&self) {}
}
