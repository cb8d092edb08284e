//! The delivery property of the cluster, under random sends, reconnects,
//! node kills (SIGKILL of a `hubbub` process, then a restart) and Redis
//! kills (SIGKILL, then a restart, empty): a client that follows the
//! protocol (keeps its last `pos`, resumes with it, calls `message.sync`
//! when told to: on its first connect, `recovered: false`, `sync.needed`)
//! ends up with every acknowledged message addressed to or sent by its
//! user, on every device, in id order per conversation; and every nonce
//! maps to one stored message.
//!
//! The schedule comes from one seed: fixed by default (so CI repeats the
//! same schedule), printed, and replaced by `HUBBUB_CLUSTER_SEED` (a number
//! or `random`) to replay or explore. `HUBBUB_CLUSTER_STEPS` sets the
//! number of steps. Timing still varies between runs: the seed fixes what
//! happens, not when each packet arrives.
//!
//! Sends that get no answer are retried with the same nonce: after a node
//! is SIGKILLed mid-send, and after a stall (the test holds the SQLite
//! write lock past the nodes' store timeout, so the send answers
//! `unavailable`).
//!
//! A send whose first attempt committed but got no ok (killed between
//! commit and publish, or answered `unavailable`) is retried with the same
//! nonce; the retry returns the stored message and pushes it again (issue
//! 12, must-fix 6), so messages acknowledged only on a retry must reach
//! every device too.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use common::cluster::{Cluster, Node};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest wait for one reply before the socket is treated as gone.
const REPLY_WAIT: Duration = Duration::from_secs(10);
/// Longest wait for every device to catch up at the end.
const SETTLE: Duration = Duration::from_secs(40);
const USERS: usize = 3;
/// The nodes' `--store-timeout-ms`: short, so a stalled writer times a
/// send out well within SQLite's 5 s busy timeout.
const STORE_TIMEOUT: &str = "1500";
/// How long a stall holds the write lock: past the store timeout.
const STALL: Duration = Duration::from_millis(2500);
const DEVICES_PER_USER: usize = 2;

/// splitmix64: small, seedable, good enough for a schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = match std::env::var("HUBBUB_CLUSTER_SEED").ok().as_deref().map(str::trim) {
        Some("random") => {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        }
        Some(s) if !s.is_empty() => s.parse().expect("HUBBUB_CLUSTER_SEED is a number or `random`"),
        _ => 20_261_202,
    };
    eprintln!("cluster delivery: seed {seed} (replay with HUBBUB_CLUSTER_SEED={seed})");
    seed
}

/// The socket went away (closed, dropped, or no reply in time).
#[derive(Debug)]
struct Gone;

fn id_num(v: &Value) -> u64 {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an id: {v}"))
}

/// One device of a user: a socket that may be closed, and what it knows.
struct Device {
    name: String,
    token: String,
    ws: Option<Ws>,
    /// The socket's number in the frame record (`common::record`).
    conn: u64,
    /// The node the socket is on.
    node: usize,
    next_req: u64,
    /// The last inbox position processed (resume from it).
    pos: Option<Value>,
    /// The `message.sync` cursor.
    since: String,
    sync_due: bool,
    /// Every message this device has, by id.
    have: HashMap<u64, Value>,
    /// The newest id delivered live (events) per (conversation, sender).
    live_last: HashMap<(String, String), u64>,
    /// Ordering violations seen in live delivery.
    disorder: Vec<String>,
}

impl Device {
    fn new(name: String, token: String) -> Device {
        Device {
            name,
            token,
            ws: None,
            conn: 0,
            node: 0,
            next_req: 1,
            pos: None,
            since: "0".into(),
            sync_due: true,
            have: HashMap::new(),
            live_last: HashMap::new(),
            disorder: Vec::new(),
        }
    }

    fn keep(&mut self, m: &Value) {
        let id = id_num(&m["id"]);
        if let Some(old) = self.have.get(&id) {
            assert_eq!(old, m, "{}: message {id} came twice with different contents", self.name);
        }
        self.have.insert(id, m.clone());
    }

