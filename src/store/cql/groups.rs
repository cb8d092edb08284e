//! [`GroupStore`] on CQL. Not atomic across partitions: each method writes
//! and then reads again where a concurrent change could break a rule (the
//! member limit, a sender removed while sending, an owner deleted while
//! creating), undoing its own write then. Costs: a group message is four
//! row writes (message, bucket, feed copy, last message) and two
//! membership reads; `group` reads the member partition (up to the member
//! limit); a member's sync and conversation list read each of their groups.

use async_trait::async_trait;

use super::ScyllaStore;
use super::exec::Lwt;
use super::keys::{bucket_of, cql_limit, tombstone_timestamp, write_timestamp};
use super::rows::MessageRow;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{
    AddOutcome, ConversationId, Group, GroupId, GroupMember, GroupSummary, GroupUpdate, Message, MessageId, NewGroup,
    Removal, Role, UserId, now_ms,
};
use crate::store::{GroupStore, Inserted, check_message_age};

type MemberRow = (i64, Option<String>, Option<i64>);

fn role_of(r: &MemberRow) -> Role {
    r.1.as_deref().and_then(Role::parse).unwrap_or(Role::Member)
}

/// The member who inherits the group: the oldest admin, else the oldest
/// member (ties: the lower user id).
fn successor(rows: &[MemberRow]) -> Option<i64> {
    rows.iter().min_by_key(|r| (role_of(r) != Role::Admin, r.2.unwrap_or(0), r.0)).map(|r| r.0)
}

impl ScyllaStore {
    async fn member_rows(&self, id: GroupId) -> Result<Vec<MemberRow>, StoreError> {
        self.db.rows(Q::GroupMembersAll, (id.0,)).await
    }

    async fn member_row(&self, id: GroupId, user: UserId) -> Result<Option<MemberRow>, StoreError> {
        self.db.one(Q::GroupMemberGet, (id.0, user.0)).await
    }

    async fn group_cql(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        let row: Option<(Option<String>, Option<String>)> = self.db.one(Q::GroupGet, (id.0,)).await?;
        let Some((title, topic)) = row else { return Ok(None) };
        let members = self.member_rows(id).await?;
        if members.is_empty() {
            return Ok(None); // ended (or a write raced the end)
        }
        let owner = members.iter().find(|r| role_of(r) == Role::Owner).map_or(0, |r| r.0);
        Ok(Some(Group {
            id,
            title: title.unwrap_or_default(),
            topic: topic.unwrap_or_default(),
            owner: UserId(owner),
            member_count: members.len() as u64,
        }))
    }

    async fn to_member(&self, r: MemberRow) -> Result<Option<GroupMember>, StoreError> {
        let Some(user) = self.user_by_id_cql(UserId(r.0)).await? else { return Ok(None) };
        Ok(Some(GroupMember { user, role: role_of(&r), joined_ms: r.2.unwrap_or(0) }))
    }

    async fn put_member(&self, id: GroupId, user: UserId, role: Role, at: i64) -> Result<(), StoreError> {
        self.db.write(Q::GroupMemberInsert, (id.0, user.0, role.as_str(), at)).await?;
        self.db.write(Q::UserGroupInsert, (user.0, id.0)).await
    }

    async fn drop_member(&self, id: GroupId, user: UserId) -> Result<(), StoreError> {
        self.db.write(Q::GroupMemberDelete, (id.0, user.0)).await?;
        self.db.write(Q::UserGroupDelete, (user.0, id.0)).await
    }

