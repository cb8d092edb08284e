//! Issue 12 ("Hardening"), points 1 and 6, as a user sees them over real
//! sockets: nothing of a deleted account is acknowledged or stored after
//! the delete, a freed username starts with no past, a nonce retry pushes
//! the stored message, a send answered `unavailable` while the writer
//! was stalled is not stored behind the client's back, and a node frozen
//! longer than the sync horizon cannot store a message below a cursor a
//! client has already passed.

mod common;

use common::cluster::Cluster;
use common::{Client, Ended, TestServer};
use hubbub::model::{DirectSend, MessageId};
use hubbub::snowflake::Generator;
use serde_json::{Value, json};

/// True when the server under test stores in SQLite (not under
/// `HUBBUB_TEST_SCYLLA`).
fn on_sqlite() -> bool {
    std::env::var("HUBBUB_TEST_SCYLLA").map_or(true, |v| v.is_empty())
}

/// The SQLite write lock, held by another connection (as another node's
/// stalled writer would hold it) from [`WriteLock::hold`] until
/// [`WriteLock::release`] (or at most `common::WAIT`).
struct WriteLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl WriteLock {
    /// Takes the write lock of the database at `db`; returns once it is held.
    fn hold(db: std::path::PathBuf) -> WriteLock {
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(db).expect("open");
            conn.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
            locked_tx.send(()).expect("signal");
            let _ = release_rx.recv_timeout(common::WAIT);
            conn.execute_batch("COMMIT").expect("release");
        });
        locked_rx.recv_timeout(common::WAIT).expect("lock taken");
        WriteLock { release, holder }
    }

    /// Releases the lock and waits until it is released.
    fn release(self) {
        self.release.send(()).expect("release");
        self.holder.join().expect("lock holder");
    }
}

/// The request frames of every write kind, each with a unique id.
fn writes(post_id: &Value, n: usize) -> Vec<String> {
    let frames = [
        json!({"type": "message.send", "to": "bob", "text": format!("queued {n}"), "nonce": format!("q-{n}")}),
        json!({"type": "post.like", "post_id": post_id}),
        json!({"type": "post.repost", "post_id": post_id}),
        json!({"type": "follow.add", "username": "bob"}),
        json!({"type": "post.create", "text": format!("queued post {n}")}),
        json!({"type": "profile.update", "bio": "queued"}),
        json!({"type": "message.send", "to": "bob", "text": format!("queued again {n}")}),
    ];
    frames
        .into_iter()
        .enumerate()
        .map(|(i, mut f)| {
            f["id"] = json!(format!("w{n}-{i}"));
            f.to_string()
        })
        .collect()
}

#[tokio::test]
async fn no_write_of_a_deleted_account_is_acknowledged_or_kept() {
    let s = TestServer::start().await;
    let bob = Client::register(&s, "bob").await;
    let alice = Client::register(&s, "alice").await;
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(Client::login(&s, "alice").await);
    }
    delete_while_writes_are_queued(bob, alice, others).await;
}

/// The same across nodes: the account's other sockets are on the other
/// two nodes, where the close arrives through Redis.
#[tokio::test]
async fn no_write_of_a_deleted_account_is_kept_on_any_node() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let bob = Client::register(c, "bob").await;
    let alice = Client::register(a, "alice").await;
    let mut others = Vec::new();
    for node in [b, c, b, c] {
        others.push(Client::login(node, "alice").await);
    }
    delete_while_writes_are_queued(bob, alice, others).await;
}

/// `alice` deletes her account while `others` (her other sockets) have
/// writes queued; afterwards `bob` sees nothing of them.
async fn delete_while_writes_are_queued(mut bob: Client, mut alice: Client, mut others: Vec<Client>) {
    let post = bob.ok("post.create", json!({"text": "bob's post"})).await["post"].clone();

    // Writes queued on the account's other sockets while it is deleted:
    // some run before the delete (the delete removes what they wrote),
    // the rest after it (refused, or not run at all).
    for (n, c) in others.iter_mut().enumerate() {
        for round in 0..8 {
            for frame in writes(&post["id"], n * 100 + round) {
                c.send_text(&frame).await;
            }
        }
    }
    alice.ok("account.delete", json!({"password": "password123"})).await;
    for c in &mut others {
        let (frames, end) = c.frames_until_end().await;
        for f in frames.iter().filter(|f| f["type"] == "error") {
            assert_ne!(f["code"], "internal", "{f}");
        }
        assert_eq!(end, Ended::Close(4500));
    }

    assert!(bob.sync_all("0").await.is_empty(), "no message of the deleted account");
    let p = bob.ok("post.get", json!({"post_id": post["id"]})).await["post"].clone();
    assert_eq!((p["likes"].clone(), p["reposts"].clone()), (json!(0), json!(0)), "no orphan like or repost");
    let followers = bob.ok("follow.followers", json!({"username": "bob"})).await;
    assert_eq!(followers["users"], json!([]));
    let (code, _) = bob.err("profile.get", json!({"username": "alice"})).await;
    assert_eq!(code, "not_found");
}

