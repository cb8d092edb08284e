//! Inbox positions, resume and gap filling on one node with the in-process
//! broker (always runs; the Redis variants are in tests/cluster.rs).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Client, TestServer};
use hubbub::broker::{Broker, BrokerOptions, BrokerSink, MemoryBroker, Position};
use hubbub::hub::{ConnControl, ConnHandle, Hub, HubOptions};
use hubbub::model::{SessionId, User, UserId};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;

#[tokio::test]
async fn events_carry_positions_and_resume_replays_exactly_what_was_missed() {
    let s = TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await;
    let mut ann = Client::register(&s, "ann").await;
    let mut ben = Client::register(&s, "ben").await;
    ben.send_dm("ann", "one").await;
    let first = common::message_events(&mut ann, 1).await.remove(0);
    assert_eq!(first["pos"]["offset"], 1);
    let token = ann.access_token.clone();
    drop(ann);
    let mut missed = Vec::new();
    for i in 0..4 {
        missed.push(ben.send_dm("ann", &format!("missed {i}")).await["id"].clone());
    }
    let (mut ann, data) = Client::resume(&s, &token, first["pos"].clone()).await;
    assert_eq!(data["recovered"], true, "{data}");
    assert_eq!(data["pos"]["offset"], 5);
    let got = common::message_events(&mut ann, 4).await;
    assert_eq!(got.iter().map(|e| e["data"]["message"]["id"].clone()).collect::<Vec<_>>(), missed);
    assert_eq!(got.iter().map(|e| e["pos"]["offset"].as_u64().unwrap()).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
    ann.assert_no_events().await;

    // Resuming from the newest position recovers nothing, and nothing twice.
    let (mut again, data) = Client::resume(&s, &token, data["pos"].clone()).await;
    assert_eq!(data["recovered"], true);
    again.assert_no_events().await;

    // A position this inbox never reached is not trusted: the client syncs.
    let epoch = data["pos"]["epoch"].clone();
    let (_future, data) = Client::resume(&s, &token, json!({"epoch": epoch, "offset": 999})).await;
    assert_eq!(data["recovered"], false);
    assert_eq!(data["pos"]["offset"], 5);

    // Without resume there is no `recovered`, only the position.
    let (_plain, data) = Client::resume(&s, &token, Value::Null).await;
    assert!(data.get("recovered").is_none());
    assert_eq!(data["pos"]["offset"], 5);
    s.stop().await;
}

#[tokio::test]
async fn resume_that_cannot_be_served_says_so_and_sync_fills_in() {
    // The history keeps 3 events; 6 are missed.
    let s = TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
        c.history_size = 3;
    })
    .await;
    let mut cat = Client::register(&s, "cat").await;
    let mut dan = Client::register(&s, "dan").await;
    let before = dan.send_dm("cat", "seen").await;
    let first = common::message_events(&mut cat, 1).await.remove(0);
    let token = cat.access_token.clone();
    drop(cat);
    for i in 0..6 {
        dan.send_dm("cat", &format!("missed {i}")).await;
    }
    let (mut cat, data) = Client::resume(&s, &token, first["pos"].clone()).await;
    assert_eq!(data["recovered"], false);
    cat.assert_no_events().await;
    assert_eq!(cat.sync_all(before["id"].as_str().unwrap()).await.len(), 6);

    // A bad resume value is a bad request.
    let mut c = Client::connect(&s).await;
    let (code, _) = c.err("auth.token", json!({"token": token, "resume": {"epoch": 5}})).await;
    assert_eq!(code, "bad_request");
    s.stop().await;
}

#[tokio::test]
async fn presence_on_one_node() {
    let s = TestServer::start().await;
    let mut eve = Client::register(&s, "eve").await;
    let r = eve.ok("presence.query", json!({"usernames": ["eve", "fay"]})).await;
    assert_eq!(r["users"].as_array().unwrap().len(), 1);
    assert_eq!(r["users"][0]["online"], true);
    let w = eve.ok("presence.watch", json!({"usernames": ["fay"]})).await;
    assert_eq!(w["users"], json!([]), "unknown users are left out");
    let fay = Client::register(&s, "fay").await;
    // Registered after the watch: watching resolves names when asked.
    eve.ok("presence.watch", json!({"usernames": ["fay"]})).await;
    drop(fay);
    let e = eve.event("presence.changed").await;
    assert_eq!((e["username"].as_str(), e["online"].as_bool()), (Some("fay"), Some(false)));
    assert!(e["last_seen"].is_string());
    eve.ok("presence.unwatch", json!({"usernames": ["fay"]})).await;
    let _fay = Client::login(&s, "fay").await;
    eve.assert_no_events().await;
    s.stop().await;
}

