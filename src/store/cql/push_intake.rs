//! The push intake on CQL (`cql/012_push_load.cql`; see
//! [`crate::store::push`]): an entry per message written in the message's
//! own round of writes, in (node, minute) partitions; read in an id range
//! slot by slot; deleted once its jobs are queued.

use futures_util::StreamExt;
use futures_util::future::BoxFuture;

use super::ScyllaStore;
use super::keys::{bucket_of, cql_limit};
use super::rows::MessageRow;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{Message, MessageId, now_ms};
use crate::snowflake::unix_ms;
use crate::store::push::{Intake, intake_node};

/// Width of an intake partition (one node's messages of one minute).
const SLOT_MS: i64 = 60_000;
/// How many slots back from now a read looks at most (two days).
const LOOKBACK_SLOTS: i64 = 2 * 24 * 60;
/// Messages read or jobs written concurrently by one intake call.
const CONCURRENCY: usize = 16;

fn slot(id: i64) -> i64 {
    unix_ms(id).div_euclid(SLOT_MS)
}

impl ScyllaStore {
    /// Writes `m`'s intake entry (one plain write; the caller runs it in
    /// the message's round of writes).
    pub(super) async fn write_intake(&self, m: &Message) -> Result<(), StoreError> {
        let node = intake_node(m.id) as i32;
        self.db.write(Q::PushIntakeInsert, (node, slot(m.id.0), m.id.0, &m.conversation_id.0)).await
    }

    /// The entries of `node` in `(after, upto]`, slot by slot up to
    /// `upto`'s (at most the one after now's).
    pub(super) async fn read_intake(
        &self,
        node: i64,
        (after, upto): (MessageId, MessageId),
        limit: usize,
    ) -> Result<Vec<Intake>, StoreError> {
        let mut keys: Vec<(i64, String)> = Vec::new();
        let last = (now_ms().div_euclid(SLOT_MS) + 1).min(slot(upto.0));
        // Entries older than the lookback are never read (a restart's
        // cursor is the stored one, at most `--push-give-up-secs`, 24 h, back).
        let mut s = slot(after.0.max(0)).max(last - LOOKBACK_SLOTS);
        let first = s;
        // Usually one or two slots; after a restart a day of them, read
        // CONCURRENCY at a time (in order).
        while s <= last && keys.len() < limit {
            let want = cql_limit(limit - keys.len());
            let slots = s..=(s + CONCURRENCY as i64 - 1).min(last);
            s = slots.end() + 1;
            let reads = slots
                .map(|sl| self.db.rows::<(i64, String)>(Q::PushIntakeRead, (node as i32, sl, after.0, upto.0, want)));
            for rows in futures_util::stream::iter(reads).buffered(CONCURRENCY).collect::<Vec<_>>().await {
                keys.extend(rows?);
            }
        }
        keys.truncate(limit);
        if s - first > 3 {
            // A catch-up (after a restart): say how far back it read.
            tracing::debug!(node, slots = s - first, "push intake: read many partitions");
        }
        let reads = keys.into_iter().map(|(id, conv)| async move {
            let row: Option<MessageRow> = self.db.one(Q::MessageGet, (&conv, bucket_of(id), id)).await?;
            Ok::<_, StoreError>(Intake { id: MessageId(id), message: row.map(Message::from) })
        });
        futures_util::stream::iter(reads).buffered(CONCURRENCY).collect::<Vec<_>>().await.into_iter().collect()
    }

    /// Deletes the entries `done` (concurrently).
    pub(super) async fn delete_intake(&self, done: &[MessageId]) -> Result<(), StoreError> {
        // Boxed before awaiting (see `enqueue_push_batch`).
        let mut deletes: Vec<BoxFuture<'_, Result<(), StoreError>>> = Vec::with_capacity(done.len());
        for id in done {
            let key = (intake_node(*id) as i32, slot(id.0), id.0);
            deletes.push(Box::pin(self.db.write(Q::PushIntakeDelete, key)));
        }
        let results: Vec<Result<(), StoreError>> =
            futures_util::stream::iter(deletes).buffer_unordered(CONCURRENCY).collect().await;
        results.into_iter().collect()
    }
}
