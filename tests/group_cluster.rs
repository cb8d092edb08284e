//! Group delivery across a 3-node cluster with Redis: members spread over
//! the nodes get every group message live on whichever node they are; a
//! node is killed mid-conversation and its members, back on another node,
//! recover what they missed by resume (or sync when the history cannot
//! say). Every acknowledged message reaches every member exactly once.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::Client;
use common::cluster::Cluster;
use serde_json::{Value, json};

/// The next `message.new` frames of `c` until every id of `want` came
/// (other events skipped); returns each id with how often it came. (A
/// replay may also bring the member's own messages: the sending socket
/// never got them live, but they are in the member's inbox for its other
/// devices.)
async fn collect(c: &mut Client, want: &BTreeSet<String>, last_pos: &mut Value) -> HashMap<String, usize> {
    let mut got: HashMap<String, usize> = HashMap::new();
    while !want.iter().all(|id| got.contains_key(id)) {
        let f = c.next_event().await;
        if !f["pos"].is_null() {
            *last_pos = f["pos"].clone();
        }
        if f["event"] == "message.new" {
            *got.entry(f["data"]["message"]["id"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        }
    }
    got
}

#[tokio::test]
async fn group_messages_reach_members_on_every_node_through_a_node_kill() {
    let Some(mut cl) = Cluster::start().await else { return };
    const MEMBERS: usize = 6;
    // Member i is on node i % 3.
    let mut clients = Vec::new();
    for i in 0..MEMBERS {
        clients.push(Client::register(&cl.nodes[i % 3], &format!("gc_{i}")).await);
    }
    let names: Vec<String> = (1..MEMBERS).map(|i| format!("gc_{i}")).collect();
    let data = clients[0].ok("group.create", json!({"title": "spread", "members": names})).await;
    let conv = data["group"]["conversation_id"].as_str().unwrap().to_owned();
    let mut pos = vec![Value::Null; MEMBERS];
    for i in 1..MEMBERS {
        let f = clients[i].next_event().await;
        assert_eq!(f["event"], "group.member_added");
        pos[i] = f["pos"].clone();
    }

    // Round 1: everyone writes once; everyone else gets it live.
    let mut acked: Vec<(usize, String)> = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        let m = c.ok("message.send", json!({"conversation": conv, "text": format!("r1 from {i}")})).await;
        acked.push((i, m["message"]["id"].as_str().unwrap().to_owned()));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let want: BTreeSet<String> = acked.iter().filter(|(s, _)| *s != i).map(|(_, id)| id.clone()).collect();
        let got = collect(c, &want, &mut pos[i]).await;
        assert!(got.values().all(|n| *n == 1), "member {i} got a duplicate: {got:?}");
        assert_eq!(got.into_keys().collect::<BTreeSet<_>>(), want, "member {i}, round 1");
    }

    // Node 2 dies; its members (2 and 5) are offline while the rest write.
    let dead: Vec<usize> = (0..MEMBERS).filter(|i| i % 3 == 2).collect();
    let tokens: HashMap<usize, String> = dead.iter().map(|i| (*i, clients[*i].access_token.clone())).collect();
    cl.nodes.remove(2).kill();
    let mut round2: Vec<(usize, String)> = Vec::new();
    for (i, c) in clients.iter_mut().enumerate() {
        if dead.contains(&i) {
            continue;
        }
        for k in 0..2 {
            let m = c.ok("message.send", json!({"conversation": conv, "text": format!("r2 {k} from {i}")})).await;
            round2.push((i, m["message"]["id"].as_str().unwrap().to_owned()));
        }
    }
    for (i, c) in clients.iter_mut().enumerate() {
        if dead.contains(&i) {
            continue;
        }
        let want: BTreeSet<String> = round2.iter().filter(|(s, _)| *s != i).map(|(_, id)| id.clone()).collect();
        let got = collect(c, &want, &mut pos[i]).await;
        assert!(got.values().all(|n| *n == 1), "member {i} got a duplicate: {got:?}");
        assert_eq!(got.into_keys().collect::<BTreeSet<_>>(), want, "member {i}, round 2");
    }

    // The dead node's members come back on node 0 with their last position.
    for i in dead {
        let (mut back, data) = Client::resume(&cl.nodes[0], &tokens[&i], pos[i].clone()).await;
        let want: BTreeSet<String> = round2.iter().map(|(_, id)| id.clone()).collect();
        let own: BTreeSet<String> = acked.iter().filter(|(s, _)| *s == i).map(|(_, id)| id.clone()).collect();
        let got: BTreeSet<String> = if data["recovered"] == true {
            let mut p = Value::Null;
            let got = collect(&mut back, &want, &mut p).await;
            assert!(got.values().all(|n| *n == 1), "member {i}: a duplicate on resume: {got:?}");
            got.into_keys().filter(|id| !own.contains(id)).collect()
        } else {
            let since = acked.iter().map(|(_, id)| id.parse::<u64>().unwrap()).max().unwrap().to_string();
            let synced = back.sync_all(&since).await;
            synced.iter().map(|m| m["id"].as_str().unwrap().to_owned()).filter(|id| want.contains(id)).collect()
        };
        assert_eq!(got, want, "member {i} recovered every message sent while its node was down");
        let h = back.ok("message.history", json!({"conversation": conv, "limit": 100})).await;
        assert_eq!(h["messages"].as_array().unwrap().len(), acked.len() + round2.len());
    }
}
