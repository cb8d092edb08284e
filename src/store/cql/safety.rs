//! [`SafetyStore`] on CQL (`cql/011_safety.cql`). A block writes three
//! rows (`blocks`, `blocks_by_id`, `blocked_by`), each idempotent; the
//! count bound is checked by a read first, so blocks racing each other may
//! pass it by the number that raced. Reports live in one partition per
//! 10-day bucket of their id, listed by `report_buckets`.

use async_trait::async_trait;

use super::ScyllaStore;
use super::keys::{bucket_of, cql_limit};
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{ConversationId, UserId};
use crate::store::safety::{Ban, Block, BlockOutcome, Report, ReportTarget, SafetyStore};

/// The one partition of `report_buckets` (reports are few; a shard
/// column leaves room to spread them later).
const REPORT_SHARD: i32 = 0;

/// The columns of `ReportGet` and `ReportPage`.
pub(super) type ReportRow = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
);

fn report_of(r: ReportRow) -> Report {
    let (
        id,
        reporter,
        reporter_name,
        kind,
        target_id,
        target_name,
        message_id,
        conv,
        text,
        reason,
        details,
        created,
        at,
        note,
    ) = r;
    let target = if kind == "message" {
        ReportTarget::Message {
            id: message_id.unwrap_or(0),
            conversation: ConversationId(conv.unwrap_or_default()),
            author: UserId(target_id),
            author_name: target_name,
            text: text.unwrap_or_default(),
        }
    } else {
        ReportTarget::User { id: UserId(target_id), username: target_name }
    };
    Report {
        id,
        reporter: UserId(reporter),
        reporter_name,
        target,
        reason,
        details,
        created_ms: created,
        resolved: at.map(|at| (at, note.unwrap_or_default())),
    }
}

impl ScyllaStore {
    async fn blocks_exists(&self, blocker: UserId, blocked: UserId) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = self.db.one(Q::BlockGet, (blocker.0, blocked.0)).await?;
        Ok(row.map(|(id,)| id))
    }

    async fn unblock_cql(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        let Some(id) = self.blocks_exists(blocker, blocked).await? else { return Ok(false) };
        self.db.write(Q::BlockByIdDelete, (blocker.0, id)).await?;
        self.db.write(Q::BlockedByDelete, (blocked.0, blocker.0)).await?;
        self.db.write(Q::BlockDelete, (blocker.0, blocked.0)).await?;
        Ok(true)
    }

    /// Removes `user`'s blocks and mutes, both directions, and any ban
    /// (account deletion; reports stay). Idempotent.
    pub(super) async fn delete_user_safety(&self, user: UserId) -> Result<(), StoreError> {
        let blockers: Vec<(i64,)> = self.db.rows(Q::BlockedByOf, (user.0,)).await?;
        for (b,) in blockers {
            self.unblock_cql(UserId(b), user).await?;
        }
        self.db.write(Q::BlockedByOfDelete, (user.0,)).await?;
        let mine: Vec<(i64, i64)> = self.db.rows(Q::BlockByIdPage, (user.0, i64::MAX, i32::MAX)).await?;
        for (_, blocked) in mine {
            self.db.write(Q::BlockedByDelete, (blocked, user.0)).await?;
        }
        self.db.write(Q::BlocksByIdDelete, (user.0,)).await?;
        self.db.write(Q::BlocksOfUserDelete, (user.0,)).await?;
        self.db.write(Q::MutesDelete, (user.0,)).await?;
        self.db.write(Q::BanDelete, (user.0,)).await
    }

    async fn report_get(&self, id: i64) -> Result<Option<Report>, StoreError> {
        let row: Option<ReportRow> = self.db.one(Q::ReportGet, (bucket_of(id), id)).await?;
        Ok(row.map(report_of))
    }
}

#[async_trait]
impl SafetyStore for ScyllaStore {
    async fn block(&self, blocker: UserId, blocked: UserId, id: i64, max: usize) -> Result<BlockOutcome, StoreError> {
        self.live()?;
        self.require_users(&[blocker]).await?;
        if self.blocks_exists(blocker, blocked).await?.is_some() {
            return Ok(BlockOutcome::Already);
        }
        let have: Vec<(i64,)> = self.db.rows(Q::BlockCount, (blocker.0, cql_limit(max))).await?;
        if have.len() >= max {
            return Ok(BlockOutcome::Full);
        }
        // The list rows first: a block row without them would be invisible in user.blocks.
        self.db.write(Q::BlockByIdInsert, (blocker.0, id, blocked.0)).await?;
        self.db.write(Q::BlockedByInsert, (blocked.0, blocker.0)).await?;
        self.db.write(Q::BlockInsert, (blocker.0, blocked.0, id)).await?;
        if let Err(e) = self.require_users(&[blocker]).await {
            self.unblock_cql(blocker, blocked).await?;
            return Err(e);
        }
        Ok(BlockOutcome::Added)
    }

    async fn unblock(&self, blocker: UserId, blocked: UserId) -> Result<bool, StoreError> {
        self.live()?;
        self.unblock_cql(blocker, blocked).await
    }

