//! Property tests (fuzzing on stable) of the socket path, against the real
//! server on 127.0.0.1: raw WebSocket frames after a real upgrade (the
//! frame decoder and what the connection does with each frame), and request
//! frames on an authenticated socket (request parsing, validation and the
//! handlers behind it). For every input: no panic anywhere in the process,
//! an answer in time that follows the protocol, a bounded heap, and a
//! server that still serves others afterwards. Corpus: `tests/corpus/
//! ws_frames/` (hex) and `tests/corpus/request/`; seed and budget variables
//! in `common/fuzz.rs`.

mod common;
#[path = "common/fuzz.rs"]
mod fuzz;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use hubbub::protocol::Envelope;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[global_allocator]
static ALLOC: fuzz::Counting = fuzz::Counting;

/// Longest wait for the server's answer to one case.
const CASE_WAIT: Duration = Duration::from_secs(10);
/// Most heap the whole process (server included) may hold during a target.
const HEAP_LIMIT: usize = 256 << 20;
const PASSWORD: &str = "fuzz-secret-5b1d";

/// Counts panics on the runtimes' threads, where the servers of this
/// process run (a failing assertion on a test's own thread is not counted:
/// it fails that test already).
fn count_panics() -> Arc<AtomicUsize> {
    static PANICS: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
    PANICS
        .get_or_init(|| {
            let n = Arc::new(AtomicUsize::new(0));
            let seen = n.clone();
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if std::thread::current().name().is_some_and(|n| n.starts_with("tokio-runtime-worker")) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                previous(info);
            }));
            n
        })
        .clone()
}

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.rate_burst = 1_000_000.0;
        c.rate_per_sec = 1_000_000.0;
    })
    .await
}

/// One client frame to write, possibly malformed.
#[derive(Clone, Debug)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// The length to claim instead of the payload's own.
    claim: Option<u64>,
    payload: Vec<u8>,
}

