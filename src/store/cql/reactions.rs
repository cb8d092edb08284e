//! [`ReactionStore`] on CQL (`cql/009_reactions.cql`). An edit checks the
//! message and the user's row, writes the members' change-feed entries
//! (concurrently, at most [`FEED_WRITES`] at a time), then the reaction
//! rows. A react that adds a new distinct emoji reads the counts again
//! after its write and takes its rows back if the limit was passed (the
//! race the trait documents). A user deleted meanwhile: the rows are taken
//! back and the edit is `UserGone`.

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};

use super::ScyllaStore;
use super::keys::bucket_of;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{ConversationId, MessageId, UserId};
use crate::store::check_message_age;
use crate::store::reactions::{ReactOutcome, ReactionCount, ReactionEdit, ReactionStore};
use crate::store::read_state::ChangeKind;

/// Change-feed writes of one edit in flight at once (a group has up to
/// `--max-group-members` feeds).
const FEED_WRITES: usize = 32;

impl ScyllaStore {
    /// (emoji, count) of a message, sorted by emoji.
    async fn reaction_counts(&self, message: MessageId) -> Result<Vec<(String, i64)>, StoreError> {
        self.db.rows(Q::ReactionCounts, (message.0,)).await
    }

    /// The emoji `viewer` reacted with on messages in `lo..=hi`.
    async fn my_reactions(&self, viewer: UserId, lo: i64, hi: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.db.rows(Q::UserReactionsRange, (viewer.0, lo, hi)).await
    }

    async fn summary_cql(&self, viewer: UserId, message: MessageId) -> Result<Vec<ReactionCount>, StoreError> {
        let (counts, mine) =
            tokio::try_join!(self.reaction_counts(message), self.my_reactions(viewer, message.0, message.0))?;
        Ok(to_summary(counts, |e| mine.iter().any(|(_, m)| m == e)))
    }

    async fn has_reaction(&self, e: &ReactionEdit) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = self.db.one(Q::ReactionGet, (e.message_id.0, &e.emoji, e.user.0)).await?;
        Ok(row.is_some())
    }

    async fn write_reaction_feeds(&self, e: &ReactionEdit) -> Result<(), StoreError> {
        let b = bucket_of(e.change.0);
        let kind = ChangeKind::Reaction.code();
        futures_util::stream::iter(e.feeds.iter().copied())
            .map(|owner| async move {
                let row = (owner.0, b, e.change.0, kind, &e.conversation.0, e.user.0, e.message_id.0);
                tokio::try_join!(
                    self.db.write(Q::ChangeBucketInsert, (owner.0, b)),
                    self.db.write(Q::ChangeInsert, row)
                )
                .map(|_| ())
            })
            .buffer_unordered(FEED_WRITES)
            .try_collect::<()>()
            .await
    }

    /// Writes (`present`) or removes the reaction's two rows.
    async fn set_reaction_rows(&self, e: &ReactionEdit, present: bool) -> Result<(), StoreError> {
        let (m, u) = (e.message_id.0, e.user.0);
        if present {
            tokio::try_join!(
                self.db.write(Q::ReactionInsert, (m, &e.emoji, u, e.change.0)),
                self.db.write(Q::UserReactionInsert, (u, m, &e.emoji)),
            )?;
        } else {
            tokio::try_join!(
                self.db.write(Q::ReactionDelete, (m, &e.emoji, u)),
                self.db.write(Q::UserReactionDelete, (u, m, &e.emoji)),
            )?;
        }
        Ok(())
    }

    /// `Ok(new_emoji)` when the edit may go ahead (whether it adds a new
    /// distinct emoji), else `Err(answer)` (nothing written).
    async fn precheck(&self, e: &ReactionEdit) -> Result<Result<bool, ReactOutcome>, StoreError> {
        let has = self.has_reaction(e).await?;
        if has == e.add {
            return Ok(Err(ReactOutcome::Unchanged(self.summary_cql(e.user, e.message_id).await?)));
        }
        if !e.add {
            return Ok(Ok(false));
        }
        let counts = self.reaction_counts(e.message_id).await?;
        let new_emoji = !counts.iter().any(|(emoji, _)| *emoji == e.emoji);
        if new_emoji && counts.len() >= e.max_distinct {
            return Ok(Err(ReactOutcome::TooMany));
        }
        Ok(Ok(new_emoji))
    }

    async fn edit_reaction_cql(&self, e: &ReactionEdit) -> Result<ReactOutcome, StoreError> {
        let key = (&e.conversation.0, bucket_of(e.message_id.0), e.message_id.0);
        let found: Option<(i64,)> = self.db.one(Q::MessageSendersGet, key).await?;
        if found.is_none() {
            return Ok(ReactOutcome::NoSuchMessage);
        }
        self.require_users(&[e.user]).await?;
        let new_emoji = match self.precheck(e).await? {
            Ok(new_emoji) => new_emoji,
            Err(answer) => return Ok(answer),
        };
        // The feed entries first: an entry whose reaction write then
        // failed is harmless (readers fetch the current summary); a
        // reaction without its entries would be missed by catch-up.
        self.write_reaction_feeds(e).await?;
        check_message_age(MessageId(e.change.0))?;
        self.set_reaction_rows(e, e.add).await?;
        if new_emoji && self.reaction_counts(e.message_id).await?.len() > e.max_distinct {
            self.set_reaction_rows(e, false).await?;
            return Ok(ReactOutcome::TooMany);
        }
        if let Err(gone) = self.require_users(&[e.user]).await {
            if e.add {
                self.set_reaction_rows(e, false).await?;
            }
            return Err(gone);
        }
        Ok(ReactOutcome::Changed(self.summary_cql(e.user, e.message_id).await?))
    }

    /// Every reaction of `user` (account deletion): each message's row,
    /// then the user's list.
    pub(super) async fn delete_user_reactions(&self, user: UserId) -> Result<(), StoreError> {
        let mine: Vec<(i64, String)> = self.db.rows(Q::UserReactionsAll, (user.0,)).await?;
        futures_util::stream::iter(mine)
            .map(|(m, emoji)| async move { self.db.write(Q::ReactionDelete, (m, emoji, user.0)).await })
            .buffer_unordered(FEED_WRITES)
            .try_collect::<()>()
            .await?;
        self.db.write(Q::UserReactionsDelete, (user.0,)).await
    }
}