#[tokio::test]
async fn a_freed_username_shows_none_of_the_old_accounts_messages() {
    let s = TestServer::start().await;
    let mut bob = Client::register(&s, "bob").await;
    let mut old = Client::register(&s, "alice").await;
    old.send_dm("bob", "from the old alice").await;
    bob.send_dm("alice", "to the old alice").await;
    old.send_dm("alice", "a note to self").await;
    let mut cy = Client::register(&s, "cyd").await;
    let kept = cy.send_dm("bob", "unrelated").await;
    old.ok("account.delete", json!({"password": "password123"})).await;

    let mut new = Client::register(&s, "alice").await;
    assert_ne!(new.user_id, old.user_id);
    assert!(new.sync_all("0").await.is_empty(), "the new alice has no past");
    assert_eq!(new.ok("conversation.list", json!({})).await["conversations"], json!([]));
    assert_eq!(new.ok("message.history", json!({"with": "bob"})).await["messages"], json!([]));
    // Nothing of the old conversation is shown under the name any more.
    let synced = bob.sync_all("0").await;
    assert_eq!(synced.iter().map(|m| m["id"].clone()).collect::<Vec<_>>(), vec![kept["id"].clone()]);
    assert_eq!(bob.ok("message.history", json!({"with": "alice"})).await["messages"], json!([]));
    let convs = bob.ok("conversation.list", json!({})).await["conversations"].clone();
    let peers: Vec<Value> = convs.as_array().expect("list").iter().map(|c| c["with"]["username"].clone()).collect();
    assert_eq!(peers, vec![json!("cyd")]);

    // The new alice talks afresh.
    let hello = bob.send_dm("alice", "hello, new alice").await;
    assert_eq!(new.event("message.new").await["message"]["id"], hello["id"]);
    assert_eq!(new.sync_all("0").await.len(), 1);
}

#[tokio::test]
async fn a_retry_with_a_stored_nonce_pushes_the_message_again() {
    let s = TestServer::start().await;
    let mut bob = Client::register(&s, "bob").await;
    let mut alice = Client::register(&s, "alice").await;

    // A first attempt that was stored after its caller had been told
    // `unavailable`: written by the store directly, nothing pushed.
    let store = hubbub::store::open(&common::test_config(&s.dir)).await.expect("open the server's store");
    let me = store.user_by_username("alice").await.expect("read").expect("alice").user;
    let lost = DirectSend {
        id: MessageId(Generator::new(900).next_id()),
        from: me,
        to_username: "bob".into(),
        text: "sent while the writer stalled".into(),
        nonce: Some("n-lost".into()),
    };
    let stored = store.send_direct(&lost).await.expect("stored").expect("bob exists").message;
    store.close().await;
    bob.assert_no_events().await;

    let reply = alice
        .ok("message.send", json!({"to": "bob", "text": "sent while the writer stalled", "nonce": "n-lost"}))
        .await;
    assert_eq!(reply["message"]["id"], json!(stored.id.to_string()), "the retry returns the stored message");
    let pushed = bob.event("message.new").await;
    assert_eq!(pushed["message"]["id"], reply["message"]["id"], "and pushes it");
    assert_eq!(bob.sync_all("0").await.len(), 1, "stored once");
}

