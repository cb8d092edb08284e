//! Safety over real sockets (issue 16): blocks and what they stop (direct
//! messages, group adds, follows, presence), mutes in `conversation.list`,
//! reports, and the operators' `hubbub admin` commands (the real binary)
//! on one node and on a Redis cluster, where a ban closes the user's
//! socket on another node and a block made on one node stops a message
//! sent through another.

mod common;

use std::path::Path;
use std::process::Output;

use common::cluster::Cluster;
use common::{Client, Ended, TestServer, scylla_keyspace_for, test_scylla};
use serde_json::{Value, json};

/// Runs `hubbub admin ARGS` against the store in `dir` (and Redis when
/// given), as an operator would, with a timeout.
async fn admin(dir: &Path, redis: Option<&str>, args: &[&str]) -> Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_hubbub"));
    c.arg("admin").args(args).arg("--data-dir").arg(dir).env("HUBBUB_LOG", "warn").env_remove("HUBBUB_SCYLLA");
    if let Some(url) = redis {
        c.arg("--redis").arg(url);
    }
    if let Some(nodes) = test_scylla() {
        c.arg("--scylla").arg(nodes).arg("--scylla-keyspace").arg(scylla_keyspace_for(dir));
    }
    tokio::time::timeout(common::start_wait(), c.output()).await.expect("admin in time").expect("run")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn login_err(server: &TestServer, username: &str) -> (String, String) {
    let mut c = Client::connect(server).await;
    c.err("auth.login", json!({"username": username, "password": "password123"})).await
}

#[tokio::test]
async fn block_requests_and_their_refusals() {
    let server = TestServer::start_with(|c| c.max_blocks = 2).await;
    let mut ann = Client::register(&server, "sb_ann").await;
    for n in ["sb_bob", "sb_cy", "sb_di"] {
        Client::register(&server, n).await;
    }
    let table: &[(&str, Value, &str)] = &[
        ("user.block", json!({"username": "sb_nobody"}), "not_found"),
        ("user.block", json!({"username": "no way"}), "not_found"),
        ("user.block", json!({"username": "sb_ann"}), "bad_request"),
        ("user.block", json!({}), "bad_request"),
        ("user.unblock", json!({"username": "sb_nobody"}), "not_found"),
        ("user.blocks", json!({"limit": 0}), "bad_request"),
        ("user.blocks", json!({"limit": 101}), "bad_request"),
        ("user.blocks", json!({"after": "x"}), "bad_request"),
    ];
    for (kind, fields, code) in table {
        assert_eq!(ann.err(kind, fields.clone()).await.0, *code, "{kind} {fields}");
    }
    let d = ann.ok("user.block", json!({"username": "SB_BOB"})).await;
    assert_eq!(d, json!({"username": "sb_bob", "blocked": true, "changed": true}));
    let d = ann.ok("user.block", json!({"username": "sb_bob"})).await;
    assert_eq!(d["changed"], false, "idempotent");
    ann.ok("user.block", json!({"username": "sb_cy"})).await;
    let (code, msg) = ann.err("user.block", json!({"username": "sb_di"})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("limit_exceeded", "you can block at most 2 users"));
    // Newest first, paged.
    let p1 = ann.ok("user.blocks", json!({"limit": 1})).await;
    assert_eq!(p1["users"][0]["username"], "sb_cy");
    let after = p1["next_after"].as_str().expect("a full page has a cursor").to_owned();
    let p2 = ann.ok("user.blocks", json!({"limit": 1, "after": after})).await;
    assert_eq!(p2["users"][0]["username"], "sb_bob");
    let d = ann.ok("user.unblock", json!({"username": "sb_bob"})).await;
    assert_eq!(d, json!({"username": "sb_bob", "blocked": false, "changed": true}));
    assert_eq!(ann.ok("user.unblock", json!({"username": "sb_bob"})).await["changed"], false);
    let all = ann.ok("user.blocks", json!({})).await;
    assert_eq!(all, json!({"users": [all["users"][0].clone()], "next_after": null}));
    assert_eq!(all["users"][0]["username"], "sb_cy");
    let mut anon = Client::connect(&server).await;
    assert_eq!(anon.err("user.block", json!({"username": "sb_bob"})).await.0, "unauthorized");
}

