//! Direct messages on CQL: the conversation's history by (conversation,
//! bucket), each participant's sync feed by (user, bucket), the
//! conversation lists, and nonce claims for idempotent sends.

use super::ScyllaStore;
use super::binds;
use super::exec::Lwt;
use super::keys::{bucket_of, conversation_page, cql_limit, newest_bucket_below, tombstone_timestamp, upper_bound};
use super::rows::{ConversationRow, MessageRow};
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{ConversationId, ConversationSummary, DirectSend, Message, MessageId, UserId, now_ms};
use crate::store::{Inserted, check_message_age};

impl ScyllaStore {
    /// With a nonce: claims (sender, nonce) with a lightweight transaction
    /// first. A claim that exists already points at the original message;
    /// if that message was never written (a crash between claim and write),
    /// this call writes it under the claimed id. A stale id or a deleted
    /// participant is refused before anything is claimed or written (both
    /// user rows read at once); [`Self::write_message`] checks them again
    /// after writing, which is what makes a deletion win.
    pub(super) async fn insert_message_cql(&self, m: &Message) -> Result<Inserted, StoreError> {
        check_message_age(m.id)?;
        self.require_users(&[m.from_id, m.to_id]).await?;
        self.insert_checked(m).await
    }

    /// `send_direct` in one round trip of reads before the writes: the
    /// recipient's name lookup (its user row included) and the sender's
    /// user row are read concurrently and serve as the pre-check of
    /// [`Self::insert_message_cql`]; the post-write check stays.
    pub(super) async fn send_direct_cql(&self, send: &DirectSend) -> Result<Option<Inserted>, StoreError> {
        check_message_age(send.id)?;
        let (to, from) = tokio::try_join!(self.user_by_username_cql(&send.to_username), self.user_row(send.from.id))?;
        let Some(to) = to else { return Ok(None) };
        if from.is_none() {
            return Err(StoreError::UserGone);
        }
        crate::store::check_blocks(self, send.from.id, to.user.id).await?;
        self.insert_checked(&send.to_message(&to.user)).await.map(Some)
    }

    /// [`Self::insert_message_cql`] once both participants were seen.
    async fn insert_checked(&self, m: &Message) -> Result<Inserted, StoreError> {
        let Some(nonce) = &m.nonce else {
            self.write_message(m).await?;
            return Ok(Inserted::new(m));
        };
        let claim = binds::nonce_claim(m, nonce);
        if self.db.lwt(Q::NonceClaim, claim).await? == Lwt::Applied {
            self.write_message(m).await?;
            return Ok(Inserted::new(m));
        }
        let owner: Option<(String, i64)> = self.db.one_serial(Q::NonceGet, (m.from_id.0, nonce)).await?;
        let Some((conv, id)) = owner else {
            return Err(StoreError::Unavailable("message nonce claim not confirmed".into()));
        };
        if id == m.id.0 {
            // Our own claim (the LWT timed out but was applied).
            self.write_message(m).await?;
            return Ok(Inserted::new(m));
        }
        let key = (conv.clone(), bucket_of(id), id);
        if let Some(original) = self.db.one::<MessageRow>(Q::MessageGet, key).await? {
            return Ok(Inserted::repeat(original.into()));
        }
        // Claimed but never written. Under the claimed id if it may still
        // commit; if not, `write_message` releases the claim and the next
        // retry stores the message under its own, fresh id.
        let adopted = Message { id: MessageId(id), conversation_id: ConversationId(conv), ..m.clone() };
        self.write_message(&adopted).await?;
        Ok(Inserted::written(adopted, true))
    }

    /// Every row of one message, each write idempotent, in two rounds of
    /// concurrent writes (none depends on another; a retry after a partial
    /// failure rewrites the same rows): the message, its bucket and the
    /// sender's list; then, if the id is still young enough to commit
    /// ([`crate::store::MESSAGE_MAX_AGE_MS`]), both sync feeds and
    /// conversation lists, which sync and the lists read, and the push
    /// intake entry ([`crate::store::push`]). Finally both
    /// participants are checked again (concurrently): if one was deleted
    /// meanwhile, the rows are removed and the send fails with `UserGone`.
    async fn write_message(&self, m: &Message) -> Result<(), StoreError> {
        let b = bucket_of(m.id.0);
        let (from, to) = (m.from_id, m.to_id);
        let db = &self.db;
        tokio::try_join!(
            db.write(Q::MessageInsert, binds::message_insert(m)),
            db.write(Q::ConvBucketInsert, (&m.conversation_id.0, b)),
            db.write(Q::SentInsert, binds::sent_insert(m)),
        )?;
        if let Err(e) = check_message_age(m.id) {
            self.undo_message(m, false).await?;
            return Err(e);
        }
        tokio::try_join!(
            db.write(Q::InboxBucketInsert, (from.0, b)),
            db.write(Q::InboxBucketInsert, (to.0, b)),
            db.write(Q::InboxInsert, binds::inbox_insert(from, m)),
            db.write(Q::InboxInsert, binds::inbox_insert(to, m)),
            db.write(Q::ConversationUpsert, binds::conversation_upsert(from, to, m)),
            db.write(Q::ConversationUpsert, binds::conversation_upsert(to, from, m)),
            self.intake_for_direct(m),
        )?;
        if let Err(e) = self.require_users(&[from, to]).await {
            self.undo_message(m, true).await?;
            return Err(e);
        }
        Ok(())
    }

