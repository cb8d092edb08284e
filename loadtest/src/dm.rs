//! `dm` and `ramp`: sender/receiver pairs exchanging direct messages.
//!
//! Open loop: each sender has a fixed schedule (message `k` is due at
//! `start + (k + offset) / rate`), sends late messages as soon as it can,
//! and every latency is measured from the *scheduled* time, so a stalled
//! sender or server shows up in the figures instead of hiding. The due time
//! travels in the message text (see [`crate::stats::stamp`]).
//!
//! With `--typing-per-sec T`, each sender also sends `typing.start` for its
//! conversation T times a second on the same socket (its own open-loop
//! schedule), so the message figures can be compared with and without
//! typing traffic beside them. Typing replies use ids from
//! [`TYPING_ID_BASE`] up and are counted apart from the messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::client::{self, Target, Ws};
use crate::setup;
use crate::stats::{self, Failures, Latency, LatencySummary};

/// One sender and its receivers: a direct pair (one receiver), or a
/// group's author and the members' sockets (the `groups` scenario).
pub struct Pair {
    sender: Ws,
    receivers: Vec<Ws>,
    /// Where the sender's messages go, as the request's JSON fields:
    /// `"to":"<username>"` or `"conversation":"<id>"`.
    address: String,
    /// Their conversation id (a direct pair's from the tokens' `sub`), for typing.
    conversation: Option<String>,
}

impl Pair {
    /// A sender whose messages (`message.send` with the JSON fields
    /// `address`, unescaped: plain ASCII without quotes) reach `receivers`.
    pub fn new(sender: Ws, receivers: Vec<Ws>, address: String, conversation: Option<String>) -> Pair {
        Pair { sender, receivers, address, conversation }
    }

    /// The sender's socket, the receivers' and their conversation id (the
    /// `ephemeral` scenario drives the sockets of a `dm` setup itself).
    pub fn into_parts(self) -> (Ws, Vec<Ws>, Option<String>) {
        (self.sender, self.receivers, self.conversation)
    }
}

/// Request ids of `typing.start` start here (message ids count from 0).
pub const TYPING_ID_BASE: u64 = 1 << 40;

/// The `sub` claim (the user id) of a JWT, read without verifying it.
fn token_user(token: &str) -> Option<u64> {
    let payload = token.split('.').nth(1)?;
    let mut bits = 0u32;
    let mut acc = 0u32;
    let mut bytes = Vec::with_capacity(payload.len() * 3 / 4);
    for c in payload.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["sub"].as_str()?.parse().ok()
}

/// The direct conversation id of two users' tokens.
pub(crate) fn conversation_of(a: Option<&String>, b: Option<&String>) -> Option<String> {
    let (a, b) = (token_user(a?)?, token_user(b?)?);
    Some(format!("{}-{}", a.min(b), a.max(b)))
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
    let conversations: Vec<Option<String>> =
        (0..pairs).map(|p| conversation_of(tokens[2 * p].as_ref(), tokens[2 * p + 1].as_ref())).collect();
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
            let address = format!(r#""to":"{}""#, client::username(prefix, 2 * p + 1));
            out.push(Pair::new(sender, vec![receiver], address, conversations[p].clone()));
        }
    }
    (out, failures)
}

/// A public test key pair's public half and auth secret (RFC 8291's
/// example): the server encrypts to it; nobody needs to decrypt.
const PUSH_P256DH: &str = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const PUSH_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

/// `dm --offline-push`: each receiver registers a Web Push device at
/// `endpoint` (`?u=<index>` keeps them distinct), then closes its socket.
pub async fn go_offline_with_push(pairs: &mut [Pair], endpoint: &str, limit: Duration) -> Result<(), String> {
    for (i, p) in pairs.iter_mut().enumerate() {
        // A direct pair has one receiver; without sockets it expects no deliveries.
        let Some(mut ws) = std::mem::take(&mut p.receivers).pop() else { continue };
        let fields = serde_json::json!({
            "platform": "webpush",
            "endpoint": format!("{endpoint}?u={i}"),
            "keys": {"p256dh": PUSH_P256DH, "auth": PUSH_AUTH},
        });
        match client::request(&mut ws, 1_000_000 + i as u64, "device.register", fields, limit).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("device.register refused: {e:?}")),
            Err(e) => return Err(format!("device.register failed: {e:?}")),
        }
        let _ = ws.close(None).await;
    }
    // Let the server see the sockets close (presence) before sending starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
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
    /// Deliveries due: each acknowledged message once per receiver of its
    /// sender (`acked` for direct pairs).
    pub expected: u64,
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
    /// Offered `typing.start` rate over all pairs, per second (0: none).
    pub typing_offered_rate: f64,
    /// `typing.start` requests written.
    pub typing_sent: u64,
    /// Their `ok` replies (forwarded or answered `sent: false`).
    pub typing_acked: u64,
    /// The target answers no request (`ephemeral --relay`): `acked` and
    /// `ack` stay empty and are not checked.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_replies: bool,
}

