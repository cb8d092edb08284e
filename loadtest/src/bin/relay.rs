//! `hubbub-relay`: a bare WebSocket relay of typing events, the baseline of
//! issue 18 ("ephemeral events have no storage cost: their delivery rate on
//! one node should be within 2x of the bare relay's on the same box").
//!
//! Per event it does the work hubbub does for a typing event minus
//! authentication, the membership check, rate limits and the broker: parse
//! the frame (serde, into a typed struct), look the recipient up in a shared
//! map, serialize the event (serde_json), and queue it on the recipient's
//! bounded writer queue. Nothing is stored, and no request is answered.
//!
//! Protocol, JSON text frames:
//! - first `{"type":"relay.hello","user":N}`: registers the socket as user
//!   N (a later hello of N replaces it); answered `{"type":"relay.ready"}`;
//! - then `{"type":"typing.start"|"typing.stop","to":M,"conversation":"C"}`:
//!   M's socket, if connected, gets
//!   `{"type":"typing","conversation":"C","user":N,"state":"start"|"stop"}`.
//!
//! Anything else (malformed frames, events before the hello, a second
//! hello) is ignored: it is a benchmark tool. Each socket has a reader task
//! and a writer task joined by a bounded queue (`--queue`); an event for a
//! full queue is dropped and counted, and the counts go to stderr every
//! 5 s while they change.
//!
//! Usage: `hubbub-relay --listen 127.0.0.1:9400` (port 0: any free port);
//! the bound address is the first line on stdout. Load it with
//! `hubbub-loadtest --target ADDR ephemeral --relay ...`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clap::Parser;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

/// Map shards (the registry's locks).
const SHARDS: usize = 64;
/// Frames written per flush, as hubbub's writer does.
const WRITE_BATCH: usize = 64;

#[derive(Debug, Parser)]
#[command(name = "hubbub-relay", version, about = "A bare WebSocket relay of typing events (baseline for hubbub)")]
struct Cli {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:9400")]
    listen: SocketAddr,
    /// Frames queued per socket; an event for a full queue is dropped.
    /// (hubbub: `--outbound-queue`, 256 by default, and a typing event is
    /// dropped once the queue is half full.)
    #[arg(long, default_value_t = 1024)]
    queue: usize,
}

/// What a client sends.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Inbound {
    #[serde(rename = "relay.hello")]
    Hello { user: u64 },
    #[serde(rename = "typing.start")]
    Start(Typing),
    #[serde(rename = "typing.stop")]
    Stop(Typing),
}

/// A typing signal for user `to`.
#[derive(Deserialize)]
struct Typing {
    to: u64,
    conversation: String,
}

/// What the recipient gets.
#[derive(Serialize)]
struct TypingEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    conversation: &'a str,
    user: u64,
    state: &'static str,
}

type Tx = mpsc::Sender<Utf8Bytes>;

/// Connected sockets by user, in shards so that readers on different cores
/// rarely wait for the same lock.
struct Registry {
    shards: Vec<Mutex<HashMap<u64, Tx>>>,
}

/// Events relayed and dropped, for the stderr report.
#[derive(Default)]
struct Counts {
    queued: AtomicU64,
    dropped_full: AtomicU64,
    no_recipient: AtomicU64,
}

impl Registry {
    fn new() -> Registry {
        Registry { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }

    fn shard(&self, user: u64) -> MutexGuard<'_, HashMap<u64, Tx>> {
        // A map of senders is sound after a panic elsewhere: keep going.
        self.shards[(user % SHARDS as u64) as usize].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, user: u64, tx: Tx) {
        self.shard(user).insert(user, tx);
    }

    /// Removes `user` if it is still this socket (not a later hello's).
    fn remove(&self, user: u64, tx: &Tx) {
        let mut map = self.shard(user);
        if map.get(&user).is_some_and(|t| t.same_channel(tx)) {
            map.remove(&user);
        }
    }

