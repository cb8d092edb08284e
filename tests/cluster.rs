//! Many nodes: three `hubbub` processes sharing one SQLite file and one
//! `redis-server`, all real processes. Outside CI these tests skip (loudly)
//! when redis-server is not installed; under `CI=true` they fail instead.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::cluster::{Cluster, Node, node_command};
use common::{Client, WAIT};
use serde_json::{Value, json};

fn ids(msgs: &[Value]) -> Vec<String> {
    msgs.iter().map(|m| m["id"].as_str().expect("id").to_owned()).collect()
}

/// The next `n` `message.new` events, with their positions.

#[tokio::test]
async fn a_user_on_two_nodes_gets_every_message_sent_via_a_third() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let mut alice_a = Client::register(a, "alice").await;
    let mut alice_b = Client::login(b, "alice").await;
    let mut bob = Client::register(c, "bob").await;
    let mut carol = Client::register(a, "carol").await;
    let mut dave = Client::register(b, "dave").await;

    // Three senders on three nodes write to the one SQLite file at once.
    let (sent_bob, sent_carol, sent_dave) = tokio::join!(
        async {
            let mut v = Vec::new();
            for i in 0..10 {
                v.push(bob.send_dm("alice", &format!("bob {i}")).await);
            }
            v
        },
        async {
            let mut v = Vec::new();
            for i in 0..10 {
                v.push(carol.send_dm("alice", &format!("carol {i}")).await);
            }
            v
        },
        async {
            let mut v = Vec::new();
            for i in 0..10 {
                v.push(dave.send_dm("alice", &format!("dave {i}")).await);
            }
            v
        },
    );
    let mut all: Vec<String> = ids(&sent_bob);
    all.extend(ids(&sent_carol));
    all.extend(ids(&sent_dave));
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 30, "ids never collide across nodes");

    for sock in [&mut alice_a, &mut alice_b] {
        let got = common::message_events(sock, 30).await;
        let got_ids: HashSet<String> =
            got.iter().map(|e| e["data"]["message"]["id"].as_str().unwrap().into()).collect();
        assert_eq!(got_ids, all.iter().cloned().collect::<HashSet<_>>());
        // Positions are contiguous in one epoch.
        let epoch = &got[0]["pos"]["epoch"];
        let offs: Vec<u64> = got.iter().map(|e| e["pos"]["offset"].as_u64().unwrap()).collect();
        assert!(got.iter().all(|e| &e["pos"]["epoch"] == epoch));
        assert!(offs.windows(2).all(|w| w[1] == w[0] + 1), "offsets {offs:?}");
        sock.assert_no_events().await;
    }
    // Each of bob's sends reached bob's own inbox too (his other devices).
    let bob_sent = ids(&sent_bob).into_iter().collect::<HashSet<_>>();
    let synced = alice_a.sync_all("0").await;
    assert!(bob_sent.iter().all(|id| synced.iter().any(|m| m["id"] == json!(id))));
}

#[tokio::test]
async fn resume_after_a_disconnect_returns_exactly_the_missed_events() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let mut erin = Client::register(a, "erin").await;
    let mut frank = Client::register(c, "frank").await;
    frank.send_dm("erin", "before").await;
    let seen = common::message_events(&mut erin, 1).await.remove(0);
    let pos = seen["pos"].clone();
    let token = erin.access_token.clone();
    drop(erin);

    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(frank.send_dm("erin", &format!("missed {i}")).await["id"].clone());
    }
    // Reconnect to another node, resuming from the last position seen.
    let (mut erin, data) = Client::resume(b, &token, pos.clone()).await;
    assert_eq!(data["recovered"], true, "{data}");
    let got = common::message_events(&mut erin, 5).await;
    assert_eq!(got.iter().map(|e| e["data"]["message"]["id"].clone()).collect::<Vec<_>>(), missed);
    erin.assert_no_events().await;
    assert_eq!(data["pos"]["offset"], got[4]["pos"]["offset"]);

    // Live events continue after the recovered ones.
    let next = frank.send_dm("erin", "live again").await;
    let live = common::message_events(&mut erin, 1).await.remove(0);
    assert_eq!(live["data"]["message"]["id"], next["id"]);

    // A position from another epoch cannot be recovered: the client syncs.
    let (_e2, data) = Client::resume(c, &token, json!({"epoch": "nope", "offset": 1})).await;
    assert_eq!(data["recovered"], false);
    assert!(data["pos"]["epoch"].is_string());
}

