//! Pipelining (protocol.md, "Pipelining"): one socket's `message.send`
//! requests in flight at once, replies matched by id, per-conversation
//! order kept, other kinds run alone, and a flood bounded.

mod common;

use std::collections::HashMap;

use common::{Client, TestServer};
use serde_json::{Value, json};

/// Sends every frame of `reqs` without waiting, then reads one reply per
/// request (events are kept); returns the replies in arrival order.
async fn burst(c: &mut Client, reqs: &[Value]) -> Vec<Value> {
    for r in reqs {
        c.send_text(&r.to_string()).await;
    }
    let mut out = Vec::new();
    while out.len() < reqs.len() {
        out.push(c.recv_reply().await);
    }
    out
}

fn send(id: &str, to: &str, text: &str) -> Value {
    json!({"type": "message.send", "id": id, "to": to, "text": text})
}

async fn roomy_server() -> TestServer {
    TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await
}

#[tokio::test]
async fn replies_to_a_burst_are_matched_by_id() {
    let s = roomy_server().await;
    let mut alice = Client::register(&s, "alice").await;
    let _bob = Client::register(&s, "bob").await;
    let _carol = Client::register(&s, "carol").await;
    let reqs: Vec<Value> = (0..40)
        .map(|i| send(&format!("r{i}"), if i % 2 == 0 { "bob" } else { "carol" }, &format!("text {i}")))
        .collect();
    let replies = burst(&mut alice, &reqs).await;
    let mut by_id: HashMap<String, Value> = HashMap::new();
    for r in replies {
        assert_eq!(r["type"], "ok", "{r}");
        let id = r["id"].as_str().expect("string id echoed").to_owned();
        assert!(by_id.insert(id, r).is_none(), "one reply per request");
    }
    for i in 0..40 {
        let r = &by_id[&format!("r{i}")];
        assert_eq!(r["data"]["message"]["text"], format!("text {i}"), "the reply is the request's: {r}");
        assert_eq!(r["data"]["message"]["to"], if i % 2 == 0 { "bob" } else { "carol" });
    }
    s.stop().await;
}

#[tokio::test]
async fn a_burst_keeps_each_conversations_order_in_store_and_delivery() {
    let s = roomy_server().await;
    let mut alice = Client::register(&s, "alice").await;
    let mut bob = Client::register(&s, "bob").await;
    let mut carol = Client::register(&s, "carol").await;
    let n = 50;
    let mut reqs = Vec::new();
    for i in 0..n {
        reqs.push(send(&format!("b{i}"), "bob", &format!("to bob {i}")));
        reqs.push(send(&format!("c{i}"), "carol", &format!("to carol {i}")));
    }
    let replies = burst(&mut alice, &reqs).await;
    assert!(replies.iter().all(|r| r["type"] == "ok"), "{replies:?}");
    // Replies of one conversation come back in the order sent.
    let order = |prefix: &str| -> Vec<String> {
        replies.iter().filter_map(|r| r["id"].as_str()).filter(|id| id.starts_with(prefix)).map(String::from).collect()
    };
    let want = |p: &str| (0..n).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
    assert_eq!(order("b"), want("b"));
    assert_eq!(order("c"), want("c"));
    for (who, name) in [(&mut bob, "bob"), (&mut carol, "carol")] {
        let got: Vec<String> = common::message_events(who, n)
            .await
            .iter()
            .map(|e| e["data"]["message"]["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        let sent: Vec<String> = (0..n).map(|i| format!("to {name} {i}")).collect();
        assert_eq!(got, sent, "{name} gets them in the order sent");
        let history = alice.ok("message.history", json!({"with": name, "limit": 100})).await;
        let mut stored: Vec<String> = history["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        stored.reverse(); // history pages newest first
        assert_eq!(stored, sent, "stored in the order sent (ids ascending)");
    }
    s.stop().await;
}

#[tokio::test]
async fn other_kinds_wait_for_the_sends_before_them() {
    let s = roomy_server().await;
    let mut alice = Client::register(&s, "alice").await;
    let _bob = Client::register(&s, "bob").await;
    let _carol = Client::register(&s, "carol").await;
    let mut reqs: Vec<Value> =
        (0..20).map(|i| send(&format!("s{i}"), if i % 2 == 0 { "bob" } else { "carol" }, "x")).collect();
    reqs.push(json!({"type": "ping", "id": "barrier"}));
    reqs.push(send("after", "bob", "after the ping"));
    let replies = burst(&mut alice, &reqs).await;
    let ids: Vec<&str> = replies.iter().map(|r| r["id"].as_str().unwrap_or_default()).collect();
    assert_eq!(ids[20], "barrier", "the ping is answered after every send before it: {ids:?}");
    assert_eq!(ids[21], "after", "and the send after it starts after it: {ids:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_flood_gets_rate_limited_and_one_reply_per_frame() {
    let s = TestServer::start_with(|c| {
        c.user_writes_burst = 10_000.0;
        c.rate_per_sec = 1.0; // refills too slowly to matter, however slow the box
    })
    .await;
    let mut alice = Client::register(&s, "alice").await;
    let _bob = Client::register(&s, "bob").await;
    // 300 sends at once to one conversation: the per-socket bucket (burst
    // 100) refuses the excess; what it lets through is queued at most 32
    // deep while the socket is not read, and answered in order.
    let reqs: Vec<Value> = (0..300).map(|i| send(&i.to_string(), "bob", &format!("flood {i}"))).collect();
    let replies = burst(&mut alice, &reqs).await;
    let ok: Vec<u64> =
        replies.iter().filter(|r| r["type"] == "ok").filter_map(|r| r["id"].as_str()?.parse().ok()).collect();
    let limited = replies.iter().filter(|r| r["code"] == "rate_limited").count();
    assert_eq!(ok.len() + limited, 300, "every frame gets one reply: ok or rate_limited");
    assert!(limited > 0, "a flood is rate limited");
    assert!(ok.windows(2).all(|w| w[0] < w[1]), "accepted sends answered in order: {ok:?}");
    // The socket still answers after the flood (the bucket refills slowly:
    // a refusal is an answer too).
    let r = alice.request("ping", json!({})).await;
    assert!(r["type"] == "ok" || r["code"] == "rate_limited", "{r}");
    s.stop().await;
}

#[tokio::test]
async fn a_pipelined_burst_with_sync_normal_survives_a_restart() {
    // `--sync normal` keeps everything acknowledged across a process
    // restart (only a power loss may take the last writes: README).
    let mut s = TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
        c.sync = hubbub::config::SyncMode::Normal;
    })
    .await;
    let tmp = s.take_tempdir();
    let mut olga = Client::register(&s, "olga").await;
    let _pete = Client::register(&s, "pete").await;
    let reqs: Vec<Value> = (0..60).map(|i| send(&format!("m{i}"), "pete", &format!("m{i}"))).collect();
    let replies = burst(&mut olga, &reqs).await;
    let acked: Vec<Value> = replies.iter().map(|r| r["data"]["message"]["id"].clone()).collect();
    assert!(acked.iter().all(Value::is_string), "{replies:?}");
    let dir = s.stop().await;

    let s = TestServer::start_in(&dir, |c| c.sync = hubbub::config::SyncMode::Normal).await;
    let mut pete = Client::login(&s, "pete").await;
    let all = pete.ok("message.sync", json!({"since": "0", "limit": 200})).await;
    let ids: Vec<Value> = all["messages"].as_array().expect("messages").iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, acked, "every acknowledged message, in the order sent");
    s.stop().await;
    drop(tmp);
}
