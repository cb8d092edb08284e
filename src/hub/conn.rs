//! One attached socket as the hub sees it: its queue, its close control, and
//! where it stands in its user's inbox (epoch and last offset), so the hub
//! can drop duplicates, spot gaps, and hold live events while it fills one.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::outq::{OutSender, TrySendError};
use super::payload::{self, Payload};
use crate::broker::{Entry, History, Position};
use crate::error::BrokerError;
use crate::model::SessionId;
use crate::protocol::close;

/// One frame in a socket's outbound queue ([`super::outq`]).
pub type OutFrame = Utf8Bytes;

/// Identifies one socket, unique across nodes for practical purposes
/// (a random node prefix and a counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Out-of-band control of one socket: a way to ask it to close.
#[derive(Debug, Default)]
pub struct ConnControl {
    reason: OnceLock<(u16, &'static str)>,
    notify: Notify,
}

impl ConnControl {
    /// Asks the socket to close with `code`; the first request wins.
    pub fn close(&self, code: u16, reason: &'static str) {
        if self.reason.set((code, reason)).is_ok() {
            self.notify.notify_one();
        }
    }

    /// Resolves once [`Self::close`] was called, with its code and reason.
    pub async fn closed(&self) -> (u16, &'static str) {
        loop {
            if let Some(r) = self.reason.get() {
                return *r;
            }
            self.notify.notified().await;
        }
    }

    /// The close requested so far, if any.
    pub fn requested(&self) -> Option<(u16, &'static str)> {
        self.reason.get().copied()
    }
}

/// A live inbox entry held back while a gap is being filled.
type Held = (Position, Option<Utf8Bytes>);

/// Where a socket stands in its user's inbox.
#[derive(Debug, Default)]
pub struct InboxCursor {
    epoch: Option<String>,
    last: u64,
    /// `Some` while live events are held back (attaching, or filling a gap).
    held: Option<Vec<Held>>,
    /// A resume position was given and no release has judged it yet.
    resume_pending: bool,
    /// What the first release after a resume found: every missed entry
    /// was delivered. Whichever release comes first decides it (the attach
    /// or a gap fill racing it); a later one cannot turn it true, because
    /// the first one may already have moved the cursor to another epoch.
    resumed: bool,
}

/// What the hub keeps for one attached socket.
#[derive(Clone, Debug)]
pub struct ConnHandle {
    /// The socket's id.
    pub id: ConnId,
    /// The session the socket authenticated in.
    pub session: SessionId,
    /// The socket's bounded outbound queue.
    pub tx: OutSender,
    /// Asks the socket to close.
    pub control: Arc<ConnControl>,
    /// The socket's inbox position, shared with the hub.
    pub cursor: Arc<Mutex<InboxCursor>>,
}

/// The outcome of handing a socket what history said.
#[derive(Debug, Default)]
pub struct Released {
    /// Every entry after the socket's position was delivered from history.
    pub recovered: bool,
    /// Where the socket stands now, if known.
    pub position: Option<Position>,
    /// A new gap showed up among the held events: fill again.
    pub refill: bool,
}

impl ConnHandle {
    /// A handle around a socket's queue and control.
    pub fn new(id: ConnId, session: SessionId, tx: OutSender, control: Arc<ConnControl>) -> Self {
        ConnHandle { id, session, tx, control, cursor: Arc::default() }
    }

    fn cursor(&self) -> MutexGuard<'_, InboxCursor> {
        // Cursor updates are single assignments; a poisoned one is still sound.
        self.cursor.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an ephemeral frame (typing) only while the socket's queue is
    /// at most half full; otherwise drops it. Ephemeral signals may be lost
    /// by design, and they must never be what closes a slow consumer or
    /// takes the room that stored events need.
    pub fn push_ephemeral(&self, frame: Utf8Bytes) {
        if self.tx.capacity() * 2 < self.tx.max_capacity() {
            crate::metrics::global().ephemeral_dropped.inc();
            return;
        }
        if self.tx.try_send(frame).is_ok() {
            crate::metrics::global().events_delivered.inc();
        }
    }

    /// Queues a frame; a full queue closes the socket as a slow consumer.
    pub fn push(&self, frame: Utf8Bytes) {
        let m = crate::metrics::global();
        match self.tx.try_send(frame) {
            Ok(()) => m.events_delivered.inc(),
            Err(TrySendError::Full) => {
                m.slow_consumer_closes.inc();
                tracing::debug!(conn = self.id.0, "outbound queue full: closing slow consumer");
                self.control.close(close::SLOW_CONSUMER, "slow consumer: reconnect and resume");
            }
            Err(TrySendError::Closed) => {}
        }
    }

    /// Starts holding live events, from position `from` (if any).
    pub fn hold_from(&self, from: Option<Position>) {
        let mut c = self.cursor();
        if let Some(p) = from {
            c.epoch = Some(p.epoch);
            c.last = p.offset;
            c.resume_pending = true;
            c.resumed = false;
        }
        c.held.get_or_insert_with(Vec::new);
    }

