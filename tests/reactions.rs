//! Reactions over the socket (issue 15): every refusal as a table,
//! idempotency, counts and `me` as two members and a group of three see
//! them, delivery across nodes of a Redis cluster, and catch-up of a
//! device that goes offline at random points (it ends with the same
//! counts and `me` flags as one that stayed online).

mod common;

use std::collections::BTreeMap;

use common::cluster::Cluster;
use common::{Client, Rng, TestServer};
use serde_json::{Value, json};

const THUMBS: &str = "\u{1F44D}";
const HEART: &str = "\u{2764}\u{FE0F}";

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

fn react(m: &Value, emoji: &str) -> Value {
    json!({"conversation": m["conversation_id"], "message_id": m["id"], "emoji": emoji})
}

/// (emoji, count, me) of a reply's or view's `reactions`.
fn summary(v: &Value) -> Vec<(String, u64, bool)> {
    let list = v.as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|r| (r["emoji"].as_str().unwrap().to_owned(), r["count"].as_u64().unwrap(), r["me"].as_bool().unwrap()))
        .collect()
}

fn s(emoji: &str, count: u64, me: bool) -> (String, u64, bool) {
    (emoji.to_owned(), count, me)
}

/// Every refusal, by who asks about which message with which emoji.
#[tokio::test]
async fn refusals() {
    let srv = server().await;
    let mut ann = Client::register(&srv, "rx_ann").await;
    let mut bob = Client::register(&srv, "rx_bob").await;
    let mut cy = Client::register(&srv, "rx_cy").await;
    let m = bob.send_dm("rx_ann", "hello").await;
    let elsewhere = cy.send_dm("rx_bob", "elsewhere").await;
    let conv = conv_of(&m);
    let unknown = format!("{}", m["id"].as_str().unwrap().parse::<u64>().unwrap() + 1);
    let oversized = ["\u{1F469}"; 9].join("\u{200D}");
    assert!(oversized.len() > 32);
    // (who, conversation, message id, emoji, expected code)
    let mid = m["id"].as_str().unwrap();
    let other_id = elsewhere["id"].as_str().unwrap();
    let table: Vec<(&str, &str, &str, &str, &str)> = vec![
        ("member", &conv, mid, THUMBS, "ok"),
        ("outsider", &conv, mid, THUMBS, "not_found"),
        ("member", &conv, &unknown, THUMBS, "not_found"),
        ("member", &conv, other_id, THUMBS, "not_found"),
        ("member", "not-an-id", mid, THUMBS, "not_found"),
        ("member", &conv, mid, "a", "bad_request"),
        ("member", &conv, mid, "ok", "bad_request"),
        ("member", &conv, mid, "\u{1F44D}\u{1F44D}", "bad_request"),
        ("member", &conv, mid, "", "bad_request"),
        ("member", &conv, mid, &oversized, "bad_request"),
        ("member", &conv, mid, " ", "bad_request"),
        ("member", &conv, mid, "\u{1F44D} ", "bad_request"),
        ("member", &conv, mid, "\n", "bad_request"),
        ("anonymous", &conv, mid, THUMBS, "unauthorized"),
    ];
    let mut anon = Client::connect(&srv).await;
    let mut not_found = std::collections::BTreeSet::new();
    for (who, c, id, emoji, want) in table {
        let client = match who {
            "member" => &mut ann,
            "outsider" => &mut cy,
            _ => &mut anon,
        };
        for kind in ["message.react", "message.unreact"] {
            if want != "ok" {
                client.expect_error_next();
            }
            let r = client.request(kind, json!({"conversation": c, "message_id": id, "emoji": emoji})).await;
            let got = if r["type"] == "ok" { "ok" } else { r["code"].as_str().unwrap_or("?") };
            assert_eq!(got, want, "{who} {kind} {c} {id} {emoji:?}: {r}");
            if want == "not_found" {
                not_found.insert(r["message"].as_str().unwrap().to_owned());
            }
        }
    }
    assert_eq!(not_found.len(), 1, "a non-member and an unknown message get one error: {not_found:?}");
    // Twenty different emoji, then a new one is refused; an existing one works.
    let emoji: Vec<String> = (0..21).map(|i| char::from_u32(0x1F600 + i).unwrap().to_string()).collect();
    for e in &emoji[..20] {
        ann.ok("message.react", react(&m, e)).await;
    }
    let (code, msg) = ann.err("message.react", react(&m, &emoji[20])).await;
    assert_eq!(code, "limit_exceeded", "{msg}");
    let r = bob.ok("message.react", react(&m, &emoji[3])).await;
    assert_eq!(r["reactions"].as_array().unwrap().len(), 20);
    // JSON escapes (as typed in websocat) are the same emoji: U+1F600,
    // which ann already gave.
    ann.send_text(&format!(
        r#"{{"type":"message.react","id":"esc","conversation":"{conv}","message_id":"{mid}","emoji":"\ud83d\ude00"}}"#
    ))
    .await;
    let r = ann.recv_reply().await;
    assert_eq!((r["type"].clone(), r["data"]["changed"].clone()), (json!("ok"), json!(false)), "{r}");
    srv.stop().await;
}