#[tokio::test]
async fn a_block_stops_messages_follows_group_adds_and_presence() {
    let server = TestServer::start().await;
    let mut ann = Client::register(&server, "bk_ann").await;
    let mut bob = Client::register(&server, "bk_bob").await;
    let mut cy = Client::register(&server, "bk_cy").await;
    let first = bob.send_dm("bk_ann", "hello").await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    ann.event("message.new").await;
    bob.ok("follow.add", json!({"username": "bk_ann"})).await;
    ann.ok("follow.add", json!({"username": "bk_bob"})).await;
    for c in [&mut bob, &mut cy] {
        let w = c.ok("presence.watch", json!({"usernames": ["bk_ann"]})).await;
        assert_eq!(w["users"][0]["online"], true);
    }

    ann.ok("user.block", json!({"username": "bk_bob"})).await;
    // Messages, both ways, by name and by conversation id: nothing stored.
    let (code, msg) = bob.err("message.send", json!({"to": "bk_ann", "text": "hi?"})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("forbidden", "you cannot message this user"));
    let (code, _) = bob.err("message.send", json!({"conversation": conv, "text": "hi?"})).await;
    assert_eq!(code, "forbidden");
    let (code, msg) = ann.err("message.send", json!({"to": "bk_bob", "text": "x"})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("forbidden", "you blocked this user; unblock them to message"));
    let h = ann.ok("message.history", json!({"with": "bk_bob"})).await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(1), "nothing stored: {h}");
    // Typing: not forwarded, either way (answered as any signal not forwarded).
    assert_eq!(bob.ok("typing.start", json!({"conversation": conv})).await["sent"], false);
    assert_eq!(bob.ok("typing.stop", json!({"conversation": conv})).await["sent"], false);
    assert_eq!(ann.ok("typing.start", json!({"conversation": conv})).await["sent"], false);
    ann.ok("ping", json!({})).await;
    bob.ok("ping", json!({})).await;
    let typing = |c: &mut Client| c.take_events().into_iter().filter(|e| e["event"] == "typing.start").count();
    assert_eq!((typing(&mut ann), typing(&mut bob)), (0, 0), "no typing across a block");
    // Follows ended both ways, and cannot start again.
    for (c, who) in [(&mut ann, "bk_ann"), (&mut bob, "bk_bob")] {
        let f = c.ok("follow.following", json!({"username": who})).await;
        assert_eq!(f["users"], json!([]), "{who} follows nobody now");
    }
    assert_eq!(bob.err("follow.add", json!({"username": "bk_ann"})).await.0, "forbidden");
    assert_eq!(ann.err("follow.add", json!({"username": "bk_bob"})).await.0, "forbidden");
    // Groups: bob cannot add ann, at creation or later; cy can.
    let (code, msg) = bob.err("group.create", json!({"title": "t", "members": ["bk_ann"]})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("forbidden", "`bk_ann` cannot be added to a group by you"));
    let g = bob.ok("group.create", json!({"title": "t", "members": ["bk_cy"]})).await;
    let gid = g["group"]["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(bob.err("group.add", json!({"conversation": gid, "members": ["bk_ann"]})).await.0, "forbidden");
    bob.ok("group.role", json!({"conversation": gid, "username": "bk_cy", "role": "admin"})).await;
    cy.ok("group.add", json!({"conversation": gid, "members": ["bk_ann"]})).await;
    // Presence: ann shows offline to bob, online to cy; bob's watch ended.
    let q = bob.ok("presence.query", json!({"usernames": ["bk_ann"]})).await;
    assert_eq!(q["users"][0], json!({"username": "bk_ann", "online": false, "last_seen": null}));
    assert_eq!(cy.ok("presence.query", json!({"usernames": ["bk_ann"]})).await["users"][0]["online"], true);
    let w = bob.ok("presence.watch", json!({"usernames": ["bk_ann"]})).await;
    assert_eq!(w["users"][0]["online"], false);
    drop(ann);
    let changed = cy.event("presence.changed").await;
    assert_eq!((changed["username"].as_str(), changed["online"].as_bool()), (Some("bk_ann"), Some(false)));
    // Both watchers' events come from the same delivery: bob got none.
    let events = bob.take_events();
    assert!(events.iter().all(|e| e["event"] != "presence.changed"), "{events:?}");
    bob.ok("ping", json!({})).await;
    assert!(bob.take_events().iter().all(|e| e["event"] != "presence.changed"));

    // Unblocked: messages flow again.
    let mut ann = Client::login(&server, "bk_ann").await;
    ann.ok("user.unblock", json!({"username": "bk_bob"})).await;
    bob.send_dm("bk_ann", "again").await;
    assert_eq!(ann.event("message.new").await["message"]["text"], "again");
    assert_eq!(ann.ok("typing.start", json!({"conversation": conv})).await["sent"], true);
    assert_eq!(bob.event("typing.start").await["from"], "bk_ann");
}

