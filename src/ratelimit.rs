//! Token buckets: one per socket for its request rate, [`KeyedBuckets`]
//! for limits shared by a key (an address, a user, an account), and
//! [`SharedUserBudget`], each user's write budget across nodes.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::Instant;

use dashmap::DashMap;

use crate::model::UserId;

/// Entries a [`KeyedBuckets`] keeps before full (forgettable) buckets are
/// swept out; bounds its memory under a flood of distinct keys.
pub const SWEEP_AT: usize = 50_000;

/// Holds up to `capacity` tokens, refilled at `per_sec`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, per_sec: f64) -> Self {
        TokenBucket { tokens: capacity, capacity, per_sec, last: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.last = now;
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    /// [`Self::try_take`] at a given instant (for tests).
    pub fn try_take_at(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Puts back one token (never above capacity).
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.capacity);
    }

    /// True if a token is available, without taking it.
    pub fn has_token(&mut self) -> bool {
        self.refill(Instant::now());
        self.tokens >= 1.0
    }

    /// True when the bucket is full again (it can be forgotten).
    pub fn is_full(&mut self) -> bool {
        self.refill(Instant::now());
        self.tokens >= self.capacity
    }
}

/// A token bucket per key, created full on first use and forgotten once
/// full again (swept when more than [`SWEEP_AT`] keys are held).
pub struct KeyedBuckets<K: Eq + Hash> {
    map: DashMap<K, TokenBucket>,
    capacity: f64,
    per_sec: f64,
}

impl<K: Eq + Hash + Clone> KeyedBuckets<K> {
    /// Buckets of `capacity` tokens refilled at `per_sec`.
    pub fn new(capacity: f64, per_sec: f64) -> Self {
        KeyedBuckets { map: DashMap::new(), capacity: capacity.max(1.0), per_sec: per_sec.max(0.0) }
    }

    /// Takes one token from `key`'s bucket if there is one.
    pub fn try_take(&self, key: &K) -> bool {
        let ok = {
            let (capacity, per_sec) = (self.capacity, self.per_sec);
            self.map.entry(key.clone()).or_insert_with(|| TokenBucket::new(capacity, per_sec)).try_take()
        };
        if self.map.len() > SWEEP_AT {
            self.map.retain(|_, b| !b.is_full());
        }
        ok
    }

    /// True if `key`'s bucket has a token, without taking it.
    pub fn has_token(&self, key: &K) -> bool {
        self.map.get_mut(key).is_none_or(|mut b| b.has_token())
    }

    /// True if `key`'s bucket has lost tokens that have not come back yet.
    pub fn is_touched(&self, key: &K) -> bool {
        self.map.get_mut(key).is_some_and(|mut b| !b.is_full())
    }

    /// Puts back a token taken from `key`'s bucket (never above capacity).
    pub fn give_back(&self, key: &K) {
        if let Some(mut b) = self.map.get_mut(key) {
            b.give_back();
        }
    }

    /// Forgets `key`'s bucket (it is full again).
    pub fn forget(&self, key: &K) {
        self.map.remove(key);
    }
}

/// A per-user budget of writes that holds across all of a user's sockets.
/// [`LocalUserBudget`] counts on this node; a cross-node budget (e.g. a
/// Redis counter per user and second) implements the same trait and is
/// chosen where the app is built, without touching the handlers.
#[async_trait::async_trait]
pub trait UserBudget: Send + Sync {
    /// Takes one write from `user`'s budget; `false` when it is spent.
    async fn try_take(&self, user: UserId) -> bool;
}

/// This node's per-user write budget: a token bucket per user.
pub struct LocalUserBudget(KeyedBuckets<UserId>);

impl LocalUserBudget {
    /// `burst` writes at once, refilled at `per_sec`.
    pub fn new(burst: f64, per_sec: f64) -> Self {
        LocalUserBudget(KeyedBuckets::new(burst, per_sec))
    }
}

#[async_trait::async_trait]
impl UserBudget for LocalUserBudget {
    async fn try_take(&self, user: UserId) -> bool {
        self.0.try_take(&user)
    }
}

