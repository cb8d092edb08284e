//! Group conversations end to end over real sockets: creating, members and
//! roles, one message to many, the authorization matrix (a table), removed
//! members, succession, nonce retries, a group of the configured maximum
//! size, resume and sync, account deletion.

mod common;

use common::{Client, TestServer};
use serde_json::{Value, json};

/// A server where the group limits are not in the way unless a test asks.
async fn server(max_members: usize) -> TestServer {
    TestServer::start_with(|c| {
        c.groups_per_hour = 1000;
        c.max_group_members = max_members;
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await
}

/// Creates a group as `owner` with `members`; returns its conversation id.
async fn create(owner: &mut Client, title: &str, members: &[&str]) -> String {
    let data = owner.ok("group.create", json!({"title": title, "members": members})).await;
    assert_eq!(data["role"], "owner");
    data["group"]["conversation_id"].as_str().expect("conversation id").to_owned()
}

async fn say(c: &mut Client, conv: &str, text: &str) -> Value {
    c.ok("message.send", json!({"conversation": conv, "text": text})).await["message"].clone()
}

#[tokio::test]
async fn a_group_message_reaches_every_members_sockets_and_history_sync_and_list_cover_it() {
    let s = server(1000).await;
    let mut ann = Client::register(&s, "ann").await;
    let mut ann2 = Client::login(&s, "ann").await;
    let mut bea = Client::register(&s, "bea").await;
    let mut cid = Client::register(&s, "cid").await;
    let mut out = Client::register(&s, "outsider").await;

    let created =
        ann.ok("group.create", json!({"title": " Trip ", "topic": "July", "members": ["bea", "CID", "nobody"]})).await;
    let g = &created["group"];
    assert_eq!(
        (g["title"].as_str(), g["topic"].as_str(), g["member_count"].as_u64()),
        (Some("Trip"), Some("July"), Some(3))
    );
    assert_eq!(g["owner_id"], ann.user_id.as_str());
    let conv = g["conversation_id"].as_str().unwrap().to_owned();
    assert!(!conv.contains('-'), "group ids are not the direct form");
    for c in [&mut bea, &mut cid, &mut ann2] {
        let added = c.event("group.member_added").await;
        assert_eq!(added["group"], *g);
        assert_eq!(added["members"].as_array().unwrap().len(), 3);
        assert_eq!(added["by"]["username"], "ann");
    }

    let sent = say(&mut ann, &conv, "hello group").await;
    assert_eq!((sent["kind"].as_str(), sent["conversation_id"].as_str()), (Some("group"), Some(conv.as_str())));
    assert_eq!((sent["from"].as_str(), sent["to"].as_str()), (Some("ann"), Some("")));
    for c in [&mut bea, &mut cid, &mut ann2] {
        let got = c.event("message.new").await;
        assert_eq!(got["message"], sent);
    }
    ann.assert_no_events().await;
    out.assert_no_events().await;
    let back = say(&mut bea, &conv, "hi ann").await;
    assert_eq!(ann.event("message.new").await["message"], back);

    // History, sync and the conversation list, for every member.
    for c in [&mut ann, &mut bea, &mut cid] {
        let h = c.ok("message.history", json!({"conversation": conv})).await;
        let texts: Vec<_> = h["messages"].as_array().unwrap().iter().map(|m| m["text"].clone()).collect();
        assert_eq!(texts, [json!("hi ann"), json!("hello group")]);
        let synced = c.sync_all("0").await;
        assert_eq!(
            synced.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(),
            [sent["id"].clone(), back["id"].clone()]
        );
        let list = c.ok("conversation.list", json!({})).await;
        let entry = &list["conversations"][0];
        assert_eq!((entry["kind"].as_str(), entry["conversation_id"].as_str()), (Some("group"), Some(conv.as_str())));
        assert_eq!(
            (entry["group"]["title"].as_str(), entry["group"]["member_count"].as_u64()),
            (Some("Trip"), Some(3))
        );
        assert_eq!(entry["last_message"], back);
    }
    // A direct conversation sorts among groups by its last message.
    ann.send_dm("bea", "psst").await;
    let list = ann.ok("conversation.list", json!({})).await;
    let kinds: Vec<_> = list["conversations"].as_array().unwrap().iter().map(|c| c["kind"].clone()).collect();
    assert_eq!(kinds, [json!("direct"), json!("group")]);
    assert_eq!(list["conversations"][0]["with"]["username"], "bea");
    let page = ann.ok("conversation.list", json!({"limit": 1})).await;
    let next = ann.ok("conversation.list", json!({"limit": 1, "before": page["next_before"]})).await;
    assert_eq!(next["conversations"][0]["conversation_id"], conv.as_str());
    assert!(out.sync_all("0").await.is_empty());
    s.stop().await;
}

/// Who may do what. Each row is run by every role on a fresh group whose
/// members are: owner `o`, admin `a`, member `m` and target `t` (plain
/// members), a removed member `r`, and an outsider `x`.
#[tokio::test]
async fn authorization_matrix() {
    const OK: &str = "ok";
    const NF: &str = "not_found";
    const FB: &str = "forbidden";
    // (request, fields besides `conversation`, [owner, admin, member, removed, outsider])
    let table: Vec<(&str, Value, [&str; 5])> = vec![
        ("group.get", json!({}), [OK, OK, OK, NF, NF]),
        ("group.members", json!({}), [OK, OK, OK, NF, NF]),
        ("message.send", json!({"text": "hi"}), [OK, OK, OK, NF, NF]),
        ("message.history", json!({}), [OK, OK, OK, NF, NF]),
        ("group.update", json!({"title": "renamed"}), [OK, OK, FB, NF, NF]),
        ("group.add", json!({"members": ["mx_new"]}), [OK, OK, FB, NF, NF]),
        ("group.remove", json!({"username": "mx_t"}), [OK, OK, FB, NF, NF]),
        ("group.role", json!({"username": "mx_t", "role": "admin"}), [OK, FB, FB, NF, NF]),
        ("group.leave", json!({}), [OK, OK, OK, NF, NF]),
    ];
    let s = server(1000).await;
    let names = ["mx_o", "mx_a", "mx_m", "mx_r", "mx_x", "mx_t", "mx_new"];
    let mut c = Vec::new();
    for n in names {
        c.push(Client::register(&s, n).await);
    }
    let nowhere = {
        // A group that existed: created and ended by its only member.
        let g = create(&mut c[4], "gone", &[]).await;
        c[4].ok("group.leave", json!({"conversation": g})).await;
        g
    };
    for (kind, fields, expect) in &table {
        for (actor, want) in expect.iter().enumerate() {
            let conv = create(&mut c[0], "matrix", &["mx_a", "mx_m", "mx_r", "mx_t"]).await;
            c[0].ok("group.role", json!({"conversation": conv, "username": "mx_a", "role": "admin"})).await;
            c[0].ok("group.remove", json!({"conversation": conv, "username": "mx_r"})).await;
            let mut req = fields.clone();
            req["conversation"] = json!(conv);
            let r = c[actor].request(kind, req).await;
            let got = if r["type"] == "ok" { OK } else { r["code"].as_str().unwrap_or("?") };
            assert_eq!(got, *want, "{kind} by {}: {r}", names[actor]);
            // The same answer for a group that does not exist (any more).
            let mut req = fields.clone();
            req["conversation"] = json!(nowhere);
            let (code, msg) = c[actor].err(kind, req).await;
            assert_eq!((code.as_str(), msg.as_str()), (NF, "no such group"), "{kind} on an ended group");
            if *want == NF {
                assert_eq!(r["message"], "no such group", "{kind}: same error as for no group");
            }
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn requests_are_validated_and_roles_are_bounded() {
    let s = TestServer::start_with(|c| {
        c.groups_per_hour = 3;
        c.max_group_members = 3;
        c.max_group_title_chars = 10;
    })
    .await;
    let mut o = Client::register(&s, "v_own").await;
    let mut a = Client::register(&s, "v_adm").await;
    let mut b = Client::register(&s, "v_adm2").await;
    Client::register(&s, "v_more").await;
    let bad = |t: &str| json!({"title": t});
    assert_eq!(o.err("group.create", bad("   ")).await.0, "bad_request");
    assert_eq!(o.err("group.create", bad("eleven chars")).await.0, "too_large");
    assert_eq!(o.err("group.create", bad("a\u{202e}b")).await.0, "bad_request");
    let full = json!({"title": "t", "members": ["v_adm", "v_adm2", "v_more"]});
    assert_eq!(o.err("group.create", full).await.0, "limit_exceeded");
    let conv = create(&mut o, "ok", &["v_adm", "v_adm2"]).await;
    // The member limit counts everyone: the fourth is refused, nobody added.
    let (code, _) = o.err("group.add", json!({"conversation": conv, "members": ["v_more"]})).await;
    assert_eq!(code, "limit_exceeded");
    let count = o.ok("group.get", json!({"conversation": conv})).await["group"]["member_count"].clone();
    assert_eq!(count, 3);
    for role in ["owner", "king", ""] {
        let req = json!({"conversation": conv, "username": "v_adm", "role": role});
        assert_eq!(o.err("group.role", req).await.0, "bad_request", "{role}");
    }
    let me = json!({"conversation": conv, "username": "v_own", "role": "admin"});
    assert_eq!(o.err("group.role", me).await.0, "bad_request");
    for u in ["v_adm", "v_adm2"] {
        o.ok("group.role", json!({"conversation": conv, "username": u, "role": "admin"})).await;
    }
    // Admins do not remove admins or the owner; nobody removes themself.
    let rm = |u: &str| json!({"conversation": conv, "username": u});
    assert_eq!(a.err("group.remove", rm("v_adm2")).await.0, "forbidden");
    assert_eq!(a.err("group.remove", rm("v_own")).await.0, "forbidden");
    assert_eq!(a.err("group.remove", rm("v_adm")).await.0, "bad_request");
    assert_eq!(a.err("group.remove", rm("v_more")).await.0, "not_found");
    assert_eq!(o.err("group.update", json!({"conversation": conv})).await.0, "bad_request");
    let both = json!({"conversation": conv, "to": "v_adm", "text": "x"});
    assert_eq!(b.err("message.send", both).await.0, "bad_request");
    assert_eq!(b.err("message.send", json!({"conversation": "12-x", "text": "x"})).await.0, "not_found");
    // Someone else's direct conversation is not mine to read.
    let (x, y): (u64, u64) = (a.user_id.parse().unwrap(), o.user_id.parse().unwrap());
    let theirs = format!("{}-{}", x.min(y), x.max(y));
    assert_eq!(b.err("message.history", json!({"conversation": theirs})).await.0, "not_found");
    // Three groups an hour: the fourth is rate limited.
    create(&mut o, "two", &[]).await;
    create(&mut o, "three", &[]).await;
    assert_eq!(o.err("group.create", bad("four")).await.0, "rate_limited");
    s.stop().await;
}

#[tokio::test]
async fn a_removed_member_is_told_and_reads_nothing_of_the_group_any_more() {
    let s = server(1000).await;
    let mut o = Client::register(&s, "rm_own").await;
    let mut m = Client::register(&s, "rm_mem").await;
    let mut m2 = Client::login(&s, "rm_mem").await;
    let conv = create(&mut o, "club", &["rm_mem"]).await;
    m.event("group.member_added").await;
    m2.event("group.member_added").await;
    say(&mut o, &conv, "before").await;
    m.event("message.new").await;
    m2.event("message.new").await;
    let gone = o.ok("group.remove", json!({"conversation": conv, "username": "rm_mem"})).await;
    assert_eq!((gone["user"]["username"].as_str(), gone["ended"].as_bool()), (Some("rm_mem"), Some(false)));
    for c in [&mut m, &mut m2] {
        let ev = c.event("group.member_removed").await;
        assert_eq!(
            (ev["conversation_id"].as_str(), ev["by"]["username"].as_str()),
            (Some(conv.as_str()), Some("rm_own"))
        );
    }
    say(&mut o, &conv, "after").await;
    // Nothing new reaches them, and what was sent before is gone for them too.
    m.assert_no_events().await;
    let (code, _) = m.err("message.history", json!({"conversation": conv})).await;
    assert_eq!(code, "not_found");
    assert!(m.sync_all("0").await.is_empty());
    let list = m.ok("conversation.list", json!({})).await;
    assert!(list["conversations"].as_array().unwrap().is_empty());
    // Added again, they read the whole history (membership, not a copy).
    o.ok("group.add", json!({"conversation": conv, "members": ["rm_mem"]})).await;
    let h = m.ok("message.history", json!({"conversation": conv})).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn ownership_passes_to_the_oldest_admin_and_the_last_member_ends_the_group() {
    let s = server(1000).await;
    let mut o = Client::register(&s, "su_own").await;
    let mut old = Client::register(&s, "su_old").await;
    let mut adm = Client::register(&s, "su_adm").await;
    let conv = create(&mut o, "succession", &["su_old"]).await;
    o.ok("group.add", json!({"conversation": conv, "members": ["su_adm"]})).await;
    o.ok("group.role", json!({"conversation": conv, "username": "su_adm", "role": "admin"})).await;
    let left = o.ok("group.leave", json!({"conversation": conv})).await;
    assert_eq!(left["new_owner_id"], adm.user_id.as_str());
    let ev = old.event("group.member_removed").await;
    assert_eq!(
        (ev["user"]["username"].as_str(), ev["new_owner_id"].as_str()),
        (Some("su_own"), Some(adm.user_id.as_str()))
    );
    let got = adm.ok("group.get", json!({"conversation": conv})).await;
    assert_eq!((got["role"].as_str(), got["group"]["owner_id"].as_str()), (Some("owner"), Some(adm.user_id.as_str())));
    adm.ok("group.leave", json!({"conversation": conv})).await;
    assert_eq!(old.ok("group.get", json!({"conversation": conv})).await["role"], "owner");
    let last = old.ok("group.leave", json!({"conversation": conv})).await;
    assert_eq!(last["ended"], true);
    for c in [&mut o, &mut old, &mut adm] {
        assert_eq!(c.err("group.get", json!({"conversation": conv})).await.0, "not_found");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_nonce_retry_returns_the_original_and_delivers_it_again() {
    let s = server(1000).await;
    let mut o = Client::register(&s, "nn_own").await;
    let mut m = Client::register(&s, "nn_mem").await;
    let conv = create(&mut o, "nonces", &["nn_mem"]).await;
    let req = json!({"conversation": conv, "text": "once", "nonce": "n-1"});
    let first = o.ok("message.send", req.clone()).await["message"].clone();
    let again = o.ok("message.send", req).await["message"].clone();
    assert_eq!(first, again);
    assert_eq!(m.event("message.new").await["message"], first);
    assert_eq!(m.event("message.new").await["message"], first, "pushed again: clients de-duplicate by id");
    let h = m.ok("message.history", json!({"conversation": conv})).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_group_of_the_configured_maximum_size_gets_every_message() {
    const MAX: usize = 40;
    let s = server(MAX).await;
    let mut owner = Client::register(&s, "big_own").await;
    let mut members = Vec::new();
    let mut names = Vec::new();
    for i in 1..MAX {
        let n = format!("big_{i}");
        members.push(Client::register(&s, &n).await);
        names.push(n);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let conv = create(&mut owner, "big", &refs).await;
    let g = owner.ok("group.get", json!({"conversation": conv})).await;
    assert_eq!(g["group"]["member_count"], MAX);
    Client::register(&s, "big_extra").await;
    let (code, _) = owner.err("group.add", json!({"conversation": conv, "members": ["big_extra"]})).await;
    assert_eq!(code, "limit_exceeded");
    let sent = say(&mut owner, &conv, "to all forty").await;
    for c in &mut members {
        assert_eq!(c.event("message.new").await["message"], sent);
    }
    let page = owner.ok("group.members", json!({"conversation": conv, "limit": 15})).await;
    let mut seen = page["members"].as_array().unwrap().len();
    let mut after = page["next_after"].clone();
    while !after.is_null() {
        let p = owner.ok("group.members", json!({"conversation": conv, "limit": 15, "after": after})).await;
        seen += p["members"].as_array().unwrap().len();
        after = p["next_after"].clone();
    }
    assert_eq!(seen, MAX);
    s.stop().await;
}

#[tokio::test]
async fn resume_recovers_group_events_missed_while_offline() {
    let s = server(1000).await;
    let mut o = Client::register(&s, "re_own").await;
    let mut m = Client::register(&s, "re_mem").await;
    let conv = create(&mut o, "resume", &["re_mem"]).await;
    let added = m.next_event().await;
    assert_eq!(added["event"], "group.member_added");
    let pos = added["pos"].clone();
    let token = m.access_token.clone();
    drop(m);
    let a = say(&mut o, &conv, "while you were out").await;
    o.ok("group.update", json!({"conversation": conv, "topic": "new topic"})).await;
    let (mut back, data) = Client::resume(&s, &token, pos).await;
    assert_eq!(data["recovered"], true);
    assert_eq!(back.event("message.new").await["message"], a);
    assert_eq!(back.event("group.updated").await["group"]["topic"], "new topic");
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_accounts_group_messages_stay_and_show_no_username() {
    let s = server(1000).await;
    let mut o = Client::register(&s, "del_own").await;
    let mut m = Client::register(&s, "del_mem").await;
    let conv = create(&mut o, "memories", &["del_mem"]).await;
    say(&mut o, &conv, "I was here").await;
    o.ok("account.delete", json!({"password": "password123"})).await;
    // The remaining member is told at once: the owner left, they own it now.
    let ev = m.event("group.member_removed").await;
    assert_eq!(
        (ev["conversation_id"].as_str(), ev["user"]["username"].as_str()),
        (Some(conv.as_str()), Some("del_own"))
    );
    assert_eq!((ev["new_owner_id"].as_str(), ev["ended"].as_bool()), (Some(m.user_id.as_str()), Some(false)));
    assert_eq!(ev["group"]["member_count"], 1);
    let h = m.ok("message.history", json!({"conversation": conv})).await;
    let msg = &h["messages"][0];
    assert_eq!(
        (msg["text"].as_str(), msg["from"].as_str(), msg["from_deleted"].as_bool()),
        (Some("I was here"), Some(""), Some(true))
    );
    let g = m.ok("group.get", json!({"conversation": conv})).await;
    assert_eq!((g["role"].as_str(), g["group"]["member_count"].as_u64()), (Some("owner"), Some(1)));
    // Someone registering the freed name is not shown as the sender.
    Client::register(&s, "del_own").await;
    let h = m.ok("message.history", json!({"conversation": conv})).await;
    assert_eq!(h["messages"][0]["from"], "");
    s.stop().await;
}