#[tokio::test]
async fn mutes_show_in_the_conversation_list_and_unread_still_counts() {
    let server = TestServer::start().await;
    let mut ann = Client::register(&server, "mt_ann").await;
    let mut bob = Client::register(&server, "mt_bob").await;
    Client::register(&server, "mt_cy").await;
    let m = bob.send_dm("mt_ann", "one").await;
    let conv = m["conversation_id"].as_str().unwrap().to_owned();
    let until = hubbub::model::now_ms() + 3_600_000;
    let d = ann.ok("conversation.mute", json!({"conversation": conv, "until": until})).await;
    assert_eq!(d, json!({"conversation_id": conv, "muted": true, "muted_until": until}));
    bob.send_dm("mt_ann", "two").await;
    let list = ann.ok("conversation.list", json!({})).await;
    let c = &list["conversations"][0];
    assert_eq!(
        (c["muted"].as_bool(), c["muted_until"].as_i64(), c["unread"].as_u64()),
        (Some(true), Some(until), Some(2))
    );
    let other = bob.ok("conversation.list", json!({})).await;
    assert_eq!(other["conversations"][0]["muted"], false, "mine only");
    // No end.
    let d = ann.ok("conversation.mute", json!({"conversation": conv})).await;
    assert_eq!((d["muted"].as_bool(), d["muted_until"].is_null()), (Some(true), true));
    let c = ann.ok("conversation.list", json!({})).await["conversations"][0].clone();
    assert_eq!((c["muted"].as_bool(), c["muted_until"].is_null()), (Some(true), true));
    let d = ann.ok("conversation.unmute", json!({"conversation": conv})).await;
    assert_eq!(d, json!({"conversation_id": conv, "muted": false, "muted_until": null}));
    assert_eq!(ann.ok("conversation.list", json!({})).await["conversations"][0]["muted"], false);
    // Refusals.
    let mut cy = Client::login(&server, "mt_cy").await;
    let table: &[(&str, Value, &str)] = &[
        ("conversation.mute", json!({"conversation": conv}), "not_found"),
        ("conversation.unmute", json!({"conversation": conv}), "not_found"),
        ("conversation.mute", json!({"conversation": "g1"}), "not_found"),
        ("conversation.mute", json!({"conversation": "junk"}), "not_found"),
        ("conversation.mute", json!({"conversation": conv, "until": 1}), "bad_request"),
        ("conversation.mute", json!({"conversation": conv, "until": "soon"}), "bad_request"),
        ("conversation.mute", json!({}), "bad_request"),
    ];
    for (kind, fields, code) in table {
        assert_eq!(cy.err(kind, fields.clone()).await.0, *code, "{kind} {fields}");
    }
}