#[tokio::test]
async fn killing_redis_loses_no_acknowledged_message() {
    let Some(mut cl) = Cluster::start().await else { return };
    let mut gina = Client::register(&cl.nodes[0], "gina").await;
    let mut hank = Client::register(&cl.nodes[2], "hank").await;
    let first = hank.send_dm("gina", "before the outage").await;
    common::message_events(&mut gina, 1).await;

    cl.redis.kill();
    let mut acked = Vec::new();
    for i in 0..3 {
        // Stored first: the ack comes even though Redis is gone.
        acked.push(hank.send_dm("gina", &format!("during the outage {i}")).await["id"].as_str().unwrap().to_owned());
    }
    cl.redis.restart().await;

    // Gina gets them as events (the node's outbox republishes them) or is
    // told to sync; either way she ends up with every acknowledged message.
    let mut have: HashSet<String> = HashSet::new();
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while !acked.iter().all(|id| have.contains(id)) {
        assert!(tokio::time::Instant::now() < deadline, "missing acknowledged messages; have {have:?}");
        let e = gina.next_event().await;
        if e["event"] == "message.new" {
            have.insert(e["data"]["message"]["id"].as_str().unwrap().to_owned());
        } else if e["event"] == "sync.needed" {
            for m in gina.sync_all(first["id"].as_str().unwrap()).await {
                have.insert(m["id"].as_str().unwrap().to_owned());
            }
        }
    }

    // A socket that reconnects after the outage also gets everything.
    let token = gina.access_token.clone();
    let (mut again, data) = Client::resume(&cl.nodes[1], &token, json!({"epoch": "old", "offset": 1})).await;
    assert_eq!(data["recovered"], false);
    let synced = ids(&again.sync_all(first["id"].as_str().unwrap()).await);
    assert!(acked.iter().all(|id| synced.contains(id)));

    // And live delivery works again through the new Redis.
    let after = hank.send_dm("gina", "after the outage").await;
    let mut found = false;
    while !found {
        let e = again.next_event().await;
        found = e["event"] == "message.new" && e["data"]["message"]["id"] == after["id"];
    }
}

#[tokio::test]
async fn killed_pub_sub_links_lose_nothing_and_deliver_nothing_twice() {
    let Some(cl) = Cluster::start().await else { return };
    let mut ida = Client::register(&cl.nodes[0], "ida").await;
    let mut joe = Client::register(&cl.nodes[1], "joe").await;
    let mut sent = Vec::new();
    for round in 0..4 {
        // Every node's pub/sub connection is cut; each reconnects, resubscribes
        // and fills whatever it missed from the stream (Redis kept its data).
        let killed = common::cluster::redis_command(cl.redis.port, "CLIENT KILL TYPE pubsub").await;
        assert!(killed.starts_with(':'), "{killed}");
        for i in 0..5 {
            sent.push(joe.send_dm("ida", &format!("round {round} msg {i}")).await["id"].clone());
        }
    }
    let mut got = Vec::new();
    while got.len() < sent.len() {
        let e = ida.next_event().await;
        assert_ne!(e["event"], "sync.needed", "the stream still had everything");
        if e["event"] == "message.new" {
            got.push(e);
        }
    }
    assert_eq!(got.iter().map(|e| e["data"]["message"]["id"].clone()).collect::<Vec<_>>(), sent);
    let offs: Vec<u64> = got.iter().map(|e| e["pos"]["offset"].as_u64().unwrap()).collect();
    assert!(offs.windows(2).all(|w| w[1] == w[0] + 1), "{offs:?}");
    ida.assert_no_events().await;
}