impl PhaseReport {
    /// Every message was acknowledged (unless the target answers none) and
    /// delivered, with no errors.
    pub fn complete(&self) -> bool {
        let acked = self.no_replies || self.acked == self.sent;
        self.sent > 0 && self.errors.total() == 0 && acked && self.delivered == self.expected
    }
}

struct SenderOut {
    ws: Option<Ws>,
    expected: u64,
    typing_sent: u64,
    typing_acked: u64,
    sent: u64,
    acked: u64,
    errors: Failures,
    ack: Latency,
    max_lag: Duration,
}

/// What one receiver ended with: its socket (if still open, for the next
/// phase), its deliveries, their latencies, and its errors.
#[derive(Default)]
pub(crate) struct ReceiverOut {
    pub(crate) ws: Option<Ws>,
    pub(crate) delivered: u64,
    pub(crate) e2e: Latency,
    pub(crate) last: Option<Instant>,
    pub(crate) errors: Failures,
}

/// Shared between the tasks of one phase.
struct Phase {
    number: u32,
    start: Instant,
    send_until: Instant,
    deadline: Instant,
    rate: f64,
    typing_rate: f64,
    pairs: usize,
    /// Deliveries due so far (acks times receivers), for the drain.
    expected: AtomicU64,
    delivered: AtomicU64,
}

/// Runs one phase: every pair sends at `rate_per_pair` for `seconds`, then
/// waits up to `drain` for the outstanding replies and deliveries. Returns
/// the pairs whose sockets survived, for the next phase.
pub async fn phase(
    pairs: Vec<Pair>,
    number: u32,
    rate_per_pair: f64,
    typing_per_pair: f64,
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
        typing_rate: typing_per_pair,
        pairs: n,
        expected: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let (done_tx, done_rx) = watch::channel(false);
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    let mut names = Vec::with_capacity(n);
    for (i, p) in pairs.into_iter().enumerate() {
        names.push((p.address.clone(), p.conversation.clone(), p.receivers.len()));
        let sh = shared.clone();
        let fan = p.receivers.len() as u64;
        senders.spawn(async move { (i, sender(sh, i, p.sender, p.address, fan, p.conversation).await) });
        for (j, ws) in p.receivers.into_iter().enumerate() {
            let (sh, done) = (shared.clone(), done_rx.clone());
            receivers.spawn(async move { ((i, j), receiver(sh, ws, done).await) });
        }
    }
    let hard = drain + Duration::from_secs_f64(seconds) + Duration::from_secs(2);
    let sent = setup::drain(&mut senders, hard).await;
    let _ = done_tx.send(true);
    let got = setup::drain(&mut receivers, drain + Duration::from_secs(2)).await;
    summarize(shared, names, sent, got, seconds)
}

fn summarize(
    sh: Arc<Phase>,
    names: Vec<(String, Option<String>, usize)>,
    sent: Vec<(usize, SenderOut)>,
    got: Vec<((usize, usize), ReceiverOut)>,
    seconds: f64,
) -> (Vec<Pair>, PhaseReport) {
    let mut r = PhaseReport {
        pairs: sh.pairs,
        offered_rate: sh.rate * sh.pairs as f64,
        typing_offered_rate: sh.typing_rate * sh.pairs as f64,
        seconds,
        ..Default::default()
    };
    let (mut ack, mut e2e) = (Latency::new(), Latency::new());
    let mut max_lag = Duration::ZERO;
    let mut senders: Vec<Option<Ws>> = (0..names.len()).map(|_| None).collect();
    let mut receivers: Vec<Vec<Option<Ws>>> = names.iter().map(|n| (0..n.2).map(|_| None).collect()).collect();
    for (i, s) in sent {
        r.sent += s.sent;
        r.acked += s.acked;
        r.expected += s.expected;
        r.typing_sent += s.typing_sent;
        r.typing_acked += s.typing_acked;
        r.errors.merge(&s.errors);
        ack.merge(&s.ack);
        max_lag = max_lag.max(s.max_lag);
        senders[i] = s.ws;
    }
    let mut last = sh.start;
    for ((i, j), g) in got {
        r.delivered += g.delivered;
        r.errors.merge(&g.errors);
        e2e.merge(&g.e2e);
        last = last.max(g.last.unwrap_or(sh.start));
        receivers[i][j] = g.ws;
    }
    let span = last.saturating_duration_since(sh.start).as_secs_f64();
    r.delivered_per_sec = if span > 0.0 { r.delivered as f64 / span } else { 0.0 };
    r.ack = ack.summary();
    r.end_to_end = e2e.summary();
    r.max_send_lag_ms = max_lag.as_secs_f64() * 1000.0;
    let mut pairs = Vec::new();
    // A pair goes on while its sender and at least one receiver are alive.
    for ((s, rcv), (address, conversation, _)) in senders.into_iter().zip(receivers).zip(names) {
        let rcv: Vec<Ws> = rcv.into_iter().flatten().collect();
        if let (Some(sender), false) = (s, rcv.is_empty()) {
            pairs.push(Pair::new(sender, rcv, address, conversation));
        }
    }
    (pairs, r)
}