/// Passes deliveries on to the hub but drops every third inbox one, as a
/// lossy pub/sub link would.
struct Lossy {
    inner: Arc<dyn BrokerSink>,
    n: AtomicU64,
}

impl BrokerSink for Lossy {
    fn deliver(&self, channel: &str, position: Option<Position>, payload: Bytes) {
        if self.n.fetch_add(1, Ordering::Relaxed) % 3 != 1 {
            self.inner.deliver(channel, position, payload);
        }
    }
    fn wants(&self, channel: &str) -> bool {
        self.inner.wants(channel)
    }
    fn resync(&self) {
        self.inner.resync()
    }
}

#[tokio::test]
async fn lost_deliveries_are_filled_from_history_in_order_exactly_once() {
    let options = HubOptions { max_per_user: 4, recover_limit: 64, presence_ttl: Duration::from_secs(30) };
    let broker_options =
        BrokerOptions { history_size: 100, history_ttl: Duration::from_secs(60), timeout: Duration::from_secs(2) };
    let hub = Arc::new(
        Hub::new(options, |sink| async move {
            let lossy: Arc<dyn BrokerSink> = Arc::new(Lossy { inner: sink, n: AtomicU64::new(0) });
            Ok(Arc::new(MemoryBroker::new(lossy, broker_options)) as Arc<dyn Broker>)
        })
        .await
        .unwrap(),
    );
    let (stop, stop_rx) = watch::channel(false);
    let tasks = hub.spawn_tasks(stop_rx).await;
    let user = User { id: UserId(42), username: "gil".into(), display_name: "gil".into(), created_at_ms: 0 };
    let (tx, mut rx) = hubbub::hub::outq::channel(256);
    let handle = ConnHandle::new(hub.next_conn_id(), SessionId("s".into()), tx, Arc::new(ConnControl::default()));
    hub.attach(&user, handle, None).await.unwrap();

    for i in 0..30 {
        let frame = Utf8Bytes::from(format!("{{\"type\":\"event\",\"event\":\"t\",\"data\":{{\"n\":{i}}}}}"));
        hub.send_to_user(user.id, &frame, None).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 30 {
        let f = tokio::time::timeout(common::WAIT, rx.recv()).await.expect("in time").expect("open");
        let v: Value = serde_json::from_str(f.as_str()).unwrap();
        assert_ne!(v["event"], "sync.needed", "history covers every gap");
        got.push(v["pos"]["offset"].as_u64().unwrap());
    }
    // Offsets 2, 5, ..., 29 were dropped on the way; every one arrives, once, in order.
    assert_eq!(got, (1..=30).collect::<Vec<_>>());
    let _ = stop.send(true);
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test]
async fn refreshing_on_a_socket_keeps_its_inbox_place_and_presence() {
    let s = TestServer::start().await;
    let mut hal = Client::register(&s, "hal").await;
    let mut ivo = Client::register(&s, "ivo").await;
    ivo.ok("presence.watch", json!({"usernames": ["hal"]})).await;
    ivo.send_dm("hal", "one").await;
    assert_eq!(common::message_events(&mut hal, 1).await[0]["pos"]["offset"], 1);
    let refresh = hal.refresh_token.clone();
    let data = hal.ok("auth.refresh", json!({ "refresh_token": refresh })).await;
    assert_eq!(data["pos"]["offset"], 1, "{data}");
    ivo.send_dm("hal", "two").await;
    assert_eq!(common::message_events(&mut hal, 1).await[0]["pos"]["offset"], 2);
    // Hal never went offline.
    ivo.assert_no_events().await;
    s.stop().await;
}