    fn on_event(&mut self, f: &Value) {
        if !f["pos"].is_null() {
            self.pos = Some(f["pos"].clone());
        }
        match f["event"].as_str() {
            Some("message.new") => {
                let m = &f["data"]["message"];
                let id = id_num(&m["id"]);
                let key = (m["conversation_id"].as_str().unwrap_or_default().to_owned(), m["from"].to_string());
                if !self.have.contains_key(&id) {
                    if let Some(last) = self.live_last.get(&key).copied().filter(|last| *last > id) {
                        self.disorder.push(format!("{id} after {last} from {} in {}", key.1, key.0));
                    }
                    let last = self.live_last.entry(key).or_insert(id);
                    *last = (*last).max(id);
                }
                self.keep(m);
            }
            Some("sync.needed") => self.sync_due = true,
            _ => {}
        }
    }

    async fn recv(&mut self, wait: Duration) -> Result<Option<Value>, Gone> {
        let ws = self.ws.as_mut().ok_or(Gone)?;
        match tokio::time::timeout(wait, ws.next()).await {
            Err(_) => Ok(None),
            Ok(Some(Ok(Message::Text(t)))) => {
                common::record::frame("recv", &t, &common::record::test_name(), self.conn, None);
                Ok(Some(serde_json::from_str(&t).expect("server sends JSON")))
            }
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                self.ws = None;
                Err(Gone)
            }
            Ok(Some(Ok(_))) => Ok(Some(json!({"type": "other"}))),
        }
    }

    /// Sends a request and returns its reply, handling events meanwhile.
    async fn request(&mut self, kind: &str, mut fields: Value) -> Result<Value, Gone> {
        let id = self.next_req;
        self.next_req += 1;
        fields["type"] = json!(kind);
        fields["id"] = json!(id);
        let ws = self.ws.as_mut().ok_or(Gone)?;
        let text = fields.to_string();
        common::record::frame("send", &text, &common::record::test_name(), self.conn, None);
        if tokio::time::timeout(REPLY_WAIT, ws.send(Message::Text(text.into()))).await.map_or(true, |r| r.is_err()) {
            self.ws = None;
            return Err(Gone);
        }
        let deadline = tokio::time::Instant::now() + REPLY_WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(f) = self.recv(left).await? else {
                self.ws = None;
                return Err(Gone);
            };
            if f["type"] == "event" {
                self.on_event(&f);
            } else if f["id"] == json!(id) {
                return Ok(f);
            }
        }
    }

    /// Opens a socket on `node` and authenticates, resuming from `pos`.
    async fn connect(&mut self, node: &Node, index: usize) -> Result<(), Gone> {
        self.ws = None;
        self.node = index;
        let url = common::Target::ws_url(node);
        let (ws, _) = match tokio::time::timeout(REPLY_WAIT, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok(c)) => c,
            _ => return Err(Gone),
        };
        self.ws = Some(ws);
        self.conn = common::record::next_conn();
        let mut req = json!({"token": self.token});
        if let Some(p) = &self.pos {
            req["resume"] = p.clone();
        }
        let r = self.request("auth.token", req).await?;
        if r["code"] == "unavailable" {
            self.ws = None;
            return Err(Gone); // the store or Redis is away: try again
        }
        assert_eq!(r["type"], "ok", "{}: auth.token: {r}", self.name);
        if self.pos.is_none() || r["data"]["recovered"] != true {
            self.sync_due = true;
        }
        if !r["data"]["pos"].is_null() {
            self.pos = Some(r["data"]["pos"].clone());
        }
        Ok(())
    }

    /// `message.sync` from the cursor until the end; checks page order.
    async fn sync(&mut self) -> Result<(), Gone> {
        for _ in 0..1000 {
            let r = self.request("message.sync", json!({"since": self.since, "limit": 50})).await?;
            if r["type"] != "ok" {
                // `unavailable` while the store or Redis is away: sync later.
                return Ok(());
            }
            let page = r["data"]["messages"].as_array().cloned().unwrap_or_default();
            let ids: Vec<u64> = page.iter().map(|m| id_num(&m["id"])).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{}: a sync page out of id order: {ids:?}", self.name);
            for m in &page {
                self.keep(m);
            }
            self.since = r["data"]["next"].as_str().expect("next").to_owned();
            if r["data"]["more"] == false {
                self.sync_due = false;
                return Ok(());
            }
        }
        panic!("{}: sync never ended", self.name);
    }

    /// Reads whatever is waiting, for up to `wait` of silence.
    async fn drain(&mut self, wait: Duration) -> Result<(), Gone> {
        while let Some(f) = self.recv(wait).await? {
            if f["type"] == "event" {
                self.on_event(&f);
            }
        }
        Ok(())
    }
}