async fn sender(
    sh: Arc<Phase>,
    index: usize,
    mut ws: Ws,
    address: String,
    fan: u64,
    conversation: Option<String>,
) -> SenderOut {
    let mut out = SenderOut {
        ws: None,
        expected: 0,
        typing_sent: 0,
        typing_acked: 0,
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
    // Typing: its own schedule; none without a rate or a conversation id.
    let typing = conversation.filter(|_| sh.typing_rate > 0.0);
    let typing_due = |k: u64| sh.start + Duration::from_micros(stats::due_us(k, sh.typing_rate, offset));
    let mut tseq = 0u64;
    while alive {
        let due = due_at(seq);
        let sending = due < sh.send_until;
        if !sending && out.acked + out.errors.total() >= out.sent {
            break;
        }
        let wake = if sending { due } else { sh.deadline };
        let tdue = typing.as_ref().map(|_| typing_due(tseq)).filter(|t| *t < sh.send_until && *t < wake);
        if let (Some(t), Some(conv)) = (tdue, typing.as_ref()) {
            tokio::select! {
                biased;
                frame = ws.next() => alive = on_reply(&sh, frame, &mut out, fan, due_at),
                _ = sleep_until(t) => {
                    let id = TYPING_ID_BASE + tseq;
                    let req = format!(r#"{{"type":"typing.start","id":{id},"conversation":"{conv}"}}"#);
                    if ws.send(Message::text(req)).await.is_err() {
                        out.errors.add("sender socket lost");
                        alive = false;
                    }
                    out.typing_sent += 1;
                    tseq += 1;
                }
            }
            continue;
        }
        tokio::select! {
            biased;
            frame = ws.next() => alive = on_reply(&sh, frame, &mut out, fan, due_at),
            _ = sleep_until(wake) => {
                if !sending {
                    let missing = out.sent.saturating_sub(out.acked + out.errors.total());
                    out.errors.add_n("no reply before the drain deadline", missing);
                    break;
                }
                let now = Instant::now();
                out.max_lag = out.max_lag.max(now.saturating_duration_since(due));
                let text = stats::stamp(sh.number, index, seq, stats::due_us(seq, sh.rate, offset));
                // The address and the stamp are plain ASCII without quotes, so
                // no JSON escaping is needed; this keeps the load generator's
                // CPU for the server on a shared machine.
                let req = format!(r#"{{"type":"message.send","id":{seq},{address},"text":"{text}"}}"#);
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

/// One read from a socket: a frame, an error, or the end.
pub(crate) type Frame = Option<Result<Message, tokio_tungstenite::tungstenite::Error>>;

/// What a frame read on a sender socket calls for.
pub(crate) enum SenderFrame {
    /// A text frame to look at.
    Text(Utf8Bytes),
    /// Nothing (a ping, a pong, a binary frame).
    Skip,
    /// The socket closed or failed (counted in the errors).
    Gone,
}

/// Sorts a frame read on a sender socket, counting a close or a loss.
pub(crate) fn sender_frame(frame: Frame, errors: &mut Failures) -> SenderFrame {
    match frame {
        Some(Ok(Message::Text(t))) => SenderFrame::Text(t),
        Some(Ok(Message::Close(f))) => {
            errors.add(format!("sender closed {}", f.map_or(1005, |f| u16::from(f.code))));
            SenderFrame::Gone
        }
        Some(Ok(_)) => SenderFrame::Skip,
        None | Some(Err(_)) => {
            errors.add("sender socket lost");
            SenderFrame::Gone
        }
    }
}

/// Handles one frame on a sender socket; false when the socket is gone.
fn on_reply(sh: &Phase, frame: Frame, out: &mut SenderOut, fan: u64, due_at: impl Fn(u64) -> Instant) -> bool {
    let text = match sender_frame(frame, &mut out.errors) {
        SenderFrame::Text(t) => t,
        SenderFrame::Skip => return true,
        SenderFrame::Gone => return false,
    };
    let Ok(v) = serde_json::from_str::<ReplyHead>(&text) else {
        out.errors.add("malformed frame");
        return true;
    };
    let Some(id) = v.id else { return true };
    if id >= TYPING_ID_BASE {
        match v.kind.as_ref() {
            "ok" => out.typing_acked += 1,
            _ => out.errors.add(format!("typing error {}", v.code.as_deref().unwrap_or("?"))),
        }
        return true;
    }
    match v.kind.as_ref() {
        "ok" => {
            out.acked += 1;
            out.expected += fan;
            sh.expected.fetch_add(fan, Ordering::Relaxed);
            out.ack.record(Instant::now().saturating_duration_since(due_at(id)));
        }
        "error" => out.errors.add(format!("error {}", v.code.as_deref().unwrap_or("?"))),
        _ => {}
    }
    true
}

/// The fields of a reply a sender needs (the rest is skipped unparsed);
/// `D`: what it reads of the reply's `data`, if anything.
#[derive(Deserialize)]
pub(crate) struct ReplyHead<'a, D = serde::de::IgnoredAny> {
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    pub(crate) id: Option<u64>,
    #[serde(borrow)]
    pub(crate) code: Option<Cow<'a, str>>,
    pub(crate) data: Option<D>,
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

async fn receiver(sh: Arc<Phase>, ws: Ws, senders_done: watch::Receiver<bool>) -> ReceiverOut {
    let progress = Progress { delivered: &sh.delivered, expected: &sh.expected, deadline: sh.deadline };
    receive(ws, senders_done, progress, |t, out| on_event(&sh, t, out)).await
}

/// A phase's shared counters a receiver watches to know when to stop.
pub(crate) struct Progress<'a> {
    pub(crate) delivered: &'a AtomicU64,
    pub(crate) expected: &'a AtomicU64,
    pub(crate) deadline: Instant,
}

/// Reads `ws`, handing each text frame to `on_text`, until the senders are
/// done and every expected delivery of the phase arrived, or the deadline;
/// a close or a lost socket ends it with an error (and no socket back).
pub(crate) async fn receive(
    mut ws: Ws,
    mut senders_done: watch::Receiver<bool>,
    p: Progress<'_>,
    mut on_text: impl FnMut(&str, &mut ReceiverOut),
) -> ReceiverOut {
    let mut out = ReceiverOut::default();
    let mut alive = true;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => on_text(&t, &mut out),
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
                let caught_up = p.delivered.load(Ordering::Relaxed) >= p.expected.load(Ordering::Relaxed);
                if (done && caught_up) || Instant::now() >= p.deadline {
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
    fn conversation_ids_come_from_the_tokens_sub() {
        // header.payload.signature; payload {"sub":"12","x":1} in base64url.
        let t = |sub: &str| {
            let json = format!(r#"{{"sub":"{sub}","x":1}}"#);
            let mut out = String::new();
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            for chunk in json.as_bytes().chunks(3) {
                let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            format!("h.{out}.s")
        };
        assert_eq!(token_user(&t("12")), Some(12));
        assert_eq!(conversation_of(Some(&t("90")), Some(&t("7"))), Some("7-90".into()));
        assert_eq!(conversation_of(None, Some(&t("7"))), None);
        assert_eq!(token_user("not a jwt"), None);
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
        let mut p = PhaseReport { sent: 10, acked: 10, delivered: 10, expected: 10, ..Default::default() };
        assert!(p.complete());
        p.delivered = 9;
        assert!(!p.complete());
        p.delivered = 10;
        p.errors.add("error rate_limited");
        assert!(!p.complete());
        assert!(!PhaseReport::default().complete());
        let relay = PhaseReport { sent: 10, delivered: 10, expected: 10, no_replies: true, ..Default::default() };
        assert!(relay.complete(), "a target that answers nothing has no acks to wait for");
    }
}
