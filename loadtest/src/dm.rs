//! `dm` and `ramp`: sender/receiver pairs exchanging direct messages.
//!
//! Open loop: each sender has a fixed schedule (message `k` is due at
//! `start + (k + offset) / rate`), sends late messages as soon as it can,
//! and every latency is measured from the *scheduled* time, so a stalled
//! sender or server shows up in the figures instead of hiding. The due time
//! travels in the message text (see [`crate::stats::stamp`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Target, Ws};
use crate::setup;
use crate::stats::{self, Failures, Latency, LatencySummary};

/// One sender and its receiver.
pub struct Pair {
    sender: Ws,
    receiver: Ws,
    to: String,
}

/// Registers (or logs in) 2 × `pairs` users and opens their sockets:
/// senders (even users) on `target`, receivers (odd users) on `target_b`
/// when given (another node of the same cluster), else on `target` too.
/// Returns the pairs whose both sockets opened, and the failures.
pub async fn setup(
    target: &Arc<Target>,
    target_b: Option<&Arc<Target>>,
    prefix: &str,
    pairs: usize,
    concurrency: usize,
) -> (Vec<Pair>, Failures) {
    let (tokens, mut failures) = setup::tokens(target, prefix, 2 * pairs, concurrency).await;
    let (mut socks, mut rsocks) = match target_b {
        None => {
            let (socks, f) = setup::sockets(target, &tokens, concurrency).await;
            failures.merge(&f);
            split_pairs(socks)
        }
        Some(b) => {
            let (send_tokens, recv_tokens) = split_pairs(tokens);
            let (s, f) = setup::sockets(target, &send_tokens, concurrency).await;
            failures.merge(&f);
            let (r, f) = setup::sockets(b, &recv_tokens, concurrency).await;
            failures.merge(&f);
            (s, r)
        }
    };
    let mut out = Vec::with_capacity(pairs);
    for p in 0..pairs {
        if let (Some(sender), Some(receiver)) = (socks[p].take(), rsocks[p].take()) {
            out.push(Pair { sender, receiver, to: client::username(prefix, 2 * p + 1) });
        }
    }
    (out, failures)
}

/// Splits `[s0, r0, s1, r1, ...]` into `([s0, s1, ...], [r0, r1, ...])`.
fn split_pairs<T>(all: Vec<T>) -> (Vec<T>, Vec<T>) {
    let mut even = Vec::with_capacity(all.len() / 2);
    let mut odd = Vec::with_capacity(all.len() / 2);
    for (i, x) in all.into_iter().enumerate() {
        if i % 2 == 0 { even.push(x) } else { odd.push(x) }
    }
    (even, odd)
}

/// What one phase (a `dm` run or one `ramp` step) measured.
#[derive(Debug, Default, Serialize)]
pub struct PhaseReport {
    /// Pairs that took part.
    pub pairs: usize,
    /// Offered rate over all pairs, messages per second.
    pub offered_rate: f64,
    /// Seconds of sending.
    pub seconds: f64,
    /// `message.send` requests written.
    pub sent: u64,
    /// `ok` replies received (each message durable then).
    pub acked: u64,
    /// `message.new` events of this phase received by the recipients.
    pub delivered: u64,
    /// Delivered per second, from the phase start to the last delivery.
    pub delivered_per_sec: f64,
    /// `error` replies and lost sockets, by reason.
    pub errors: Failures,
    /// Scheduled send time to `ok` reply (the message is durable then).
    pub ack: LatencySummary,
    /// Scheduled send time to the `message.new` event at the receiver.
    pub end_to_end: LatencySummary,
    /// How far behind its schedule a sender fell at worst, in milliseconds.
    pub max_send_lag_ms: f64,
}

impl PhaseReport {
    /// Every message was acknowledged and delivered, with no errors.
    pub fn complete(&self) -> bool {
        self.sent > 0 && self.errors.total() == 0 && self.acked == self.sent && self.delivered == self.sent
    }
}

struct SenderOut {
    ws: Option<Ws>,
    sent: u64,
    acked: u64,
    errors: Failures,
    ack: Latency,
    max_lag: Duration,
}

struct ReceiverOut {
    ws: Option<Ws>,
    delivered: u64,
    e2e: Latency,
    last: Option<Instant>,
    errors: Failures,
}

/// Shared between the tasks of one phase.
struct Phase {
    number: u32,
    start: Instant,
    send_until: Instant,
    deadline: Instant,
    rate: f64,
    pairs: usize,
    acked: AtomicU64,
    delivered: AtomicU64,
}