    /// Whether the resume position given to [`Self::hold_from`] was
    /// honoured: the first release after it delivered every missed entry.
    pub fn resumed(&self) -> bool {
        self.cursor().resumed
    }

    /// Starts holding live events if not already; true if it started now.
    pub fn hold(&self) -> bool {
        let mut c = self.cursor();
        let was = c.held.is_some();
        c.held.get_or_insert_with(Vec::new);
        !was
    }

    /// True while live events are held back.
    pub fn holding(&self) -> bool {
        self.cursor().held.is_some()
    }

    /// The socket's position (epoch unknown: `None`).
    pub fn position(&self) -> (Option<String>, u64) {
        let c = self.cursor();
        (c.epoch.clone(), c.last)
    }

    /// Offers a live inbox entry (`frame` is `None` when it is not for this
    /// socket, which still moves its position). True when it revealed a gap:
    /// the socket now holds events until the hub fills the gap.
    pub fn offer(&self, pos: &Position, frame: Option<Utf8Bytes>, hold_limit: usize) -> bool {
        let mut c = self.cursor();
        if let Some(h) = c.held.as_mut() {
            if h.len() >= hold_limit {
                crate::metrics::global().slow_consumer_closes.inc();
                self.control.close(close::SLOW_CONSUMER, "slow consumer: reconnect and resume");
            } else {
                h.push((pos.clone(), frame));
            }
            return false;
        }
        self.advance(&mut c, pos, frame)
    }

    /// Moves the cursor past `pos`, delivering `frame`; true on a gap (and
    /// then holds `pos` instead).
    fn advance(&self, c: &mut InboxCursor, pos: &Position, frame: Option<Utf8Bytes>) -> bool {
        match c.epoch.as_deref() {
            Some(e) if e == pos.epoch => {
                if pos.offset <= c.last {
                    return false;
                }
                if pos.offset > c.last + 1 {
                    c.held = Some(vec![(pos.clone(), frame)]);
                    return true;
                }
            }
            Some(_) => {
                let before = Position { epoch: pos.epoch.clone(), offset: pos.offset.saturating_sub(1) };
                self.push(payload::sync_needed("epoch", Some(&before)));
            }
            None => {}
        }
        c.epoch = Some(pos.epoch.clone());
        c.last = pos.offset;
        if let Some(f) = frame {
            self.push(f);
        }
        false
    }

    /// The frame a history entry makes for this socket, if any.
    fn frame_for(&self, e: &Entry, epoch: &str) -> Option<Utf8Bytes> {
        match payload::decode(&e.payload)? {
            Payload::Frame { except, frame } if except != self.id.0 => {
                Some(payload::with_pos(&frame, &Position { epoch: epoch.to_owned(), offset: e.offset }))
            }
            _ => None,
        }
    }

    /// Ends holding with what history said: delivers the missed entries if
    /// history covers them, else announces `sync.needed` (when `announce`
    /// names a reason) and restarts from history's top; then delivers the
    /// held events in order.
    pub fn release(&self, history: Result<History, BrokerError>, announce: Option<&str>) -> Released {
        let mut c = self.cursor();
        let held = c.held.take().unwrap_or_default();
        let mut out = Released::default();
        match history {
            // A position past the top (never handed out) cannot be trusted.
            Ok(h) if c.epoch.as_deref() == Some(h.top.epoch.as_str()) && h.complete && c.last <= h.top.offset => {
                for e in &h.entries {
                    if e.offset > c.last {
                        if let Some(f) = self.frame_for(e, &h.top.epoch) {
                            self.push(f);
                        }
                        c.last = e.offset;
                    }
                }
                out.recovered = true;
            }
            Ok(h) => {
                if let Some(reason) = announce {
                    self.push(payload::sync_needed(reason, Some(&h.top)));
                }
                c.epoch = Some(h.top.epoch);
                c.last = h.top.offset;
            }
            Err(e) => {
                tracing::warn!(error = %e, conn = self.id.0, "inbox history unavailable; the client must sync");
                if let Some(reason) = announce {
                    self.push(payload::sync_needed(reason, None));
                }
                c.epoch = None;
                c.last = 0;
            }
        }
        if c.resume_pending {
            c.resume_pending = false;
            c.resumed = out.recovered;
        }
        let mut rest = held.into_iter();
        for (pos, frame) in rest.by_ref() {
            if self.advance(&mut c, &pos, frame) {
                out.refill = true;
                break;
            }
        }
        if out.refill {
            if let Some(h) = c.held.as_mut() {
                h.extend(rest);
            }
        }
        out.position = c.epoch.clone().map(|epoch| Position { epoch, offset: c.last });
        out
    }
}

/// Builds a history answer (for tests).
#[cfg(test)]
pub fn history(epoch: &str, top: u64, entries: Vec<(u64, bytes::Bytes)>, complete: bool) -> History {
    History {
        top: Position { epoch: epoch.to_owned(), offset: top },
        entries: entries.into_iter().map(|(offset, payload)| Entry { offset, payload }).collect(),
        complete,
    }
}