/// An acknowledged send.
struct Acked {
    id: u64,
    from: usize,
    to: usize,
    nonce: String,
    /// Acknowledged only on a retry with the same nonce (see the module doc).
    retried: bool,
}

struct World {
    rng: Rng,
    /// `None` while killed. Before `cluster`: nodes die before Redis and
    /// the data directory go.
    nodes: Vec<Option<Node>>,
    cluster: Cluster,
    next_worker: u16,
    redis_down: bool,
    users: Vec<String>,
    devices: Vec<Device>,
    acked: Vec<Acked>,
    nonces: usize,
    log: Vec<String>,
}

impl World {
    fn live_node(&mut self) -> usize {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some()).collect();
        live[self.rng.below(live.len())]
    }

    fn user_of(&self, device: usize) -> usize {
        device / DEVICES_PER_USER
    }

    /// Connects `d` to a random live node, trying others on failure.
    async fn reconnect(&mut self, d: usize) {
        for _ in 0..10 {
            let n = self.live_node();
            let node = self.nodes[n].as_ref().expect("live node");
            if self.devices[d].connect(node, n).await.is_ok() {
                return;
            }
        }
        panic!("{} could not connect to any node", self.devices[d].name);
    }

    async fn ensure(&mut self, d: usize) {
        if self.devices[d].ws.is_none() {
            self.reconnect(d).await;
        }
    }

    fn new_send(&mut self, d: usize, to: usize) -> (String, Value) {
        self.nonces += 1;
        let nonce = format!("n{}", self.nonces);
        let text = format!("{} to {} #{}", self.devices[d].name, self.users[to], self.nonces);
        (nonce.clone(), json!({"to": self.users[to], "text": text, "nonce": nonce}))
    }

    /// Records an acknowledged send (`reply` is `ok`).
    fn acked(&mut self, d: usize, to: usize, nonce: String, reply: &Value, retried: bool) {
        let m = reply["data"]["message"].clone();
        self.devices[d].keep(&m);
        let (from, id) = (self.user_of(d), id_num(&m["id"]));
        self.acked.push(Acked { id, from, to, nonce, retried });
    }

    /// Sends one message and retries it with the same nonce until it is
    /// acknowledged (`retried`: an earlier attempt got no answer).
    async fn send(&mut self, d: usize, to: usize, nonce: String, req: Value, mut retried: bool) {
        for _ in 0..20 {
            self.ensure(d).await;
            match self.devices[d].request("message.send", req.clone()).await {
                Ok(r) if r["type"] == "ok" => return self.acked(d, to, nonce, &r, retried),
                Ok(r) => {
                    let code = r["code"].as_str().unwrap_or_default();
                    assert!(matches!(code, "unavailable" | "internal"), "message.send failed: {r}");
                    self.log.push(format!("send {nonce}: {code}, retrying"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(Gone) => self.log.push(format!("send {nonce}: no reply, retrying")),
            }
            retried = true;
        }
        panic!("send {nonce} never acknowledged");
    }

    /// SIGKILLs the node of `d` while `d` sends, after a random delay.
    async fn crash_during_send(&mut self, d: usize, to: usize) {
        self.ensure(d).await;
        let n = self.devices[d].node;
        if self.nodes.iter().filter(|n| n.is_some()).count() < self.nodes.len() {
            return self.kill_node().await; // one node down at a time
        }
        let (nonce, req) = self.new_send(d, to);
        let delay = Duration::from_micros(self.rng.below(8000) as u64);
        self.log.push(format!("SIGKILL node {n} {delay:?} into send {nonce}"));
        let (dev, slot) = (&mut self.devices[d], &mut self.nodes[n]);
        let (reply, ()) = tokio::join!(dev.request("message.send", req.clone()), async {
            tokio::time::sleep(delay).await;
            if let Some(node) = slot.take() {
                node.kill();
            }
        });
        match reply {
            Ok(r) if r["type"] == "ok" => self.acked(d, to, nonce, &r, false),
            _ => {
                self.log.push(format!("send {nonce}: no reply from the killed node"));
                self.send(d, to, nonce, req, true).await
            }
        }
    }

    /// Holds the SQLite write lock (as a stalled node would) while `d`
    /// sends: the send times out as `unavailable`, commits once the lock
    /// is released, and its retry finds it by nonce.
    async fn stall_during_send(&mut self, d: usize, to: usize) {
        self.ensure(d).await;
        let (nonce, req) = self.new_send(d, to);
        self.log.push(format!("stall the writer {STALL:?} during send {nonce}"));
        let path = self.cluster.dir.join("hubbub.db");
        let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
        let holder = tokio::task::spawn_blocking(move || {
            let db = rusqlite::Connection::open(path).expect("open the shared database");
            db.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
            db.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
            let _ = locked_tx.send(());
            std::thread::sleep(STALL);
            db.execute_batch("ROLLBACK").expect("release the write lock");
        });
        tokio::time::timeout(REPLY_WAIT, locked_rx).await.expect("lock taken in time").expect("lock taken");
        let reply = self.devices[d].request("message.send", req.clone()).await;
        tokio::time::timeout(REPLY_WAIT, holder).await.expect("lock released in time").expect("holder");
        match reply {
            Ok(r) if r["type"] == "ok" => self.acked(d, to, nonce, &r, false),
            other => {
                let code = other.as_ref().map_or("no reply".into(), |r| r["code"].to_string());
                self.log.push(format!("send {nonce} during the stall: {code}"));
                self.send(d, to, nonce, req, true).await
            }
        }
    }

    async fn kill_node(&mut self) {
        if let Some(dead) = self.nodes.iter().position(Option::is_none) {
            // One node down at a time: bring the dead one back instead.
            self.restart_node(dead).await;
            return;
        }
        let n = self.rng.below(self.nodes.len());
        self.log.push(format!("SIGKILL node {n}"));
        if let Some(node) = self.nodes[n].take() {
            node.kill();
        }
    }

    async fn restart_node(&mut self, n: usize) {
        // A node needs Redis to start (it leases its worker id there).
        if self.redis_down {
            self.toggle_redis().await;
        }
        // A fresh worker id: the killed node's lease lives on until it expires.
        self.next_worker += 1;
        self.log.push(format!("restart node {n} as worker {}", self.next_worker));
        let url = self.cluster.redis.url();
        let args = ["--store-timeout-ms", STORE_TIMEOUT];
        self.nodes[n] = Some(Node::start_with_args(&self.cluster.dir, &url, self.next_worker, &args).await);
    }

    async fn toggle_redis(&mut self) {
        if self.redis_down {
            self.log.push("restart redis".into());
            self.cluster.redis.restart().await;
        } else {
            self.log.push("SIGKILL redis".into());
            self.cluster.redis.kill();
        }
        self.redis_down = !self.redis_down;
    }

    async fn step(&mut self) {
        let roll = self.rng.below(100);
        let d = self.rng.below(self.devices.len());
        match roll {
            0..=59 => {
                let from = self.user_of(d);
                let to = (from + 1 + self.rng.below(USERS - 1)) % USERS;
                let (nonce, req) = self.new_send(d, to);
                self.send(d, to, nonce, req, false).await;
            }
            60..=64 => {
                let from = self.user_of(d);
                let to = (from + 1 + self.rng.below(USERS - 1)) % USERS;
                self.crash_during_send(d, to).await;
            }
            65..=68 => {
                let from = self.user_of(d);
                let to = (from + 1 + self.rng.below(USERS - 1)) % USERS;
                self.stall_during_send(d, to).await;
            }
            69..=74 => {
                self.log.push(format!("reconnect {}", self.devices[d].name));
                self.devices[d].ws = None;
                self.reconnect(d).await;
            }
            75..=84 => self.kill_node().await,
            85..=89 => self.toggle_redis().await,
            _ => {
                for d in 0..self.devices.len() {
                    let _ = self.devices[d].drain(Duration::from_millis(5)).await;
                }
            }
        }
        // What a client does between actions: read events, sync when told.
        for d in 0..self.devices.len() {
            let dev = &mut self.devices[d];
            if dev.ws.is_some() && dev.drain(Duration::from_millis(1)).await.is_ok() && dev.sync_due {
                let _ = dev.sync().await;
            }
        }
    }

    /// What device `d` must end up with.
    fn expected(&self, d: usize) -> BTreeMap<u64, &Acked> {
        let u = self.user_of(d);
        self.acked.iter().filter(|a| a.from == u || a.to == u).map(|a| (a.id, a)).collect()
    }

    /// Heals everything, then lets every device catch up as a client would.
    async fn settle(&mut self) {
        if self.redis_down {
            self.toggle_redis().await;
        }
        for n in 0..self.nodes.len() {
            if self.nodes[n].is_none() {
                self.restart_node(n).await;
            }
        }
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let mut missing = Vec::new();
            for d in 0..self.devices.len() {
                self.ensure(d).await;
                let dev = &mut self.devices[d];
                if dev.drain(Duration::from_millis(20)).await.is_err() || (dev.sync_due && dev.sync().await.is_err()) {
                    missing.push(format!("{} lost its socket", dev.name));
                    continue;
                }
                let want = self.expected(d);
                let dev = &self.devices[d];
                let lack: Vec<u64> = want.keys().filter(|id| !dev.have.contains_key(id)).copied().collect();
                if !lack.is_empty() {
                    missing.push(format!("{} lacks {lack:?}", dev.name));
                }
            }
            if missing.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "acknowledged messages never reached these devices (no event, no sync.needed):\n{}\nschedule: {:?}",
                missing.join("\n"),
                self.log
            );
        }
    }

    /// Every nonce names one stored message, the one its ack carried; and
    /// nothing was stored that was never acknowledged.
    async fn check_store(&mut self) {
        let mut stored: HashMap<(String, String), Vec<u64>> = HashMap::new();
        let mut all: HashSet<u64> = HashSet::new();
        for u in 0..USERS {
            let d = u * DEVICES_PER_USER;
            self.ensure(d).await;
            let dev = &mut self.devices[d];
            dev.since = "0".into();
            dev.have.clear();
            dev.sync().await.expect("final sync");
            for m in dev.have.values() {
                all.insert(id_num(&m["id"]));
                if m["from"] == json!(self.users[u]) {
                    let nonce = m["nonce"].as_str().expect("every send had a nonce").to_owned();
                    stored.entry((self.users[u].clone(), nonce)).or_default().push(id_num(&m["id"]));
                }
            }
        }
        for a in &self.acked {
            let key = (self.users[a.from].clone(), a.nonce.clone());
            assert_eq!(
                stored.get(&key),
                Some(&vec![a.id]),
                "nonce {} of {}: stored ids vs the acked one",
                a.nonce,
                key.0
            );
            assert!(all.contains(&a.id));
        }
        assert_eq!(stored.len(), self.acked.len(), "stored messages that were never acknowledged");
    }
}