    /// Queues `frame` for `user` without waiting; counts what happened.
    fn send(&self, user: u64, frame: Utf8Bytes, counts: &Counts) {
        let outcome = match self.shard(user).get(&user) {
            Some(tx) => tx.try_send(frame),
            None => Err(TrySendError::Closed(frame)),
        };
        let counter = match outcome {
            Ok(()) => &counts.queued,
            Err(TrySendError::Full(_)) => &counts.dropped_full,
            Err(TrySendError::Closed(_)) => &counts.no_recipient,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One socket: this task reads, a spawned one writes what the queue holds.
async fn connection(stream: TcpStream, registry: Arc<Registry>, counts: Arc<Counts>, queue: usize) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
    let (sink, mut frames) = ws.split();
    let (tx, rx) = mpsc::channel(queue.max(1));
    tokio::spawn(writer(sink, rx));
    let mut me = None;
    while let Some(Ok(msg)) = frames.next().await {
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(_) => break,
            _ => continue,
        };
        match (serde_json::from_str::<Inbound>(&text), me) {
            (Ok(Inbound::Hello { user }), None) => {
                registry.insert(user, tx.clone());
                me = Some(user);
                let _ = tx.try_send(Utf8Bytes::from_static(r#"{"type":"relay.ready"}"#));
            }
            (Ok(Inbound::Start(t)), Some(user)) => forward(&registry, &counts, user, &t, "start"),
            (Ok(Inbound::Stop(t)), Some(user)) => forward(&registry, &counts, user, &t, "stop"),
            _ => {}
        }
    }
    if let Some(user) = me {
        registry.remove(user, &tx);
    }
    // Dropping the last sender ends the writer once it wrote what is queued.
}

/// Builds the event for `t.to` and queues it.
fn forward(registry: &Registry, counts: &Counts, user: u64, t: &Typing, state: &'static str) {
    let event = TypingEvent { kind: "typing", conversation: &t.conversation, user, state };
    if let Ok(json) = serde_json::to_string(&event) {
        registry.send(t.to, Utf8Bytes::from(json), counts);
    }
}

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// Writes queued frames, up to [`WRITE_BATCH`] per flush, until the queue
/// closes or a write fails.
async fn writer(mut sink: Sink, mut rx: mpsc::Receiver<Utf8Bytes>) {
    while let Some(first) = rx.recv().await {
        if write_batch(&mut sink, &mut rx, first).await.is_err() {
            return;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

async fn write_batch(sink: &mut Sink, rx: &mut mpsc::Receiver<Utf8Bytes>, first: Utf8Bytes) -> Result<(), WsError> {
    sink.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        match rx.try_recv() {
            Ok(frame) => sink.feed(Message::Text(frame)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// Prints the counts to stderr every 5 s while they change.
async fn report(counts: Arc<Counts>) {
    let mut last = (0, 0, 0);
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = (
            counts.queued.load(Ordering::Relaxed),
            counts.dropped_full.load(Ordering::Relaxed),
            counts.no_recipient.load(Ordering::Relaxed),
        );
        if now != last {
            eprintln!("relayed {}, dropped (queue full) {}, no recipient {}", now.0, now.1, now.2);
            last = now;
        }
    }
}

async fn serve(listener: TcpListener, queue: usize) {
    let registry = Arc::new(Registry::new());
    let counts = Arc::new(Counts::default());
    tokio::spawn(report(counts.clone()));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, registry.clone(), counts.clone(), queue));
                }
                // Out of file descriptors, say: let some sockets close.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            _ = tokio::signal::ctrl_c() => return,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let listener = match TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or_else(|_| cli.listen.to_string(), |a| a.to_string());
    // The first line on stdout, flushed, so a script can read it at once.
    let mut stdout = tokio::io::stdout();
    let _ = stdout.write_all(format!("{addr}\n").as_bytes()).await;
    let _ = stdout.flush().await;
    serve(listener, cli.queue).await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_events_serialize() {
        let hello: Inbound = serde_json::from_str(r#"{"type":"relay.hello","user":7}"#).unwrap();
        assert!(matches!(hello, Inbound::Hello { user: 7 }));
        let start: Inbound = serde_json::from_str(r#"{"type":"typing.start","to":8,"conversation":"c"}"#).unwrap();
        let Inbound::Start(t) = start else { panic!("not a start") };
        assert_eq!((t.to, t.conversation.as_str()), (8, "c"));
        for bad in ["", "{}", r#"{"type":"typing.stop","to":"8"}"#, r#"{"type":"x"}"#, "[1]"] {
            assert!(serde_json::from_str::<Inbound>(bad).is_err(), "{bad}");
        }
        let ev = TypingEvent { kind: "typing", conversation: "c\"1", user: 7, state: "stop" };
        assert_eq!(
            serde_json::to_string(&ev).unwrap(),
            r#"{"type":"typing","conversation":"c\"1","user":7,"state":"stop"}"#
        );
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_a_replaced_socket_stays() {
        let (registry, counts) = (Registry::new(), Counts::default());
        let (tx, mut rx) = mpsc::channel(1);
        registry.insert(3, tx.clone());
        registry.send(3, Utf8Bytes::from_static("a"), &counts);
        registry.send(3, Utf8Bytes::from_static("b"), &counts);
        registry.send(4, Utf8Bytes::from_static("c"), &counts);
        assert_eq!(rx.recv().await.as_deref(), Some("a"));
        let got = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!((got(&counts.queued), got(&counts.dropped_full), got(&counts.no_recipient)), (1, 1, 1));
        let (newer, _rx2) = mpsc::channel(1);
        registry.insert(3, newer);
        registry.remove(3, &tx);
        assert!(registry.shard(3).contains_key(&3), "a later hello's socket is not removed");
    }
}