#[tokio::test]
async fn idempotent_counts_and_me_as_two_members_see_them() {
    let srv = server().await;
    let mut ann = Client::register(&srv, "ri_ann").await;
    let mut bob = Client::register(&srv, "ri_bob").await;
    let m = bob.send_dm("ri_ann", "hello").await;
    ann.event("message.new").await;
    let r = ann.ok("message.react", react(&m, THUMBS)).await;
    assert_eq!((summary(&r["reactions"]), r["changed"].clone()), (vec![s(THUMBS, 1, true)], json!(true)));
    let e = bob.event("message.reactions").await;
    assert_eq!(
        (e["by"].clone(), e["emoji"].clone(), e["reacted"].clone()),
        (json!("ri_ann"), json!(THUMBS), json!(true))
    );
    assert_eq!(e["reactions"], json!([{"emoji": THUMBS, "count": 1}]));
    assert!(e["change_id"].is_string());
    // Again: no change, no event.
    let r = ann.ok("message.react", react(&m, THUMBS)).await;
    assert_eq!((summary(&r["reactions"]), r["changed"].clone()), (vec![s(THUMBS, 1, true)], json!(false)));
    bob.assert_no_events().await;
    let r = bob.ok("message.react", react(&m, THUMBS)).await;
    assert_eq!(summary(&r["reactions"]), vec![s(THUMBS, 2, true)]);
    ann.event("message.reactions").await;
    let r = bob.ok("message.react", react(&m, HEART)).await;
    assert_eq!(summary(&r["reactions"]), vec![s(HEART, 1, true), s(THUMBS, 2, true)]);
    // Taking back what I never gave: a no-op.
    let r = ann.ok("message.unreact", react(&m, HEART)).await;
    assert_eq!(r["changed"], false);
    // History shows each their own `me`.
    let ha = ann.ok("message.history", json!({"conversation": conv_of(&m)})).await;
    assert_eq!(summary(&ha["messages"][0]["reactions"]), vec![s(HEART, 1, false), s(THUMBS, 2, true)]);
    let hb = bob.ok("message.history", json!({"with": "ri_ann"})).await;
    assert_eq!(summary(&hb["messages"][0]["reactions"]), vec![s(HEART, 1, true), s(THUMBS, 2, true)]);
    let r = ann.ok("message.unreact", react(&m, THUMBS)).await;
    assert_eq!(summary(&r["reactions"]), vec![s(HEART, 1, false), s(THUMBS, 1, false)]);
    // Sync and the conversation list carry them too.
    let sy = ann.ok("message.sync", json!({"since": "0"})).await;
    assert_eq!(summary(&sy["messages"][0]["reactions"]), vec![s(HEART, 1, false), s(THUMBS, 1, false)]);
    let list = bob.ok("conversation.list", json!({})).await;
    let last = &list["conversations"][0]["last_message"];
    assert_eq!(summary(&last["reactions"]), vec![s(HEART, 1, true), s(THUMBS, 1, true)]);
    srv.stop().await;
}

