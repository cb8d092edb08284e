//! The `Broker` contract, checked against every backend: the in-process
//! broker always, the Redis broker against a harness-started redis-server
//! (skipped loudly outside CI when redis-server is missing).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hubbub::broker::{Broker, BrokerOptions, BrokerSink, MemoryBroker, Position, RedisBroker};
use tokio::sync::Notify;

use common::WAIT;
use common::cluster::Redis;

/// Records deliveries for the channels it wants.
#[derive(Default)]
struct Sink {
    resyncs: std::sync::atomic::AtomicUsize,
    wanted: Mutex<HashSet<String>>,
    got: Mutex<Vec<(String, Option<Position>, Bytes)>>,
    arrived: Notify,
}

impl BrokerSink for Sink {
    fn deliver(&self, channel: &str, position: Option<Position>, payload: Bytes) {
        self.got.lock().unwrap().push((channel.to_owned(), position, payload));
        self.arrived.notify_waiters();
    }
    fn wants(&self, channel: &str) -> bool {
        self.wanted.lock().unwrap().contains(channel)
    }
    fn resync(&self) {
        self.resyncs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.arrived.notify_waiters();
    }
}

impl Sink {
    fn want(&self, channel: &str, yes: bool) {
        let mut w = self.wanted.lock().unwrap();
        if yes {
            w.insert(channel.to_owned());
        } else {
            w.remove(channel);
        }
    }

    /// Waits until `n` deliveries arrived; returns them.
    async fn wait_for(&self, n: usize) -> Vec<(String, Option<Position>, Bytes)> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.arrived.notified();
            {
                let got = self.got.lock().unwrap();
                if got.len() >= n {
                    return got.clone();
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "deliveries did not arrive in time");
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }
}

fn options() -> BrokerOptions {
    BrokerOptions { history_size: 5, history_ttl: Duration::from_secs(60), timeout: Duration::from_secs(2) }
}

/// Two brokers on the same backend ("two nodes"); each with its own sink.
type Pair = (Arc<dyn Broker>, Arc<Sink>, Arc<dyn Broker>, Arc<Sink>);

async fn memory_pair() -> Pair {
    // One process, one broker: both "nodes" are the same broker and sink.
    let sink = Arc::new(Sink::default());
    let b: Arc<dyn Broker> = Arc::new(MemoryBroker::new(sink.clone(), options()));
    (b.clone(), sink.clone(), b, sink)
}

async fn redis_pair(urls: &[String]) -> Pair {
    let (s1, s2) = (Arc::new(Sink::default()), Arc::new(Sink::default()));
    let b1: Arc<dyn Broker> = Arc::new(RedisBroker::connect(urls, s1.clone(), options()).await.unwrap());
    let b2: Arc<dyn Broker> = Arc::new(RedisBroker::connect(urls, s2.clone(), options()).await.unwrap());
    (b1, s1, b2, s2)
}

async fn publishes_get_contiguous_positions_and_reach_subscribers((a, _sa, b, sb): Pair) {
    sb.want("ib:1", true);
    b.subscribe("ib:1").await.unwrap();
    let mut positions = Vec::new();
    for i in 0..3 {
        positions.push(a.publish("ib:1", Bytes::from(format!("m{i}"))).await.unwrap());
    }
    assert_eq!(positions.iter().map(|p| p.offset).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(positions.iter().all(|p| p.epoch == positions[0].epoch));
    let got = sb.wait_for(3).await;
    let got: Vec<_> = got.into_iter().filter(|(c, _, _)| c == "ib:1").collect();
    assert_eq!(got.iter().map(|(_, p, _)| p.clone().unwrap()).collect::<Vec<_>>(), positions);
    assert_eq!(got[2].2, Bytes::from("m2"));
}

async fn history_reads_by_offset_and_reports_trimming((a, _sa, b, _sb): Pair) {
    // A fresh channel has an epoch at offset 0, stable across reads.
    let h0 = b.history("ib:2", 0, 10).await.unwrap();
    assert_eq!(h0.top.offset, 0);
    assert!(h0.complete && h0.entries.is_empty());
    assert_eq!(a.history("ib:2", 0, 0).await.unwrap().top.epoch, h0.top.epoch);
    for i in 1..=8 {
        let p = a.publish("ib:2", Bytes::from(format!("e{i}"))).await.unwrap();
        assert_eq!(p, Position { epoch: h0.top.epoch.clone(), offset: i });
    }
    // history_size is 5: 1..=3 are gone.
    let all = b.history("ib:2", 0, 100).await.unwrap();
    assert!(!all.complete);
    assert_eq!(all.entries.iter().map(|e| e.offset).collect::<Vec<_>>(), vec![4, 5, 6, 7, 8]);
    let tail = b.history("ib:2", 5, 100).await.unwrap();
    assert!(tail.complete);
    assert_eq!(tail.entries.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), vec!["e6", "e7", "e8"]);
    let cut = b.history("ib:2", 5, 2).await.unwrap();
    assert!(!cut.complete, "a limit that cuts entries off is not complete");
    let none = b.history("ib:2", 8, 100).await.unwrap();
    assert!(none.complete && none.entries.is_empty() && none.top.offset == 8);
}

