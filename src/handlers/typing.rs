//! `typing.start` and `typing.stop`: ephemeral signals to the other
//! members' live sockets (every other member of a group), on every node,
//! in one batched volatile publish. Never stored, no inbox position
//! (the hub's volatile path), not replayed on resume, and dropped for a
//! socket whose queue is over half full: typing never delays or displaces
//! a stored event.
//!
//! Limits (protocol.md): per socket and conversation, at most one
//! `typing.start` is forwarded every [`START_INTERVAL`]; the others are
//! answered `sent: false` without touching the store or the broker. A
//! forwarded start expires on the client after [`EXPIRES_MS`] unless
//! renewed; `typing.stop` is forwarded only after a forwarded start. A
//! socket tracks at most [`MAX_CONVERSATIONS`] conversations (the oldest is
//! forgotten, so its next start is forwarded again).
//!
//! Cost: a group signal reads the group's membership (it is published to
//! the members as they are now); a direct conversation's access check (does
//! the other user exist) holds for [`DIRECT_CHECK_TTL`] per socket, so a
//! user typing in a direct conversation costs no store read per signal.
//!
//! Blocks: in a direct conversation where either user blocks the other,
//! typing is not forwarded (`sent: false`, as for every signal that was
//! not forwarded, so the answer does not tell who blocked whom). The check
//! goes with the access check, so a new block holds within
//! [`DIRECT_CHECK_TTL`].

use std::time::{Duration, Instant};

use super::{ConnState, Reply, event_frame, reply};
use crate::app::App;
use crate::conversation::{self, Conversation};
use crate::error::{Result, StoreError};
use crate::model::{ConversationId, ConversationKind};
use crate::protocol::{Typing, TypingEvent, TypingReply, events};

/// Shortest time between two forwarded starts of one socket in one conversation.
pub const START_INTERVAL: Duration = Duration::from_secs(2);
/// How long a client shows a typing indicator without a renewing start.
pub const EXPIRES_MS: u64 = 6_000;
/// Conversations one socket tracks typing state for.
pub const MAX_CONVERSATIONS: usize = 16;
/// How long a direct conversation's access check holds for this socket's
/// typing signals. Its members are fixed by its id; the check only reads
/// whether the other user still exists, and a signal to a user deleted in
/// this window reaches nobody. Groups are checked on every signal (their
/// member list is what the signal is published to).
pub const DIRECT_CHECK_TTL: Duration = Duration::from_secs(10);

/// One conversation this socket signalled in.
#[derive(Debug)]
struct Entry {
    id: ConversationId,
    /// When a direct conversation last passed the access check, and
    /// whether either user blocked the other then.
    checked: Option<(Instant, bool)>,
    /// The forwarded start not yet stopped, and when.
    started: Option<Instant>,
}

/// One socket's typing state: forwarded starts, and direct conversations
/// that passed the access check recently (at most [`MAX_CONVERSATIONS`]).
#[derive(Debug, Default)]
pub struct TypingState {
    entries: Vec<Entry>,
}

impl TypingState {
    fn entry(&self, c: &ConversationId) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == *c)
    }

    /// The entry of `c`, created (the oldest forgotten past the bound).
    fn entry_mut(&mut self, c: &ConversationId) -> &mut Entry {
        let i = match self.entries.iter().position(|e| e.id == *c) {
            Some(i) => i,
            None => {
                if self.entries.len() >= MAX_CONVERSATIONS {
                    self.entries.remove(0);
                }
                self.entries.push(Entry { id: c.clone(), checked: None, started: None });
                self.entries.len() - 1
            }
        };
        &mut self.entries[i]
    }

    fn recent(&self, c: &ConversationId, now: Instant) -> bool {
        self.entry(c).and_then(|e| e.started).is_some_and(|at| now.duration_since(at) < START_INTERVAL)
    }

    fn record(&mut self, c: &ConversationId, now: Instant) {
        self.entry_mut(c).started = Some(now);
    }

    fn take(&mut self, c: &ConversationId) -> bool {
        self.entries.iter_mut().find(|e| e.id == *c).and_then(|e| e.started.take()).is_some()
    }

    /// Whether `c` was checked within [`DIRECT_CHECK_TTL`], and if so
    /// whether a block stood between its users.
    fn checked_recently(&self, c: &ConversationId, now: Instant) -> Option<bool> {
        let (at, blocked) = self.entry(c)?.checked?;
        (now.duration_since(at) < DIRECT_CHECK_TTL).then_some(blocked)
    }
}

