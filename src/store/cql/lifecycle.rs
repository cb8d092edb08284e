//! [`LifecycleStore`] on CQL (`cql/008_lifecycle.cql`). An edit or a
//! delete checks the message and its state, writes the change rows of
//! every feed (concurrently, at most [`FEED_WRITES`] at a time), then the
//! state row; a delete then clears the body of every copy of the message.
//! Each write is idempotent, so a retry after a partial failure completes
//! the same change.

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};

use super::ScyllaStore;
use super::keys::{bucket_of, tombstone_timestamp, write_timestamp};
use super::rows::MessageRow;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{ConversationId, Message, MessageId, UserId, now_ms};
use crate::store::check_message_age;
use crate::store::lifecycle::{LifecycleOutcome, LifecycleStore, MessageChange, MessageState};
use crate::store::read_state::ChangeKind;

/// Change-feed writes of one edit or delete in flight at once (a group's
/// members are bounded by `--max-group-members`).
const FEED_WRITES: usize = 32;
/// State rows read at once for a page of views.
const STATE_READS: usize = 32;

type StateRow = (Option<i64>, Option<i64>, Option<String>, Option<bool>);

impl ScyllaStore {
    async fn state_row(&self, conv: &ConversationId, id: MessageId) -> Result<Option<MessageState>, StoreError> {
        let row: Option<StateRow> = self.db.one(Q::StateGet, (&conv.0, bucket_of(id.0), id.0)).await?;
        Ok(row.map(|(reply_to, edited_at, body, deleted)| MessageState {
            message_id: id,
            reply_to: reply_to.map(MessageId),
            edited_at_ms: edited_at,
            text: body,
            deleted: deleted.unwrap_or(false),
        }))
    }

    /// The stored message and whether it is deleted; `None`: no such message.
    async fn checked(&self, c: &MessageChange) -> Result<Option<(Message, bool)>, StoreError> {
        let key = (&c.conversation.0, bucket_of(c.message_id.0), c.message_id.0);
        let Some(row) = self.db.one::<MessageRow>(Q::MessageGet, key).await? else { return Ok(None) };
        let deleted = self.state_row(&c.conversation, c.message_id).await?.is_some_and(|s| s.deleted);
        Ok(Some((row.into(), deleted)))
    }

    async fn record_changes(&self, c: &MessageChange, kind: ChangeKind) -> Result<(), StoreError> {
        let b = bucket_of(c.change.0);
        let writes: Vec<_> = c
            .feeds
            .iter()
            .map(|owner: &UserId| async move {
                let row = (owner.0, b, c.change.0, kind.code(), &c.conversation.0, c.by.0, c.message_id.0);
                tokio::try_join!(
                    self.db.write(Q::ChangeBucketInsert, (owner.0, b)),
                    self.db.write(Q::ChangeInsert, row)
                )
                .map(|_| ())
            })
            .collect();
        futures_util::stream::iter(writes).buffer_unordered(FEED_WRITES).try_collect::<Vec<()>>().await?;
        Ok(())
    }

    /// Clears the body of every copy of `m` (its rows stay).
    async fn clear_copies(&self, m: &Message) -> Result<(), StoreError> {
        let (conv, b, id) = (&m.conversation_id.0, bucket_of(m.id.0), m.id.0);
        let ts = write_timestamp(id);
        self.db.write(Q::MessageBodyClear, (conv, b, id)).await?;
        match m.conversation_id.group_id() {
            Some(g) => {
                tokio::try_join!(
                    self.db.write(Q::GroupFeedBodyClear, (conv, b, id)),
                    self.db.write(Q::GroupLastBodyClear, (ts, g.0)),
                )?;
            }
            None => {
                tokio::try_join!(
                    self.db.write(Q::InboxBodyClear, (m.from_id.0, b, id)),
                    self.db.write(Q::InboxBodyClear, (m.to_id.0, b, id)),
                    self.db.write(Q::ConversationBodyClear, (ts, m.from_id.0, m.to_id.0)),
                    self.db.write(Q::ConversationBodyClear, (ts, m.to_id.0, m.from_id.0)),
                )?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl LifecycleStore for ScyllaStore {
    async fn set_reply(
        &self,
        conversation: &ConversationId,
        id: MessageId,
        reply_to: MessageId,
    ) -> Result<(), StoreError> {
        self.live()?;
        self.db.write(Q::StateReplySet, (reply_to.0, &conversation.0, bucket_of(id.0), id.0)).await
    }

    async fn message(&self, conversation: &ConversationId, id: MessageId) -> Result<Option<Message>, StoreError> {
        self.live()?;
        let row: Option<MessageRow> = self.db.one(Q::MessageGet, (&conversation.0, bucket_of(id.0), id.0)).await?;
        Ok(row.map(Message::from))
    }

    async fn message_states(&self, messages: &[(ConversationId, MessageId)]) -> Result<Vec<MessageState>, StoreError> {
        self.live()?;
        let reads: Vec<_> = messages.iter().map(|(c, id)| self.state_row(c, *id)).collect();
        let found: Vec<Option<MessageState>> =
            futures_util::stream::iter(reads).buffer_unordered(STATE_READS).try_collect().await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn edit_message(&self, c: &MessageChange, text: &str) -> Result<LifecycleOutcome, StoreError> {
        self.live()?;
        check_message_age(MessageId(c.change.0))?;
        match self.checked(c).await? {
            None => return Ok(LifecycleOutcome::NoSuchMessage),
            Some((_, true)) => return Ok(LifecycleOutcome::Deleted),
            Some((_, false)) => {}
        }
        // The feed rows first: a feed entry whose state write then failed
        // is harmless (views are built from the state at read time); a
        // state without its feed entry would be missed by catch-up.
        self.record_changes(c, ChangeKind::Edit).await?;
        check_message_age(MessageId(c.change.0))?;
        let key = (&c.conversation.0, bucket_of(c.message_id.0), c.message_id.0);
        let ts = write_timestamp(c.change.0);
        self.db.write(Q::StateEdit, (ts, c.change.unix_ms(), text, key.0, key.1, key.2)).await?;
        Ok(LifecycleOutcome::Done)
    }

    async fn delete_message(&self, c: &MessageChange) -> Result<LifecycleOutcome, StoreError> {
        self.live()?;
        check_message_age(MessageId(c.change.0))?;
        let m = match self.checked(c).await? {
            None => return Ok(LifecycleOutcome::NoSuchMessage),
            Some((_, true)) => return Ok(LifecycleOutcome::Deleted),
            Some((m, false)) => m,
        };
        self.record_changes(c, ChangeKind::Delete).await?;
        check_message_age(MessageId(c.change.0))?;
        let key = (&c.conversation.0, bucket_of(c.message_id.0), c.message_id.0);
        self.db.write(Q::StateDelete, (tombstone_timestamp(now_ms()), key.0, key.1, key.2)).await?;
        self.clear_copies(&m).await?;
        Ok(LifecycleOutcome::Done)
    }
}
