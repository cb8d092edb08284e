//! `instr`: a fixed, closed-loop workload for counting the server's
//! instructions per stored message and per delivered event (run the
//! server under `valgrind --tool=callgrind`; `loadtest/scripts/instructions.sh`
//! does it all).
//!
//! Closed loop, one request in flight on the whole server: every request
//! waits for its reply and for every delivery it causes before the next is
//! sent. So each SQLite group commit holds exactly one message and the
//! server does the same work in every run, whatever the machine's speed:
//! the counts are reproducible, unlike a rate-driven run whose batching
//! depends on timing.
//!
//! Phases, each bracketed with `callgrind_control --zero` and `--dump=NAME`
//! when `--callgrind-pid` is given (the setup, the warm-up and the load
//! generator itself are never counted):
//! - `dm`: `messages` `message.send` round-robin over `pairs` pairs (each
//!   message stored once and delivered to its receiver as `message.new`);
//! - `typing`: `typing` requests, `typing.start` / `typing.stop` in turn per
//!   pair (each forwarded: one ephemeral event to the receiver);
//! - `fanout`: one `post.create` by an author with `followers` online
//!   followers (one stored post, `followers` `post.new` events).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Fail, Target, Ws};
use crate::{dm, fanout, setup};

/// What to run.
pub struct InstrArgs {
    /// DM pairs.
    pub pairs: usize,
    /// DMs in the `dm` phase.
    pub messages: usize,
    /// Typing requests in the `typing` phase.
    pub typing: usize,
    /// Online followers of the `fanout` phase's author (0: no phase).
    pub followers: usize,
    /// The server's pid: phases are bracketed with `callgrind_control`.
    pub callgrind_pid: Option<u32>,
    /// Handshakes and setup requests in flight.
    pub concurrency: usize,
}

/// One measured phase: what the server did in it.
#[derive(Debug, Serialize)]
pub struct InstrPhase {
    /// `dm`, `typing` or `fanout` (the callgrind dump's name).
    pub name: &'static str,
    /// Requests sent (all answered `ok`).
    pub requests: u64,
    /// Messages or posts stored.
    pub stored: u64,
    /// Events delivered to other sockets.
    pub events: u64,
    /// Wall-clock seconds (instrumented: only for orientation).
    pub seconds: f64,
}

/// What an `instr` run did.
#[derive(Debug, Default, Serialize)]
pub struct InstrReport {
    /// The measured phases, in order.
    pub phases: Vec<InstrPhase>,
}

struct Pair {
    sender: Ws,
    receiver: Ws,
    to: String,
    conversation: String,
}

/// Runs the setup, then the phases; any failure ends the run (a count
/// taken over a partial workload would mean nothing).
pub async fn run(target: Arc<Target>, prefix: &str, args: &InstrArgs) -> Result<InstrReport, String> {
    let mut pairs = setup_pairs(&target, &format!("{prefix}d"), args).await?;
    let (mut author, mut followers) = setup_fanout(&target, &format!("{prefix}f"), args).await?;
    callgrind(args.callgrind_pid, &["--instr=on"])?;
    for i in 0..pairs.len() {
        dm_once(&mut pairs, i, i as u64, target.timeout).await?;
    }
    let limit = target.timeout;
    let mut report = InstrReport::default();
    let mut id = 1_000_000u64;
    let dm = phase(args, "dm", async {
        for i in 0..args.messages {
            id += 1;
            dm_once(&mut pairs, i, id, limit).await?;
        }
        Ok((args.messages as u64, args.messages as u64, args.messages as u64))
    })
    .await?;
    report.phases.push(dm);
    let typing = phase(args, "typing", async {
        for i in 0..args.typing {
            id += 1;
            typing_once(&mut pairs, i, id, limit).await?;
        }
        Ok((args.typing as u64, 0, args.typing as u64))
    })
    .await?;
    report.phases.push(typing);
    if let Some(author) = author.as_mut() {
        let n = followers.len() as u64;
        let fan = phase(args, "fanout", post_once(author, &mut followers, limit)).await?;
        report.phases.push(InstrPhase { events: n, ..fan });
    }
    Ok(report)
}

