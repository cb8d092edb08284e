//! `ephemeral`: the highest rate of typing events one node delivers, against
//! hubbub or, with `--relay`, against `hubbub-relay` (the bare relay of
//! `src/bin/relay.rs`), with the same generator, schedule and rules, so the
//! two rates can be compared (issue 18: within 2x of the bare relay's).
//!
//! P sender/receiver pairs; each sender sends `typing.start` and
//! `typing.stop` in turn for its pair's conversation, open loop at R events
//! per second (event `k` due at `start + (k + offset) / R`, as in `dm`).
//! - hubbub: the pairs are set up as in `dm` (register or log in, a socket
//!   each; a direct conversation exists between any two users, no message is
//!   needed). Each request is answered `ok` with `{"sent":true|false}`; the
//!   replies are counted as acks, never as deliveries. hubbub forwards at
//!   most one `typing.start` per socket and conversation every 2 s, but a
//!   forwarded `typing.stop` clears that limit and a stop is forwarded only
//!   after a forwarded start: so strictly alternating start/stop makes
//!   every request forwarded, at any rate, and a `sent:false` is counted as
//!   an error. A phase that sends an odd number of events ends on a start;
//!   the next phase (ramp step) then begins with a stop.
//! - the relay: no registration; each socket says `relay.hello` with its
//!   own integer and waits for `relay.ready`; the sender addresses its
//!   peer's integer with `"to"`. The relay answers nothing.
//!
//! A typing event carries no stamp, so the receiver matches deliveries to
//! sends in order: its `k`-th event of the phase is the sender's `k`-th
//! (one sender per receiver, forwarded in order, every one forwarded), and
//! the end-to-end latency is from that event's *scheduled* time. An event
//! of the wrong kind (start/stop) means one was lost: counted as an error.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Fail, Target, Ws};
use crate::dm::{self, Frame, PhaseReport, Progress, ReceiverOut, ReplyHead, SenderFrame, receive};
use crate::report::Report;
use crate::stats::{self, Failures, Latency};
use crate::{ramp, setup};

/// What to run.
pub struct EphemeralArgs {
    /// Load `hubbub-relay` instead of hubbub.
    pub relay: bool,
    /// Sender/receiver pairs.
    pub pairs: usize,
    /// A fixed rate, or a ramp.
    pub mode: Mode,
    /// Time to wait for outstanding replies and deliveries after each phase.
    pub drain: Duration,
    /// Handshakes (and setup logins) in flight.
    pub concurrency: usize,
}

/// A fixed-rate run or a ramp (the rules of the DM `ramp`).
pub enum Mode {
    /// Every sender at `rate` events/s for `seconds`.
    Fixed { rate: f64, seconds: f64 },
    /// Total rates `start, start + step, ... <= max`, `step_seconds` each,
    /// until a step is not 100% delivered or its p99 exceeds `p99_ms`.
    Ramp { start: f64, step: f64, max: f64, step_seconds: f64, p99_ms: f64 },
}

/// One sender/receiver pair.
pub struct Pair {
    sender: Ws,
    receiver: Ws,
    /// The request's JSON fields after its type, plain ASCII without
    /// quotes inside: `"conversation":"<id>"` (hubbub) or
    /// `"to":<n>,"conversation":"<id>"` (relay).
    fields: String,
    /// The next event is a `typing.stop` (the last phase ended on a start).
    stop_next: bool,
}

