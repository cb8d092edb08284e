//! [`ReadStateStore`] on CQL (`cql/007_read_state.cql`). A pointer move
//! checks the message and the stored pointer, then writes the pointer
//! with `USING TIMESTAMP` of the message id (so racing moves end at the
//! largest id) and the change rows concurrently; each write is idempotent.
//! Unread counts walk the conversation's buckets newest first and read at
//! most `cap + 1` rows above the pointer.

use async_trait::async_trait;

use super::ScyllaStore;
use super::keys::{bucket_of, cql_limit, newest_bucket_below, write_timestamp};
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{ChangeId, ConversationId, MessageId, UserId};
use crate::store::check_message_age;
use crate::store::read_state::{Change, ChangeKind, ReadMark, ReadOutcome, ReadStateStore, Unread};

type ChangeRow = (i64, i32, String, i64, i64);

impl ScyllaStore {
    async fn read_pointer_cql(&self, user: UserId, conv: &ConversationId) -> Result<Option<MessageId>, StoreError> {
        let row: Option<(i64,)> = self.db.one(Q::ReadPointerGet, (user.0, &conv.0)).await?;
        Ok(row.map(|(m,)| MessageId(m)))
    }

    async fn unread_one_cql(&self, user: UserId, conv: &ConversationId, cap: u32) -> Result<Unread, StoreError> {
        let pointer = self.read_pointer_cql(user, conv).await?;
        let after = pointer.map_or(-1, |p| p.0);
        let lowest = bucket_of(after.max(0));
        let want = cap as usize + 1;
        let mut senders: Vec<i64> = Vec::new();
        let mut buckets = self.db.stream::<(i32,)>(Q::ConvBuckets, (&conv.0, newest_bucket_below(None))).await?;
        while senders.len() < want {
            let Some((bucket,)) = buckets.next_row().await? else { break };
            if bucket < lowest {
                break;
            }
            let page = (&conv.0, bucket, after, cql_limit(want - senders.len()));
            let rows: Vec<(i64,)> = self.db.rows(Q::MessageSenders, page).await?;
            senders.extend(rows.into_iter().map(|(f,)| f));
        }
        let capped = senders.len() > cap as usize;
        let count = senders.iter().filter(|f| **f != user.0).count().min(cap as usize) as u32;
        Ok(Unread { conversation: conv.clone(), read_up_to: pointer, count, capped })
    }

    async fn write_change(&self, owner: UserId, kind: ChangeKind, m: &ReadMark) -> Result<(), StoreError> {
        let b = bucket_of(m.change.0);
        let row = (owner.0, b, m.change.0, kind.code(), &m.conversation.0, m.user.0, m.message_id.0);
        tokio::try_join!(self.db.write(Q::ChangeBucketInsert, (owner.0, b)), self.db.write(Q::ChangeInsert, row))?;
        Ok(())
    }
}

#[async_trait]
impl ReadStateStore for ScyllaStore {
    async fn mark_read(&self, m: &ReadMark) -> Result<ReadOutcome, StoreError> {
        self.live()?;
        check_message_age(MessageId(m.change.0))?;
        let key = (&m.conversation.0, bucket_of(m.message_id.0), m.message_id.0);
        let found: Option<(i64,)> = self.db.one(Q::MessageSendersGet, key).await?;
        if found.is_none() {
            return Ok(ReadOutcome::NoSuchMessage);
        }
        if let Some(current) = self.read_pointer_cql(m.user, &m.conversation).await? {
            if current >= m.message_id {
                return Ok(ReadOutcome::NotForward { current });
            }
        }
        // The change rows first: a feed entry whose pointer write then
        // failed is harmless (clients keep the largest pointer they saw),
        // a pointer without its feed entry would be missed by catch-up.
        let mut writes = vec![self.write_change(m.user, ChangeKind::Read, m)];
        for u in m.receipts_to.iter().filter(|u| **u != m.user) {
            writes.push(self.write_change(*u, ChangeKind::Receipt, m));
        }
        futures_util::future::try_join_all(writes).await?;
        check_message_age(MessageId(m.change.0))?;
        let ts = write_timestamp(m.message_id.0);
        self.db.write(Q::ReadPointerSet, (m.user.0, &m.conversation.0, m.message_id.0, ts)).await?;
        Ok(ReadOutcome::Moved)
    }

    async fn unread(
        &self,
        user: UserId,
        conversations: &[ConversationId],
        cap: u32,
    ) -> Result<Vec<Unread>, StoreError> {
        self.live()?;
        let reads = conversations.iter().map(|c| self.unread_one_cql(user, c, cap));
        futures_util::future::try_join_all(reads).await
    }

    async fn changes_since(&self, user: UserId, after: ChangeId, limit: usize) -> Result<Vec<Change>, StoreError> {
        self.live()?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut buckets = self.db.stream::<(i32,)>(Q::ChangeBuckets, (user.0, bucket_of(after.0))).await?;
        while out.len() < limit {
            let Some((bucket,)) = buckets.next_row().await? else { break };
            let page = (user.0, bucket, after.0, cql_limit(limit - out.len()));
            let rows: Vec<ChangeRow> = self.db.rows(Q::ChangePage, page).await?;
            out.extend(rows.into_iter().filter_map(|(id, kind, conv, by, message)| {
                Some(Change {
                    id: ChangeId(id),
                    kind: ChangeKind::from_code(kind)?,
                    conversation: ConversationId(conv),
                    by: UserId(by),
                    message_id: MessageId(message),
                })
            }));
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn set_read_receipts(&self, user: UserId, enabled: bool) -> Result<(), StoreError> {
        self.live()?;
        self.db.write(Q::SettingsSet, (user.0, enabled)).await
    }

    async fn read_receipts(&self, users: &[UserId]) -> Result<Vec<bool>, StoreError> {
        self.live()?;
        let reads = users.iter().map(|u| async move {
            let row: Option<(Option<bool>,)> = self.db.one(Q::SettingsGet, (u.0,)).await?;
            Ok::<_, StoreError>(row.and_then(|(v,)| v).unwrap_or(true))
        });
        futures_util::future::try_join_all(reads).await
    }
}