#[tokio::test]
async fn every_acknowledged_message_reaches_every_device_once_in_order() {
    let Some(cluster) = Cluster::start_with_args(&["--store-timeout-ms", STORE_TIMEOUT]).await else { return };
    let seed = seed();
    let steps: usize = std::env::var("HUBBUB_CLUSTER_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(80);
    let started = std::time::Instant::now();
    let mut w = World {
        rng: Rng(seed),
        nodes: Vec::new(),
        cluster,
        next_worker: 3,
        redis_down: false,
        users: (0..USERS).map(|u| format!("prop{u}")).collect(),
        devices: Vec::new(),
        acked: Vec::new(),
        nonces: 0,
        log: Vec::new(),
    };
    w.nodes = std::mem::take(&mut w.cluster.nodes).into_iter().map(Some).collect();
    for u in 0..USERS {
        let c = common::Client::register(w.nodes[u % 3].as_ref().expect("node"), &w.users[u]).await;
        for k in 0..DEVICES_PER_USER {
            w.devices.push(Device::new(format!("{}/{k}", w.users[u]), c.access_token.clone()));
        }
    }
    for d in 0..w.devices.len() {
        w.reconnect(d).await;
    }
    for _ in 0..steps {
        w.step().await;
    }
    w.settle().await;
    let disorder: Vec<String> =
        w.devices.iter().flat_map(|d| d.disorder.iter().map(move |o| format!("{}: {o}", d.name))).collect();
    assert!(disorder.is_empty(), "live delivery out of id order:\n{}\nschedule: {:?}", disorder.join("\n"), w.log);
    w.check_store().await;
    let retried = w.acked.iter().filter(|a| a.retried).count();
    eprintln!(
        "cluster delivery: seed {seed}, {steps} steps, {} acked ({retried} on a retry), {:?}; schedule: {:?}",
        w.acked.len(),
        started.elapsed(),
        w.log
    );
}