/// The per-user write budget shared by every node: a token bucket per
/// user in the broker (Redis with `--redis`: one script call per write,
/// within `--broker-timeout-ms`; in memory on one node). **Fails open to
/// this node's bucket**: when the broker call fails or times out, the
/// write is judged by a node-local bucket of the same size instead, so
/// chat keeps working while Redis is slow or down, and the limit then
/// holds per node (at most N times the budget across N nodes) until Redis
/// answers again.
pub struct SharedUserBudget {
    broker: std::sync::Arc<dyn crate::broker::Broker>,
    local: LocalUserBudget,
    burst: f64,
    per_sec: f64,
    /// The broker key's prefix: one family of buckets per budget.
    prefix: &'static str,
}

impl SharedUserBudget {
    /// `burst` writes at once per user, refilled at `per_sec`, across nodes.
    pub fn new(broker: std::sync::Arc<dyn crate::broker::Broker>, burst: f64, per_sec: f64) -> Self {
        Self::named(broker, "w", burst, per_sec)
    }

    /// Another per-user budget shared by every node (the same fail-open
    /// rule), its buckets under broker keys `{name}:{user}`; e.g. `r` for
    /// `--reports-per-hour`.
    pub fn named(
        broker: std::sync::Arc<dyn crate::broker::Broker>,
        name: &'static str,
        burst: f64,
        per_sec: f64,
    ) -> Self {
        SharedUserBudget { broker, local: LocalUserBudget::new(burst, per_sec), burst, per_sec, prefix: name }
    }
}

#[async_trait::async_trait]
impl UserBudget for SharedUserBudget {
    async fn try_take(&self, user: UserId) -> bool {
        let key = crate::model::join_id(&[self.prefix, ":", itoa::Buffer::new().format(user.0)]);
        match self.broker.take_token(&key, self.burst, self.per_sec).await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "shared write budget unavailable; judged by this node's bucket");
                self.local.try_take(user).await
            }
        }
    }
}

/// Counts things open per address (IPv6: per /64) under a cap, e.g.
/// unauthenticated sockets. A slot is given back when dropped.
pub struct AddrCounter {
    map: DashMap<IpAddr, usize>,
    cap: usize,
}

/// One counted thing of an address; dropping it gives the place back.
pub struct AddrSlot {
    counter: std::sync::Arc<AddrCounter>,
    key: IpAddr,
}

impl AddrCounter {
    /// At most `cap` per address.
    pub fn new(cap: usize) -> Self {
        AddrCounter { map: DashMap::new(), cap: cap.max(1) }
    }

    /// A place for `ip`, or `None` when its address already has `cap`.
    pub fn try_acquire(self: &std::sync::Arc<Self>, ip: IpAddr) -> Option<AddrSlot> {
        let key = addr_key(ip);
        let mut n = self.map.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(AddrSlot { counter: self.clone(), key })
    }
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        if let Some(mut n) = self.counter.map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        self.counter.map.remove_if(&self.key, |_, n| *n == 0);
    }
}

/// The key under which an address is limited: IPv4 as is (and IPv4-mapped
/// IPv6 as IPv4), IPv6 by its /64 prefix, since one host usually holds a
/// whole /64 and could otherwise pick a fresh address per request.
pub fn addr_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3.0, 1.0);
        b.last = t0;
        assert!(b.try_take_at(t0) && b.try_take_at(t0) && b.try_take_at(t0));
        assert!(!b.try_take_at(t0));
        assert!(b.try_take_at(t0 + Duration::from_millis(1001)));
        assert!(!b.try_take_at(t0 + Duration::from_millis(1002)));
    }

    #[test]
    fn keyed_buckets_are_separate() {
        let k = KeyedBuckets::new(2.0, 0.0);
        assert!(k.try_take(&1) && k.try_take(&1) && !k.try_take(&1));
        assert!(!k.has_token(&1) && k.has_token(&2));
        assert!(k.try_take(&2));
        k.forget(&1);
        assert!(k.try_take(&1));
    }

    #[test]
    fn addr_counter_caps_and_gives_back() {
        let c = std::sync::Arc::new(AddrCounter::new(2));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let (s1, _s2) = (c.try_acquire(a).unwrap(), c.try_acquire(a).unwrap());
        assert!(c.try_acquire(a).is_none());
        assert!(c.try_acquire("10.0.0.2".parse().unwrap()).is_some());
        drop(s1);
        assert!(c.try_acquire(a).is_some());
    }

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(addr_key(a), addr_key(b));
        assert_ne!(addr_key(a), addr_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(addr_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