    /// Deletes everything of a group: its row, last message, members and
    /// every message bucket.
    async fn end_group(&self, id: GroupId) -> Result<(), StoreError> {
        let conv = ConversationId::group(id).0;
        for r in self.member_rows(id).await? {
            self.drop_member(id, UserId(r.0)).await?;
        }
        let buckets: Vec<(i32,)> = self.db.rows(Q::ConvBucketsFrom, (&conv, i32::MIN)).await?;
        for (b,) in buckets {
            self.db.write(Q::MessageBucketDelete, (&conv, b)).await?;
            self.db.write(Q::StateBucketDelete, (tombstone_timestamp(now_ms()) + 1, &conv, b)).await?;
            self.db.write(Q::GroupFeedBucketDelete, (&conv, b)).await?;
        }
        self.db.write(Q::ConvBucketsDelete, (&conv,)).await?;
        self.db.write(Q::GroupMembersDelete, (id.0,)).await?;
        self.db.write(Q::GroupLastDelete, (tombstone_timestamp(now_ms()), id.0)).await?;
        self.db.write(Q::GroupDelete, (id.0,)).await
    }

    async fn create_group_cql(&self, g: &NewGroup) -> Result<Group, StoreError> {
        self.require_users(&[g.owner]).await?;
        let at = now_ms();
        self.db.write(Q::GroupInsert, (g.id.0, &g.title, &g.topic)).await?;
        self.put_member(g.id, g.owner, Role::Owner, at).await?;
        for m in g.members.iter().filter(|m| **m != g.owner) {
            if self.user_by_id_cql(*m).await?.is_some() {
                self.put_member(g.id, *m, Role::Member, at).await?;
            }
        }
        // The owner's account deleted meanwhile: nobody may own it.
        if let Err(e) = self.require_users(&[g.owner]).await {
            self.end_group(g.id).await?;
            return Err(e);
        }
        self.group_cql(g.id).await?.ok_or_else(|| StoreError::Unavailable("group changed while created".into()))
    }

    async fn add_members_cql(&self, id: GroupId, users: &[UserId], max: usize) -> Result<AddOutcome, StoreError> {
        if self.group_cql(id).await?.is_none() {
            return Ok(AddOutcome::NoGroup);
        }
        let present: Vec<i64> = self.member_rows(id).await?.iter().map(|r| r.0).collect();
        let mut fresh = Vec::new();
        for u in users {
            if !present.contains(&u.0) && !fresh.contains(u) && self.user_by_id_cql(*u).await?.is_some() {
                fresh.push(*u);
            }
        }
        if present.len() + fresh.len() > max {
            return Ok(AddOutcome::Full);
        }
        let at = now_ms();
        for u in &fresh {
            self.put_member(id, *u, Role::Member, at).await?;
        }
        // Count again: a concurrent add may have taken the same room.
        let count = self.member_rows(id).await?.len();
        if count > max {
            for u in &fresh {
                self.drop_member(id, *u).await?;
            }
            return Ok(AddOutcome::Full);
        }
        Ok(AddOutcome::Added { added: fresh, member_count: count as u64 })
    }

    async fn remove_member_cql(&self, id: GroupId, user: UserId) -> Result<Option<Removal>, StoreError> {
        let Some(row) = self.member_row(id, user).await? else { return Ok(None) };
        self.drop_member(id, user).await?;
        let rest = self.member_rows(id).await?;
        let Some(next) = successor(&rest) else {
            self.end_group(id).await?;
            return Ok(Some(Removal { new_owner: None, ended: true }));
        };
        // The owner left (or no owner is left after a concurrent removal).
        if role_of(&row) != Role::Owner && rest.iter().any(|r| role_of(r) == Role::Owner) {
            return Ok(Some(Removal { new_owner: None, ended: false }));
        }
        self.db.write(Q::GroupMemberSetRole, (Role::Owner.as_str(), id.0, next)).await?;
        Ok(Some(Removal { new_owner: Some(UserId(next)), ended: false }))
    }

    /// Takes `user` out of every group (account deletion).
    pub(super) async fn leave_all_groups(&self, user: UserId) -> Result<(), StoreError> {
        let groups: Vec<(i64,)> = self.db.rows(Q::UserGroups, (user.0,)).await?;
        for (g,) in groups {
            self.remove_member_cql(GroupId(g), user).await?;
            self.db.write(Q::UserGroupDelete, (user.0, g)).await?;
        }
        Ok(())
    }