/// Deleting a message takes its reactions with its text; a tombstone
/// takes no new ones.
#[tokio::test]
async fn a_deleted_message_loses_its_reactions_and_takes_none() {
    let srv = server().await;
    let mut ann = Client::register(&srv, "rd_ann").await;
    let mut bob = Client::register(&srv, "rd_bob").await;
    let m = bob.send_dm("rd_ann", "soon gone").await;
    ann.ok("message.react", react(&m, THUMBS)).await;
    bob.ok("message.react", react(&m, HEART)).await;
    bob.ok("message.delete", json!({"conversation": m["conversation_id"], "message_id": m["id"]})).await;
    let h = ann.ok("message.history", json!({"conversation": conv_of(&m)})).await;
    let v = &h["messages"][0];
    assert_eq!((v["deleted"].as_bool(), v.get("reactions")), (Some(true), None), "{v}");
    for c in [&mut ann, &mut bob] {
        let (code, _) = c.err("message.react", react(&m, THUMBS)).await;
        assert_eq!(code, "conflict");
        let (code, _) = c.err("message.unreact", react(&m, HEART)).await;
        assert_eq!(code, "conflict");
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_group_of_three_sees_every_reaction() {
    let srv = server().await;
    let mut ann = Client::register(&srv, "rg_ann").await;
    let mut bea = Client::register(&srv, "rg_bea").await;
    let mut cid = Client::register(&srv, "rg_cid").await;
    let mut out = Client::register(&srv, "rg_out").await;
    let g = ann.ok("group.create", json!({"title": "three", "members": ["rg_bea", "rg_cid"]})).await;
    let g = g["group"]["conversation_id"].as_str().unwrap().to_owned();
    let m = ann.ok("message.send", json!({"conversation": g, "text": "vote"})).await["message"].clone();
    bea.ok("message.react", react(&m, THUMBS)).await;
    cid.ok("message.react", react(&m, THUMBS)).await;
    for c in [&mut ann, &mut bea, &mut cid] {
        c.ok("ping", json!({})).await;
        c.take_events();
    }
    ann.ok("message.react", react(&m, HEART)).await;
    for c in [&mut bea, &mut cid] {
        let e = c.event("message.reactions").await;
        assert_eq!(e["conversation_id"], json!(g));
        assert_eq!(e["reactions"], json!([{"emoji": HEART, "count": 1}, {"emoji": THUMBS, "count": 2}]));
    }
    for (c, me_thumbs) in [(&mut ann, false), (&mut bea, true), (&mut cid, true)] {
        let h = c.ok("message.history", json!({"conversation": g})).await;
        assert_eq!(summary(&h["messages"][0]["reactions"]), vec![s(HEART, 1, !me_thumbs), s(THUMBS, 2, me_thumbs)]);
    }
    let (code, _) = out.err("message.react", react(&m, THUMBS)).await;
    assert_eq!(code, "not_found");
    out.assert_no_events().await;
    // A member who left can no longer react.
    cid.ok("group.leave", json!({"conversation": g})).await;
    let (code, _) = cid.err("message.react", react(&m, HEART)).await;
    assert_eq!(code, "not_found");
    srv.stop().await;
}

/// Ann on one node, bob on another: the reaction crosses Redis.
#[tokio::test]
async fn reactions_reach_every_node() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b) = (&cl.nodes[0], &cl.nodes[1]);
    let mut ann = Client::register(a, "rc_ann").await;
    let mut ann2 = Client::login(b, "rc_ann").await;
    let mut bob = Client::register(b, "rc_bob").await;
    let m = bob.send_dm("rc_ann", "across").await;
    ann.event("message.new").await;
    bob.ok("message.react", react(&m, THUMBS)).await;
    for c in [&mut ann, &mut ann2] {
        let e = c.event("message.reactions").await;
        assert_eq!(
            (e["by"].clone(), e["reactions"].clone()),
            (json!("rc_bob"), json!([{"emoji": THUMBS, "count": 1}]))
        );
    }
    ann.ok("message.react", react(&m, THUMBS)).await;
    let e = bob.event("message.reactions").await;
    assert_eq!(e["reactions"], json!([{"emoji": THUMBS, "count": 2}]));
    let e = ann2.event("message.reactions").await;
    assert_eq!((e["by"].clone(), e["reacted"].clone()), (json!("rc_ann"), json!(true)));
}