async fn volatile_publishes_have_no_position_and_unsubscribe_stops_delivery((a, _sa, b, sb): Pair) {
    sb.want("pr:3", true);
    b.subscribe("pr:3").await.unwrap();
    a.publish_volatile("pr:3", Bytes::from("hello")).await.unwrap();
    let got = sb.wait_for(1).await;
    let (c, p, payload) = got.iter().find(|(c, _, _)| c == "pr:3").unwrap().clone();
    assert_eq!((c.as_str(), p, payload), ("pr:3", None, Bytes::from("hello")));
    sb.want("pr:3", false);
    b.unsubscribe("pr:3").await.unwrap();
    let before = sb.got.lock().unwrap().len();
    a.publish_volatile("pr:3", Bytes::from("gone")).await.unwrap();
    // A marker on a still-wanted channel proves the link has moved past it.
    sb.want("pr:4", true);
    b.subscribe("pr:4").await.unwrap();
    a.publish_volatile("pr:4", Bytes::from("marker")).await.unwrap();
    let got = sb.wait_for(before + 1).await;
    assert!(got[before..].iter().all(|(c, _, _)| c == "pr:4"), "{got:?}");
}

/// The ephemeral path (typing): a volatile publish on an inbox channel
/// reaches its subscribers without a position, takes no offset, and is not
/// in the channel's history (so resume never replays it).
async fn volatile_publishes_on_an_inbox_take_no_offset((a, _sa, b, sb): Pair) {
    sb.want("ib:9", true);
    b.subscribe("ib:9").await.unwrap();
    let first = a.publish("ib:9", Bytes::from("stored-1")).await.unwrap();
    a.publish_volatile("ib:9", Bytes::from("typing")).await.unwrap();
    let second = a.publish("ib:9", Bytes::from("stored-2")).await.unwrap();
    assert_eq!((first.offset, second.offset), (1, 2), "the volatile publish took no offset");
    assert_eq!(first.epoch, second.epoch);
    let got = sb.wait_for(3).await;
    let got: Vec<_> = got.into_iter().filter(|(c, _, _)| c == "ib:9").map(|(_, p, b)| (p, b)).collect();
    assert_eq!(
        got,
        vec![
            (Some(first), Bytes::from("stored-1")),
            (None, Bytes::from("typing")),
            (Some(second), Bytes::from("stored-2")),
        ]
    );
    let h = b.history("ib:9", 0, 10).await.unwrap();
    assert!(h.complete);
    assert_eq!(h.entries.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), vec!["stored-1", "stored-2"]);
}

async fn leases_are_exclusive_until_released((a, _sa, b, _sb): Pair) {
    let ttl = Duration::from_secs(10);
    assert!(a.lease("worker:9", "node-a", ttl).await.unwrap());
    assert!(!b.lease("worker:9", "node-b", ttl).await.unwrap());
    assert!(a.lease("worker:9", "node-a", ttl).await.unwrap(), "the holder renews");
    b.release("worker:9", "node-b").await.unwrap(); // not the holder: no effect
    assert!(!b.lease("worker:9", "node-b", ttl).await.unwrap());
    a.release("worker:9", "node-a").await.unwrap();
    assert!(b.lease("worker:9", "node-b", ttl).await.unwrap());
}

async fn token_buckets_are_shared_between_nodes((a, _sa, b, _sb): Pair) {
    // No refill (0/s): exactly the capacity is taken, from either node.
    for _ in 0..2 {
        assert!(a.take_token("w:conformance", 3.0, 0.0).await.unwrap());
    }
    assert!(b.take_token("w:conformance", 3.0, 0.0).await.unwrap(), "the other node draws from the same bucket");
    assert!(!a.take_token("w:conformance", 3.0, 0.0).await.unwrap());
    assert!(!b.take_token("w:conformance", 3.0, 0.0).await.unwrap());
    assert!(b.take_token("w:conformance-2", 3.0, 0.0).await.unwrap(), "one bucket per key");
}