/// Runs one phase: every pair sends at `rate_per_pair` for `seconds`, then
/// waits up to `drain` for the outstanding replies and deliveries. Returns
/// the pairs whose sockets survived, for the next phase.
pub async fn phase(
    pairs: Vec<Pair>,
    number: u32,
    rate_per_pair: f64,
    seconds: f64,
    drain: Duration,
) -> (Vec<Pair>, PhaseReport) {
    let n = pairs.len();
    let start = Instant::now() + Duration::from_millis(200);
    let send_until = start + Duration::from_secs_f64(seconds);
    let shared = Arc::new(Phase {
        number,
        start,
        send_until,
        deadline: send_until + drain,
        rate: rate_per_pair,
        pairs: n,
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let (done_tx, done_rx) = watch::channel(false);
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    let mut names = Vec::with_capacity(n);
    for (i, p) in pairs.into_iter().enumerate() {
        names.push(p.to.clone());
        let sh = shared.clone();
        senders.spawn(async move { (i, sender(sh, i, p.sender, p.to).await) });
        let (sh, done) = (shared.clone(), done_rx.clone());
        receivers.spawn(async move { (i, receiver(sh, p.receiver, done).await) });
    }
    let hard = drain + Duration::from_secs_f64(seconds) + Duration::from_secs(2);
    let sent = setup::drain(&mut senders, hard).await;
    let _ = done_tx.send(true);
    let got = setup::drain(&mut receivers, drain + Duration::from_secs(2)).await;
    summarize(shared, names, sent, got, seconds)
}

fn summarize(
    sh: Arc<Phase>,
    names: Vec<String>,
    sent: Vec<(usize, SenderOut)>,
    got: Vec<(usize, ReceiverOut)>,
    seconds: f64,
) -> (Vec<Pair>, PhaseReport) {
    let mut r = PhaseReport { pairs: sh.pairs, offered_rate: sh.rate * sh.pairs as f64, seconds, ..Default::default() };
    let (mut ack, mut e2e) = (Latency::new(), Latency::new());
    let mut max_lag = Duration::ZERO;
    let mut senders: Vec<Option<Ws>> = (0..names.len()).map(|_| None).collect();
    let mut receivers: Vec<Option<Ws>> = (0..names.len()).map(|_| None).collect();
    for (i, s) in sent {
        r.sent += s.sent;
        r.acked += s.acked;
        r.errors.merge(&s.errors);
        ack.merge(&s.ack);
        max_lag = max_lag.max(s.max_lag);
        senders[i] = s.ws;
    }
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
    for ((s, rcv), to) in senders.into_iter().zip(receivers).zip(names) {
        if let (Some(sender), Some(receiver)) = (s, rcv) {
            pairs.push(Pair { sender, receiver, to });
        }
    }
    (pairs, r)
}

async fn sender(sh: Arc<Phase>, index: usize, mut ws: Ws, to: String) -> SenderOut {
    let mut out = SenderOut {
        ws: None,
        sent: 0,
        acked: 0,
        errors: Failures::default(),
        ack: Latency::new(),
        max_lag: Duration::ZERO,
    };
    let offset = index as f64 / sh.pairs.max(1) as f64;
    let due_at = |seq: u64| sh.start + Duration::from_micros(stats::due_us(seq, sh.rate, offset));
    let mut seq = 0u64;
    let mut alive = true;
    while alive {
        let due = due_at(seq);
        let sending = due < sh.send_until;
        if !sending && out.acked + out.errors.total() >= out.sent {
            break;
        }
        let wake = if sending { due } else { sh.deadline };
        tokio::select! {
            biased;
            frame = ws.next() => alive = on_reply(&sh, frame, &mut out, due_at),
            _ = sleep_until(wake) => {
                if !sending {
                    let missing = out.sent.saturating_sub(out.acked + out.errors.total());
                    out.errors.add_n("no reply before the drain deadline", missing);
                    break;
                }
                let now = Instant::now();
                out.max_lag = out.max_lag.max(now.saturating_duration_since(due));
                let text = stats::stamp(sh.number, index, seq, stats::due_us(seq, sh.rate, offset));
                // Both strings are plain ASCII without quotes (a username and a
                // stamp), so no JSON escaping is needed; this keeps the load
                // generator's CPU for the server on a shared machine.
                let req = format!(r#"{{"type":"message.send","id":{seq},"to":"{to}","text":"{text}"}}"#);
                if ws.send(Message::text(req)).await.is_err() {
                    out.errors.add("sender socket lost");
                    alive = false;
                }
                out.sent += 1;
                seq += 1;
            }
        }
    }
    out.ws = alive.then_some(ws);
    out
}

type Frame = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// Handles one frame on a sender socket; false when the socket is gone.
fn on_reply(sh: &Phase, frame: Frame, out: &mut SenderOut, due_at: impl Fn(u64) -> Instant) -> bool {
    let text = match frame {
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Close(f))) => {
            out.errors.add(format!("sender closed {}", f.map_or(1005, |f| u16::from(f.code))));
            return false;
        }
        Some(Ok(_)) => return true,
        None | Some(Err(_)) => {
            out.errors.add("sender socket lost");
            return false;
        }
    };
    let Ok(v) = serde_json::from_str::<ReplyHead>(&text) else {
        out.errors.add("malformed frame");
        return true;
    };
    let Some(id) = v.id else { return true };
    match v.kind.as_ref() {
        "ok" => {
            out.acked += 1;
            sh.acked.fetch_add(1, Ordering::Relaxed);
            out.ack.record(Instant::now().saturating_duration_since(due_at(id)));
        }
        "error" => out.errors.add(format!("error {}", v.code.as_deref().unwrap_or("?"))),
        _ => {}
    }
    true
}

/// The fields of a reply the sender needs (the rest is skipped unparsed).
#[derive(Deserialize)]
struct ReplyHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    id: Option<u64>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
}

