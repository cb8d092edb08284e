//! Test harness: runs the real server in-process on 127.0.0.1:0 and talks to
//! it over real WebSockets. Every wait has a timeout.
#![allow(dead_code)]

pub mod cluster;
pub mod ports;
pub mod record;

pub use ports::free_port;

/// A small deterministic generator (splitmix64) for the seeded tests: the
/// same seed gives the same run every time.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hubbub::config::Config;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A server running in this process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), hubbub::error::Error>>>,
}

/// How long a server may take to become healthy. On CQL it first creates
/// a fresh keyspace of ~45 tables, and Cassandra applies schema changes one
/// at a time for all the tests running at once, each slower as the node's
/// schema grows (late in the CQL pass the node holds hundreds of test
/// keyspaces: over 180 s for two servers starting at once was seen in CI),
/// so that takes far longer than anything else a test waits for. A server
/// that fails to start fails at once instead (see `wait_healthy`).
pub fn start_wait() -> Duration {
    if test_scylla().is_some() { Duration::from_secs(600) } else { WAIT }
}

/// The CQL node(s) the socket tests store in (`HUBBUB_TEST_SCYLLA=host:port`,
/// set by `./test.sh` for its CQL pass), or `None` for SQLite.
pub fn test_scylla() -> Option<String> {
    std::env::var("HUBBUB_TEST_SCYLLA").ok().filter(|v| !v.is_empty())
}

/// The keyspace of a test server on CQL: named after its data directory,
/// so a restart on the same directory (or every node of a cluster sharing
/// it) finds the same data, and every test gets its own.
pub fn scylla_keyspace_for(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    format!("hubbub_sock_{:016x}", h.finish())
}

/// Drops the CQL keyspace of a test server whose data directory is going
/// away (no-op on SQLite). Every test creates a keyspace of ~45 tables, and
/// Cassandra applies schema changes one at a time, each slower as the
/// node's schema grows: without this, hundreds of dead keyspaces pile up
/// over the CQL pass and late tests wait minutes to create theirs. Runs on
/// its own thread and runtime (it is called from `Drop`), bounded by a
/// timeout; a failure only leaves the keyspace behind.
pub fn drop_test_keyspace(dir: &Path) {
    let Some(nodes) = test_scylla() else { return };
    let ks = scylla_keyspace_for(dir);
    let run = move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let drop = async {
                let nodes: Vec<String> = nodes.split(',').map(str::to_string).collect();
                // No schema metadata: the driver would read every keyspace's
                // at connect and again after the DROP.
                let session = scylla::client::session_builder::SessionBuilder::new()
                    .known_nodes(&nodes)
                    .fetch_schema_metadata(false)
                    .schema_agreement_interval(Duration::from_millis(20))
                    .build()
                    .await
                    .map_err(|e| e.to_string())?;
                session.query_unpaged(format!("DROP KEYSPACE IF EXISTS {ks}"), &[]).await.map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            };
            tokio::time::timeout(Duration::from_secs(120), drop).await.map_err(|_| "timed out".to_string())?
        })
    };
    match std::thread::spawn(run).join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("note: could not drop test keyspace: {e}"),
        Err(_) => eprintln!("note: dropping a test keyspace panicked"),
    }
}

/// Test defaults: a cheap bcrypt cost and, since every test user comes from
/// 127.0.0.1, no registration or bcrypt-pool limits per address (the tests
/// of those limits set their own); everything else as shipped. With
/// `HUBBUB_TEST_SCYLLA=host:port` the server stores in that CQL node
/// instead, in the keyspace of [`scylla_keyspace_for`], created at start
/// (`--scylla-migrate`).
pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::with_data_dir(dir);
    c.bcrypt_cost = 4;
    c.register_per_addr = 1_000_000;
    c.register_global_per_min = 1_000_000;
    c.bcrypt_per_key = 10_000;
    c.bcrypt_queue = 10_000;
    if let Some(nodes) = test_scylla() {
        c.scylla_nodes = nodes.split(',').map(str::to_string).collect();
        c.scylla_keyspace = scylla_keyspace_for(dir);
        c.scylla_migrate = true;
        c.scylla_request_timeout_ms = 20_000;
    }
    c
}

