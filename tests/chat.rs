//! Direct messages end to end: delivery, history, sync, nonces, restarts.

mod common;

use std::collections::HashSet;

use common::{Client, TestServer, http_get};
use serde_json::json;

#[tokio::test]
async fn two_users_chat_both_ways_in_real_time() {
    let s = TestServer::start().await;
    let mut alice = Client::register(&s, "alice").await;
    let mut bob = Client::register(&s, "bob").await;

    let sent = alice.send_dm("bob", "hi bob").await;
    assert_eq!(sent["from"], "alice");
    assert_eq!(sent["to"], "bob");
    assert_eq!(sent["text"], "hi bob");
    assert!(sent["id"].is_string() && sent["conversation_id"].is_string());
    assert!(sent["sent_at"].as_str().unwrap().ends_with('Z'));
    let got = bob.event("message.new").await;
    assert_eq!(got["message"], sent);

    let reply = bob.send_dm("ALICE", "hello alice").await; // usernames are case-insensitive
    assert_eq!(reply["to"], "alice");
    let got = alice.event("message.new").await;
    assert_eq!(got["message"]["text"], "hello alice");
    assert_eq!(got["message"]["conversation_id"], sent["conversation_id"]);
    // The sender's own socket gets the reply, not an extra event.
    alice.assert_no_events().await;
    s.stop().await;
}

#[tokio::test]
async fn a_users_other_sockets_see_what_they_send() {
    let s = TestServer::start().await;
    let mut phone = Client::register(&s, "carol").await;
    let mut laptop = Client::login(&s, "carol").await;
    let mut dave = Client::register(&s, "dave").await;

    let sent = phone.send_dm("dave", "from my phone").await;
    assert_eq!(laptop.event("message.new").await["message"], sent);
    assert_eq!(dave.event("message.new").await["message"], sent);
    phone.assert_no_events().await;

    let back = dave.send_dm("carol", "to both devices").await;
    assert_eq!(phone.event("message.new").await["message"], back);
    assert_eq!(laptop.event("message.new").await["message"], back);
    s.stop().await;
}

#[tokio::test]
async fn history_pages_return_every_message_exactly_once() {
    let s = TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await;
    let mut erin = Client::register(&s, "erin").await;
    let mut frank = Client::register(&s, "frank").await;
    let mut sent = Vec::new();
    for i in 0..250 {
        let (from, to) = if i % 3 == 0 { (&mut frank, "erin") } else { (&mut erin, "frank") };
        sent.push(from.send_dm(to, &format!("message {i}")).await["id"].as_str().unwrap().to_owned());
    }

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let mut req = json!({"with": "frank", "limit": 40});
        if let Some(b) = &before {
            req["before"] = json!(b);
        }
        let page = erin.ok("message.history", req).await;
        let msgs = page["messages"].as_array().unwrap();
        assert!(msgs.len() <= 40);
        seen.extend(msgs.iter().map(|m| m["id"].as_str().unwrap().to_owned()));
        match page["next_before"].as_str() {
            Some(n) => before = Some(n.to_owned()),
            None => break,
        }
    }
    let mut expected = sent.clone();
    expected.reverse(); // newest first
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 250);

    // Frank sees the same conversation.
    let page = frank.ok("message.history", json!({"with": "erin", "limit": 1})).await;
    assert_eq!(page["messages"][0]["id"], json!(sent[249]));
    s.stop().await;
}