/// The conversation `id` if this socket's user may signal in it (`None`:
/// a direct conversation where either user blocks the other, where typing
/// is not forwarded): the access check, skipped for a direct conversation
/// checked within [`DIRECT_CHECK_TTL`] (a typing signal then costs no
/// store read).
async fn access(app: &App, conn: &mut ConnState, id: &ConversationId, now: Instant) -> Result<Option<Conversation>> {
    let me = conn.user()?.user.id;
    let direct = |lo, hi| {
        let members = if lo == hi { vec![lo] } else { vec![lo, hi] };
        Conversation { id: id.clone(), kind: ConversationKind::Direct, members }
    };
    if let (Some(blocked), Some((lo, hi))) = (conn.typing.checked_recently(id, now), conversation::direct_pair(id)) {
        return Ok((!blocked).then(|| direct(lo, hi)));
    }
    let conv = conversation::access(&*app.store, me, id).await?;
    if conv.kind != ConversationKind::Direct {
        return Ok(Some(conv));
    }
    let peer = conv.others(me).first().copied().unwrap_or(me);
    let blocked = match crate::store::check_blocks(&*app.store, me, peer).await {
        Ok(()) => false,
        Err(StoreError::SenderBlocks | StoreError::RecipientBlocks) => true,
        Err(e) => return Err(e.into()),
    };
    conn.typing.entry_mut(&conv.id).checked = Some((now, blocked));
    Ok((!blocked).then_some(conv))
}

async fn forward(app: &App, conn: &ConnState, conv: &Conversation, event: &str) -> Result<()> {
    let me = &conn.user()?.user;
    let data = TypingEvent {
        conversation_id: conv.id.to_string(),
        from: me.username.clone(),
        expires_in_ms: (event == events::TYPING_START).then_some(EXPIRES_MS),
    };
    let frame = event_frame(event, &data)?;
    let others = conv.others(me.id);
    if others.is_empty() {
        return Ok(());
    }
    // Ephemeral, one batched volatile publish: a broker failure loses the
    // signal, nothing else.
    let failed = app.hub.send_ephemeral_to_users(&others, &frame, None).await;
    if failed > 0 {
        tracing::debug!(failed, "typing signal not published to every member");
    }
    Ok(())
}

/// `typing.start`.
pub async fn start(app: &App, conn: &mut ConnState, r: Typing) -> Result<Reply> {
    let now = Instant::now();
    // Only a conversation that passed the access check has a start.
    if conn.typing.recent(&r.conversation, now) {
        return reply(&TypingReply { sent: false });
    }
    let Some(conv) = access(app, conn, &r.conversation, now).await? else {
        return reply(&TypingReply { sent: false });
    };
    forward(app, conn, &conv, events::TYPING_START).await?;
    conn.typing.record(&conv.id, now);
    reply(&TypingReply { sent: true })
}

/// `typing.stop`.
pub async fn stop(app: &App, conn: &mut ConnState, r: Typing) -> Result<Reply> {
    let Some(conv) = access(app, conn, &r.conversation, Instant::now()).await? else {
        conn.typing.take(&r.conversation);
        return reply(&TypingReply { sent: false });
    };
    if !conn.typing.take(&conv.id) {
        return reply(&TypingReply { sent: false });
    }
    forward(app, conn, &conv, events::TYPING_STOP).await?;
    reply(&TypingReply { sent: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_are_spaced_and_the_state_is_bounded() {
        let mut s = TypingState::default();
        let t0 = Instant::now();
        let c = ConversationId("1-2".into());
        assert!(!s.recent(&c, t0));
        s.record(&c, t0);
        assert!(s.recent(&c, t0 + Duration::from_millis(1_999)));
        assert!(!s.recent(&c, t0 + START_INTERVAL));
        for i in 0..MAX_CONVERSATIONS * 2 {
            s.record(&ConversationId(format!("1-{}", i + 10)), t0);
        }
        assert_eq!(s.entries.len(), MAX_CONVERSATIONS);
        assert!(!s.recent(&c, t0), "the oldest was forgotten");
        assert!(s.take(&ConversationId(format!("1-{}", MAX_CONVERSATIONS * 2 + 9))));
        assert!(!s.take(&c));
    }

    #[test]
    fn a_direct_check_holds_for_its_ttl_and_survives_a_stop() {
        let mut s = TypingState::default();
        let t0 = Instant::now();
        let c = ConversationId("1-2".into());
        assert_eq!(s.checked_recently(&c, t0), None);
        s.entry_mut(&c).checked = Some((t0, false));
        s.record(&c, t0);
        assert!(s.take(&c));
        assert!(!s.take(&c), "one stop per start");
        assert_eq!(s.checked_recently(&c, t0 + DIRECT_CHECK_TTL - Duration::from_millis(1)), Some(false));
        assert_eq!(s.checked_recently(&c, t0 + DIRECT_CHECK_TTL), None);
    }
}