/// The fields of a `message.new` event the receiver needs.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<EventData<'a>>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(borrow)]
    message: Option<EventMessage<'a>>,
}

#[derive(Deserialize)]
struct EventMessage<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

async fn receiver(sh: Arc<Phase>, mut ws: Ws, mut senders_done: watch::Receiver<bool>) -> ReceiverOut {
    let mut out = ReceiverOut { ws: None, delivered: 0, e2e: Latency::new(), last: None, errors: Failures::default() };
    let mut alive = true;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => on_event(&sh, &t, &mut out),
                Some(Ok(Message::Close(f))) => {
                    out.errors.add(format!("receiver closed {}", f.map_or(1005, |f| u16::from(f.code))));
                    alive = false;
                    break;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    out.errors.add("receiver socket lost");
                    alive = false;
                    break;
                }
            },
            _ = tick.tick() => {
                let done = *senders_done.borrow_and_update();
                let caught_up = sh.delivered.load(Ordering::Relaxed) >= sh.acked.load(Ordering::Relaxed);
                if (done && caught_up) || Instant::now() >= sh.deadline {
                    break;
                }
            }
        }
    }
    out.ws = alive.then_some(ws);
    out
}

fn on_event(sh: &Phase, text: &str, out: &mut ReceiverOut) {
    let Ok(v) = serde_json::from_str::<EventHead>(text) else {
        out.errors.add("malformed frame");
        return;
    };
    if v.event.as_deref() != Some("message.new") {
        return;
    }
    let Some(m) = v.data.and_then(|d| d.message) else { return };
    match stats::parse_stamp(&m.text) {
        Some(s) if s.phase == sh.number => {
            let now = Instant::now();
            out.delivered += 1;
            sh.delivered.fetch_add(1, Ordering::Relaxed);
            out.e2e.record(now.saturating_duration_since(sh.start + Duration::from_micros(s.scheduled_us)));
            out.last = Some(now);
        }
        Some(_) => out.errors.add("delivered after its phase"),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_and_events_parse_without_a_value_tree() {
        let ok: ReplyHead = serde_json::from_str(r#"{"type":"ok","id":42,"data":{"message":{"text":"x"}}}"#).unwrap();
        assert_eq!((ok.kind.as_ref(), ok.id, ok.code), ("ok", Some(42), None));
        let err: ReplyHead =
            serde_json::from_str(r#"{"type":"error","id":1,"code":"rate_limited","message":"slow \"down\""}"#).unwrap();
        assert_eq!(err.code.as_deref(), Some("rate_limited"));
        let text = stats::stamp(1, 2, 3, 4);
        let ev =
            format!(r#"{{"type":"event","event":"message.new","data":{{"message":{{"id":"9","text":"{text}"}}}}}}"#);
        let ev: EventHead = serde_json::from_str(&ev).unwrap();
        assert_eq!(ev.event.as_deref(), Some("message.new"));
        let m = ev.data.and_then(|d| d.message).unwrap();
        assert_eq!(stats::parse_stamp(&m.text).map(|s| s.seq), Some(3));
    }

    #[test]
    fn requests_are_valid_json() {
        let (seq, to, text) = (7u64, "lt_1", stats::stamp(1, 0, 7, 123));
        let req = format!(r#"{{"type":"message.send","id":{seq},"to":"{to}","text":"{text}"}}"#);
        let v: serde_json::Value = serde_json::from_str(&req).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["text"], text.as_str());
    }

    #[test]
    fn pairs_split_into_senders_and_receivers() {
        let (s, r) = split_pairs(vec![0, 1, 2, 3, 4, 5]);
        assert_eq!((s, r), (vec![0, 2, 4], vec![1, 3, 5]));
        let (s, r) = split_pairs(Vec::<u8>::new());
        assert!(s.is_empty() && r.is_empty());
    }

    #[test]
    fn a_phase_is_complete_only_when_everything_arrived() {
        let mut p = PhaseReport { sent: 10, acked: 10, delivered: 10, ..Default::default() };
        assert!(p.complete());
        p.delivered = 9;
        assert!(!p.complete());
        p.delivered = 10;
        p.errors.add("error rate_limited");
        assert!(!p.complete());
        assert!(!PhaseReport::default().complete());
    }
}