#[tokio::test]
async fn reports_are_checked_limited_and_listed_for_operators() {
    let server = TestServer::start_with(|c| c.reports_per_hour = 3).await;
    let mut ann = Client::register(&server, "rp_ann").await;
    let mut bob = Client::register(&server, "rp_bob").await;
    let mut cy = Client::register(&server, "rp_cy").await;
    let m = bob.send_dm("rp_ann", "something nasty").await;
    let (conv, mid) = (m["conversation_id"].clone(), m["id"].clone());
    let cy_conv = cy.send_dm("rp_bob", "hi").await["conversation_id"].clone();
    let long = "x".repeat(1001);
    let table: Vec<(Value, &str)> = vec![
        (json!({"username": "rp_bob", "reason": " "}), "bad_request"),
        (json!({"username": "rp_bob", "reason": "r".repeat(101)}), "too_large"),
        (json!({"username": "rp_bob", "reason": "spam", "details": long}), "too_large"),
        (json!({"reason": "spam"}), "bad_request"),
        (json!({"username": "rp_bob", "conversation": conv, "message_id": mid, "reason": "spam"}), "bad_request"),
        (json!({"username": "rp_ann", "reason": "spam"}), "bad_request"),
        (json!({"username": "rp_nobody", "reason": "spam"}), "not_found"),
        (json!({"conversation": cy_conv, "message_id": mid, "reason": "spam"}), "not_found"),
        (json!({"conversation": conv, "message_id": "1", "reason": "spam"}), "not_found"),
        (json!({"conversation": conv, "message_id": "junk", "reason": "spam"}), "not_found"),
    ];
    for (fields, code) in &table {
        assert_eq!(ann.err("report.create", fields.clone()).await.0, *code, "{fields}");
    }
    let r1 = ann.ok("report.create", json!({"username": "rp_bob", "reason": "spam"})).await;
    let fields = json!({"conversation": conv, "message_id": mid, "reason": "abuse", "details": "see the text"});
    let r2 = ann.ok("report.create", fields.clone()).await;
    ann.ok("report.create", json!({"username": "rp_cy", "reason": "spam"})).await;
    assert_eq!(ann.err("report.create", fields).await.0, "rate_limited", "3 per hour");

    // Operators see them (newest first, with the message's text), resolve one.
    let out = admin(&server.dir, None, &["reports"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("3 report(s)\n"), "{text}");
    let r2_id = r2["report_id"].as_str().unwrap();
    let line = text.lines().find(|l| l.starts_with(r2_id)).expect("the message report is listed");
    assert!(line.contains("[open]") && line.contains("\"something nasty\"") && line.contains("by `rp_ann`"), "{line}");
    let r1_id = r1["report_id"].as_str().unwrap();
    let out = admin(&server.dir, None, &["report", "resolve", r1_id, "--note", "warned"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("resolved report {r1_id}\n")), "{}", stdout(&out));
    let open = stdout(&admin(&server.dir, None, &["reports", "--open"]).await);
    assert!(open.starts_with("2 open report(s)\n") && !open.contains(r1_id), "{open}");
    // Bad input: a clear error and a non-zero exit.
    let out = admin(&server.dir, None, &["report", "resolve", "12345"]).await;
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim(), "hubbub admin: no report with id 12345");
    let out = admin(&server.dir, None, &["report", "resolve", "x"]).await;
    assert!(!out.status.success() && stderr(&out).contains("invalid value"), "{}", stderr(&out));
}

