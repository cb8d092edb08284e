//! The replay filter ([`crate::hub::ReplayFilter`]) that keeps deleted
//! text out of resumed sockets.
//!
//! Inbox history (the in-process ring, Redis streams) keeps the frames as
//! they were published, so a `message.new` (or `message.updated`) stored
//! there still carries a message's text after the message was deleted, and
//! a reply's `reply_to.preview` the text of a deleted original. History is
//! a cache and its entries are never rewritten; instead every replayed
//! message frame is checked against the store (one batched state read per
//! replay) and a deleted message's frame is replayed as its tombstone
//! (`text: ""`, `deleted: true`), a deleted original's preview as
//! `{preview: "", deleted: true}`. The same filter runs on both brokers,
//! on resume and on gap fill. If the store cannot answer, the frames that
//! carry text are replaced by a `sync.needed` event (fail closed: the
//! client syncs from the store, which never returns deleted text).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::hub::ReplayFilter;
use crate::model::{ConversationId, MessageId};
use crate::protocol::events;
use crate::store::Store;

/// Redacts deleted messages in replayed frames, against the store.
pub struct RedactDeleted {
    store: Arc<dyn Store>,
}

impl RedactDeleted {
    /// A filter reading message states from `store`.
    pub fn new(store: Arc<dyn Store>) -> RedactDeleted {
        RedactDeleted { store }
    }
}

/// A parsed message frame: the JSON, its message and reply target keys.
struct MessageFrame {
    json: Value,
    message: (ConversationId, MessageId),
    reply_to: Option<MessageId>,
}

fn parse(frame: &Utf8Bytes) -> Option<MessageFrame> {
    let text = frame.as_str();
    if !text.contains(events::MESSAGE_NEW) && !text.contains(events::MESSAGE_UPDATED) {
        return None;
    }
    let json: Value = serde_json::from_str(text).ok()?;
    let event = json.get("event")?.as_str()?;
    if event != events::MESSAGE_NEW && event != events::MESSAGE_UPDATED {
        return None;
    }
    let m = json.get("data")?.get("message")?;
    let id = MessageId(m.get("id")?.as_str()?.parse().ok()?);
    let conv = ConversationId(m.get("conversation_id")?.as_str()?.to_owned());
    let reply_to = m.get("reply_to").and_then(|r| r.get("message_id")?.as_str()?.parse().ok()).map(MessageId);
    Some(MessageFrame { message: (conv, id), reply_to, json })
}

fn redact(f: &mut MessageFrame, deleted: &HashSet<MessageId>) -> bool {
    let Some(m) = f.json.get_mut("data").and_then(|d| d.get_mut("message")).and_then(Value::as_object_mut) else {
        return false;
    };
    let mut changed = false;
    if deleted.contains(&f.message.1) {
        m.insert("text".into(), Value::String(String::new()));
        m.insert("deleted".into(), Value::Bool(true));
        m.remove("edited_at");
        changed = true;
    }
    if f.reply_to.is_some_and(|r| deleted.contains(&r)) {
        if let Some(reply) = m.get_mut("reply_to").and_then(Value::as_object_mut) {
            reply.insert("preview".into(), Value::String(String::new()));
            reply.insert("deleted".into(), Value::Bool(true));
            changed = true;
        }
    }
    changed
}

#[async_trait::async_trait]
impl ReplayFilter for RedactDeleted {
    async fn rewrite(&self, frames: &[Utf8Bytes]) -> Vec<Option<Utf8Bytes>> {
        let mut parsed: Vec<Option<MessageFrame>> = frames.iter().map(parse).collect();
        let mut keys: Vec<(ConversationId, MessageId)> = Vec::new();
        for f in parsed.iter().flatten() {
            keys.push(f.message.clone());
            if let Some(r) = f.reply_to {
                keys.push((f.message.0.clone(), r));
            }
        }
        if keys.is_empty() {
            return vec![None; frames.len()];
        }
        keys.sort_unstable_by_key(|(_, id)| *id);
        keys.dedup_by_key(|(_, id)| *id);
        let deleted: HashSet<MessageId> = match self.store.message_states(&keys).await {
            Ok(states) => states.into_iter().filter(|s| s.deleted).map(|s| s.message_id).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "replay: message states unavailable; message frames become sync.needed");
                let sync = Utf8Bytes::from(format!(
                    r#"{{"type":"event","event":"{}","data":{{"reason":"replay"}}}}"#,
                    events::SYNC_NEEDED
                ));
                return parsed.iter().map(|f| f.as_ref().map(|_| sync.clone())).collect();
            }
        };
        parsed
            .iter_mut()
            .map(|f| {
                let f = f.as_mut()?;
                if !redact(f, &deleted) {
                    return None;
                }
                serde_json::to_string(&f.json).ok().map(Utf8Bytes::from)
            })
            .collect()
    }
}