/// Brackets one phase with `--zero` and `--dump=NAME`.
async fn phase<F>(args: &InstrArgs, name: &'static str, work: F) -> Result<InstrPhase, String>
where
    F: std::future::Future<Output = Result<(u64, u64, u64), String>>,
{
    callgrind(args.callgrind_pid, &["--zero"])?;
    let started = std::time::Instant::now();
    let (requests, stored, events) = work.await?;
    let seconds = started.elapsed().as_secs_f64();
    callgrind(args.callgrind_pid, &[&format!("--dump={name}")])?;
    eprintln!("instr: {name}: {requests} requests, {events} events in {seconds:.1} s");
    Ok(InstrPhase { name, requests, stored, events, seconds })
}

/// Runs `callgrind_control ARGS PID` (nothing without a pid).
fn callgrind(pid: Option<u32>, args: &[&str]) -> Result<(), String> {
    let Some(pid) = pid else { return Ok(()) };
    let out = std::process::Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("callgrind_control {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

async fn setup_pairs(target: &Arc<Target>, prefix: &str, args: &InstrArgs) -> Result<Vec<Pair>, String> {
    let (tokens, failures) = setup::tokens(target, prefix, 2 * args.pairs, args.concurrency).await;
    let (socks, f) = setup::sockets(target, &tokens, args.concurrency).await;
    if !failures.0.is_empty() || !f.0.is_empty() {
        return Err(format!("setup failed: {:?} {:?}", failures.0, f.0));
    }
    let mut socks = socks.into_iter();
    let mut out = Vec::with_capacity(args.pairs);
    for p in 0..args.pairs {
        let (Some(Some(sender)), Some(Some(receiver))) = (socks.next(), socks.next()) else {
            return Err("a socket did not open".into());
        };
        let conversation = dm::conversation_of(tokens[2 * p].as_ref(), tokens[2 * p + 1].as_ref())
            .ok_or("a token without a user id")?;
        out.push(Pair { sender, receiver, to: client::username(prefix, 2 * p + 1), conversation });
    }
    Ok(out)
}

/// The author's socket (opened after the follows) and the followers'.
async fn setup_fanout(target: &Arc<Target>, prefix: &str, args: &InstrArgs) -> Result<(Option<Ws>, Vec<Ws>), String> {
    if args.followers == 0 {
        return Ok((None, Vec::new()));
    }
    let (tokens, failures) = setup::tokens(target, prefix, args.followers + 1, args.concurrency).await;
    let (socks, f) = setup::sockets(target, &tokens[1..], args.concurrency).await;
    let author = client::username(prefix, 0);
    let (followers, f2) = fanout::follow_all(target, socks, &author, args.concurrency).await;
    if !failures.0.is_empty() || !f.0.is_empty() || !f2.0.is_empty() || followers.len() != args.followers {
        return Err(format!("fanout setup failed: {:?} {:?} {:?}", failures.0, f.0, f2.0));
    }
    let token = tokens[0].clone().ok_or("the author has no token")?;
    let ws = setup::open_confirmed(target, &token).await.map_err(|Fail(r)| r)?;
    Ok((Some(ws), followers))
}

/// Sends one request and checks it is answered `ok`.
async fn ok(ws: &mut Ws, id: u64, kind: &str, fields: serde_json::Value, limit: Duration) -> Result<(), String> {
    client::request_ok(ws, id, kind, fields, limit).await.map(drop).map_err(|Fail(r)| r)
}

/// Reads `ws` until an event frame `event` arrives.
async fn expect_event(ws: &mut Ws, event: &str, limit: Duration) -> Result<(), String> {
    let needle = format!("\"event\":\"{event}\"");
    let work = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(&needle) => return Ok(()),
                Some(Ok(_)) => continue,
                other => return Err(format!("socket ended waiting for {event}: {other:?}")),
            }
        }
    };
    timeout(limit, work).await.map_err(|_| format!("timeout waiting for {event}"))?
}

async fn dm_once(pairs: &mut [Pair], i: usize, id: u64, limit: Duration) -> Result<(), String> {
    let n = pairs.len();
    let p = &mut pairs[i % n];
    let fields = json!({"to": p.to, "text": format!("instr {i}")});
    ok(&mut p.sender, id, "message.send", fields, limit).await?;
    expect_event(&mut p.receiver, "message.new", limit).await
}

/// Pair `i % n` sends `typing.start` on even rounds and `typing.stop` on
/// odd ones, so every request is forwarded (a stop clears the 2 s limit).
async fn typing_once(pairs: &mut [Pair], i: usize, id: u64, limit: Duration) -> Result<(), String> {
    let n = pairs.len();
    let kind = if (i / n) % 2 == 0 { "typing.start" } else { "typing.stop" };
    let p = &mut pairs[i % n];
    ok(&mut p.sender, id, kind, json!({"conversation": p.conversation}), limit).await?;
    expect_event(&mut p.receiver, kind, limit).await
}

async fn post_once(author: &mut Ws, followers: &mut [Ws], limit: Duration) -> Result<(u64, u64, u64), String> {
    ok(author, 2_000_000, "post.create", json!({"text": "instr post"}), limit).await?;
    for ws in followers.iter_mut() {
        expect_event(ws, "post.new", limit).await?;
    }
    Ok((1, 1, followers.len() as u64))
}