/// A device's reaction state: message id -> emoji -> (count, me).
#[derive(Debug, Default, PartialEq, Eq)]
struct View(BTreeMap<String, BTreeMap<String, (u64, bool)>>);

impl View {
    /// A full summary with `me` (a reply, a history view, a change entry).
    fn set(&mut self, message: &str, reactions: &Value) {
        let map = summary(reactions).into_iter().map(|(e, n, me)| (e, (n, me))).collect();
        self.put(message, map);
    }
    fn put(&mut self, message: &str, map: BTreeMap<String, (u64, bool)>) {
        if map.is_empty() {
            self.0.remove(message);
        } else {
            self.0.insert(message.to_owned(), map);
        }
    }
    /// A `message.reactions` event, by the rule protocol.md gives.
    fn event(&mut self, me: &str, e: &Value) {
        let id = e["message_id"].as_str().unwrap();
        let old = self.0.remove(id).unwrap_or_default();
        let mut map = BTreeMap::new();
        for r in e["reactions"].as_array().unwrap() {
            let emoji = r["emoji"].as_str().unwrap().to_owned();
            let mut mine = old.get(&emoji).is_some_and(|(_, me)| *me);
            if e["by"] == me && e["emoji"] == emoji.as_str() {
                mine = e["reacted"] == true;
            }
            map.insert(emoji, (r["count"].as_u64().unwrap(), mine));
        }
        self.put(id, map);
    }
}

struct Device {
    client: Option<Client>,
    view: View,
    pos: Value,
    change_after: Option<String>,
}

impl Device {
    fn new(c: Client) -> Device {
        Device { client: Some(c), view: View::default(), pos: Value::Null, change_after: None }
    }

    async fn absorb(&mut self, me: &str) {
        let Some(c) = self.client.as_mut() else { return };
        c.ok("ping", json!({})).await;
        for e in c.take_events() {
            if e.get("pos").is_some() {
                self.pos = e["pos"].clone();
            }
            if e["event"] == "message.reactions" {
                self.view.event(me, &e["data"]);
            }
        }
    }

    async fn toggle(&mut self, me: &str, m: &Value, rng: &mut Rng) {
        self.absorb(me).await;
        let kind = if rng.below(3) == 0 { "message.unreact" } else { "message.react" };
        let emoji = [THUMBS, HEART, "\u{1F602}"][rng.below(3)];
        let r = self.client.as_mut().expect("online").ok(kind, react(m, emoji)).await;
        self.view.set(m["id"].as_str().unwrap(), &r["reactions"]);
    }

    async fn sync(&mut self) {
        let c = self.client.as_mut().expect("online");
        for _ in 0..100 {
            let mut req = json!({"limit": 20});
            if let Some(a) = &self.change_after {
                req["after"] = json!(a);
            }
            let page = c.ok("change.sync", req).await;
            for ch in page["changes"].as_array().unwrap() {
                if ch["kind"] == "reaction" {
                    self.view.set(ch["message_id"].as_str().unwrap(), &ch["reactions"]);
                }
            }
            self.change_after = Some(page["next"].as_str().unwrap().to_owned());
            if page["more"] == false {
                break;
            }
        }
    }
}

