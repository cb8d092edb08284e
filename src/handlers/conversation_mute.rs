//! `conversation.mute`, `conversation.unmute`: per user, for a
//! conversation I am in (direct or a group I am a member of). A mute only
//! stops push notifications (the notifier asks
//! [`crate::store::SafetyStore::muted`]); messages, events and unread
//! counts are unchanged. `conversation.list` shows it.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::conversation;
use crate::error::{Result, bad_request};
use crate::model::{ConversationId, now_ms};
use crate::protocol::{ConversationMute, ConversationUnmute, MuteReply};
use crate::store::safety::MUTED_FOREVER;

/// The wire view of a stored mute end at `now`: (muted, muted_until).
pub fn mute_view(stored: Option<i64>, now: i64) -> (bool, Option<i64>) {
    match stored {
        Some(u) if u > now => (true, (u != MUTED_FOREVER).then_some(u)),
        _ => (false, None),
    }
}

pub async fn mute(app: &App, conn: &mut ConnState, r: ConversationMute) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let now = now_ms();
    let until = match r.until {
        None => MUTED_FOREVER,
        Some(u) if u > now => u,
        Some(_) => return Err(bad_request("until must be in the future (unix milliseconds)")),
    };
    let c = conversation::access(app.store.as_ref(), me, &ConversationId(r.conversation)).await?;
    app.store.set_mute(me, &c.id, until).await?;
    let (muted, muted_until) = mute_view(Some(until), now);
    reply(&MuteReply { conversation_id: c.id.to_string(), muted, muted_until })
}

pub async fn unmute(app: &App, conn: &mut ConnState, r: ConversationUnmute) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let c = conversation::access(app.store.as_ref(), me, &ConversationId(r.conversation)).await?;
    app.store.unmute(me, &c.id).await?;
    reply(&MuteReply { conversation_id: c.id.to_string(), muted: false, muted_until: None })
}