/// Counts as summaries, sorted by emoji (bytewise, as on SQLite).
fn to_summary(counts: Vec<(String, i64)>, me: impl Fn(&str) -> bool) -> Vec<ReactionCount> {
    let mut out: Vec<ReactionCount> = counts
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(emoji, n)| ReactionCount { me: me(&emoji), emoji, count: n as u32 })
        .collect();
    out.sort_by(|a, b| a.emoji.as_bytes().cmp(b.emoji.as_bytes()));
    out
}

#[async_trait]
impl ReactionStore for ScyllaStore {
    async fn edit_reaction(&self, e: &ReactionEdit) -> Result<ReactOutcome, StoreError> {
        self.live()?;
        check_message_age(MessageId(e.change.0))?;
        self.edit_reaction_cql(e).await
    }

    async fn reaction_summaries(
        &self,
        viewer: UserId,
        _conversation: &ConversationId,
        messages: &[MessageId],
    ) -> Result<Vec<Vec<ReactionCount>>, StoreError> {
        self.live()?;
        let (Some(lo), Some(hi)) = (messages.iter().min(), messages.iter().max()) else { return Ok(Vec::new()) };
        let mine = self.my_reactions(viewer, lo.0, hi.0).await?;
        let counts: Vec<Vec<(String, i64)>> = futures_util::stream::iter(messages.iter().copied())
            .map(|m| self.reaction_counts(m))
            .buffered(FEED_WRITES)
            .try_collect()
            .await?;
        Ok(messages
            .iter()
            .zip(counts)
            .map(|(m, c)| to_summary(c, |e| mine.iter().any(|(mid, me)| *mid == m.0 && me == e)))
            .collect())
    }

    async fn clear_reactions(&self, _conversation: &ConversationId, message: MessageId) -> Result<u64, StoreError> {
        self.live()?;
        let rows: Vec<(String, i64)> = self.db.rows(Q::ReactionsOfMessage, (message.0,)).await?;
        let n = rows.len() as u64;
        futures_util::stream::iter(rows)
            .map(|(emoji, user)| async move { self.db.write(Q::UserReactionDelete, (user, message.0, emoji)).await })
            .buffer_unordered(FEED_WRITES)
            .try_collect::<()>()
            .await?;
        self.db.write(Q::ReactionsDelete, (message.0,)).await?;
        Ok(n)
    }
}