#[tokio::test]
async fn a_send_refused_while_the_writer_stalls_is_not_stored_and_its_retry_arrives() {
    if !on_sqlite() {
        eprintln!("skipped: holds the SQLite write lock");
        return;
    }
    let s = TestServer::start_with(|c| c.store_timeout_ms = 1_500).await;
    let mut bob = Client::register(&s, "bob").await;
    let mut alice = Client::register(&s, "alice").await;

    // Another process's writer holds the write lock (a stalled node).
    let lock = WriteLock::hold(s.dir.join("hubbub.db"));
    let send = json!({"to": "bob", "text": "while stalled", "nonce": "n-stall"});
    let (code, _) = alice.err("message.send", send.clone()).await;
    assert_eq!(code, "unavailable");
    lock.release();

    // The writer has handled the refused job once a later write is done.
    alice.ok("profile.update", json!({"bio": "after the stall"})).await;
    assert!(bob.sync_all("0").await.is_empty(), "the refused send was not stored behind the client's back");
    bob.assert_no_events().await;

    let reply = alice.ok("message.send", send).await;
    let pushed = bob.event("message.new").await;
    assert_eq!(pushed["message"]["id"], reply["message"]["id"]);
    let synced = bob.sync_all("0").await;
    assert_eq!(synced.len(), 1);
    assert_eq!(synced[0]["nonce"], "n-stall");
}

/// One `message.sync` pass from `since`, as a client runs it: the ids seen
/// and the cursor to keep for the next pass.
async fn sync_pass(c: &mut Client, since: &str) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    let mut since = since.to_owned();
    for _ in 0..1000 {
        let page = c.ok("message.sync", json!({"since": since, "limit": 100})).await;
        for m in page["messages"].as_array().expect("messages") {
            ids.push(m["id"].as_str().expect("id").to_owned());
        }
        since = page["next"].as_str().expect("next").to_owned();
        if page["more"] == false {
            break;
        }
    }
    (ids, since)
}

#[tokio::test]
async fn a_node_frozen_past_the_sync_horizon_stores_nothing_below_a_passed_cursor() {
    if !on_sqlite() {
        eprintln!("skipped: holds the SQLite write lock to park the send at the writer");
        return;
    }
    let Some(cluster) = Cluster::start().await else { return };
    let mut alice = Client::register(&cluster.nodes[0], "alice").await;
    let mut bob = Client::register(&cluster.nodes[1], "bob").await;
    let mut carol = Client::register(&cluster.nodes[2], "carol").await;
    let (_, mut cursor) = sync_pass(&mut bob, "0").await;

    // Another process holds the write lock, so alice's send (its id minted
    // on node 1) waits at node 1's writer; then node 1 is frozen (SIGSTOP)
    // and the lock released.
    let lock = WriteLock::hold(cluster.dir.join("hubbub.db"));
    let send =
        json!({"type": "message.send", "id": "frozen", "to": "bob", "text": "from a frozen node", "nonce": "n-frozen"});
    alice.send_text(&send.to_string()).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    cluster.nodes[0].signal("STOP");
    lock.release();

    // Life goes on elsewhere for longer than the sync horizon (10 s): carol
    // writes to bob through node 3, and bob keeps syncing, so his cursor
    // passes the frozen message's id.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(13);
    let mut seen = Vec::new();
    while std::time::Instant::now() < until {
        carol.send_dm("bob", "meanwhile").await;
        let (ids, next) = sync_pass(&mut bob, &cursor).await;
        seen.extend(ids);
        cursor = next;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    cluster.nodes[0].signal("CONT");

    // The frozen node's late write is refused (or, had the freeze come
    // before the id was minted, stored under a fresh id); a retry with the
    // same nonce stores it.
    let reply = alice.recv_reply().await;
    let stored = if reply["type"] == "ok" {
        reply["data"]["message"].clone()
    } else {
        assert_eq!(reply["code"], "unavailable", "{reply}");
        let mut retry = send.clone();
        retry["id"] = json!("frozen-retry");
        alice.send_text(&retry.to_string()).await;
        let r = alice.recv_reply().await;
        assert_eq!(r["type"], "ok", "the retry is stored: {r}");
        r["data"]["message"].clone()
    };
    let id = stored["id"].as_str().expect("id").to_owned();

    // Bob, syncing on from the cursor he already passed, finds it: nothing
    // was stored below it.
    let (after, _) = sync_pass(&mut bob, &cursor).await;
    assert!(after.contains(&id) || seen.contains(&id), "message {id} is below bob's cursor {cursor}: sync skipped it");
    let all = bob.sync_all("0").await;
    assert_eq!(all.iter().filter(|m| m["nonce"] == "n-frozen").count(), 1, "one stored message for the nonce");
}