impl TestServer {
    /// Starts a server with default test settings in a fresh data directory.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusts the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(&dir, tweak).await;
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on an existing data directory (for restarts).
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = test_config(dir);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hubbub::server::run(listener, config, async {
            let _ = stopped.await;
        }));
        let s = TestServer { addr, dir: dir.to_path_buf(), _tmp: None, stop: Some(stop), task: Some(task) };
        s.wait_healthy().await;
        s
    }

    async fn wait_healthy(&self) {
        let deadline = tokio::time::Instant::now() + start_wait();
        loop {
            if let Ok((status, _)) = http_get(self.addr, "/healthz", &[]).await {
                if status == 200 {
                    return;
                }
            }
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                panic!("the server stopped before it became healthy (its store or listener failed to open)");
            }
            assert!(tokio::time::Instant::now() < deadline, "server never became healthy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `ws://…/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Stops the server gracefully and waits until it has finished.
    pub async fn stop(mut self) -> PathBuf {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let res = tokio::time::timeout(WAIT, t).await.expect("server stops in time");
            res.expect("server task").expect("server exits cleanly");
        }
        self.dir.clone()
    }

    /// Keeps the data directory alive beyond this server (for restarts).
    pub fn take_tempdir(&mut self) -> Option<tempfile::TempDir> {
        self._tmp.take()
    }
}

impl Drop for TestServer {
    /// A server that owns its data directory takes its CQL keyspace with it
    /// (after asking the server to stop); one started on a caller's
    /// directory (restarts) leaves it to that caller.
    fn drop(&mut self) {
        if self._tmp.is_some() && test_scylla().is_some() {
            if let Some(s) = self.stop.take() {
                let _ = s.send(());
            }
            drop_test_keyspace(&self.dir);
        }
    }
}

/// A minimal HTTP GET; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf)).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Anything a client can connect to.
pub trait Target {
    /// `ws://…/ws`.
    fn ws_url(&self) -> String;
}

