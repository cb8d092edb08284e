//! Conversions from stored records to their wire form.

use crate::model::{Message, User, rfc3339};
use crate::protocol::{MessageView, UserView};

/// A user as the wire shows one.
pub fn user_view(u: &User) -> UserView {
    UserView { id: u.id.to_string(), username: u.username.clone(), display_name: u.display_name.clone() }
}

/// A message as the wire shows one as sent; `sent_at` comes from the id's
/// timestamp. Readers overlay its lifecycle state (`lifecycle::overlay`).
pub fn message_view(m: &Message) -> MessageView {
    MessageView {
        id: m.id.to_string(),
        conversation_id: m.conversation_id.to_string(),
        kind: m.conversation_id.kind().as_str().into(),
        from: m.from.clone(),
        from_deleted: false,
        to: m.to.clone(),
        text: m.text.clone(),
        sent_at: rfc3339(m.id.unix_ms()),
        nonce: m.nonce.clone(),
        reactions: Vec::new(),
        edited_at: None,
        deleted: false,
        reply_to: None,
    }
}