    /// The push intake entry of a direct message (none to oneself).
    async fn intake_for_direct(&self, m: &Message) -> Result<(), StoreError> {
        if m.from_id == m.to_id {
            return Ok(());
        }
        self.write_intake(m).await
    }

    /// Removes what [`Self::write_message`] wrote, and the nonce claim, so
    /// a retry starts afresh. With `conversations`, both conversation-list
    /// rows go too (only when a participant is gone: the conversation is
    /// over, so nothing newer is lost).
    async fn undo_message(&self, m: &Message, conversations: bool) -> Result<(), StoreError> {
        let b = bucket_of(m.id.0);
        self.db.write(Q::MessageDelete, (&m.conversation_id.0, b, m.id.0)).await?;
        self.db.write(Q::InboxDelete, (m.from_id.0, b, m.id.0)).await?;
        self.db.write(Q::InboxDelete, (m.to_id.0, b, m.id.0)).await?;
        self.db.write(Q::SentRowDelete, (m.from_id.0, m.id.0)).await?;
        if conversations {
            let ts = tombstone_timestamp(now_ms());
            self.db.write(Q::ConversationDelete, (ts, m.from_id.0, m.to_id.0)).await?;
            self.db.write(Q::ConversationDelete, (ts, m.to_id.0, m.from_id.0)).await?;
        }
        if let Some(nonce) = &m.nonce {
            self.db.lwt(Q::NonceDelete, (m.from_id.0, nonce)).await?;
        }
        Ok(())
    }

    /// Walks the conversation's non-empty buckets newest first, reading
    /// each below the cursor until the page is full.
    pub(super) async fn history_cql(
        &self,
        conversation: &ConversationId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let before = before.map(|b| b.0);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut buckets =
            self.db.stream::<(i32,)>(Q::ConvBuckets, (&conversation.0, newest_bucket_below(before))).await?;
        while out.len() < limit {
            let Some((bucket,)) = buckets.next_row().await? else { break };
            let want = cql_limit(limit - out.len());
            let page = binds::bucket_page(&conversation.0, bucket, upper_bound(before), want);
            let rows: Vec<MessageRow> = self.db.rows(Q::MessagePage, page).await?;
            out.extend(rows.into_iter().map(Message::from));
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Walks the user's sync buckets oldest first from the cursor's bucket.
    pub(super) async fn messages_since_cql(
        &self,
        user: UserId,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut buckets = self.db.stream::<(i32,)>(Q::InboxBuckets, (user.0, bucket_of(after.0))).await?;
        while out.len() < limit {
            let Some((bucket,)) = buckets.next_row().await? else { break };
            let page = binds::bucket_page(user.0, bucket, after.0, cql_limit(limit - out.len()));
            let rows: Vec<MessageRow> = self.db.rows(Q::InboxPage, page).await?;
            out.extend(rows.into_iter().map(Message::from));
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Reads the user's whole conversation list (one partition, one row per
    /// peer), orders it in Rust and keeps one page: O(peers) per call.
    pub(super) async fn conversations_cql(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let rows: Vec<ConversationRow> = self.db.rows(Q::ConversationsOfUser, (user.0,)).await?;
        let keyed = rows.into_iter().map(|r| (r.message_id, r)).collect();
        let mut out = Vec::new();
        // Over-read so that peers deleted meanwhile do not shorten the page.
        for r in conversation_page(keyed, before.map(|b| b.0), usize::MAX) {
            if out.len() >= limit {
                break;
            }
            let Some(peer) = self.user_by_id_cql(UserId(r.peer_id)).await? else { continue };
            let last_message = r.message();
            out.push(ConversationSummary { conversation_id: last_message.conversation_id.clone(), peer, last_message });
        }
        Ok(out)
    }
}