/// Sets the pairs up, then runs the fixed phase or the ramp.
pub async fn run(
    target: &Arc<Target>,
    target_b: Option<&Arc<Target>>,
    prefix: &str,
    args: &EphemeralArgs,
) -> Result<Report, String> {
    let (pairs, setup_failures) = if args.relay {
        relay_setup(target, args.pairs, args.concurrency).await
    } else {
        hubbub_setup(target, target_b, prefix, args.pairs, args.concurrency).await
    };
    if pairs.is_empty() {
        return Err(format!("no pair could be set up: {:?}", setup_failures.0));
    }
    let relay = args.relay;
    match args.mode {
        Mode::Fixed { rate, seconds } => {
            let (_, phase) = phase(pairs, relay, rate, seconds, args.drain).await;
            Ok(Report::Ephemeral { relay, setup_failures, phase })
        }
        Mode::Ramp { start, step, max, step_seconds, p99_ms } => {
            let rates = ramp::rates(start, step, max);
            let out = ramp::run(pairs, rates, p99_ms, "events/s", |pairs, _, per_pair| {
                phase(pairs, relay, per_pair, step_seconds, args.drain)
            })
            .await;
            let (highest_passing_rate, steps) = (out.highest_passing_rate, out.steps);
            Ok(Report::EphemeralRamp { relay, setup_failures, p99_bound_ms: p99_ms, highest_passing_rate, steps })
        }
    }
}

