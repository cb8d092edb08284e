//! Push notifications (issue 16), end to end: the real server, real
//! WebSockets, and a push service + Matrix gateway receiver written for
//! the tests in Python (`tools/push-receiver/receiver.py`) that verifies
//! the VAPID JWT and decrypts every Web Push payload with the `http-ece`
//! package, independently of hubbub's code. The receiver's venv is made by
//! `tools/push-receiver/setup.sh` (PyPI: http-ece, cryptography).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Client, TestServer, WAIT};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The receiver, stopped when dropped.
struct Receiver {
    port: u16,
    _child: Child,
    http: reqwest::Client,
}

impl Receiver {
    async fn start() -> Receiver {
        let root = env!("CARGO_MANIFEST_DIR");
        let setup = Command::new(format!("{root}/tools/push-receiver/setup.sh")).output();
        let setup = tokio::time::timeout(Duration::from_secs(600), setup).await.expect("venv in time").expect("setup");
        assert!(setup.status.success(), "setup.sh: {}", String::from_utf8_lossy(&setup.stderr));
        let python = String::from_utf8_lossy(&setup.stdout).trim().to_owned();
        let mut child = Command::new(python)
            .arg(format!("{root}/tools/push-receiver/receiver.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("receiver starts");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(WAIT, BufReader::new(out).read_line(&mut line))
            .await
            .expect("port in time")
            .expect("read");
        let port = line.trim().parse().expect("the receiver prints its port");
        Receiver { port, _child: child, http: reqwest::Client::new() }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn subscription(&self) -> Value {
        let r = self.http.get(format!("{}/subscribe", self.url())).send().await.expect("subscribe");
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
    }

    /// How `id` (a subscription id or a pushkey) answers from now on.
    async fn mode(&self, id: &str, mode: &str) {
        self.http.post(format!("{}/mode/{id}", self.url())).body(mode.to_owned()).send().await.expect("mode");
    }

    async fn log(&self) -> Vec<Value> {
        let r = self.http.get(format!("{}/log", self.url())).send().await.expect("log");
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
    }

    /// Waits (bounded) until `pred` holds for the log's entries matching `which`.
    async fn wait_for(&self, which: impl Fn(&Value) -> bool, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let entries: Vec<Value> = self.log().await.into_iter().filter(|e| which(e)).collect();
            if pred(&entries) {
                return entries;
            }
            assert!(tokio::time::Instant::now() < deadline, "receiver log never matched: {entries:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn sub_id(sub: &Value) -> String {
    sub["endpoint"].as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

fn for_sub(id: String) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["kind"] == "webpush" && e["sub"] == id.as_str()
}

fn accepted(e: &Value) -> bool {
    e["status"] == 201 || e["status"] == 200
}

async fn server(r: &Receiver) -> TestServer {
    let gateway = r.url();
    TestServer::start_with(move |c| {
        c.push.push_allow_http = true;
        c.push.push_poll_ms = 100;
        c.push.push_retry_base_ms = 200;
        c.push.push_retry_max_ms = 400;
        c.push.push_gateway_url = Some(gateway);
        c.push.push_max_devices = 3;
    })
    .await
}

/// Registers the subscription as a webpush device of `c`; returns its id.
async fn register_webpush(c: &mut Client, sub: &Value) -> String {
    let mut fields = sub.clone();
    fields["platform"] = json!("webpush");
    let d = c.ok("device.register", fields).await;
    d["device"]["device_id"].as_str().unwrap().to_owned()
}

/// Closes `c` and waits until `watcher` sees its user offline everywhere.
async fn go_offline(c: Client, watcher: &mut Client) {
    let name = c.username.clone();
    drop(c);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = watcher.ok("presence.query", json!({ "usernames": [name] })).await;
        if r["users"][0]["online"] == false {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} never went offline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn offline_recipient_gets_one_notification_per_message_and_syncs() {
    let r = Receiver::start().await;
    let s = server(&r).await;
    let mut ann = Client::register(&s, "ann").await;
    let mut bob = Client::register(&s, "bob").await;
    let mut cat = Client::register(&s, "cat").await;
    let vapid = bob.ok("push.config", json!({})).await["vapid_public_key"].as_str().unwrap().to_owned();
    let (bob_sub, cat_sub) = (r.subscription().await, r.subscription().await);
    register_webpush(&mut bob, &bob_sub).await;
    register_webpush(&mut cat, &cat_sub).await;
    go_offline(bob, &mut ann).await;

    // Cat is online: the message reaches her socket, no notification.
    ann.send_dm("cat", "you are here").await;
    cat.event("message.new").await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        sent.push(ann.send_dm("bob", text).await["id"].as_str().unwrap().to_owned());
    }
    let got = r.wait_for(for_sub(sub_id(&bob_sub)), |e| e.iter().filter(|e| accepted(e)).count() >= 3).await;
    // Exactly one per message: a moment more brings no duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after: Vec<Value> = r.log().await.into_iter().filter(for_sub(sub_id(&bob_sub))).collect();
    assert_eq!(got_after.len(), 3, "{got_after:?}");
    let mut texts: Vec<&str> = got.iter().map(|e| e["payload"]["text"].as_str().unwrap()).collect();
    texts.sort();
    assert_eq!(texts, ["one", "three", "two"]);
    let mut ids: Vec<String> = got.iter().map(|e| e["payload"]["message_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    sent.sort();
    assert_eq!(ids, sent);
    for e in &got {
        assert_eq!(e["payload"]["from"], "ann");
        assert_eq!(e["payload"]["type"], "message.new");
        assert_eq!(e["vapid_key"], vapid.as_str(), "signed by the key push.config serves");
        assert_eq!(e["topic"], got[0]["topic"], "one Topic per conversation");
        assert_eq!(e["urgency"], "high");
        assert!(e["ttl"].as_str().is_some_and(|t| t.parse::<u64>().is_ok()));
    }
    let none: Vec<Value> = r.log().await.into_iter().filter(for_sub(sub_id(&cat_sub))).collect();
    assert!(none.is_empty(), "an online recipient gets no notification: {none:?}");

    // Back online: the messages come by sync.
    let mut bob = Client::login(&s, "bob").await;
    let synced = bob.sync_all("0").await;
    let texts: Vec<&str> = synced.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    s.stop().await;
}

#[tokio::test]
async fn a_muted_conversation_sends_no_notification() {
    let r = Receiver::start().await;
    let s = server(&r).await;
    let mut ann = Client::register(&s, "ann").await;
    let mut cat = Client::register(&s, "cat").await;
    let mut bob = Client::register(&s, "bob").await;
    let sub = r.subscription().await;
    register_webpush(&mut bob, &sub).await;
    let (a, b): (u64, u64) = (ann.user_id.parse().unwrap(), bob.user_id.parse().unwrap());
    let with_ann = format!("{}-{}", a.min(b), a.max(b));
    bob.ok("conversation.mute", json!({"conversation": with_ann})).await;
    go_offline(bob, &mut ann).await;
    // The intake takes messages one at a time, in order: once cat's
    // notification is out, ann's (sent first) was judged already.
    ann.send_dm("bob", "hush").await;
    cat.send_dm("bob", "loud").await;
    r.wait_for(for_sub(sub_id(&sub)), |e| e.iter().any(accepted)).await;
    let got: Vec<Value> = r.log().await.into_iter().filter(for_sub(sub_id(&sub))).collect();
    let texts: Vec<&str> = got.iter().map(|e| e["payload"]["text"].as_str().unwrap_or("")).collect();
    assert_eq!(texts, ["loud"], "only the conversation that is not muted notifies: {got:?}");
    // Unread still counts in the muted conversation.
    let mut bob = Client::login(&s, "bob").await;
    let list = bob.ok("conversation.list", json!({})).await;
    let muted =
        list["conversations"].as_array().unwrap().iter().find(|c| c["conversation_id"] == with_ann.as_str()).unwrap();
    assert_eq!((muted["muted"].as_bool(), muted["unread"].as_u64()), (Some(true), Some(1)), "{muted}");
    s.stop().await;
}

#[tokio::test]
async fn preview_setting_decides_what_the_payload_carries() {
    let r = Receiver::start().await;
    let s = server(&r).await;
    let mut ann = Client::register(&s, "ann").await;
    let mut bob = Client::register(&s, "bob").await;
    let sub = r.subscription().await;
    register_webpush(&mut bob, &sub).await;
    let set = bob.ok("settings.update", json!({"push_preview": "sender"})).await;
    assert_eq!(set["push_preview"], "sender");
    let (code, _) = bob.err("settings.update", json!({"push_preview": "loud"})).await;
    assert_eq!(code, "bad_request");
    go_offline(bob, &mut ann).await;
    ann.send_dm("bob", "secret").await;
    let got = r.wait_for(for_sub(sub_id(&sub)), |e| !e.is_empty()).await;
    assert_eq!(got[0]["payload"]["from"], "ann");
    assert!(got[0]["payload"].get("text").is_none(), "{}", got[0]);

    let mut bob = Client::login(&s, "bob").await;
    bob.ok("settings.update", json!({"push_preview": "none"})).await;
    assert_eq!(bob.ok("settings.get", json!({})).await["push_preview"], "none");
    // Logging in on a new session keeps the device (the old session never logged out).
    go_offline(bob, &mut ann).await;
    ann.send_dm("bob", "secret two").await;
    let got = r.wait_for(for_sub(sub_id(&sub)), |e| e.len() >= 2).await;
    let p = &got[1]["payload"];
    assert!(p.get("text").is_none() && p.get("from").is_none(), "{p}");
    assert_eq!(p["type"], "message.new");
    s.stop().await;
}

#[tokio::test]
async fn gone_endpoint_and_rejected_pushkey_remove_the_device() {
    let r = Receiver::start().await;
    let s = server(&r).await;
    let mut ann = Client::register(&s, "ann").await;
    let mut bob = Client::register(&s, "bob").await;
    let sub = r.subscription().await;
    r.mode(&sub_id(&sub), "gone").await;
    register_webpush(&mut bob, &sub).await;
    r.mode("bob-token", "reject").await;
    bob.ok("device.register", json!({"platform": "gateway", "pushkey": "bob-token", "app_id": "chat.hubbub.ios"}))
        .await;
    assert_eq!(bob.ok("device.list", json!({})).await["devices"].as_array().unwrap().len(), 2);
    let mut watcher = Client::register(&s, "cat").await;
    go_offline(bob, &mut watcher).await;
    ann.send_dm("bob", "anyone there?").await;
    r.wait_for(for_sub(sub_id(&sub)), |e| e.iter().any(|e| e["status"] == 410)).await;
    r.wait_for(|e| e["kind"] == "gateway", |e| !e.is_empty()).await;
    let mut bob = Client::login(&s, "bob").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let devices = bob.ok("device.list", json!({})).await["devices"].as_array().unwrap().clone();
        if devices.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "devices never removed: {devices:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn gateway_collapses_per_conversation_with_the_unread_count() {
    let r = Receiver::start().await;
    let s = server(&r).await;
    let mut ann = Client::register(&s, "ann").await;
    let mut bob = Client::register(&s, "bob").await;
    r.mode("tok-1", "fail").await;
    let data = json!({"url": "https://app.example/chat"});
    bob.ok("device.register", json!({"platform": "gateway", "pushkey": "tok-1", "app_id": "chat.app", "data": data}))
        .await;
    go_offline(bob, &mut ann).await;
    for text in ["a", "b", "c"] {
        ann.send_dm("bob", text).await;
    }
    // While the gateway fails, the three merge into one pending notification.
    let is_gw = |e: &Value| e["kind"] == "gateway";
    r.wait_for(is_gw, |e| e.iter().any(|e| e["notification"]["counts"]["unread"] == 3)).await;
    r.mode("tok-1", "ok").await;
    let got = r.wait_for(is_gw, |e| e.iter().any(|e| e["status"] == 200)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ok: Vec<Value> = r.log().await.into_iter().filter(|e| is_gw(e) && e["status"] == 200).collect();
    assert_eq!(ok.len(), 1, "one notification for the conversation: {got:?}");
    let n = &ok[0]["notification"];
    assert_eq!(n["counts"]["unread"], 3);
    assert_eq!(n["content"]["body"], "c");
    assert_eq!(n["sender"], "ann");
    assert_eq!(n["type"], "m.room.message");
    assert_eq!(n["devices"][0]["app_id"], "chat.app");
    assert_eq!(n["devices"][0]["data"], data);
    assert!(n["devices"][0]["pushkey_ts"].as_i64().is_some());
    s.stop().await;
}

#[tokio::test]
async fn device_validation_limits_and_logout() {
    let r = Receiver::start().await;
    let s = server(&r).await;
    let mut bob = Client::register(&s, "bob").await;
    let sub = r.subscription().await;
    let bad = |f: Value| {
        let mut v = sub.clone();
        for (k, x) in f.as_object().unwrap() {
            v[k] = x.clone();
        }
        v["platform"] = json!("webpush");
        v
    };
    for (fields, code) in [
        (bad(json!({"endpoint": "http://push.example.com/x"})), "bad_request"),
        (bad(json!({"endpoint": "ftp://x/y"})), "bad_request"),
        (bad(json!({"endpoint": format!("https://x/{}", "a".repeat(3000))})), "bad_request"),
        (bad(json!({"keys": {"p256dh": "AAAA", "auth": "AAAA"}})), "bad_request"),
        (json!({"platform": "carrier-pigeon"}), "bad_request"),
        (json!({"platform": "gateway", "pushkey": "", "app_id": "a"}), "bad_request"),
        (json!({"platform": "gateway", "pushkey": "k", "app_id": "a", "data": [1]}), "bad_request"),
    ] {
        let (c, m) = bob.err("device.register", fields.clone()).await;
        assert_eq!(c, code, "{fields}: {m}");
    }
    let first = register_webpush(&mut bob, &sub).await;
    // The same endpoint again updates the device.
    let again = bob.ok("device.register", bad(json!({}))).await;
    assert_eq!((again["created"].clone(), again["device"]["device_id"].as_str().unwrap()), (json!(false), &*first));
    register_webpush(&mut bob, &r.subscription().await).await;
    register_webpush(&mut bob, &r.subscription().await).await;
    let (code, _) = bob.err("device.register", bad(json!({"endpoint": format!("{}/push/99", r.url())}))).await;
    assert_eq!(code, "limit_exceeded");
    let (code, _) = bob.err("device.remove", json!({"device_id": "12345"})).await;
    assert_eq!(code, "not_found");
    bob.ok("device.remove", json!({"device_id": first})).await;

    // Another session's device survives this session's logout; this one's go.
    let mut other = Client::login(&s, "bob").await;
    register_webpush(&mut other, &sub).await;
    let listed = other.ok("device.list", json!({})).await["devices"].as_array().unwrap().clone();
    assert_eq!(listed.iter().filter(|d| d["this_session"] == true).count(), 1);
    bob.ok("auth.logout", json!({})).await;
    let left = other.ok("device.list", json!({})).await["devices"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["this_session"], true);
    // The web client's service worker is served.
    let (status, body) = common::http_get(s.addr, "/sw.js", &[]).await.expect("GET /sw.js");
    assert_eq!(status, 200);
    assert!(body.contains("showNotification"));
    // A password change removes every device.
    other.ok("account.password", json!({"old_password": "password123", "new_password": "password456"})).await;
    assert!(other.ok("device.list", json!({})).await["devices"].as_array().unwrap().is_empty());
    s.stop().await;
}

/// The real binary as a child process (killed with SIGKILL by the test).
struct Node {
    child: Child,
    addr: std::net::SocketAddr,
    /// Its `/metrics` listener.
    metrics: std::net::SocketAddr,
}

impl common::Target for Node {
    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Node {
    async fn start(dir: &std::path::Path, receiver: &Receiver) -> Node {
        let port = common::free_port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], common::free_port()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hubbub"));
        cmd.env("HUBBUB_LISTEN", addr.to_string())
            .env("HUBBUB_METRICS_LISTEN", metrics.to_string())
            .env("HUBBUB_DATA_DIR", dir)
            .env("HUBBUB_BCRYPT_COST", "4")
            .env("HUBBUB_PUSH_ALLOW_HTTP", "true")
            .env("HUBBUB_PUSH_POLL_MS", "100")
            .env("HUBBUB_PUSH_RETRY_BASE_MS", "200")
            .env("HUBBUB_PUSH_RETRY_MAX_MS", "400")
            .env("HUBBUB_PUSH_LEASE_MS", "1000")
            // Small intake batches: a kill lands between batches.
            .env("HUBBUB_PUSH_INTAKE", "8")
            .env("HUBBUB_PUSH_GATEWAY_URL", receiver.url())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(nodes) = common::test_scylla() {
            cmd.env("HUBBUB_SCYLLA", nodes)
                .env("HUBBUB_SCYLLA_KEYSPACE", common::scylla_keyspace_for(dir))
                .env("HUBBUB_SCYLLA_MIGRATE", "true")
                .env("HUBBUB_SCYLLA_REQUEST_TIMEOUT_MS", "20000");
        }
        let child = cmd.spawn().expect("the hubbub binary starts");
        let deadline = tokio::time::Instant::now() + common::start_wait();
        loop {
            if let Ok((200, _)) = common::http_get(addr, "/healthz", &[]).await {
                return Node { child, addr, metrics };
            }
            assert!(tokio::time::Instant::now() < deadline, "the node never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of the metric sample `name` (e.g. `hubbub_x{a="b"}`), 0 when absent.
    async fn metric(&self, name: &str) -> f64 {
        let (status, body) = common::http_get(self.metrics, "/metrics", &[]).await.expect("GET /metrics");
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().expect("a number"))
    }

    /// Waits (bounded) until the sample `name` is at least `at_least`.
    async fn wait_metric(&self, name: &str, at_least: f64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.metric(name).await < at_least {
            assert!(tokio::time::Instant::now() < deadline, "{name} never reached {at_least}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sigkill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        tokio::time::timeout(WAIT, self.child.wait()).await.expect("the node dies in time").expect("wait");
    }
}

/// ann, and bob with a Web Push device at `r` (failing every delivery when
/// `failing`) who has gone offline; returns ann's client and bob's
/// subscription.
async fn ann_and_offline_bob(node: &Node, r: &Receiver, failing: bool) -> (Client, Value) {
    let mut ann = Client::register(node, "ann").await;
    let mut bob = Client::register(node, "bob").await;
    let sub = r.subscription().await;
    if failing {
        r.mode(&sub_id(&sub), "fail").await;
    }
    register_webpush(&mut bob, &sub).await;
    go_offline(bob, &mut ann).await;
    (ann, sub)
}

#[tokio::test]
async fn queued_notifications_survive_a_sigkill() {
    let r = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &r).await;
    let (mut ann, sub) = ann_and_offline_bob(&node, &r, true).await;
    ann.send_dm("bob", "still there after the crash").await;
    // The endpoint fails: the notification stays queued, retried with backoff.
    r.wait_for(for_sub(sub_id(&sub)), |e| e.iter().any(|e| e["status"] == 500)).await;
    drop(ann);
    node.sigkill().await;
    r.mode(&sub_id(&sub), "ok").await;

    let node = Node::start(dir.path(), &r).await;
    let got = r.wait_for(for_sub(sub_id(&sub)), |e| e.iter().any(accepted)).await;
    let ok: Vec<&Value> = got.iter().filter(|e| accepted(e)).collect();
    assert_eq!(ok.len(), 1, "{got:?}");
    assert_eq!(ok[0]["payload"]["text"], "still there after the crash");
    node.sigkill().await;
}

/// The accepted notifications of `sub` by message id (bounded wait until
/// every id of `want` has at least one).
async fn accepted_by_message(r: &Receiver, sub: &Value, want: &[String]) -> std::collections::HashMap<String, usize> {
    let got = r
        .wait_for(for_sub(sub_id(sub)), |e| {
            let ids: std::collections::HashSet<&str> =
                e.iter().filter(|e| accepted(e)).filter_map(|e| e["payload"]["message_id"].as_str()).collect();
            want.iter().all(|w| ids.contains(w.as_str()))
        })
        .await;
    let mut by_id = std::collections::HashMap::new();
    for e in got.iter().filter(|e| accepted(e)) {
        *by_id.entry(e["payload"]["message_id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    by_id
}

#[tokio::test]
async fn a_burst_to_offline_recipients_gets_exactly_one_notification_each() {
    let r = Receiver::start().await;
    let gateway = r.url();
    // /metrics is served on its own listener (--metrics-listen).
    let port = common::free_port();
    let metrics_at = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let s = TestServer::start_with(move |c| {
        c.push.push_allow_http = true;
        c.push.push_poll_ms = 100;
        c.push.push_gateway_url = Some(gateway);
        // Many small batches (the default is 512).
        c.push.push_intake = 16;
        // 150 sends as fast as the box allows: neither the per-user write
        // budget nor the per-socket request rate (both burst 100) is what
        // this test is about. (With the socket's default, a quick box got
        // `rate_limited` at request 128: CI saw it on Cassandra.)
        c.user_writes_burst = 1_000.0;
        c.rate_burst = 1_000.0;
        c.metrics_listen = hubbub::config::MetricsListen(Some(metrics_at));
    })
    .await;
    let mut ann = Client::register(&s, "ann").await;
    let mut bob = Client::register(&s, "bob").await;
    let mut cat = Client::register(&s, "cat").await;
    let (bob_sub, cat_sub) = (r.subscription().await, r.subscription().await);
    register_webpush(&mut bob, &bob_sub).await;
    register_webpush(&mut cat, &cat_sub).await;
    let group =
        ann.ok("group.create", json!({"title": "burst", "members": ["bob", "cat"]})).await["group"]["conversation_id"]
            .as_str()
            .unwrap()
            .to_owned();
    go_offline(bob, &mut ann).await;
    go_offline(cat, &mut ann).await;
    let (mut to_bob, mut to_group) = (Vec::new(), Vec::new());
    for i in 0..120 {
        to_bob.push(ann.send_dm("bob", &format!("dm {i}")).await["id"].as_str().unwrap().to_owned());
        if i % 4 == 0 {
            let m = ann.ok("message.send", json!({"conversation": group, "text": format!("group {i}")})).await;
            to_group.push(m["message"]["id"].as_str().unwrap().to_owned());
        }
    }
    let all_bob: Vec<String> = to_bob.iter().chain(&to_group).cloned().collect();
    let bob_got = accepted_by_message(&r, &bob_sub, &all_bob).await;
    let cat_got = accepted_by_message(&r, &cat_sub, &to_group).await;
    // A moment more brings no duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bob_got_after = accepted_by_message(&r, &bob_sub, &all_bob).await;
    assert_eq!(bob_got, bob_got_after);
    assert_eq!(bob_got.len(), 150, "one per message, nothing else");
    assert!(bob_got.values().all(|n| *n == 1), "exactly one per message: {bob_got:?}");
    assert_eq!(cat_got.len(), 30);
    assert!(cat_got.values().all(|n| *n == 1), "{cat_got:?}");
    let (status, metrics) = common::http_get(metrics_at, "/metrics", &[]).await.expect("GET /metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("hubbub_push_"), "the push metrics are there: {metrics}");
    assert!(!metrics.contains("push_not_queued_total{"), "nothing refused: {metrics}");
    s.stop().await;
}

#[tokio::test]
async fn notifications_of_acknowledged_messages_survive_an_immediate_sigkill() {
    let r = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &r).await;
    let (mut ann, sub) = ann_and_offline_bob(&node, &r, false).await;
    let mut sent = Vec::new();
    for i in 0..60 {
        sent.push(ann.send_dm("bob", &format!("m {i}")).await["id"].as_str().unwrap().to_owned());
    }
    // Killed right after the last acknowledgement: some messages are
    // still intake entries, some jobs, some sent.
    node.sigkill().await;
    drop(ann);
    let node = Node::start(dir.path(), &r).await;
    let got = accepted_by_message(&r, &sub, &sent).await;
    // Every acknowledged message is announced; a crash may repeat one
    // (sent, then killed before it was marked done), never lose one.
    assert_eq!(got.len(), 60, "{got:?}");
    node.sigkill().await;
}

#[tokio::test]
async fn a_restarted_node_resumes_from_its_stored_intake_cursor() {
    let r = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::start(dir.path(), &r).await;
    let stored = r#"hubbub_push_intake_starts_total{from="stored"}"#;
    assert_eq!(node.metric(stored).await, 0.0, "a new store has no cursor");
    let (mut ann, sub) = ann_and_offline_bob(&node, &r, false).await;
    let first = ann.send_dm("bob", "before the cursor").await["id"].as_str().unwrap().to_owned();
    accepted_by_message(&r, &sub, std::slice::from_ref(&first)).await;
    // The cursor follows the clock (a few seconds behind) and is saved
    // about once a second: wait for two saves.
    node.wait_metric("hubbub_push_intake_cursor_saves_total", 2.0).await;
    // Acknowledged, then killed at once: their entries lie above the saved cursor.
    let mut sent = vec![first];
    for i in 0..10 {
        sent.push(ann.send_dm("bob", &format!("m {i}")).await["id"].as_str().unwrap().to_owned());
    }
    node.sigkill().await;
    drop(ann);
    let node = Node::start(dir.path(), &r).await;
    // Every start counts once, by where its cursor came from.
    node.wait_metric(stored, 1.0).await;
    for from in ["floor", "give_up"] {
        let other = format!("hubbub_push_intake_starts_total{{from=\"{from}\"}}");
        assert_eq!(node.metric(&other).await, 0.0, "resumed from the stored cursor, not {from}");
    }
    // Nothing lost (a crash may repeat one: sent, then killed before it was marked done).
    let got = accepted_by_message(&r, &sub, &sent).await;
    assert_eq!(got.len(), sent.len(), "{got:?}");
    node.sigkill().await;
}
