//! Bad input gets a clear error and the socket keeps working; abuse closes it.

mod common;

use common::{Client, Ended, TestServer};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn expect_error(c: &mut Client, raw: &str, code: &str) -> serde_json::Value {
    c.malformed_next();
    c.send_text(raw).await;
    let r = c.recv_reply().await;
    assert_eq!(r["type"], "error", "{raw} -> {r}");
    assert_eq!(r["code"], code, "{raw} -> {r}");
    assert!(!r["message"].as_str().unwrap().is_empty());
    r
}

#[tokio::test]
async fn malformed_frames_get_errors_and_the_socket_stays_usable() {
    let s = TestServer::start().await;
    let mut c = Client::register(&s, "vera").await;
    Client::register(&s, "walt").await;

    expect_error(&mut c, "this is not json", "bad_request").await;
    expect_error(&mut c, "[1,2,3]", "bad_request").await;
    expect_error(&mut c, r#"{"id": 1}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": 5}"#, "bad_request").await;
    let r = expect_error(&mut c, r#"{"type": "no.such.kind", "id": "x1"}"#, "unknown_type").await;
    assert_eq!(r["id"], "x1", "the id is echoed");
    expect_error(&mut c, r#"{"type": "message.send", "id": 2}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": "message.send", "to": 5, "text": "hi"}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": "message.send", "to": "walt", "text": ""}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": "message.history", "with": "walt", "limit": 0}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": "message.history", "with": "walt", "before": "abc"}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": "message.sync", "since": "x"}"#, "bad_request").await;
    expect_error(&mut c, r#"{"type": "ping", "id": {"a": 1}}"#, "bad_request").await;
    let long = "x".repeat(4001);
    expect_error(&mut c, &json!({"type": "message.send", "to": "walt", "text": long}).to_string(), "too_large").await;
    let r =
        expect_error(&mut c, r#"{"type": "message.send", "id": 9, "to": "nobody_at_all", "text": "hi"}"#, "not_found")
            .await;
    assert_eq!(r["id"], 9);

    c.send_message(Message::Binary(vec![1u8, 2, 3].into())).await;
    let r = c.recv_reply().await;
    assert_eq!((r["type"].as_str(), r["code"].as_str()), (Some("error"), Some("bad_request")));

    // Still fine after all of that.
    c.send_dm("walt", "still here").await;
    s.stop().await;
}

#[tokio::test]
async fn requests_before_authentication_are_refused() {
    let s = TestServer::start().await;
    Client::register(&s, "xena").await;
    let mut c = Client::connect(&s).await;
    for kind in ["message.send", "message.history", "message.sync", "conversation.list", "auth.logout"] {
        let (code, _) = c.err(kind, json!({"to": "xena", "text": "hi", "with": "xena", "since": "0"})).await;
        assert_eq!(code, "unauthorized", "{kind}");
    }
    c.ok("ping", json!({})).await;
    s.stop().await;
}

#[tokio::test]
async fn oversized_frames_close_the_socket_with_1009() {
    let s = TestServer::start().await;
    let mut c = Client::register(&s, "yuri").await;
    let big = json!({"type": "ping", "pad": "x".repeat(70 * 1024)}).to_string();
    c.send_text(&big).await;
    assert_eq!(c.ended().await, Ended::Close(1009));
    s.stop().await;
}

#[tokio::test]
async fn the_rate_limit_answers_rate_limited_then_abuse_closes() {
    let s = TestServer::start_with(|c| {
        c.rate_burst = 5.0;
        c.rate_per_sec = 0.001;
    })
    .await;
    let mut c = Client::connect(&s).await;
    for _ in 0..5 {
        c.ok("ping", json!({})).await;
    }
    assert_eq!(c.err("ping", json!({})).await.0, "rate_limited");
    // Keep hammering far past the limit: the server gives up on this client.
    for _ in 0..200 {
        c.send_text(r#"{"type":"ping"}"#).await;
    }
    assert_eq!(c.ended().await, Ended::Close(4003));
    s.stop().await;
}

#[tokio::test]
async fn a_slow_consumer_is_closed_without_slowing_anyone_else() {
    let s = TestServer::start_with(|c| {
        c.outbound_queue = 4;
        c.rate_burst = 10_000.0;
        c.user_writes_burst = 10_000.0;
        c.max_message_chars = 60_000;
        c.write_timeout = 2;
    })
    .await;
    let mut sender = Client::register(&s, "zara").await;
    let slow = Client::register(&s, "slowpoke").await;
    let token = slow.access_token.clone();
    let mut healthy = Client::login(&s, "slowpoke").await;
    // `slow` never reads. Big messages fill its TCP buffers, then its queue.
    let text = "z".repeat(50_000);
    let mut acked = Vec::new();
    for _ in 0..400 {
        acked.push(sender.send_dm("slowpoke", &text).await["id"].clone());
        let got = healthy.event("message.new").await;
        assert_eq!(got["message"]["id"], *acked.last().unwrap());
    }
    // The slow socket was cut off; its user reconnects and syncs everything.
    let mut slow = slow;
    let end = slow.ended().await;
    assert!(matches!(end, Ended::Close(4001) | Ended::Dropped), "{end:?}");
    let mut back = Client::with_token(&s, &token).await;
    let mut got = Vec::new();
    let mut since = "0".to_string();
    loop {
        let page = back.ok("message.sync", json!({"since": since, "limit": 100})).await;
        got.extend(page["messages"].as_array().unwrap().iter().map(|m| m["id"].clone()));
        since = page["next"].as_str().unwrap().to_owned();
        if page["more"] == false {
            break;
        }
    }
    got.dedup();
    assert_eq!(got, acked);
    s.stop().await;
}