impl Target for TestServer {
    fn ws_url(&self) -> String {
        TestServer::ws_url(self)
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that matches replies to requests by id and keeps
/// events that arrive in between for later.
pub struct Client {
    ws: Ws,
    events: std::collections::VecDeque<Value>,
    next_id: u64,
    pub username: String,
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    /// For the frame record (`record`): this socket's number and test, and
    /// the mark of the next frame sent.
    rec: (u64, String, Option<&'static str>),
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Close(u16),
    Dropped,
}

impl Client {
    /// Opens a socket to `url` (no authentication).
    pub async fn connect_url(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("connect");
        Client::from_ws(ws)
    }

    fn from_ws(ws: Ws) -> Client {
        Client {
            ws,
            events: Default::default(),
            next_id: 1,
            username: String::new(),
            access_token: String::new(),
            refresh_token: String::new(),
            user_id: String::new(),
            rec: (record::next_conn(), record::test_name(), None),
        }
    }

    /// Marks the next frame sent as deliberately malformed: the frame record
    /// keeps it out of the schema check (the reply is still checked).
    pub fn malformed_next(&mut self) {
        self.rec.2 = Some("malformed");
    }

    /// Marks the next frame sent as a request expected to fail: the frame
    /// record lets it break the schema if the server refuses it (as `err` does).
    pub fn expect_error_next(&mut self) {
        self.rec.2 = Some("expect_error");
    }

    fn record(&mut self, dir: &str, text: &str) {
        let mark = if dir == "send" { self.rec.2.take() } else { None };
        record::frame(dir, text, &self.rec.1, self.rec.0, mark);
    }

    /// Opens an unauthenticated socket from source address `ip` (any
    /// 127.x.y.z works on Linux loopback); the HTTP status on refusal.
    pub async fn connect_from(server: &impl Target, ip: &str) -> Result<Client, u16> {
        let url = Target::ws_url(server);
        let addr: SocketAddr = url.trim_start_matches("ws://").trim_end_matches("/ws").parse().expect("ws://addr/ws");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(ip.parse().expect("ip"), 0)).expect("bind source address");
        let tcp = tokio::time::timeout(WAIT, socket.connect(addr)).await.expect("connect in time").expect("connect");
        let handshake = tokio_tungstenite::client_async(url.as_str(), MaybeTlsStream::Plain(tcp));
        match tokio::time::timeout(WAIT, handshake).await.expect("handshake in time") {
            Ok((ws, _)) => Ok(Client::from_ws(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("unexpected connect error: {e}"),
        }
    }

    /// Opens an unauthenticated socket.
    pub async fn connect(server: &impl Target) -> Client {
        Self::connect_url(&Target::ws_url(server)).await
    }

    /// Registers `username` (password `password123`) on a new socket.
    pub async fn register(server: &impl Target, username: &str) -> Client {
        let mut c = Self::connect(server).await;
        let data = c.ok("auth.register", json!({"username": username, "password": "password123"})).await;
        c.adopt(&data);
        c
    }

    /// Logs `username` in on a new socket.
    pub async fn login(server: &impl Target, username: &str) -> Client {
        let mut c = Self::connect(server).await;
        let data = c.ok("auth.login", json!({"username": username, "password": "password123"})).await;
        c.adopt(&data);
        c
    }

    /// Opens a socket authenticated with `token` via `auth.token`.
    pub async fn with_token(server: &impl Target, token: &str) -> Client {
        let mut c = Self::connect(server).await;
        let data = c.ok("auth.token", json!({ "token": token })).await;
        c.username = data["user"]["username"].as_str().unwrap_or_default().to_owned();
        c.user_id = data["user"]["id"].as_str().unwrap_or_default().to_owned();
        c.access_token = token.to_owned();
        c
    }

    /// Remembers the identity and tokens of an auth reply.
    pub fn adopt(&mut self, data: &Value) {
        self.username = data["user"]["username"].as_str().expect("username").to_owned();
        self.user_id = data["user"]["id"].as_str().expect("user id").to_owned();
        self.access_token = data["access_token"].as_str().expect("access token").to_owned();
        self.refresh_token = data["refresh_token"].as_str().expect("refresh token").to_owned();
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.record("send", text);
        self.ws.send(Message::Text(text.into())).await.expect("send");
    }

    /// Sends a raw frame.
    pub async fn send_message(&mut self, m: Message) {
        if let Message::Text(t) = &m {
            self.record("send", t);
        }
        self.ws.send(m).await.expect("send");
    }

    /// The next JSON frame of any kind.
    pub async fn recv_frame(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame arrives in time")
                .expect("socket open")
                .expect("frame ok");
            match msg {
                Message::Text(t) => {
                    self.record("recv", &t);
                    return serde_json::from_str(&t).expect("server sends JSON");
                }
                Message::Close(c) => panic!("socket closed unexpectedly: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next reply frame (events arriving first are kept).
    pub async fn recv_reply(&mut self) -> Value {
        loop {
            let f = self.recv_frame().await;
            if f["type"] == "event" {
                self.events.push_back(f);
            } else {
                return f;
            }
        }
    }

    /// Sends a request of `kind` with `fields` and returns the whole reply.
    pub async fn request(&mut self, kind: &str, fields: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = fields;
        frame["type"] = json!(kind);
        frame["id"] = json!(id);
        self.send_text(&frame.to_string()).await;
        let reply = self.recv_reply().await;
        assert_eq!(reply["id"], json!(id), "reply matches request: {reply}");
        reply
    }

    /// A request that must succeed; returns its data.
    pub async fn ok(&mut self, kind: &str, fields: Value) -> Value {
        let r = self.request(kind, fields).await;
        assert_eq!(r["type"], "ok", "{kind} should succeed: {r}");
        r["data"].clone()
    }

    /// A request that must fail; returns (code, message).
    pub async fn err(&mut self, kind: &str, fields: Value) -> (String, String) {
        self.rec.2 = Some("expect_error");
        let r = self.request(kind, fields).await;
        assert_eq!(r["type"], "error", "{kind} should fail: {r}");
        (r["code"].as_str().unwrap_or_default().to_owned(), r["message"].as_str().unwrap_or_default().to_owned())
    }

    /// The next event named `name` (others are kept).
    pub async fn event(&mut self, name: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return self.events.remove(i).map(|e| e["data"].clone()).unwrap_or_default();
        }
        loop {
            let f = self.recv_frame().await;
            if f["type"] == "event" && f["event"] == name {
                return f["data"].clone();
            }
            self.events.push_back(f);
        }
    }

    /// Asserts no event is waiting right now (after a ping round trip).
    pub async fn assert_no_events(&mut self) {
        self.ok("ping", json!({})).await;
        assert!(self.events.is_empty(), "unexpected events: {:?}", self.events);
    }

    /// Waits for the socket to end; returns the close code if one was sent.
    pub async fn ended(&mut self) -> Ended {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("socket ends in time") {
                None | Some(Err(_)) => return Ended::Dropped,
                Some(Ok(Message::Close(Some(f)))) => return Ended::Close(f.code.into()),
                Some(Ok(Message::Close(None))) => return Ended::Dropped,
                Some(Ok(Message::Text(t))) => self.record("recv", &t),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Every JSON frame until the socket ends (events kept earlier
    /// included), and how it ended.
    pub async fn frames_until_end(&mut self) -> (Vec<Value>, Ended) {
        let mut frames: Vec<Value> = self.events.drain(..).collect();
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("socket ends in time") {
                None | Some(Err(_)) | Some(Ok(Message::Close(None))) => return (frames, Ended::Dropped),
                Some(Ok(Message::Close(Some(f)))) => return (frames, Ended::Close(f.code.into())),
                Some(Ok(Message::Text(t))) => {
                    self.record("recv", &t);
                    frames.push(serde_json::from_str(&t).expect("server sends JSON"));
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The event frames kept so far (whole), without waiting for more.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.events.drain(..).collect()
    }

    /// The next event frame, whole (from the kept ones first).
    pub async fn next_event(&mut self) -> Value {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        loop {
            let f = self.recv_frame().await;
            if f["type"] == "event" {
                return f;
            }
        }
    }

    /// Opens a socket with `auth.token` and `resume` (a `pos` value or
    /// null); returns the client and the reply data.
    pub async fn resume(server: &impl Target, token: &str, resume: Value) -> (Client, Value) {
        let mut c = Self::connect(server).await;
        let mut req = json!({ "token": token });
        if !resume.is_null() {
            req["resume"] = resume;
        }
        let data = c.ok("auth.token", req).await;
        c.username = data["user"]["username"].as_str().unwrap_or_default().to_owned();
        c.user_id = data["user"]["id"].as_str().unwrap_or_default().to_owned();
        c.access_token = token.to_owned();
        (c, data)
    }

    /// Every message to or from me after `since`, through `message.sync`.
    pub async fn sync_all(&mut self, since: &str) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        let mut since = since.to_owned();
        for _ in 0..1000 {
            let page = self.ok("message.sync", json!({"since": since, "limit": 100})).await;
            for m in page["messages"].as_array().expect("messages") {
                if !out.iter().any(|o| o["id"] == m["id"]) {
                    out.push(m.clone());
                }
            }
            since = page["next"].as_str().expect("next").to_owned();
            if page["more"] == false {
                break;
            }
        }
        out
    }

    /// Sends a message and returns the stored message.
    pub async fn send_dm(&mut self, to: &str, text: &str) -> Value {
        self.ok("message.send", json!({"to": to, "text": text})).await["message"].clone()
    }
}

/// The next `n` `message.new` events of `c` (whole frames, other events skipped).
pub async fn message_events(c: &mut Client, n: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = c.next_event().await;
        if e["event"] == "message.new" {
            out.push(e);
        }
    }
    out
}

/// Opens a socket with extra upgrade headers; returns the HTTP status on refusal.
pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
    let mut req = url.into_client_request().expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req)).await.expect("in time") {
        Ok((ws, _)) => Ok(Client::from_ws(ws)),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected connect error: {e}"),
    }
}