#[tokio::test]
async fn a_second_node_with_the_same_worker_id_refuses_to_start() {
    let Some(redis) = common::cluster::Redis::start().await else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = Node::start(tmp.path(), &redis.url(), 7).await;
    let port = common::free_port();
    let mut cmd = node_command(tmp.path(), &redis.url(), 7, port);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let out = tokio::time::timeout(common::start_wait(), tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .expect("the second node exits in time")
        .expect("join")
        .expect("run");
    assert!(!out.status.success());
    let err = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(err.contains("worker id 7"), "output: {err}");

    // Once the first node stops (and releases its lease) the id is free.
    first.stop().await;
    let again = Node::start(tmp.path(), &redis.url(), 7).await;
    again.stop().await;
}

#[tokio::test]
async fn a_node_on_another_data_directory_refuses_to_split_the_data() {
    let Some(redis) = common::cluster::Redis::start().await else { return };
    let (one, two) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let _first = Node::start(one.path(), &redis.url(), 1).await;
    let port = common::free_port();
    let mut cmd = node_command(two.path(), &redis.url(), 2, port);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let out = tokio::time::timeout(common::start_wait(), tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .expect("the node exits in time")
        .expect("join")
        .expect("run");
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("share one data directory"), "output: {text}");
}

#[tokio::test]
async fn presence_is_seen_across_nodes() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let _ivy = Client::register(a, "ivy").await;
    let mut jack = Client::register(b, "jack").await;
    let kim = Client::register(c, "kim").await;
    let kim_token = kim.access_token.clone();
    drop(kim);

    // Kim's socket closed: wait until every node agrees she is offline.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = jack.ok("presence.query", json!({"usernames": ["ivy", "kim", "nobody"]})).await;
        let users = r["users"].as_array().unwrap().clone();
        assert_eq!(users.len(), 2, "unknown usernames are left out: {r}");
        assert_eq!(users[0], json!({"username": "ivy", "online": true, "last_seen": users[0]["last_seen"]}));
        if users[1]["online"] == false {
            assert!(users[1]["last_seen"].is_string());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "kim never went offline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let w = jack.ok("presence.watch", json!({"usernames": ["kim"]})).await;
    assert_eq!(w["users"][0]["online"], false);
    let kim = Client::with_token(c, &kim_token).await;
    let e = jack.event("presence.changed").await;
    assert_eq!((e["username"].as_str(), e["online"].as_bool()), (Some("kim"), Some(true)));
    drop(kim);
    let e = jack.event("presence.changed").await;
    assert_eq!((e["username"].as_str(), e["online"].as_bool()), (Some("kim"), Some(false)));

    let many: Vec<String> = (0..101).map(|i| format!("user{i}")).collect();
    let (code, _) = jack.err("presence.query", json!({ "usernames": many })).await;
    assert_eq!(code, "limit_exceeded");
}

#[tokio::test]
async fn a_crashed_nodes_users_go_offline_when_their_records_expire() {
    let Some(mut cl) = Cluster::start().await else { return };
    let mut lea = Client::register(&cl.nodes[0], "lea").await;
    let _max = Client::register(&cl.nodes[2], "max").await;
    let r = lea.ok("presence.query", json!({"usernames": ["max"]})).await;
    assert_eq!(r["users"][0]["online"], true);
    // SIGKILL: the node cannot say goodbye; its presence records expire
    // (--presence-ttl 3 in the harness).
    drop(cl.nodes.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = lea.ok("presence.query", json!({"usernames": ["max"]})).await;
        if r["users"][0]["online"] == false {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "max stayed online after his node died");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