async fn run_catch_up(seed: u64) -> (usize, usize, usize) {
    let mut stats = (0, 0, 0);
    let srv = server().await;
    let me = format!("rcu{seed}_ann");
    let first = Client::register(&srv, &me).await;
    let token = first.access_token.clone();
    let mut online = Device::new(first);
    let mut roaming = Device::new(Client::login(&srv, &me).await);
    let mut bob = Client::register(&srv, &format!("rcu{seed}_bob")).await;
    let mut cy = Client::register(&srv, &format!("rcu{seed}_cy")).await;
    let g = bob.ok("group.create", json!({"title": "g", "members": [me, format!("rcu{seed}_cy")]})).await;
    let g = g["group"]["conversation_id"].as_str().unwrap().to_owned();
    let mut msgs = Vec::new();
    for i in 0..3 {
        msgs.push(bob.ok("message.send", json!({"conversation": g, "text": format!("g{i}")})).await["message"].clone());
        msgs.push(bob.send_dm(&me, &format!("d{i}")).await);
    }
    let mut rng = Rng(seed);
    let mut others = [View::default(), View::default()];
    for _ in 0..40 {
        let m = msgs[rng.below(msgs.len())].clone();
        match rng.below(10) {
            0..=2 => {
                let (who, v) = if rng.below(2) == 0 || m["conversation_id"] != json!(g) {
                    (&mut bob, &mut others[0])
                } else {
                    (&mut cy, &mut others[1])
                };
                let kind = if rng.below(3) == 0 { "message.unreact" } else { "message.react" };
                let emoji = [THUMBS, HEART, "\u{1F602}"][rng.below(3)];
                let r = who.ok(kind, react(&m, emoji)).await;
                v.set(m["id"].as_str().unwrap(), &r["reactions"]);
            }
            3..=4 => online.toggle(&me, &m, &mut rng).await,
            5 if roaming.client.is_some() => roaming.toggle(&me, &m, &mut rng).await,
            6..=7 if roaming.client.is_some() => {
                roaming.absorb(&me).await;
                roaming.client = None;
                stats.0 += 1;
            }
            _ if roaming.client.is_none() => {
                if rng.below(2) == 0 && !roaming.pos.is_null() {
                    let (c, data) = Client::resume(&srv, &token, roaming.pos.clone()).await;
                    roaming.client = Some(c);
                    if data["recovered"] == true {
                        stats.1 += 1;
                    } else {
                        roaming.sync().await;
                        stats.2 += 1;
                    }
                } else {
                    roaming.client = Some(Client::with_token(&srv, &token).await);
                    roaming.sync().await;
                    stats.2 += 1;
                }
            }
            _ => {}
        }
        online.absorb(&me).await;
    }
    if roaming.client.is_none() {
        roaming.client = Some(Client::with_token(&srv, &token).await);
        roaming.sync().await;
    }
    for d in [&mut online, &mut roaming] {
        d.absorb(&me).await;
    }
    assert_eq!(online.view, roaming.view, "seed {seed}: the device that went offline ends in the same state");
    assert!(!online.view.0.is_empty(), "seed {seed}: some reactions");
    // Both agree with the server's views.
    let mut truth = View::default();
    let c = online.client.as_mut().unwrap();
    for conv in [g.clone(), conv_of(&msgs[1])] {
        let h = c.ok("message.history", json!({"conversation": conv})).await;
        for m in h["messages"].as_array().unwrap() {
            truth.set(m["id"].as_str().unwrap(), &m["reactions"]);
        }
    }
    assert_eq!(online.view, truth, "seed {seed}");
    srv.stop().await;
    stats
}

#[tokio::test]
async fn a_device_offline_at_random_points_ends_with_the_same_reactions() {
    let mut total = (0, 0, 0);
    for seed in [3, 11, 99, 2024] {
        let (off, resumed, synced) = run_catch_up(seed).await;
        total = (total.0 + off, total.1 + resumed, total.2 + synced);
    }
    assert!(total.0 >= 6 && total.2 >= 2, "offline, resumed, synced: {total:?}");
}