/// hubbub: the `dm` setup (users `2p` and `2p + 1` of `prefix`, senders on
/// `target`, receivers on `target_b` if given), addressed by conversation id.
async fn hubbub_setup(
    target: &Arc<Target>,
    target_b: Option<&Arc<Target>>,
    prefix: &str,
    pairs: usize,
    concurrency: usize,
) -> (Vec<Pair>, Failures) {
    let (ready, mut failures) = dm::setup(target, target_b, prefix, pairs, concurrency).await;
    let mut out = Vec::with_capacity(ready.len());
    for p in ready {
        let (sender, mut receivers, conversation) = p.into_parts();
        let (Some(receiver), Some(conversation)) = (receivers.pop(), conversation) else {
            failures.add("setup: no conversation id in the tokens");
            continue;
        };
        let fields = format!(r#""conversation":"{conversation}""#);
        out.push(Pair { sender, receiver, fields, stop_next: false });
    }
    (out, failures)
}

/// The relay: sockets `2p` (sender) and `2p + 1` (receiver) say hello with
/// their index; the sender's events go `"to"` its receiver's index.
async fn relay_setup(target: &Arc<Target>, pairs: usize, concurrency: usize) -> (Vec<Pair>, Failures) {
    let (socks, failures) = setup::open_many(2 * pairs, concurrency, "connect", |i| {
        let target = target.clone();
        async move { relay_hello(&target, i as u64).await }
    })
    .await;
    let mut socks = socks.into_iter();
    let mut out = Vec::with_capacity(pairs);
    for p in 0..pairs {
        if let (Some(Some(sender)), Some(Some(receiver))) = (socks.next(), socks.next()) {
            let fields = format!(r#""to":{},"conversation":"relay-{p}""#, 2 * p + 1);
            out.push(Pair { sender, receiver, fields, stop_next: false });
        }
    }
    (out, failures)
}

/// Opens a socket to the relay as `user` and waits for `relay.ready`.
async fn relay_hello(target: &Target, user: u64) -> Result<Ws, Fail> {
    let mut ws = client::connect(target, None).await?;
    let hello = format!(r#"{{"type":"relay.hello","user":{user}}}"#);
    ws.send(Message::text(hello)).await.map_err(|e| Fail(format!("relay.hello: {e}")))?;
    let ready = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains(r#""type":"relay.ready""#) => return Ok(()),
                Some(Ok(_)) => {}
                _ => return Err(Fail("closed before relay.ready".into())),
            }
        }
    };
    timeout(target.timeout, ready).await.map_err(|_| Fail("timeout: relay.ready".into()))??;
    Ok(ws)
}

/// Shared between the tasks of one phase.
struct Phase {
    start: Instant,
    send_until: Instant,
    deadline: Instant,
    /// Events per second per sender.
    rate: f64,
    pairs: usize,
    relay: bool,
    /// Deliveries due so far: forwarded (hubbub) or sent (relay) events.
    expected: AtomicU64,
    delivered: AtomicU64,
}

impl Phase {
    /// When event `k` of pair `index` is due.
    fn due(&self, index: usize, k: u64) -> Instant {
        let offset = index as f64 / self.pairs.max(1) as f64;
        self.start + Duration::from_micros(stats::due_us(k, self.rate, offset))
    }
}

/// Whether event `k` of a phase that begins with a stop (`stop_first`) is a start.
fn is_start(k: u64, stop_first: bool) -> bool {
    (k % 2 == 0) != stop_first
}

#[derive(Default)]
struct SenderOut {
    ws: Option<Ws>,
    sent: u64,
    /// Replies of any kind (hubbub).
    answered: u64,
    /// `ok` replies with `sent: true` (hubbub).
    forwarded: u64,
    errors: Failures,
    ack: Latency,
    max_lag: Duration,
}

/// Runs one phase: every pair sends at `rate` events/s for `seconds`, then
/// waits up to `drain` for the outstanding replies and deliveries. Returns
/// the pairs whose sockets survived, for the next phase.
async fn phase(pairs: Vec<Pair>, relay: bool, rate: f64, seconds: f64, drain: Duration) -> (Vec<Pair>, PhaseReport) {
    let n = pairs.len();
    let start = Instant::now() + Duration::from_millis(200);
    let send_until = start + Duration::from_secs_f64(seconds);
    let sh = Arc::new(Phase {
        start,
        send_until,
        deadline: send_until + drain,
        rate,
        pairs: n,
        relay,
        expected: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let (done_tx, done_rx) = watch::channel(false);
    let (mut senders, mut receivers) = (JoinSet::new(), JoinSet::new());
    let mut kept = Vec::with_capacity(n);
    for (i, p) in pairs.into_iter().enumerate() {
        let (sh1, sh2, fields, done) = (sh.clone(), sh.clone(), p.fields.clone(), done_rx.clone());
        senders.spawn(async move { (i, sender(sh1, i, p.sender, fields, p.stop_next).await) });
        receivers.spawn(async move { (i, receiver(sh2, i, p.receiver, p.stop_next, done).await) });
        kept.push((p.fields, p.stop_next));
    }
    let hard = drain + Duration::from_secs_f64(seconds) + Duration::from_secs(2);
    let sent = setup::drain(&mut senders, hard).await;
    let _ = done_tx.send(true);
    let got = setup::drain(&mut receivers, drain + Duration::from_secs(2)).await;
    summarize(&sh, kept, sent, got, seconds)
}

fn summarize(
    sh: &Phase,
    kept: Vec<(String, bool)>,
    sent: Vec<(usize, SenderOut)>,
    got: Vec<(usize, ReceiverOut)>,
    seconds: f64,
) -> (Vec<Pair>, PhaseReport) {
    let mut r = PhaseReport {
        pairs: sh.pairs,
        offered_rate: sh.rate * sh.pairs as f64,
        seconds,
        no_replies: sh.relay,
        ..Default::default()
    };
    let (mut ack, mut e2e) = (Latency::new(), Latency::new());
    let mut max_lag = Duration::ZERO;
    let mut senders: Vec<Option<(Ws, u64)>> = kept.iter().map(|_| None).collect();
    for (i, s) in sent {
        r.sent += s.sent;
        r.acked += s.forwarded;
        r.errors.merge(&s.errors);
        ack.merge(&s.ack);
        max_lag = max_lag.max(s.max_lag);
        senders[i] = s.ws.map(|ws| (ws, s.sent));
    }
    r.expected = sh.expected.load(Ordering::Relaxed);
    let mut receivers: Vec<Option<Ws>> = kept.iter().map(|_| None).collect();
    let mut last = sh.start;
    for (i, g) in got {
        r.delivered += g.delivered;
        r.errors.merge(&g.errors);
        e2e.merge(&g.e2e);
        last = last.max(g.last.unwrap_or(sh.start));
        receivers[i] = g.ws;
    }
    let span = last.saturating_duration_since(sh.start).as_secs_f64();
    r.delivered_per_sec = if span > 0.0 { r.delivered as f64 / span } else { 0.0 };
    r.ack = ack.summary();
    r.end_to_end = e2e.summary();
    r.max_send_lag_ms = max_lag.as_secs_f64() * 1000.0;
    let mut pairs = Vec::new();
    for ((s, rcv), (fields, stop_first)) in senders.into_iter().zip(receivers).zip(kept) {
        if let (Some((sender, n)), Some(receiver)) = (s, rcv) {
            // An odd count ends on the other kind than it began with.
            pairs.push(Pair { sender, receiver, fields, stop_next: stop_first != (n % 2 == 1) });
        }
    }
    (pairs, r)
}

async fn sender(sh: Arc<Phase>, index: usize, mut ws: Ws, fields: String, stop_first: bool) -> SenderOut {
    let mut out = SenderOut::default();
    let mut alive = true;
    while alive {
        let due = sh.due(index, out.sent);
        let sending = due < sh.send_until;
        // The relay answers nothing: done once the schedule is.
        if !sending && (sh.relay || out.answered >= out.sent) {
            break;
        }
        let wake = if sending { due } else { sh.deadline };
        tokio::select! {
            biased;
            frame = ws.next() => alive = on_reply(&sh, index, frame, &mut out),
            _ = sleep_until(wake) => {
                if !sending {
                    out.errors.add_n("no reply before the drain deadline", out.sent.saturating_sub(out.answered));
                    break;
                }
                out.max_lag = out.max_lag.max(Instant::now().saturating_duration_since(due));
                alive = send_one(&sh, &mut ws, &fields, is_start(out.sent, stop_first), &mut out).await;
            }
        }
    }
    out.ws = alive.then_some(ws);
    out
}

/// Writes the sender's next event; false when the socket is gone.
async fn send_one(sh: &Phase, ws: &mut Ws, fields: &str, start: bool, out: &mut SenderOut) -> bool {
    let kind = if start { "typing.start" } else { "typing.stop" };
    let k = out.sent;
    // The id (hubbub only) is the event's number in the phase, for the ack latency.
    let req = if sh.relay {
        format!(r#"{{"type":"{kind}",{fields}}}"#)
    } else {
        format!(r#"{{"type":"{kind}","id":{k},{fields}}}"#)
    };
    out.sent += 1;
    if sh.relay {
        sh.expected.fetch_add(1, Ordering::Relaxed);
    }
    if ws.send(Message::text(req)).await.is_err() {
        out.errors.add("sender socket lost");
        return false;
    }
    true
}

/// `typing.*` reply data: whether the event was forwarded.
#[derive(Deserialize)]
struct SentFlag {
    #[serde(default)]
    sent: bool,
}

/// Handles one frame on a sender socket; false when the socket is gone.
fn on_reply(sh: &Phase, index: usize, frame: Frame, out: &mut SenderOut) -> bool {
    let text = match dm::sender_frame(frame, &mut out.errors) {
        SenderFrame::Text(t) => t,
        SenderFrame::Skip => return true,
        SenderFrame::Gone => return false,
    };
    let Ok(v) = serde_json::from_str::<ReplyHead<SentFlag>>(&text) else {
        out.errors.add("malformed frame");
        return true;
    };
    let Some(id) = v.id.filter(|id| *id < out.sent) else { return true };
    match (v.kind.as_ref(), v.data) {
        ("ok", Some(SentFlag { sent: true })) => {
            out.answered += 1;
            out.forwarded += 1;
            sh.expected.fetch_add(1, Ordering::Relaxed);
            out.ack.record(Instant::now().saturating_duration_since(sh.due(index, id)));
        }
        ("ok", _) => {
            out.answered += 1;
            out.errors.add("typing not forwarded (sent: false)");
        }
        ("error", _) => {
            out.answered += 1;
            out.errors.add(format!("error {}", v.code.as_deref().unwrap_or("?")));
        }
        _ => {}
    }
    true
}

/// The fields of a delivered typing event: hubbub's
/// `{"type":"event","event":"typing.start",...}` or the relay's
/// `{"type":"typing","state":"start",...}`.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state: Option<Cow<'a, str>>,
}

impl EventHead<'_> {
    /// `Some(true)` for a start, `Some(false)` for a stop, `None` for any other frame.
    fn typing_start(&self) -> Option<bool> {
        match (self.kind.as_ref(), self.event.as_deref(), self.state.as_deref()) {
            ("event", Some("typing.start"), _) | ("typing", _, Some("start")) => Some(true),
            ("event", Some("typing.stop"), _) | ("typing", _, Some("stop")) => Some(false),
            _ => None,
        }
    }
}

async fn receiver(
    sh: Arc<Phase>,
    index: usize,
    ws: Ws,
    stop_first: bool,
    senders_done: watch::Receiver<bool>,
) -> ReceiverOut {
    // The number, in the sender's sequence, of the next event expected.
    let mut k = 0u64;
    let progress = Progress { delivered: &sh.delivered, expected: &sh.expected, deadline: sh.deadline };
    receive(ws, senders_done, progress, |t, out| on_event(&sh, index, t, stop_first, &mut k, out)).await
}

/// Matches one delivered event to the sender's `k`-th and records its latency.
fn on_event(sh: &Phase, index: usize, text: &str, stop_first: bool, k: &mut u64, out: &mut ReceiverOut) {
    let Ok(v) = serde_json::from_str::<EventHead>(text) else {
        out.errors.add("malformed frame");
        return;
    };
    let Some(start) = v.typing_start() else { return };
    if start != is_start(*k, stop_first) {
        // Starts and stops alternate, so the previous one was lost: skip it.
        out.errors.add("typing event lost or out of order");
        *k += 1;
    }
    let now = Instant::now();
    out.e2e.record(now.saturating_duration_since(sh.due(index, *k)));
    out.delivered += 1;
    out.last = Some(now);
    sh.delivered.fetch_add(1, Ordering::Relaxed);
    *k += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_stops_alternate_across_phases() {
        assert!(is_start(0, false) && !is_start(1, false) && is_start(2, false));
        assert!(!is_start(0, true) && is_start(1, true));
    }

    #[test]
    fn both_event_shapes_parse() {
        let ev = |t: &str| serde_json::from_str::<EventHead>(t).unwrap().typing_start();
        let hub = r#"{"type":"event","event":"typing.start","data":{"conversation_id":"1-2","from":"lt_0","expires_in_ms":6000}}"#;
        assert_eq!(ev(hub), Some(true));
        assert_eq!(ev(r#"{"type":"event","event":"typing.stop","data":{}}"#), Some(false));
        assert_eq!(ev(r#"{"type":"typing","conversation":"c","user":3,"state":"start"}"#), Some(true));
        assert_eq!(ev(r#"{"type":"typing","conversation":"c","user":3,"state":"stop"}"#), Some(false));
        assert_eq!(ev(r#"{"type":"event","event":"message.new","data":{}}"#), None);
        assert_eq!(ev(r#"{"type":"ok","id":3,"data":{"sent":true}}"#), None);
    }

    #[test]
    fn replies_carry_the_sent_flag() {
        let r: ReplyHead<SentFlag> = serde_json::from_str(r#"{"type":"ok","id":4,"data":{"sent":false}}"#).unwrap();
        assert_eq!((r.kind.as_ref(), r.id), ("ok", Some(4)));
        assert!(matches!(r.data, Some(SentFlag { sent: false })));
        let e: ReplyHead<SentFlag> =
            serde_json::from_str(r#"{"type":"error","id":1,"code":"not_found","message":"x"}"#).unwrap();
        assert_eq!(e.code.as_deref(), Some("not_found"));
    }

    #[test]
    fn requests_are_valid_json() {
        let fields = format!(r#""to":{},"conversation":"relay-{}""#, 7, 3);
        let req = format!(r#"{{"type":"typing.stop",{fields}}}"#);
        let v: serde_json::Value = serde_json::from_str(&req).unwrap();
        assert_eq!((v["type"].as_str(), v["to"].as_u64()), (Some("typing.stop"), Some(7)));
    }
}