async fn presence_is_online_while_any_node_holds_it((a, _sa, b, _sb): Pair) {
    let ttl = Duration::from_secs(10);
    let keys = vec!["u1".to_owned(), "u2".to_owned()];
    let q = a.presence_query(&keys).await.unwrap();
    assert!(!q[0].online && q[0].last_seen_ms.is_none());
    assert!(a.presence_join("u1", "node-a", ttl).await.unwrap(), "first node: came online");
    assert!(!b.presence_join("u1", "node-b", ttl).await.unwrap());
    b.presence_refresh(&keys[..1], "node-b", ttl).await.unwrap();
    let q = b.presence_query(&keys).await.unwrap();
    assert!(q[0].online && q[0].last_seen_ms.is_some() && !q[1].online);
    assert!(!a.presence_leave("u1", "node-a").await.unwrap(), "node-b still has it");
    assert!(b.presence_leave("u1", "node-b").await.unwrap(), "last node: went offline");
    let q = a.presence_query(&keys).await.unwrap();
    assert!(!q[0].online && q[0].last_seen_ms.is_some());
    // A record that is not refreshed expires.
    assert!(a.presence_join("u2", "node-a", Duration::from_millis(50)).await.unwrap());
    let deadline = tokio::time::Instant::now() + WAIT;
    while a.presence_query(&keys[1..]).await.unwrap()[0].online {
        assert!(tokio::time::Instant::now() < deadline, "presence never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(memory_pair().await).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(redis) = Redis::start().await else { return };
                    let pair = redis_pair(&[redis.url()]).await;
                    let (a, b) = (pair.0.clone(), pair.2.clone());
                    super::$name(pair).await;
                    a.close().await;
                    b.close().await;
                }
            )*
        }
        /// Two Redis instances: channels and keys spread by consistent hash.
        mod redis_sharded {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(r1) = Redis::start().await else { return };
                    let Some(r2) = Redis::start().await else { return };
                    let pair = redis_pair(&[r1.url(), r2.url()]).await;
                    let (a, b) = (pair.0.clone(), pair.2.clone());
                    super::$name(pair).await;
                    a.close().await;
                    b.close().await;
                }
            )*
        }
    };
}

async fn many_channels_each_reach_their_subscribers((a, _sa, b, sb): Pair) {
    let channels: Vec<String> = (100..140).map(|i| format!("ib:{i}")).collect();
    for c in &channels {
        sb.want(c, true);
        b.subscribe(c).await.unwrap();
    }
    for c in &channels {
        assert_eq!(a.publish(c, Bytes::from(c.clone())).await.unwrap().offset, 1);
    }
    let got = sb.wait_for(channels.len()).await;
    let seen: HashSet<String> = got
        .iter()
        .map(|(c, _, p)| {
            assert_eq!(p, &Bytes::from(c.clone()));
            c.clone()
        })
        .collect();
    assert_eq!(seen, channels.into_iter().collect());
}

/// A batched publish (a group event to every member's inbox) gives each
/// channel the position a single publish would have, continues each
/// channel's offsets, reaches the subscribed channels, and lands in each
/// channel's history; a batch larger than one script call's chunk too.
async fn publish_many_positions_each_channel_like_single_publishes((a, _sa, b, sb): Pair) {
    let channels: Vec<String> = (200..200 + 300).map(|i| format!("ib:{i}")).collect();
    let subscribed = &channels[..20];
    for c in subscribed {
        sb.want(c, true);
        b.subscribe(c).await.unwrap();
    }
    // One channel already has history: the batch continues its offsets.
    let before = a.publish(&channels[0], Bytes::from("solo")).await.unwrap();
    let got = a.publish_many(&channels, Bytes::from("group")).await;
    assert_eq!(got.len(), channels.len());
    let positions: Vec<Position> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(positions[0], Position { epoch: before.epoch.clone(), offset: 2 });
    assert!(positions[1..].iter().all(|p| p.offset == 1), "fresh channels start at 1");
    let epochs: HashSet<&String> = positions.iter().map(|p| &p.epoch).collect();
    assert!(epochs.len() > 1 || channels.len() == 1, "fresh channels get their own epochs");
    for (c, p) in channels.iter().zip(&positions).step_by(37) {
        let h = b.history(c, 0, 10).await.unwrap();
        assert_eq!(h.top, *p, "{c}");
        assert_eq!(h.entries.last().map(|e| e.payload.clone()), Some(Bytes::from("group")));
    }
    // A later single publish goes on from the batch's offset.
    assert_eq!(a.publish(&channels[5], Bytes::from("next")).await.unwrap().offset, 2);
    let want = subscribed.len() + 2;
    let got = sb.wait_for(want).await;
    for c in subscribed {
        let mine: Vec<_> = got.iter().filter(|(ch, _, _)| ch == c).collect();
        assert!(mine.iter().any(|(_, _, p)| p == &Bytes::from("group")), "{c} got the batch");
    }
    assert!(a.publish_many(&[], Bytes::from("x")).await.is_empty());
}

