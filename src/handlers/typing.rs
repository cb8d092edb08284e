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

use std::time::{Duration, Instant};

use super::{ConnState, Reply, event_frame, reply};
use crate::app::App;
use crate::conversation;
use crate::error::Result;
use crate::model::ConversationId;
use crate::protocol::{Typing, TypingEvent, TypingReply, events};

/// Shortest time between two forwarded starts of one socket in one conversation.
pub const START_INTERVAL: Duration = Duration::from_secs(2);
/// How long a client shows a typing indicator without a renewing start.
pub const EXPIRES_MS: u64 = 6_000;
/// Conversations one socket tracks typing state for.
pub const MAX_CONVERSATIONS: usize = 16;

/// One socket's forwarded starts: conversation and when (bounded).
#[derive(Debug, Default)]
pub struct TypingState {
    started: Vec<(ConversationId, Instant)>,
}

impl TypingState {
    fn recent(&self, c: &ConversationId, now: Instant) -> bool {
        self.started.iter().any(|(id, at)| id == c && now.duration_since(*at) < START_INTERVAL)
    }

    fn record(&mut self, c: ConversationId, now: Instant) {
        self.started.retain(|(id, _)| *id != c);
        if self.started.len() >= MAX_CONVERSATIONS {
            self.started.remove(0);
        }
        self.started.push((c, now));
    }

    fn take(&mut self, c: &ConversationId) -> bool {
        let before = self.started.len();
        self.started.retain(|(id, _)| id != c);
        self.started.len() != before
    }
}

async fn forward(app: &App, conn: &ConnState, conv: &conversation::Conversation, event: &str) -> Result<()> {
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
    let me = conn.user()?.user.id;
    let now = Instant::now();
    // Only a conversation that passed the access check has an entry.
    if conn.typing.recent(&r.conversation, now) {
        return reply(&TypingReply { sent: false });
    }
    let conv = conversation::access(&*app.store, me, &r.conversation).await?;
    forward(app, conn, &conv, events::TYPING_START).await?;
    conn.typing.record(conv.id, now);
    reply(&TypingReply { sent: true })
}

/// `typing.stop`.
pub async fn stop(app: &App, conn: &mut ConnState, r: Typing) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let conv = conversation::access(&*app.store, me, &r.conversation).await?;
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
        s.record(c.clone(), t0);
        assert!(s.recent(&c, t0 + Duration::from_millis(1_999)));
        assert!(!s.recent(&c, t0 + START_INTERVAL));
        for i in 0..MAX_CONVERSATIONS * 2 {
            s.record(ConversationId(format!("1-{}", i + 10)), t0);
        }
        assert_eq!(s.started.len(), MAX_CONVERSATIONS);
        assert!(!s.recent(&c, t0), "the oldest was forgotten");
        assert!(s.take(&ConversationId(format!("1-{}", MAX_CONVERSATIONS * 2 + 9))));
        assert!(!s.take(&c));
    }
}
