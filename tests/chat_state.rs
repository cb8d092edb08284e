//! Chat state over the socket (issue 15): read pointers and receipts,
//! unread counts, the change feed, typing; the authorization matrix as a
//! table; catch-up of a device that goes offline at random points; typing
//! and receipts across a 3-node Redis cluster.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::cluster::Cluster;
use common::{Client, Rng, TestServer};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await
}

fn conv_of(m: &Value) -> String {
    m["conversation_id"].as_str().expect("conversation_id").to_owned()
}

/// Every request kind of this area, by who asks about which conversation:
/// the code each must get (`ok` for success). A non-member gets the same
/// `not_found` (same message) for an existing and a missing conversation.
#[tokio::test]
async fn authorization_matrix() {
    let s = server().await;
    let mut ann = Client::register(&s, "mx_ann").await;
    let mut bob = Client::register(&s, "mx_bob").await;
    let mut cy = Client::register(&s, "mx_cy").await;
    let m = bob.send_dm("mx_ann", "hello").await;
    let conv = conv_of(&m);
    let msg = m["id"].as_str().unwrap().to_owned();
    let (lo, hi) = conv.split_once('-').unwrap();
    let missing = format!("{lo}-{}", hi.parse::<u64>().unwrap() + 1_000_000);
    let swapped = format!("{hi}-{lo}");
    // (who, kind, conversation, expected code)
    let table: Vec<(&str, &str, &str, &str)> = vec![
        ("member", "conversation.read", &conv, "ok"),
        ("member", "typing.start", &conv, "ok"),
        ("member", "typing.stop", &conv, "ok"),
        ("outsider", "conversation.read", &conv, "not_found"),
        ("outsider", "typing.start", &conv, "not_found"),
        ("outsider", "typing.stop", &conv, "not_found"),
        ("member", "conversation.read", &missing, "not_found"),
        ("member", "typing.start", &missing, "not_found"),
        ("member", "typing.stop", &missing, "not_found"),
        ("member", "conversation.read", &swapped, "not_found"),
        ("member", "typing.start", "not-an-id", "not_found"),
        ("anonymous", "conversation.read", &conv, "unauthorized"),
        ("anonymous", "typing.start", &conv, "unauthorized"),
        ("anonymous", "change.sync", "", "unauthorized"),
        ("anonymous", "settings.get", "", "unauthorized"),
    ];
    let mut anon = Client::connect(&s).await;
    let mut not_found_messages = BTreeSet::new();
    for (who, kind, c, want) in table {
        let client = match who {
            "member" => &mut ann,
            "outsider" => &mut cy,
            _ => &mut anon,
        };
        let fields = if c.is_empty() { json!({}) } else { json!({"conversation": c, "message_id": msg}) };
        let r = client.request(kind, fields).await;
        let got = if r["type"] == "ok" { "ok" } else { r["code"].as_str().unwrap_or("?") };
        assert_eq!(got, want, "{who} {kind} {c}: {r}");
        if want == "not_found" && kind == "conversation.read" {
            not_found_messages.insert(r["message"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(not_found_messages.len(), 1, "one error for all: {not_found_messages:?}");
    // A message of another conversation is not_found too (with its own text).
    let other = cy.send_dm("mx_bob", "elsewhere").await;
    let (code, _) = ann.err("conversation.read", json!({"conversation": conv, "message_id": other["id"]})).await;
    assert_eq!(code, "not_found");
    s.stop().await;
}

#[tokio::test]
async fn read_pointers_move_forward_and_reach_my_devices_and_the_sender() {
    let s = server().await;
    let mut phone = Client::register(&s, "rp_ann").await;
    let mut laptop = Client::login(&s, "rp_ann").await;
    let mut bob = Client::register(&s, "rp_bob").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(bob.send_dm("rp_ann", &format!("m{i}")).await);
    }
    let conv = conv_of(&sent[0]);
    for dev in [&mut phone, &mut laptop] {
        for _ in 0..3 {
            dev.event("message.new").await;
        }
    }
    let list = phone.ok("conversation.list", json!({})).await;
    assert_eq!(list["conversations"][0]["unread"], 3);
    assert_eq!(list["conversations"][0]["unread_capped"], false);
    assert_eq!(list["conversations"][0]["read_up_to"], Value::Null);
    assert_eq!((list["unread_total"].clone(), list["unread_total_capped"].clone()), (json!(3), json!(false)));

    let r = phone.ok("conversation.read", json!({"conversation": conv, "message_id": sent[1]["id"]})).await;
    assert_eq!(r, json!({"conversation_id": conv, "read_up_to": sent[1]["id"], "moved": true}));
    let mine = laptop.event("conversation.read").await;
    assert_eq!((mine["conversation_id"].clone(), mine["read_up_to"].clone()), (json!(conv), sent[1]["id"].clone()));
    let receipt = bob.event("message.read").await;
    assert_eq!(receipt["by"], "rp_ann");
    assert_eq!(
        (receipt["conversation_id"].clone(), receipt["message_id"].clone()),
        (json!(conv), sent[1]["id"].clone())
    );
    // Backwards and repeated: a no-op answered with the stored pointer.
    for back in [&sent[0], &sent[1]] {
        let r = laptop.ok("conversation.read", json!({"conversation": conv, "message_id": back["id"]})).await;
        assert_eq!((r["read_up_to"].clone(), r["moved"].clone()), (sent[1]["id"].clone(), json!(false)));
    }
    phone.assert_no_events().await;
    bob.assert_no_events().await;
    let list = laptop.ok("conversation.list", json!({})).await;
    assert_eq!(list["conversations"][0]["unread"], 1);
    assert_eq!(list["conversations"][0]["read_up_to"], sent[1]["id"]);
    // Bob's own list: his messages are not unread for him.
    let theirs = bob.ok("conversation.list", json!({})).await;
    assert_eq!(theirs["conversations"][0]["unread"], 0);
    s.stop().await;
}

#[tokio::test]
async fn receipts_follow_the_setting_both_ways() {
    let s = server().await;
    let mut ann = Client::register(&s, "rc_ann").await;
    let mut bob = Client::register(&s, "rc_bob").await;
    assert_eq!(bob.ok("settings.get", json!({})).await, json!({"read_receipts": true, "push_preview": "full"}));
    assert_eq!(
        bob.ok("settings.update", json!({"read_receipts": false})).await,
        json!({"read_receipts": false, "push_preview": "full"})
    );
    assert_eq!(
        bob.ok("settings.update", json!({})).await,
        json!({"read_receipts": false, "push_preview": "full"}),
        "absent keeps"
    );
    let to_ann = bob.send_dm("rc_ann", "one").await;
    let to_bob = ann.send_dm("rc_bob", "two").await;
    let conv = conv_of(&to_ann);
    ann.event("message.new").await;
    bob.event("message.new").await;
    // Bob sends none, and (reciprocity) gets none.
    ann.ok("conversation.read", json!({"conversation": conv, "message_id": to_ann["id"]})).await;
    bob.ok("conversation.read", json!({"conversation": conv, "message_id": to_bob["id"]})).await;
    ann.assert_no_events().await;
    bob.assert_no_events().await;
    bob.ok("settings.update", json!({"read_receipts": true})).await;
    let again = bob.send_dm("rc_ann", "three").await;
    ann.event("message.new").await;
    ann.ok("conversation.read", json!({"conversation": conv, "message_id": again["id"]})).await;
    assert_eq!(bob.event("message.read").await["message_id"], again["id"]);
    s.stop().await;
}

#[tokio::test]
async fn typing_reaches_the_other_member_once_per_interval_and_never_has_a_position() {
    let s = server().await;
    let mut ann = Client::register(&s, "ty_ann").await;
    let mut ann2 = Client::login(&s, "ty_ann").await;
    let mut bob = Client::register(&s, "ty_bob").await;
    let m = ann.send_dm("ty_bob", "hi").await;
    bob.event("message.new").await;
    ann2.event("message.new").await;
    let conv = conv_of(&m);
    assert_eq!(ann.ok("typing.start", json!({"conversation": conv})).await, json!({"sent": true}));
    let frame = loop {
        let e = bob.next_event().await;
        if e["event"] == "typing.start" {
            break e;
        }
    };
    assert_eq!(frame["data"], json!({"conversation_id": conv, "from": "ty_ann", "expires_in_ms": 6000}));
    assert!(frame.get("pos").is_none(), "ephemeral: no inbox position: {frame}");
    // Within the interval: answered, not forwarded.
    assert_eq!(ann.ok("typing.start", json!({"conversation": conv})).await, json!({"sent": false}));
    bob.assert_no_events().await;
    assert_eq!(ann.ok("typing.stop", json!({"conversation": conv})).await, json!({"sent": true}));
    assert_eq!(bob.event("typing.stop").await, json!({"conversation_id": conv, "from": "ty_ann"}));
    assert_eq!(ann.ok("typing.stop", json!({"conversation": conv})).await, json!({"sent": false}));
    // My own other device gets no typing of mine.
    ann2.assert_no_events().await;
    bob.assert_no_events().await;
    s.stop().await;
}

#[tokio::test]
async fn resume_replays_read_pointers_but_never_typing() {
    let s = server().await;
    let mut ann = Client::register(&s, "rs_ann").await;
    let mut bob = Client::register(&s, "rs_bob").await;
    let first = ann.send_dm("rs_bob", "one").await;
    let e = loop {
        let e = bob.next_event().await;
        if e["event"] == "message.new" {
            break e;
        }
    };
    let pos = e["pos"].clone();
    let token = bob.access_token.clone();
    drop(bob);
    let conv = conv_of(&first);
    let mut bob_laptop = Client::login(&s, "rs_bob").await;
    bob_laptop.ok("conversation.read", json!({"conversation": conv, "message_id": first["id"]})).await;
    ann.event("message.read").await;
    // A fresh start for typing (another socket of ann), then a message.
    let mut ann2 = Client::login(&s, "rs_ann").await;
    ann2.ok("typing.start", json!({"conversation": conv})).await;
    let second = ann.send_dm("rs_bob", "two").await;
    let (mut bob, data) = Client::resume(&s, &token, pos).await;
    assert_eq!(data["recovered"], true);
    let a = bob.next_event().await;
    let b = bob.next_event().await;
    assert_eq!(
        (a["event"].clone(), a["data"]["read_up_to"].clone()),
        (json!("conversation.read"), first["id"].clone())
    );
    assert_eq!((b["event"].clone(), b["data"]["message"]["id"].clone()), (json!("message.new"), second["id"].clone()));
    bob.assert_no_events().await;
    s.stop().await;
}

#[tokio::test]
async fn change_sync_returns_pointers_and_receipts_once_each() {
    let s = server().await;
    let mut ann = Client::register(&s, "cs_ann").await;
    let mut bob = Client::register(&s, "cs_bob").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = bob.send_dm("cs_ann", &format!("m{i}")).await;
        ann.ok("conversation.read", json!({"conversation": conv_of(&m), "message_id": m["id"]})).await;
        ids.push(m["id"].clone());
    }
    let mut after: Option<String> = None;
    let mut got = Vec::new();
    for _ in 0..20 {
        let mut req = json!({"limit": 2});
        if let Some(a) = &after {
            req["after"] = json!(a);
        }
        let page = ann.ok("change.sync", req).await;
        for c in page["changes"].as_array().unwrap() {
            if !got.iter().any(|g: &Value| g["change_id"] == c["change_id"]) {
                got.push(c.clone());
            }
        }
        after = Some(page["next"].as_str().unwrap().to_owned());
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(got.iter().map(|c| c["message_id"].clone()).collect::<Vec<_>>(), ids);
    assert!(got.iter().all(|c| c["kind"] == "read" && c["by"] == "cs_ann"));
    let receipts = bob.ok("change.sync", json!({})).await;
    let receipts = receipts["changes"].as_array().unwrap();
    assert_eq!(receipts.len(), 5);
    assert!(receipts.iter().all(|c| c["kind"] == "receipt" && c["by"] == "cs_ann"));
    s.stop().await;
}

/// A client's view of its chat state, built from what it received.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
struct View {
    /// Messages from others: conversation -> ids.
    theirs: BTreeMap<String, BTreeSet<u64>>,
    /// My read pointer per conversation.
    mine: BTreeMap<String, u64>,
    /// The other member's read pointer (receipts) per conversation.
    peer: BTreeMap<String, u64>,
    /// Every message as it reads: id -> (text, edited_at, deleted, reply_to).
    texts: BTreeMap<u64, Shown>,
}

/// A message as a client shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    text: String,
    edited_at: Option<String>,
    deleted: bool,
    reply_to: Option<u64>,
}

impl Shown {
    fn of(m: &Value) -> Shown {
        Shown {
            text: m["text"].as_str().expect("text").to_owned(),
            edited_at: m["edited_at"].as_str().map(str::to_owned),
            deleted: m["deleted"] == true,
            reply_to: m["reply_to"]["message_id"].as_str().map(|r| r.parse().expect("decimal id")),
        }
    }
}

fn id(v: &Value) -> u64 {
    v.as_str().expect("id string").parse().expect("decimal id")
}

impl View {
    fn message(&mut self, me: &str, m: &Value) {
        if m["from"] != me {
            self.theirs.entry(conv_of(m)).or_default().insert(id(&m["id"]));
        }
        self.shown(m);
    }
    /// The client rule of protocol.md: a tombstone is final; otherwise the
    /// view with the later (or equal) `edited_at` wins.
    fn shown(&mut self, m: &Value) {
        let new = Shown::of(m);
        match self.texts.get_mut(&id(&m["id"])) {
            None => {
                self.texts.insert(id(&m["id"]), new);
            }
            Some(old) if !old.deleted && (new.deleted || new.edited_at >= old.edited_at) => *old = new,
            Some(_) => {}
        }
    }
    fn read(&mut self, map: bool, conv: String, at: u64) {
        let e = if map { self.mine.entry(conv) } else { self.peer.entry(conv) }.or_insert(0);
        *e = (*e).max(at);
    }
    fn event(&mut self, me: &str, e: &Value) {
        let d = &e["data"];
        match e["event"].as_str() {
            Some("message.new") => self.message(me, &d["message"]),
            Some("message.updated" | "message.deleted") => self.shown(&d["message"]),
            Some("conversation.read") => self.read(true, conv_of(d), id(&d["read_up_to"])),
            Some("message.read") => self.read(false, conv_of(d), id(&d["message_id"])),
            _ => {}
        }
    }
    fn unread(&self, conv: &str) -> usize {
        let p = self.mine.get(conv).copied().unwrap_or(0);
        self.theirs.get(conv).map_or(0, |s| s.iter().filter(|i| **i > p).count())
    }
}

/// A device: its socket (when online), its view, and its catch-up cursors.
struct Device {
    client: Option<Client>,
    view: View,
    pos: Value,
    msg_since: String,
    change_after: Option<String>,
}

impl Device {
    /// Takes in every event that reached the socket so far (a ping round
    /// trip: the server queued them before the ping's reply).
    async fn absorb(&mut self, me: &str) {
        let Some(c) = self.client.as_mut() else { return };
        c.ok("ping", json!({})).await;
        for e in c.take_events() {
            if e.get("pos").is_some() {
                self.pos = e["pos"].clone();
            }
            self.view.event(me, &e);
        }
    }

    /// Reads in `conv` up to a message this device knows, as a user would.
    async fn read_some(&mut self, me: &str, rng: &mut Rng) {
        self.absorb(me).await;
        let convs: Vec<_> = self.view.theirs.keys().cloned().collect();
        if convs.is_empty() {
            return;
        }
        let conv = convs[rng.below(convs.len())].clone();
        let ids: Vec<u64> = self.view.theirs[&conv].iter().copied().collect();
        let at = ids[rng.below(ids.len())];
        let c = self.client.as_mut().expect("online");
        let r = c.ok("conversation.read", json!({"conversation": conv, "message_id": at.to_string()})).await;
        self.view.read(true, conv, id(&r["read_up_to"]));
    }

    /// Catch-up without a usable position: `message.sync` and `change.sync`
    /// from this device's cursors.
    async fn sync(&mut self, me: &str) {
        let c = self.client.as_mut().expect("online");
        for _ in 0..100 {
            let page = c.ok("message.sync", json!({"since": self.msg_since, "limit": 50})).await;
            for m in page["messages"].as_array().unwrap() {
                self.view.message(me, m);
            }
            self.msg_since = page["next"].as_str().unwrap().to_owned();
            if page["more"] == false {
                break;
            }
        }
        for _ in 0..100 {
            let mut req = json!({"limit": 50});
            if let Some(a) = &self.change_after {
                req["after"] = json!(a);
            }
            let page = c.ok("change.sync", req).await;
            for ch in page["changes"].as_array().unwrap() {
                match ch["kind"].as_str() {
                    Some("read") => self.view.read(true, conv_of(ch), id(&ch["message_id"])),
                    Some("receipt") => self.view.read(false, conv_of(ch), id(&ch["message_id"])),
                    Some("edit" | "delete") => self.view.shown(&ch["message"]),
                    _ => {}
                }
            }
            self.change_after = Some(page["next"].as_str().unwrap().to_owned());
            if page["more"] == false {
                break;
            }
        }
    }
}

/// A peer edits, deletes or replies to the last message it sent me
/// (refused when that one is deleted: nothing changes then).
async fn lifecycle_step(peer: &mut Client, last: &Option<Value>, what: usize, step: usize) -> bool {
    let Some(m) = last else { return false };
    let (conv, msg) = (conv_of(m), m["id"].clone());
    let r = match what {
        0 => {
            peer.request("message.edit", json!({"conversation": conv, "message_id": msg, "text": format!("e{step}")}))
                .await
        }
        1 => peer.request("message.delete", json!({"conversation": conv, "message_id": msg})).await,
        _ => {
            peer.request("message.send", json!({"conversation": conv, "text": format!("r{step}"), "reply_to": msg}))
                .await
        }
    };
    assert!(r["type"] == "ok" || r["code"] == "conflict", "{r}");
    r["type"] == "ok"
}

/// How a run went: (times offline, resumes that recovered, syncs, edits/deletes/replies).
async fn run_catch_up(seed: u64) -> (usize, usize, usize, usize) {
    let mut stats = (0, 0, 0, 0);
    let s = server().await;
    let me = format!("cu{seed}_ann");
    let peers = [format!("cu{seed}_bob"), format!("cu{seed}_cy")];
    let first = Client::register(&s, &me).await;
    let token = first.access_token.clone();
    let mut online = Device {
        client: Some(first),
        view: View::default(),
        pos: Value::Null,
        msg_since: "0".into(),
        change_after: None,
    };
    let second = Client::login(&s, &me).await;
    let mut roaming = Device {
        client: Some(second),
        view: View::default(),
        pos: Value::Null,
        msg_since: "0".into(),
        change_after: None,
    };
    let mut others = Vec::new();
    for p in &peers {
        others.push(Client::register(&s, p).await);
    }
    let mut rng = Rng(seed);
    let mut last_sent: Vec<Option<Value>> = vec![None, None];
    for step in 0..50 {
        match rng.below(13) {
            0..=3 => {
                let k = rng.below(2);
                let m = others[k].send_dm(&me, &format!("s{step}")).await;
                last_sent[k] = Some(m);
            }
            4..=5 => online.read_some(&me, &mut rng).await,
            6 if roaming.client.is_some() => roaming.read_some(&me, &mut rng).await,
            7 => {
                // A peer reads its conversation with me up to the end (a receipt for me).
                let k = rng.below(2);
                if let Some(m) = &last_sent[k] {
                    let r = json!({"conversation": conv_of(m), "message_id": m["id"]});
                    others[k].ok("conversation.read", r).await;
                }
            }
            8 if roaming.client.is_some() => {
                roaming.absorb(&me).await;
                roaming.client = None; // offline: the socket is dropped
                stats.0 += 1;
            }
            10..=12 => {
                let k = rng.below(2);
                let what = rng.below(3);
                if lifecycle_step(&mut others[k], &last_sent[k], what, step).await {
                    stats.3 += 1;
                }
            }
            _ if roaming.client.is_none() => {
                if rng.below(2) == 0 && !roaming.pos.is_null() {
                    let (c, data) = Client::resume(&s, &token, roaming.pos.clone()).await;
                    roaming.client = Some(c);
                    if data["recovered"] == true {
                        stats.1 += 1;
                    } else {
                        roaming.sync(&me).await;
                        stats.2 += 1;
                    }
                } else {
                    roaming.client = Some(Client::with_token(&s, &token).await);
                    roaming.sync(&me).await;
                    stats.2 += 1;
                }
            }
            _ => {}
        }
        online.absorb(&me).await;
    }
    if roaming.client.is_none() {
        roaming.client = Some(Client::resume(&s, &token, roaming.pos.clone()).await.0);
        roaming.sync(&me).await;
    }
    // Every request above was answered after its events were queued: a
    // ping round trip brings each device's remaining events in.
    for d in [&mut online, &mut roaming] {
        d.absorb(&me).await;
    }
    assert_eq!(online.view, roaming.view, "seed {seed}: the device that went offline ends in the same state");
    assert!(!online.view.mine.is_empty() && !online.view.peer.is_empty(), "seed {seed}: {:?}", online.view);
    // And both agree with the server's conversation list.
    let list = online.client.as_mut().unwrap().ok("conversation.list", json!({})).await;
    for c in list["conversations"].as_array().unwrap() {
        let conv = conv_of(c);
        let pointer = c["read_up_to"].as_str().map(|p| p.parse::<u64>().unwrap());
        assert_eq!(pointer, online.view.mine.get(&conv).copied(), "seed {seed}: {c}");
        assert_eq!(c["unread"].as_u64().unwrap() as usize, online.view.unread(&conv), "seed {seed}: {c}");
        // Texts, edits, tombstones and reply targets as the server reads them now.
        let h =
            online.client.as_mut().unwrap().ok("message.history", json!({"conversation": conv, "limit": 100})).await;
        for m in h["messages"].as_array().unwrap() {
            assert_eq!(online.view.texts.get(&id(&m["id"])), Some(&Shown::of(m)), "seed {seed}: {m}");
        }
    }
    s.stop().await;
    stats
}

#[tokio::test]
async fn a_device_offline_at_random_points_catches_up_to_the_same_state() {
    let mut total = (0, 0, 0, 0);
    for seed in [1, 7, 42, 1234] {
        let (off, resumed, synced, changed) = run_catch_up(seed).await;
        total = (total.0 + off, total.1 + resumed, total.2 + synced, total.3 + changed);
    }
    // The seeds cover both catch-up paths, several times each, and edits,
    // deletes and replies.
    assert!(
        total.0 >= 8 && total.1 >= 2 && total.2 >= 2 && total.3 >= 8,
        "offline, resumed, synced, changed: {total:?}"
    );
}

/// Typing and receipts cross nodes: ann on two nodes, bob on a third.
#[tokio::test]
async fn typing_and_receipts_reach_every_node() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let mut ann_a = Client::register(a, "cl_ann").await;
    let mut ann_b = Client::login(b, "cl_ann").await;
    let mut bob = Client::register(c, "cl_bob").await;
    let m = bob.send_dm("cl_ann", "across").await;
    let conv = conv_of(&m);
    for ann in [&mut ann_a, &mut ann_b] {
        assert_eq!(ann.event("message.new").await["message"]["id"], m["id"]);
    }
    assert_eq!(bob.ok("typing.start", json!({"conversation": conv})).await["sent"], true);
    for ann in [&mut ann_a, &mut ann_b] {
        let t = ann.event("typing.start").await;
        assert_eq!((t["from"].clone(), t["conversation_id"].clone()), (json!("cl_bob"), json!(conv)));
    }
    bob.ok("typing.stop", json!({"conversation": conv})).await;
    for ann in [&mut ann_a, &mut ann_b] {
        assert_eq!(ann.event("typing.stop").await["from"], "cl_bob");
    }
    ann_a.ok("conversation.read", json!({"conversation": conv, "message_id": m["id"]})).await;
    assert_eq!(ann_b.event("conversation.read").await["read_up_to"], m["id"]);
    let r = bob.event("message.read").await;
    assert_eq!((r["by"].clone(), r["message_id"].clone()), (json!("cl_ann"), m["id"].clone()));
    let list = ann_b.ok("conversation.list", json!({})).await;
    assert_eq!((list["conversations"][0]["unread"].clone(), list["unread_total"].clone()), (json!(0), json!(0)));
    // A group's typing goes through the batched volatile publish on Redis.
    let g = ann_a.ok("group.create", json!({"title": "across", "members": ["cl_bob"]})).await;
    let g = g["group"]["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(bob.ok("typing.start", json!({"conversation": g})).await["sent"], true);
    for ann in [&mut ann_a, &mut ann_b] {
        let t = ann.event("typing.start").await;
        assert_eq!((t["from"].clone(), t["conversation_id"].clone()), (json!("cl_bob"), json!(g)));
    }
}

/// Creates a group as `owner` with `members`; returns its conversation id.
async fn create_group(owner: &mut Client, title: &str, members: &[&str]) -> String {
    let data = owner.ok("group.create", json!({"title": title, "members": members})).await;
    data["group"]["conversation_id"].as_str().expect("conversation id").to_owned()
}

async fn say(c: &mut Client, conv: &str, text: &str) -> Value {
    c.ok("message.send", json!({"conversation": conv, "text": text})).await["message"].clone()
}

/// Every event frame `c` has been sent so far (after a ping round trip).
async fn drain(c: &mut Client) -> Vec<Value> {
    c.ok("ping", json!({})).await;
    c.take_events()
}

/// The list entry of `conv` in `c`'s `conversation.list`.
async fn entry(c: &mut Client, conv: &str) -> Value {
    let list = c.ok("conversation.list", json!({})).await;
    let all = list["conversations"].as_array().expect("conversations").clone();
    all.into_iter().find(|e| e["conversation_id"] == conv).unwrap_or_else(|| panic!("{conv} not in {list}"))
}

#[tokio::test]
async fn group_read_pointers_unread_and_receipts_to_current_members_only() {
    let s = server().await;
    let mut ann = Client::register(&s, "gr_ann").await;
    let mut bea = Client::register(&s, "gr_bea").await;
    let mut cid = Client::register(&s, "gr_cid").await;
    let mut out = Client::register(&s, "gr_out").await;
    let conv = create_group(&mut ann, "club", &["gr_bea", "gr_cid"]).await;
    let m1 = say(&mut ann, &conv, "one").await;
    let m2 = say(&mut ann, &conv, "two").await;
    let m3 = say(&mut bea, &conv, "three").await;
    for c in [&mut ann, &mut bea, &mut cid] {
        drain(c).await;
    }
    // Unread counts others' messages above my pointer.
    let unread = |e: &Value| (e["unread"].clone(), e["read_up_to"].clone());
    assert_eq!(unread(&entry(&mut cid, &conv).await), (json!(3), Value::Null));
    assert_eq!(unread(&entry(&mut bea, &conv).await), (json!(2), Value::Null));
    assert_eq!(unread(&entry(&mut ann, &conv).await), (json!(1), Value::Null));

    let r = cid.ok("conversation.read", json!({"conversation": conv, "message_id": m2["id"]})).await;
    assert_eq!(r, json!({"conversation_id": conv, "read_up_to": m2["id"], "moved": true}));
    for c in [&mut ann, &mut bea] {
        let receipt = c.event("message.read").await;
        assert_eq!(
            (receipt["conversation_id"].clone(), receipt["by"].clone(), receipt["message_id"].clone()),
            (json!(conv), json!("gr_cid"), m2["id"].clone())
        );
    }
    assert_eq!(unread(&entry(&mut cid, &conv).await), (json!(1), m2["id"].clone()));
    let list = cid.ok("conversation.list", json!({})).await;
    assert_eq!(list["unread_total"], 1);

    // An outsider and a missing group get the same not_found.
    let missing = format!("{}", conv.parse::<u64>().unwrap() + 1);
    let mut messages = BTreeSet::new();
    for (c, target) in [(&conv, "existing"), (&missing, "missing")] {
        for kind in ["conversation.read", "typing.start"] {
            let (code, msg) = out.err(kind, json!({"conversation": c, "message_id": m1["id"]})).await;
            assert_eq!(code, "not_found", "{kind} {target}");
            messages.insert(msg);
        }
    }
    assert_eq!(messages.len(), 1, "{messages:?}");

    // A removed member: not_found from then on, and no more receipts.
    ann.ok("group.remove", json!({"conversation": conv, "username": "gr_cid"})).await;
    for c in [&mut ann, &mut bea, &mut cid] {
        drain(c).await;
    }
    for kind in ["conversation.read", "typing.start", "typing.stop"] {
        let (code, _) = cid.err(kind, json!({"conversation": conv, "message_id": m3["id"]})).await;
        assert_eq!(code, "not_found", "{kind}");
    }
    bea.ok("conversation.read", json!({"conversation": conv, "message_id": m2["id"]})).await;
    assert_eq!(ann.event("message.read").await["by"], "gr_bea");
    cid.assert_no_events().await;
    out.assert_no_events().await;
    s.stop().await;
}

#[tokio::test]
async fn groups_above_the_receipt_size_get_no_receipts() {
    let s = server().await;
    let mut ann = Client::register(&s, "gb_ann").await;
    let mut bea = Client::register(&s, "gb_bea").await;
    // 21 members: one above the receipt limit of 20.
    let mut names = vec!["gb_bea".to_owned()];
    for i in 0..19 {
        let n = format!("gb_m{i}");
        Client::register(&s, &n).await;
        names.push(n);
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let conv = create_group(&mut ann, "big", &names).await;
    let m = say(&mut ann, &conv, "hello all").await;
    drain(&mut ann).await;
    drain(&mut bea).await;
    assert_eq!(entry(&mut bea, &conv).await["unread"], 1);
    let r = bea.ok("conversation.read", json!({"conversation": conv, "message_id": m["id"]})).await;
    assert_eq!(r["moved"], true);
    assert_eq!(entry(&mut bea, &conv).await["unread"], 0);
    ann.assert_no_events().await;
    // Not in the sender's change feed either.
    let changes = ann.ok("change.sync", json!({})).await;
    assert!(
        changes["changes"].as_array().unwrap().iter().all(|c| c["kind"] != "receipt"),
        "no receipt change: {changes}"
    );
    s.stop().await;
}

#[tokio::test]
async fn group_typing_reaches_every_other_member_and_no_one_else() {
    let s = server().await;
    let mut ann = Client::register(&s, "gt_ann").await;
    let mut ann2 = Client::login(&s, "gt_ann").await;
    let mut bea = Client::register(&s, "gt_bea").await;
    let mut bea2 = Client::login(&s, "gt_bea").await;
    let mut cid = Client::register(&s, "gt_cid").await;
    let mut dan = Client::register(&s, "gt_dan").await;
    let mut out = Client::register(&s, "gt_out").await;
    let conv = create_group(&mut ann, "typing", &["gt_bea", "gt_cid", "gt_dan"]).await;
    ann.ok("group.remove", json!({"conversation": conv, "username": "gt_dan"})).await;
    for c in [&mut ann, &mut ann2, &mut bea, &mut bea2, &mut cid, &mut dan, &mut out] {
        drain(c).await;
    }
    assert_eq!(ann.ok("typing.start", json!({"conversation": conv})).await, json!({"sent": true}));
    for c in [&mut bea, &mut bea2, &mut cid] {
        let frame = c.next_event().await;
        assert_eq!(frame["event"], "typing.start", "{frame}");
        assert_eq!(frame["data"], json!({"conversation_id": conv, "from": "gt_ann", "expires_in_ms": 6000}));
        assert!(frame.get("pos").is_none(), "ephemeral: no inbox position: {frame}");
    }
    assert_eq!(ann.ok("typing.stop", json!({"conversation": conv})).await, json!({"sent": true}));
    for c in [&mut bea, &mut bea2, &mut cid] {
        assert_eq!(c.event("typing.stop").await, json!({"conversation_id": conv, "from": "gt_ann"}));
    }
    for c in [&mut ann, &mut ann2, &mut bea, &mut bea2, &mut cid, &mut dan, &mut out] {
        c.assert_no_events().await;
    }
    s.stop().await;
}