#[tokio::test]
async fn admin_ban_refuses_login_and_tokens_and_unban_lets_them_back() {
    let server = TestServer::start().await;
    let bob = Client::register(&server, "bn_bob").await;
    let token = bob.access_token.clone();
    let out = admin(&server.dir, None, &["ban", "BN_BOB", "--reason", "spam"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("banned `bn_bob` (id "), "{text}");
    assert!(text.contains(": spam\nrevoked 1 session(s) and their refresh tokens\n"), "{text}");
    assert!(text.contains("no --redis given"), "{text}");
    assert_eq!(login_err(&server, "bn_bob").await, ("forbidden".into(), "this account is banned".into()));
    let mut c = Client::connect(&server).await;
    let (code, msg) = c.err("auth.token", json!({"token": token})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("forbidden", "this account is banned"));
    // Its refresh token was revoked by the ban, and the answer says why.
    let (code, msg) = c.err("auth.refresh", json!({"refresh_token": bob.refresh_token})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("forbidden", "this account is banned"));

    // Other users are untouched; bad input is refused.
    let mut ann = Client::register(&server, "bn_ann").await;
    ann.ok("ping", json!({})).await;
    // A refresh token of a session that ended without a ban stays `unauthorized`.
    let mut ann_out = Client::login(&server, "bn_ann").await;
    ann_out.ok("auth.logout", json!({})).await;
    assert_eq!(c.err("auth.refresh", json!({"refresh_token": ann_out.refresh_token})).await.0, "unauthorized");
    for args in [&["ban", "bn_nobody"][..], &["unban", "bn_nobody"], &["delete-user", "bn_nobody"]] {
        let out = admin(&server.dir, None, args).await;
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(stderr(&out).trim(), "hubbub admin: no user named `bn_nobody`");
    }
    if test_scylla().is_none() {
        let out = admin(&server.dir.join("elsewhere"), None, &["reports"]).await;
        assert!(!out.status.success() && stderr(&out).contains("no hubbub database at"), "{}", stderr(&out));
    }

    let out = admin(&server.dir, None, &["unban", "bn_bob"]).await;
    assert_eq!(stdout(&out), "unbanned `bn_bob`: they may log in again\n");
    Client::login(&server, "bn_bob").await;
    let out = admin(&server.dir, None, &["unban", "bn_bob"]).await;
    assert_eq!(stdout(&out), "`bn_bob` was not banned; nothing changed\n");
    // delete-user deletes.
    let out = admin(&server.dir, None, &["delete-user", "bn_bob"]).await;
    assert!(stdout(&out).starts_with("deleted `bn_bob`"), "{}", stdout(&out));
    assert_eq!(login_err(&server, "bn_bob").await.0, "unauthorized");
}

#[tokio::test]
async fn cluster_a_ban_closes_sockets_on_every_node_and_a_block_holds_through_another_node() {
    let Some(cl) = Cluster::start().await else { return };
    let url = cl.redis.url();
    let mut ann_a = Client::register(&cl.nodes[0], "cx_ann").await;
    let mut bob_b = Client::register(&cl.nodes[1], "cx_bob").await;
    let mut bob_c = Client::login(&cl.nodes[2], "cx_bob").await;
    // A block made on node A stops a message sent through node B.
    ann_a.ok("user.block", json!({"username": "cx_bob"})).await;
    assert_eq!(bob_b.err("message.send", json!({"to": "cx_ann", "text": "hi"})).await.0, "forbidden");
    ann_a.ok("user.unblock", json!({"username": "cx_bob"})).await;
    bob_b.send_dm("cx_ann", "hi").await;
    assert_eq!(ann_a.event("message.new").await["message"]["text"], "hi");

    // A ban run by the operator closes bob's sockets on nodes B and C.
    let out = admin(&cl.dir, Some(&url), &["ban", "cx_bob"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("closed every socket of `cx_bob` on every node (close code 4501)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(bob_b.ended().await, Ended::Close(4501));
    assert_eq!(bob_c.ended().await, Ended::Close(4501));
    ann_a.ok("ping", json!({})).await;
    let mut again = Client::connect(&cl.nodes[1]).await;
    let (code, msg) = again.err("auth.login", json!({"username": "cx_bob", "password": "password123"})).await;
    assert_eq!((code.as_str(), msg.as_str()), ("forbidden", "this account is banned"));
}

#[tokio::test]
async fn cluster_the_per_user_write_limit_holds_across_sockets_on_two_nodes() {
    // A burst of 5 and no refill: whichever node a write goes through, the
    // user has 5 in all (per-node buckets would allow 5 on each).
    let Some(cl) = Cluster::start_with_args(&["--user-writes-per-sec", "0", "--user-writes-burst", "5"]).await else {
        return;
    };
    Client::register(&cl.nodes[2], "rl_ann").await;
    let mut on_a = Client::register(&cl.nodes[0], "rl_bob").await;
    let mut on_b = Client::login(&cl.nodes[1], "rl_bob").await;
    for i in 0..5 {
        let c = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        c.send_dm("rl_ann", &format!("m{i}")).await;
    }
    for c in [&mut on_a, &mut on_b] {
        let (code, _) = c.err("message.send", json!({"to": "rl_ann", "text": "one too many"})).await;
        assert_eq!(code, "rate_limited");
    }
    // Another user's budget is their own.
    let mut cy = Client::register(&cl.nodes[1], "rl_cy").await;
    cy.send_dm("rl_ann", "hi").await;
}

#[tokio::test]
async fn cluster_the_report_limit_holds_across_nodes() {
    // 3 reports per hour in all, whichever node they go through (per-node
    // buckets would allow 3 on each).
    let Some(cl) = Cluster::start_with_args(&["--reports-per-hour", "3"]).await else { return };
    Client::register(&cl.nodes[2], "rx_bob").await;
    let mut on_a = Client::register(&cl.nodes[0], "rx_ann").await;
    let mut on_b = Client::login(&cl.nodes[1], "rx_ann").await;
    for i in 0..3 {
        let c = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        c.ok("report.create", json!({"username": "rx_bob", "reason": format!("spam {i}")})).await;
    }
    for c in [&mut on_a, &mut on_b] {
        let (code, msg) = c.err("report.create", json!({"username": "rx_bob", "reason": "again"})).await;
        assert_eq!((code.as_str(), msg.as_str()), ("rate_limited", "at most 3 reports per hour; try again later"));
    }
    // Another user's budget is their own.
    let mut cy = Client::register(&cl.nodes[1], "rx_cy").await;
    cy.ok("report.create", json!({"username": "rx_bob", "reason": "spam"})).await;
}