    async fn send_group_cql(&self, m: &Message) -> Result<Option<Inserted>, StoreError> {
        check_message_age(m.id)?;
        self.require_users(&[m.from_id]).await?;
        let Some(group) = m.conversation_id.group_id() else { return Ok(None) };
        if self.member_row(group, m.from_id).await?.is_none() {
            return Ok(None);
        }
        let Some(nonce) = &m.nonce else {
            return self.write_group_message(group, m).await.map(|ok| ok.then(|| Inserted::new(m)));
        };
        let claim = (m.from_id.0, nonce.as_str(), m.conversation_id.0.as_str(), m.id.0);
        if self.db.lwt(Q::NonceClaim, claim).await? != Lwt::Applied {
            let owner: Option<(String, i64)> = self.db.one_serial(Q::NonceGet, (m.from_id.0, nonce)).await?;
            let Some((conv, id)) = owner else {
                return Err(StoreError::Unavailable("message nonce claim not confirmed".into()));
            };
            if id != m.id.0 {
                let key = (conv, bucket_of(id), id);
                if let Some(original) = self.db.one::<MessageRow>(Q::MessageGet, key).await? {
                    return Ok(Some(Inserted::repeat(original.into())));
                }
                // Claimed but never written: release it, the client retries.
                self.db.lwt(Q::NonceDelete, (m.from_id.0, nonce)).await?;
                return Err(StoreError::Unavailable("message nonce claimed by an unfinished send".into()));
            }
        }
        self.write_group_message(group, m).await.map(|ok| ok.then(|| Inserted::new(m)))
    }

    /// The message row and its bucket, then (if the id may still commit)
    /// the feed copy; then membership is read again: a sender removed
    /// meanwhile gets `false` and the rows are undone. The group's last
    /// message is written last, so an undone message never shows there.
    async fn write_group_message(&self, group: GroupId, m: &Message) -> Result<bool, StoreError> {
        let b = bucket_of(m.id.0);
        let c = &m.conversation_id.0;
        let n = m.nonce.as_deref();
        let db = &self.db;
        tokio::try_join!(
            db.write(Q::MessageInsert, (c, b, m.id.0, m.from_id.0, &m.from, 0i64, "", &m.text, n)),
            db.write(Q::ConvBucketInsert, (c, b)),
        )?;
        let undo = || async {
            db.write(Q::MessageDelete, (c, b, m.id.0)).await?;
            db.write(Q::GroupFeedDelete, (c, b, m.id.0)).await?;
            if let Some(nonce) = n {
                db.lwt(Q::NonceDelete, (m.from_id.0, nonce)).await?;
            }
            Ok::<_, StoreError>(())
        };
        if let Err(e) = check_message_age(m.id) {
            undo().await?;
            return Err(e);
        }
        tokio::try_join!(
            db.write(Q::GroupFeedInsert, (c, b, m.id.0, m.from_id.0, &m.from, 0i64, "", &m.text, n)),
            self.write_intake(m),
        )?;
        if self.member_row(group, m.from_id).await?.is_none() || self.require_users(&[m.from_id]).await.is_err() {
            undo().await?;
            return Ok(false);
        }
        let ts = write_timestamp(m.id.0);
        db.write(Q::GroupLastUpsert, (group.0, m.id.0, c, m.from_id.0, &m.from, 0i64, "", &m.text, n, ts)).await?;
        Ok(true)
    }

    async fn group_messages_since_cql(
        &self,
        user: UserId,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let mut out: Vec<Message> = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let groups: Vec<(i64,)> = self.db.rows(Q::UserGroups, (user.0,)).await?;
        for (g,) in groups {
            let last: Option<MessageRow> = self.db.one(Q::GroupLastGet, (g,)).await?;
            if last.is_none_or(|l| l.message_id <= after.0) {
                continue;
            }
            let conv = ConversationId::group(GroupId(g)).0;
            let mut buckets: Vec<(i32,)> = self.db.rows(Q::ConvBucketsFrom, (&conv, bucket_of(after.0))).await?;
            buckets.sort_unstable();
            let mut got = 0;
            for (b,) in buckets {
                if got >= limit {
                    break;
                }
                let page = (&conv, b, after.0, cql_limit(limit - got));
                let rows: Vec<MessageRow> = self.db.rows(Q::GroupFeedPage, page).await?;
                got += rows.len();
                out.extend(rows.into_iter().map(Message::from));
            }
        }
        out.sort_unstable_by_key(|m| m.id);
        out.truncate(limit);
        Ok(out)
    }