    async fn blocks(&self, blocker: UserId, before: Option<i64>, limit: usize) -> Result<Vec<Block>, StoreError> {
        self.live()?;
        let mut out = Vec::new();
        let mut rows =
            self.db.stream::<(i64, i64)>(Q::BlockByIdPage, (blocker.0, before.unwrap_or(i64::MAX), i32::MAX)).await?;
        while out.len() < limit {
            let Some((id, blocked)) = rows.next_row().await? else { break };
            // A list row left by a raced block or an unfinished unblock.
            if self.blocks_exists(blocker, UserId(blocked)).await? == Some(id) {
                out.push(Block { user: UserId(blocked), id });
            }
        }
        Ok(out)
    }

    async fn blockers_of(&self, target: UserId, users: &[UserId]) -> Result<Vec<UserId>, StoreError> {
        self.live()?;
        let distinct: Vec<UserId> =
            users.iter().enumerate().filter(|(i, u)| !users[..*i].contains(u)).map(|(_, u)| *u).collect();
        let found = futures_util::future::try_join_all(distinct.iter().map(|u| self.blocks_exists(*u, target))).await?;
        Ok(distinct.into_iter().zip(found).filter(|(_, f)| f.is_some()).map(|(u, _)| u).collect())
    }

    async fn set_mute(&self, user: UserId, conversation: &ConversationId, until_ms: i64) -> Result<(), StoreError> {
        self.live()?;
        self.db.write(Q::MuteSet, (user.0, &conversation.0, until_ms)).await
    }

    async fn unmute(&self, user: UserId, conversation: &ConversationId) -> Result<bool, StoreError> {
        self.live()?;
        let row: Option<(i64,)> = self.db.one(Q::MuteGet, (user.0, &conversation.0)).await?;
        self.db.write(Q::MuteDelete, (user.0, &conversation.0)).await?;
        Ok(row.is_some())
    }

    async fn mutes(&self, user: UserId, conversations: &[ConversationId]) -> Result<Vec<Option<i64>>, StoreError> {
        self.live()?;
        let reads = conversations.iter().map(|c| async move {
            let row: Option<(i64,)> = self.db.one(Q::MuteGet, (user.0, &c.0)).await?;
            Ok::<_, StoreError>(row.map(|(u,)| u))
        });
        futures_util::future::try_join_all(reads).await
    }

    async fn create_report(&self, r: &Report) -> Result<(), StoreError> {
        self.live()?;
        let (kind, target_id, target_name, message_id, conv, text) = match &r.target {
            ReportTarget::Message { id, conversation, author, author_name, text } => (
                "message",
                author.0,
                author_name.as_str(),
                Some(*id),
                Some(conversation.0.as_str()),
                Some(text.as_str()),
            ),
            ReportTarget::User { id, username } => ("user", id.0, username.as_str(), None, None, None),
        };
        let b = bucket_of(r.id);
        self.db.write(Q::ReportBucketInsert, (REPORT_SHARD, b)).await?;
        let row = (
            b,
            r.id,
            r.reporter.0,
            &r.reporter_name,
            kind,
            target_id,
            target_name,
            message_id,
            conv,
            text,
            &r.reason,
            &r.details,
            r.created_ms,
        );
        self.db.write(Q::ReportInsert, row).await
    }

    async fn reports(&self, open_only: bool, before: Option<i64>, limit: usize) -> Result<Vec<Report>, StoreError> {
        self.live()?;
        let mut out = Vec::new();
        let before = before.unwrap_or(i64::MAX);
        let mut buckets = self.db.stream::<(i32,)>(Q::ReportBuckets, (REPORT_SHARD, bucket_of(before))).await?;
        while out.len() < limit {
            let Some((bucket,)) = buckets.next_row().await? else { break };
            let mut rows = self.db.stream::<ReportRow>(Q::ReportPage, (bucket, before)).await?;
            while out.len() < limit {
                let Some(row) = rows.next_row().await? else { break };
                let r = report_of(row);
                if !open_only || r.resolved.is_none() {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    async fn resolve_report(&self, id: i64, note: &str, at_ms: i64) -> Result<Option<Report>, StoreError> {
        self.live()?;
        // An UPDATE would create a row: only an existing report is resolved.
        if self.report_get(id).await?.is_none() {
            return Ok(None);
        }
        self.db.write(Q::ReportResolve, (at_ms, note, bucket_of(id), id)).await?;
        self.report_get(id).await
    }

    async fn set_ban(&self, ban: &Ban) -> Result<(), StoreError> {
        self.live()?;
        self.db.write(Q::BanSet, (ban.user.0, &ban.reason, ban.at_ms)).await
    }

    async fn remove_ban(&self, user: UserId) -> Result<bool, StoreError> {
        self.live()?;
        let had = self.ban_of(user).await?.is_some();
        self.db.write(Q::BanDelete, (user.0,)).await?;
        Ok(had)
    }

    async fn ban_of(&self, user: UserId) -> Result<Option<Ban>, StoreError> {
        self.live()?;
        let row: Option<(String, i64)> = self.db.one(Q::BanGet, (user.0,)).await?;
        Ok(row.map(|(reason, at_ms)| Ban { user, reason, at_ms }))
    }

    async fn ban_of_session(&self, session: &crate::model::SessionId) -> Result<Option<Ban>, StoreError> {
        self.live()?;
        let row: Option<super::rows::SessionRow> = self.db.one(Q::SessionGet, (&session.0,)).await?;
        match row {
            Some(r) => self.ban_of(UserId(r.user_id)).await,
            None => Ok(None),
        }
    }
}