impl Frame {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 15));
        let len = self.claim.unwrap_or(self.payload.len() as u64);
        let m = if self.mask.is_some() { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(m | len as u8),
            126..=65535 => {
                out.push(m | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(m | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        match self.mask {
            Some(k) => {
                out.extend_from_slice(&k);
                out.extend(self.payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => out.extend_from_slice(&self.payload),
        }
    }
}

fn frame() -> impl Strategy<Value = Frame> {
    let requests: Vec<Vec<u8>> = fuzz::corpus("request").into_iter().map(|(_, b)| b).collect();
    let payload = prop_oneof![
        4 => fuzz::mutated(requests),
        2 => fuzz::request_like().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => (0usize..70_000).prop_map(|n| vec![b'a'; n]),
    ];
    let opcode = prop_oneof![8 => Just(1u8), 2 => Just(0u8), 1 => Just(2u8), 1 => Just(8u8), 1 => Just(9u8), 1 => Just(10u8), 1 => 0u8..16];
    let claim = prop_oneof![
        12 => Just(None),
        1 => any::<u64>().prop_map(Some),
        1 => prop::sample::select(vec![0u64, 125, 126, 65_535, 65_536, 65_537, 1 << 31, 1 << 63, u64::MAX]).prop_map(Some),
    ];
    let mask = prop_oneof![12 => any::<[u8; 4]>().prop_map(Some), 1 => Just(None)];
    let rsv = prop_oneof![12 => Just(0u8), 1 => 0u8..8];
    let fin = prop_oneof![6 => Just(true), 1 => Just(false)];
    (fin, rsv, opcode, mask, claim, payload).prop_map(|(fin, rsv, opcode, mask, claim, payload)| Frame {
        fin,
        rsv,
        opcode,
        mask,
        claim,
        payload,
    })
}

/// A case: frames, then edits to the bytes they encode to.
fn case() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = fuzz::corpus("ws_frames").into_iter().map(|(_, b)| fuzz::unhex(&b)).collect();
    prop_oneof![
        3 => (prop::collection::vec(frame(), 1..5), prop::collection::vec(fuzz::edit(), 0..2)).prop_map(|(frames, edits)| {
            let mut out = Vec::new();
            for f in &frames {
                f.encode(&mut out);
            }
            fuzz::mutate(&out, &edits)
        }),
        1 => fuzz::mutated(seeds),
    ]
}

/// Upgrades a raw TCP connection (with `token` in the query if given).
async fn upgrade(s: &TestServer, token: Option<&str>) -> TcpStream {
    let mut tcp = TcpStream::connect(s.addr).await.expect("connect");
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    let req = format!(
        "GET /ws{query} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        s.addr
    );
    tcp.write_all(req.as_bytes()).await.expect("write upgrade");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(CASE_WAIT, tcp.read(&mut byte)).await.expect("upgrade answered").expect("read");
        assert_eq!(n, 1, "closed during the upgrade: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// Checks what the server wrote back: well-formed unmasked frames, JSON
/// replies and events, and a close code the protocol allows.
fn check_answer(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        prop_assert!(rest.len() >= 2, "a truncated frame header");
        let (b0, b1) = (rest[0], rest[1]);
        prop_assert!(b1 & 0x80 == 0, "the server masked a frame");
        let (len, head) = match b1 & 0x7f {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => (u64::from_be_bytes(rest[2..10].try_into().unwrap_or_default()) as usize, 10),
            126 | 127 => return Err(TestCaseError::fail("a truncated length")),
            n => (n as usize, 2),
        };
        prop_assert!(rest.len() >= head + len, "a truncated frame");
        let payload = &rest[head..head + len];
        match b0 & 0x0f {
            1 => {
                let v: Value = serde_json::from_slice(payload)
                    .map_err(|e| TestCaseError::fail(format!("a text frame that is not JSON: {e}")))?;
                prop_assert!(matches!(v["type"].as_str(), Some("ok" | "error" | "event")), "{v}");
            }
            8 => {
                if payload.len() >= 2 {
                    let code = u16::from_be_bytes([payload[0], payload[1]]);
                    prop_assert!(matches!(code, 1000..=1003 | 1007..=1011 | 4000..=4999), "close code {code}");
                    prop_assert!(std::str::from_utf8(&payload[2..]).is_ok(), "close reason not UTF-8");
                }
            }
            9 | 10 => {}
            op => prop_assert!(false, "server sent opcode {op}"),
        }
        rest = &rest[head + len..];
    }
    Ok(())
}

/// Writes one case, then a close frame and the end of the stream, and
/// reads everything the server answers until it closes.
async fn run_case(s: &TestServer, token: Option<&str>, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut tcp = upgrade(s, token).await;
    let mut out = bytes.to_vec();
    Frame { fin: true, rsv: 0, opcode: 8, mask: Some([1, 2, 3, 4]), claim: None, payload: vec![3, 232] }
        .encode(&mut out);
    // The server may close before reading everything: a write error is fine.
    let _ = tcp.write_all(&out).await;
    let _ = tcp.shutdown().await;
    let mut answer = Vec::new();
    // A reset after a close frame (the server stopped reading) still leaves
    // what was read so far to check.
    if tokio::time::timeout(CASE_WAIT, tcp.read_to_end(&mut answer)).await.is_err() {
        return Err(TestCaseError::fail("the server neither answered nor closed in time"));
    }
    check_answer(&answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_frames() {
    let panics = count_panics();
    let s = server().await;
    let user = Client::register(&s, "frames_user").await;
    let token = user.access_token.clone();
    let base = fuzz::reset_global_peak();
    let rt = tokio::runtime::Handle::current();
    // The corpus first, with and without authentication.
    for (name, hex) in fuzz::corpus("ws_frames") {
        for t in [None, Some(token.as_str())] {
            run_case(&s, t, &fuzz::unhex(&hex)).await.unwrap_or_else(|e| panic!("ws_frames/{name}: {e}"));
        }
    }
    let mut runner = fuzz::runner("ws_frames", fuzz::cases(200));
    let result = tokio::task::block_in_place(|| {
        runner.run(&(any::<bool>(), case()), |(authed, bytes)| {
            let t = authed.then_some(token.as_str());
            rt.block_on(run_case(&s, t, &bytes))
        })
    });
    if let Err(e) = result {
        panic!("fuzz target ws_frames: {e}");
    }
    let peak = fuzz::global_peak().saturating_sub(base);
    assert!(peak < HEAP_LIMIT, "heap grew by {peak} bytes during the frames target");
    assert_eq!(panics.load(Ordering::SeqCst), 0, "something panicked (see the output above)");
    // Still serving.
    let mut c = Client::login(&s, "frames_user").await;
    c.ok("ping", json!({})).await;
    s.stop().await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

thread_local! {
    /// The current raw socket's number in the frame record (`common::record`).
    static CONN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Records a frame of the current raw socket (fuzzed sends are marked
/// malformed: the schema check reads only the replies to them).
fn record(dir: &str, text: &str, mark: Option<&str>) {
    common::record::frame(dir, text, &common::record::test_name(), CONN.get(), mark);
}

async fn login(s: &TestServer) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.expect("connect");
    CONN.set(common::record::next_conn());
    let req = json!({"type": "auth.login", "id": "login", "username": "fuzzer", "password": PASSWORD});
    record("send", &req.to_string(), None);
    ws.send(Message::Text(req.to_string().into())).await.expect("send");
    loop {
        match tokio::time::timeout(CASE_WAIT, ws.next()).await.expect("login reply in time") {
            Some(Ok(Message::Text(t))) => {
                record("recv", &t, None);
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if v["id"] == "login" {
                    assert_eq!(v["type"], "ok", "{v}");
                    return ws;
                }
            }
            other => panic!("login: {other:?}"),
        }
    }
}

/// Sends one request frame; the reply must come, echo a valid id, and be
/// `ok` or `error`. Returns the reply, or `None` if the server closed the
/// socket after a request that may close it.
async fn run_request(ws: &mut Ws, text: &str) -> Result<Option<Value>, TestCaseError> {
    record("send", text, Some("malformed"));
    ws.send(Message::Text(text.to_owned().into())).await.map_err(|e| TestCaseError::fail(format!("send: {e}")))?;
    // The id the server can read: its envelope is strict (a duplicate key
    // makes the frame invalid, and the reply carries no id).
    let env = serde_json::from_str::<Envelope>(text).ok();
    let sent_id = env.as_ref().and_then(|e| e.id.clone()).filter(|id| id.is_string() || id.is_number());
    let kind = env.as_ref().and_then(|e| e.kind.as_ref()?.as_str().map(str::to_owned)).unwrap_or_default();
    loop {
        let next = tokio::time::timeout(CASE_WAIT, ws.next()).await;
        let msg = next.map_err(|_| TestCaseError::fail("no reply in time"))?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                record("recv", &t, None);
                let v: Value = serde_json::from_str(&t).map_err(|e| TestCaseError::fail(format!("not JSON: {e}")))?;
                match v["type"].as_str() {
                    Some("event") => continue,
                    Some("ok" | "error") => {
                        if let Some(id) = &sent_id {
                            prop_assert_eq!(&v["id"], id, "the reply echoes the id");
                        }
                        if v["type"] == "error" {
                            prop_assert!(v["code"].is_string() && v["message"].is_string(), "{}", v);
                            prop_assert!(v["code"] != "internal", "an internal error: {}", v);
                        }
                        return Ok(Some(v));
                    }
                    _ => return Err(TestCaseError::fail(format!("unexpected frame {v}"))),
                }
            }
            Some(Ok(Message::Close(c))) => {
                let closing = matches!(kind.as_str(), "auth.logout" | "account.delete" | "account.password");
                prop_assert!(closing, "closed after a {:?} request: {:?}", kind, c);
                return Ok(None);
            }
            Some(Ok(_)) => continue,
            other => return Err(TestCaseError::fail(format!("socket ended: {other:?}"))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_frames() {
    let panics = count_panics();
    let s = server().await;
    {
        let mut c = Client::connect(&s).await;
        c.ok("auth.register", json!({"username": "fuzzer", "password": PASSWORD})).await;
        Client::register(&s, "fuzz_peer").await;
    }
    let mut ws = login(&s).await;
    for (name, bytes) in fuzz::corpus("request") {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match run_request(&mut ws, &text).await {
            Ok(Some(_)) => {}
            Ok(None) => ws = login(&s).await,
            Err(e) => panic!("request/{name}: {e}"),
        }
    }
    let requests: Vec<Vec<u8>> = fuzz::corpus("request").into_iter().map(|(_, b)| b).collect();
    let strategy = prop_oneof![
        2 => fuzz::mutated(requests.clone()).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => fuzz::request_like(),
        4 => fuzz::json_mutated(requests),
    ];
    let rt = tokio::runtime::Handle::current();
    let ws = std::sync::Mutex::new(Some(ws));
    // Reply codes seen, to show how deep the inputs reach (printed).
    let codes = std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new());
    let mut runner = fuzz::runner("request_frames", fuzz::cases(1000));
    let result = tokio::task::block_in_place(|| {
        runner.run(&strategy, |text| {
            rt.block_on(async {
                let taken = ws.lock().unwrap_or_else(|e| e.into_inner()).take();
                let mut socket = match taken {
                    Some(w) => w,
                    None => login(&s).await,
                };
                let r = run_request(&mut socket, &text).await;
                if let Ok(Some(reply)) = &r {
                    let code = reply["code"].as_str().unwrap_or("ok").to_owned();
                    // A failed `auth.*` leaves the socket signed out: start
                    // the next case signed in again.
                    if code != "unauthorized" {
                        *ws.lock().unwrap_or_else(|e| e.into_inner()) = Some(socket);
                    }
                    *codes.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
                }
                r.map(|_| ())
            })
        })
    });
    if let Err(e) = result {
        panic!("fuzz target request_frames: {e}");
    }
    eprintln!("request_frames replies: {:?}", codes.lock().unwrap_or_else(|e| e.into_inner()));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "something panicked (see the output above)");
    let mut c = Client::login(&s, "fuzz_peer").await;
    c.ok("ping", json!({})).await;
    s.stop().await;
}
