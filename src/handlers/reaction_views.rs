//! Reaction summaries on message views and `change.sync` entries, as the
//! viewing user sees them (`me`). One store call per conversation of a
//! page (a page is at most 200 messages or changes).

use std::collections::HashMap;

use crate::app::App;
use crate::error::Result;
use crate::model::{ConversationId, Message, MessageId, UserId};
use crate::protocol::{ChangeView, MessageView, ReactionView};
use crate::store::reactions::ReactionCount;
use crate::store::read_state::{Change, ChangeKind};

/// A stored count on the wire.
pub fn reaction_view(c: &ReactionCount) -> ReactionView {
    ReactionView { emoji: c.emoji.clone(), count: c.count, me: c.me }
}

/// The summaries of `wanted` (conversation, message) pairs for `viewer`.
async fn summaries(
    app: &App,
    viewer: UserId,
    wanted: impl Iterator<Item = (ConversationId, MessageId)>,
) -> Result<HashMap<MessageId, Vec<ReactionView>>> {
    let mut by_conv: HashMap<ConversationId, Vec<MessageId>> = HashMap::new();
    for (c, m) in wanted {
        let ids = by_conv.entry(c).or_default();
        if !ids.contains(&m) {
            ids.push(m);
        }
    }
    let mut out = HashMap::new();
    for (conv, ids) in by_conv {
        let got = app.store.reaction_summaries(viewer, &conv, &ids).await?;
        out.extend(ids.into_iter().zip(got.into_iter().map(|s| s.iter().map(reaction_view).collect())));
    }
    Ok(out)
}

/// Fills `views[i].reactions` for `messages[i]` (the same order; `views`
/// may be shorter); none on a deleted message. Call it on views that
/// already carry their lifecycle state.
pub async fn attach(app: &App, viewer: UserId, messages: &[Message], views: &mut [MessageView]) -> Result<()> {
    let messages = &messages[..views.len().min(messages.len())];
    let mut found = summaries(app, viewer, messages.iter().map(|m| (m.conversation_id.clone(), m.id))).await?;
    for (m, v) in messages.iter().zip(views.iter_mut()) {
        // A tombstone shows no reactions (deletion clears them; this also
        // hides any a failed clear left behind).
        let r = found.remove(&m.id).unwrap_or_default();
        v.reactions = if v.deleted { Vec::new() } else { r };
    }
    Ok(())
}

/// Fills `reactions` of the `reaction` entries of a `change.sync` page
/// with each message's reactions now.
pub async fn attach_to_changes(app: &App, viewer: UserId, page: &[Change], views: &mut [ChangeView]) -> Result<()> {
    let wanted = page.iter().filter(|c| c.kind == ChangeKind::Reaction).map(|c| (c.conversation.clone(), c.message_id));
    let found = summaries(app, viewer, wanted).await?;
    for v in views.iter_mut().filter(|v| v.kind == "reaction") {
        let id = MessageId::parse(&v.message_id);
        v.reactions = Some(id.and_then(|id| found.get(&id).cloned()).unwrap_or_default());
    }
    Ok(())
}
