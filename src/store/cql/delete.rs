//! Account deletion on CQL: a fan-out of small prepared statements over
//! everything that is the user's. Not atomic (CQL has no multi-partition
//! transaction): each step is idempotent and the username is released
//! last, so a retry after a failure finishes the job. The user row goes
//! first: from then on every write of the user fails its existence check
//! (see `require_users`), and a write that passed its second check before
//! landed before the steps below, which remove it. A retry after the user
//! row is gone still removes everything keyed by the user id; the search
//! rows it may leave are filtered out on read, and the username claim is
//! taken over by the next registration (orphaned claims). Cost:
//! O(sessions + follows + messages sent or received + buckets +
//! conversations + search prefixes + likes + reposts + posts + home copies +
//! change-feed buckets + reactions given).
//! Reactions others gave on the deleted direct messages stay as unreachable
//! rows (their message is gone, so no view ever reads them); SQLite removes
//! them with the messages.

use super::ScyllaStore;
use super::binds;
use super::keys::{bucket_of, search_prefixes, tombstone_timestamp};
use super::rows::{ConversationRow, MessageRow, SentRow};
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{SessionId, UserId, now_ms};
use crate::store::search_terms;

impl ScyllaStore {
    pub(super) async fn delete_user_cql(&self, id: UserId) -> Result<bool, StoreError> {
        let row = self.user_row(id).await?;
        self.db.write(Q::UserDelete, (id.0,)).await?;
        self.delete_sessions(id).await?;
        self.delete_follows(id).await?;
        self.delete_messages(id).await?;
        self.delete_user_posts(id).await?;
        self.leave_all_groups(id).await?;
        self.delete_chat_state(id).await?;
        self.delete_user_safety(id).await?;
        self.delete_user_reactions(id).await?;
        let Some(row) = row else { return Ok(false) };
        let (Some(username), display) = (row.username.clone(), row.display_name.clone().unwrap_or_default()) else {
            return Ok(false);
        };
        let key = username.to_lowercase();
        let prefixes = search_prefixes(&search_terms(&username, &display));
        self.index_search(id, &key, &prefixes, &Default::default()).await?;
        // Released only if it is still ours. If this never runs (a crash
        // after the user row is gone), the next registration of the name
        // finds the claim orphaned and takes it over.
        self.db.lwt(Q::UsernameRelease, (&key, id.0)).await?;
        Ok(true)
    }

    async fn delete_sessions(&self, id: UserId) -> Result<(), StoreError> {
        let sessions: Vec<(String,)> = self.db.rows(Q::SessionsOfUser, (id.0,)).await?;
        for (sid,) in sessions {
            // Revoke first: if the delete times out the tokens are dead anyway.
            self.revoke_session_cql(&SessionId(sid.clone())).await?;
            self.db.lwt(Q::SessionDelete, (&sid,)).await?;
            self.db.write(Q::RefreshUsedDelete, (&sid,)).await?;
        }
        self.db.write(Q::SessionsOfUserDelete, (id.0,)).await
    }

    async fn delete_follows(&self, id: UserId) -> Result<(), StoreError> {
        for (other, _) in self.follow_ids_cql(id).await? {
            self.remove_follow_cql(id, other).await?;
        }
        let followers: Vec<(i64, i64)> = self.db.rows(Q::FollowersPage, (id.0, i64::MAX)).await?;
        for (_, follower) in followers {
            self.remove_follow_cql(UserId(follower), id).await?;
        }
        // Others' counts moved with each release above; the user's own go.
        self.db.write(Q::FollowCountsDelete, (id.0,)).await
    }

    /// Every conversation with the user, both directions: each message of
    /// the user's sync feed (sent or received) from its conversation and
    /// from the other side's feed; the user's sent list and nonces; the
    /// user's own feed; both sides' conversation-list rows.
    async fn delete_messages(&self, id: UserId) -> Result<(), StoreError> {
        let buckets: Vec<(i32,)> = self.db.rows(Q::InboxBuckets, (id.0, i32::MIN)).await?;
        // Lifecycle rows carry timestamps up to a day ahead (cql/008).
        let ts_state = tombstone_timestamp(now_ms()) + 1;
        for (b,) in &buckets {
            let page = binds::bucket_page(id.0, *b, i64::MIN, i32::MAX);
            let feed: Vec<MessageRow> = self.db.rows(Q::InboxPage, page).await?;
            for m in feed {
                let other = if m.from_id == id.0 { m.to_id } else { m.from_id };
                self.db.write(Q::MessageDelete, (&m.conversation_id, *b, m.message_id)).await?;
                self.db.write(Q::StateRowDelete, (ts_state, &m.conversation_id, *b, m.message_id)).await?;
                self.db.write(Q::InboxDelete, (other, *b, m.message_id)).await?;
            }
        }
        let sent: Vec<SentRow> = self.db.rows(Q::SentOfUser, (id.0,)).await?;
        for m in sent {
            let b = bucket_of(m.message_id);
            self.db.write(Q::MessageDelete, (&m.conversation_id, b, m.message_id)).await?;
            self.db.write(Q::StateRowDelete, (ts_state, &m.conversation_id, b, m.message_id)).await?;
            self.db.write(Q::InboxDelete, (m.to_id, b, m.message_id)).await?;
            if let Some(nonce) = &m.nonce {
                self.db.lwt(Q::NonceDelete, (id.0, nonce)).await?;
            }
        }
        self.db.write(Q::SentDelete, (id.0,)).await?;
        for (b,) in buckets {
            self.db.write(Q::InboxBucketDelete, (id.0, b)).await?;
        }
        self.db.write(Q::InboxBucketsDelete, (id.0,)).await?;
        // Conversation rows carry message-id timestamps; the tombstones
        // must be newer than any of them.
        let ts = tombstone_timestamp(now_ms());
        let convs: Vec<ConversationRow> = self.db.rows(Q::ConversationsOfUser, (id.0,)).await?;
        for c in convs {
            self.db.write(Q::ConversationDelete, (ts, c.peer_id, id.0)).await?;
            // The peer's read pointer in a conversation that is gone.
            self.db.write(Q::ReadPointerDelete, (ts, c.peer_id, &c.conversation_id)).await?;
            // And the peer's mute of it.
            self.db.write(Q::MuteDelete, (c.peer_id, &c.conversation_id)).await?;
        }
        self.db.write(Q::ConversationsDelete, (ts, id.0)).await
    }

    /// The user's chat state: read pointers, change feed, settings. (The
    /// peers' pointers in deleted direct conversations go with those
    /// conversations, in `delete_messages`.)
    async fn delete_chat_state(&self, id: UserId) -> Result<(), StoreError> {
        self.db.write(Q::ReadPointersDelete, (tombstone_timestamp(now_ms()), id.0)).await?;
        let buckets: Vec<(i32,)> = self.db.rows(Q::ChangeBuckets, (id.0, i32::MIN)).await?;
        for (b,) in buckets {
            self.db.write(Q::ChangeBucketDelete, (id.0, b)).await?;
        }
        self.db.write(Q::ChangeBucketsDelete, (id.0,)).await?;
        self.db.write(Q::SettingsDelete, (id.0,)).await?;
        // Push (issue 16): devices and setting; the devices' queued jobs
        // are dropped by the workers when claimed (no device).
        self.db.write(Q::PushDevicesDelete, (id.0,)).await?;
        self.free_all_device_slots(id).await?;
        self.db.write(Q::PushSettingDelete, (id.0,)).await
    }
}