    async fn group_conversations_cql(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<GroupSummary>, StoreError> {
        let groups: Vec<(i64,)> = self.db.rows(Q::UserGroups, (user.0,)).await?;
        let mut out = Vec::new();
        for (g,) in groups {
            let Some(group) = self.group_cql(GroupId(g)).await? else { continue };
            let last: Option<MessageRow> = self.db.one(Q::GroupLastGet, (g,)).await?;
            let summary = GroupSummary { group, last_message: last.map(Message::from) };
            if before.is_none_or(|b| summary.activity() < b) {
                out.push(summary);
            }
        }
        out.sort_unstable_by_key(|s| std::cmp::Reverse(s.activity()));
        out.truncate(limit);
        Ok(out)
    }
}

#[async_trait]
impl GroupStore for ScyllaStore {
    async fn create_group(&self, g: &NewGroup) -> Result<Group, StoreError> {
        self.live()?;
        self.create_group_cql(g).await
    }

    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        self.live()?;
        self.group_cql(id).await
    }

    async fn update_group(&self, id: GroupId, update: &GroupUpdate) -> Result<Option<Group>, StoreError> {
        self.live()?;
        if self.group_cql(id).await?.is_none() {
            return Ok(None);
        }
        if let Some(title) = &update.title {
            self.db.write(Q::GroupSetTitle, (title, id.0)).await?;
        }
        if let Some(topic) = &update.topic {
            self.db.write(Q::GroupSetTopic, (topic, id.0)).await?;
        }
        self.group_cql(id).await
    }

    async fn member(&self, id: GroupId, user: UserId) -> Result<Option<GroupMember>, StoreError> {
        self.live()?;
        match self.member_row(id, user).await? {
            Some(r) => self.to_member(r).await,
            None => Ok(None),
        }
    }

    async fn group_members(
        &self,
        id: GroupId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError> {
        self.live()?;
        let page = (id.0, after.map_or(i64::MIN, |a| a.0), cql_limit(limit));
        let rows: Vec<MemberRow> = self.db.rows(Q::GroupMembersPage, page).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.extend(self.to_member(r).await?);
        }
        Ok(out)
    }

    async fn group_member_ids(&self, id: GroupId) -> Result<Vec<UserId>, StoreError> {
        self.live()?;
        Ok(self.member_rows(id).await?.into_iter().map(|r| UserId(r.0)).collect())
    }

    async fn add_group_members(&self, id: GroupId, users: &[UserId], max: usize) -> Result<AddOutcome, StoreError> {
        self.live()?;
        self.add_members_cql(id, users, max).await
    }

    async fn remove_group_member(&self, id: GroupId, user: UserId) -> Result<Option<Removal>, StoreError> {
        self.live()?;
        self.remove_member_cql(id, user).await
    }

    async fn set_group_role(&self, id: GroupId, user: UserId, role: Role) -> Result<bool, StoreError> {
        self.live()?;
        match self.member_row(id, user).await? {
            Some(r) if role != Role::Owner && role_of(&r) != Role::Owner => {
                self.db.write(Q::GroupMemberSetRole, (role.as_str(), id.0, user.0)).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn send_group(&self, m: &Message) -> Result<Option<Inserted>, StoreError> {
        self.live()?;
        self.send_group_cql(m).await
    }

    async fn group_messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.live()?;
        self.group_messages_since_cql(user, after, limit).await
    }

    async fn group_conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<GroupSummary>, StoreError> {
        self.live()?;
        self.group_conversations_cql(user, before, limit).await
    }
}