/// A batched volatile publish (typing to every member of a group) reaches
/// each subscribed channel without a position, takes no offset, stays out
/// of history, and covers a batch larger than one chunk.
async fn publish_volatile_many_reaches_each_channel_without_a_position((a, _sa, b, sb): Pair) {
    let channels: Vec<String> = (600..600 + 300).map(|i| format!("ib:{i}")).collect();
    let subscribed: Vec<&String> = channels.iter().step_by(15).collect();
    for c in &subscribed {
        sb.want(c, true);
        b.subscribe(c).await.unwrap();
    }
    let first = a.publish(&channels[0], Bytes::from("stored-1")).await.unwrap();
    assert_eq!(a.publish_volatile_many(&channels, Bytes::from("typing")).await, 0);
    let second = a.publish(&channels[0], Bytes::from("stored-2")).await.unwrap();
    assert_eq!((first.offset, second.offset), (1, 2), "the volatile batch took no offset");
    let got = sb.wait_for(subscribed.len() + 2).await;
    for c in &subscribed {
        let mine: Vec<_> = got.iter().filter(|(ch, _, _)| ch == *c).map(|(_, p, b)| (p.clone(), b.clone())).collect();
        assert!(mine.contains(&(None, Bytes::from("typing"))), "{c}: {mine:?}");
    }
    let h = b.history(&channels[0], 0, 10).await.unwrap();
    assert_eq!(h.entries.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), vec!["stored-1", "stored-2"]);
    assert_eq!(a.publish_volatile_many(&[], Bytes::from("x")).await, 0);
}

conformance!(
    publish_many_positions_each_channel_like_single_publishes,
    publish_volatile_many_reaches_each_channel_without_a_position,
    many_channels_each_reach_their_subscribers,
    publishes_get_contiguous_positions_and_reach_subscribers,
    history_reads_by_offset_and_reports_trimming,
    volatile_publishes_have_no_position_and_unsubscribe_stops_delivery,
    volatile_publishes_on_an_inbox_take_no_offset,
    leases_are_exclusive_until_released,
    token_buckets_are_shared_between_nodes,
    presence_is_online_while_any_node_holds_it,
);

/// Redis only: a cut pub/sub connection is re-established, every wanted
/// channel resubscribed, and the sink told it may have missed messages.
#[tokio::test]
async fn redis_link_loss_resubscribes_and_reports_resync() {
    let Some(redis) = Redis::start().await else { return };
    let (a, _sa, b, sb) = redis_pair(&[redis.url()]).await;
    sb.want("ib:77", true);
    b.subscribe("ib:77").await.unwrap();
    let killed = common::cluster::redis_command(redis.port, "CLIENT KILL TYPE pubsub").await;
    assert!(killed.starts_with(':'), "{killed}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while sb.resyncs.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no resync reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Delivery works again without anyone subscribing anew.
    let p = a.publish("ib:77", Bytes::from("after")).await.unwrap();
    let got = sb.wait_for(1).await;
    assert_eq!(got.last().map(|(_, pos, _)| pos.clone()), Some(Some(p)));
    a.close().await;
    b.close().await;
}

/// Redis only: with Redis gone, calls fail within the timeout instead of hanging.
#[tokio::test]
async fn redis_calls_fail_fast_when_redis_is_gone() {
    let Some(mut redis) = Redis::start().await else { return };
    let (a, _sa, _b, _sb) = redis_pair(&[redis.url()]).await;
    redis.kill();
    let r = tokio::time::timeout(WAIT, a.publish("ib:78", Bytes::from("x"))).await.expect("bounded by the timeout");
    assert!(r.is_err());
    let r = tokio::time::timeout(WAIT, a.history("ib:78", 0, 10)).await.expect("bounded by the timeout");
    assert!(r.is_err());
    redis.restart().await;
    // The command connection reconnects by itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(p) = a.publish("ib:78", Bytes::from("y")).await {
            assert_eq!(p.offset, 1, "Redis restarted empty: a new epoch starts at 1");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.close().await;
}