#[tokio::test]
async fn sync_returns_what_an_offline_user_missed() {
    let s = TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await;
    let mut gina = Client::register(&s, "gina").await;
    let mut hank = Client::register(&s, "hank").await;
    let first = gina.send_dm("hank", "before you left").await;
    hank.event("message.new").await;
    let token = hank.access_token.clone();
    drop(hank); // hank goes offline

    let mut missed = Vec::new();
    for i in 0..30 {
        missed.push(gina.send_dm("hank", &format!("while away {i}")).await["id"].clone());
    }
    let mut ivan = Client::register(&s, "ivan").await;
    missed.push(ivan.send_dm("hank", "from ivan").await["id"].clone());

    let mut hank = Client::with_token(&s, &token).await;
    let mut got = Vec::new();
    let mut since = first["id"].as_str().unwrap().to_owned();
    loop {
        let page = hank.ok("message.sync", json!({"since": since, "limit": 7})).await;
        for m in page["messages"].as_array().unwrap() {
            if !got.contains(&m["id"]) {
                got.push(m["id"].clone());
            }
        }
        since = page["next"].as_str().unwrap().to_owned();
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(got, missed, "oldest first, each once");

    // From the beginning includes the first message too.
    let all = hank.ok("message.sync", json!({"since": "0", "limit": 200})).await;
    assert_eq!(all["messages"].as_array().unwrap().len(), 32);
    assert_eq!(all["more"], false);
    s.stop().await;
}

#[tokio::test]
async fn a_retried_nonce_returns_the_original_and_stores_it_once() {
    let s = TestServer::start().await;
    let mut joe = Client::register(&s, "joe").await;
    let mut kim = Client::register(&s, "kim").await;
    let req = json!({"to": "kim", "text": "only once", "nonce": "n-1"});
    let a = joe.ok("message.send", req.clone()).await;
    let b = joe.ok("message.send", req).await;
    assert_eq!(a, b);
    assert_eq!(a["message"]["nonce"], "n-1");
    // The retry pushes the same message again (the first push may never
    // have happened); clients de-duplicate by id.
    for _ in 0..2 {
        assert_eq!(kim.event("message.new").await["message"]["id"], a["message"]["id"]);
    }
    kim.assert_no_events().await;
    let hist = kim.ok("message.history", json!({"with": "joe"})).await;
    assert_eq!(hist["messages"].as_array().unwrap().len(), 1);
    // Same nonce, different sender: a different message.
    let c = kim.ok("message.send", json!({"to": "joe", "text": "mine", "nonce": "n-1"})).await;
    assert_ne!(c["message"]["id"], a["message"]["id"]);
    s.stop().await;
}

#[tokio::test]
async fn conversation_list_is_most_recent_first() {
    let s = TestServer::start().await;
    let mut lee = Client::register(&s, "lee").await;
    let _max = Client::register(&s, "max").await;
    let _ned = Client::register(&s, "ned").await;
    lee.send_dm("max", "one").await;
    lee.send_dm("ned", "two").await;
    let last = lee.send_dm("max", "three").await;
    let list = lee.ok("conversation.list", json!({})).await;
    let convs = list["conversations"].as_array().unwrap();
    assert_eq!(convs.len(), 2);
    assert_eq!(convs[0]["with"]["username"], "max");
    assert_eq!(convs[0]["last_message"], last);
    assert_eq!(convs[1]["with"]["username"], "ned");
    let page = lee.ok("conversation.list", json!({"limit": 1})).await;
    let next = page["next_before"].as_str().unwrap().to_owned();
    let page2 = lee.ok("conversation.list", json!({"limit": 1, "before": next})).await;
    assert_eq!(page2["conversations"][0]["with"]["username"], "ned");
    s.stop().await;
}

#[tokio::test]
async fn a_restart_keeps_every_acknowledged_message_and_closes_sockets_with_reconnect() {
    let mut s = TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await;
    let tmp = s.take_tempdir();
    let mut olga = Client::register(&s, "olga").await;
    let mut pete = Client::register(&s, "pete").await;
    let mut acked = Vec::new();
    for i in 0..100 {
        acked.push(olga.send_dm("pete", &format!("m{i}")).await["id"].clone());
    }
    let dir = s.stop().await;
    assert_eq!(olga.ended().await, common::Ended::Close(4000));
    assert_eq!(pete.ended().await, common::Ended::Close(4000));

    let s = TestServer::start_in(&dir, |_| {}).await;
    let mut pete = Client::login(&s, "pete").await;
    let all = pete.ok("message.sync", json!({"since": "0", "limit": 200})).await;
    let ids: Vec<_> = all["messages"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, acked);
    // Tokens issued before the restart still work (same key on disk).
    let _again = Client::with_token(&s, &olga.access_token).await;
    s.stop().await;
    drop(tmp);
}

#[tokio::test]
async fn metrics_endpoint_counts_requests_and_events() {
    // /metrics is served on its own address (--metrics-listen), not on the public one.
    let port = common::free_port();
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let s = TestServer::start_with(|c| c.metrics_listen = hubbub::config::MetricsListen(Some(metrics))).await;
    let (status, _) = http_get(s.addr, "/metrics", &[]).await.unwrap();
    assert_eq!(status, 404, "the public listener does not serve /metrics");
    let mut alice = Client::register(&s, "metrics_alice").await;
    let mut bob = Client::register(&s, "metrics_bob").await;
    alice.send_dm("metrics_bob", "hello").await;
    bob.event("message.new").await;
    let (status, body) = http_get(metrics, "/metrics", &[]).await.unwrap();
    assert_eq!(status, 200);
    // Metrics are process-wide and tests share the process: check presence
    // and lower bounds only.
    let value = |series: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in {body}"))
    };
    assert!(value("hubbub_frames_in_total{kind=\"message.send\"}") >= 1.0);
    assert!(value("hubbub_events_delivered_total") >= 1.0);
    assert!(value("hubbub_sockets_open") >= 2.0);
    assert!(value("hubbub_store_write_seconds_count") >= 1.0);
    assert!(body.contains("hubbub_broker_publish_seconds_bucket"));
    s.stop().await;
}
