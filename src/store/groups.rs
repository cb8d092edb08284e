//! The groups area of storage: [`GroupStore`], which every backend
//! implements beside the rest of [`super::Store`] (SQLite in
//! `sqlite/groups.rs`, CQL in `cql/groups.rs`), checked by
//! `tests/store_conformance/groups.rs` on both.
//!
//! A group's messages live in the same `messages` shape as direct ones,
//! under the group's conversation id, so [`super::Store::history`] pages
//! them. What differs is who may read them (the current members: the
//! handlers check [`GroupStore::member`] first) and how a member's sync and
//! conversation list find them: through the member's groups, not a copy
//! per member, so a message to a group of 1,000 costs one message write.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{
    AddOutcome, Group, GroupId, GroupMember, GroupSummary, GroupUpdate, Message, MessageId, NewGroup, Removal, Role,
    UserId,
};

use super::Inserted;

/// Groups, their members and roles, and group messages.
///
/// Membership rules that need the current state (the member limit, the
/// owner's succession, the last member ending the group, a sender being a
/// member) are kept by the backend atomically with the write where it can
/// (SQLite: in the write's transaction). The CQL backend writes, then reads
/// again and undoes what a concurrent change made wrong (the same pattern as
/// account deletion); each method says what that leaves open.
#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
    /// Creates a group with `g.owner` as owner and each existing user of
    /// `g.members` as a member (unknown ids and the owner are skipped;
    /// the caller bounds the list). `UserGone` when the owner does not exist.
    async fn create_group(&self, g: &NewGroup) -> Result<Group, StoreError>;

    /// A group with its owner and member count; `None` when it does not exist
    /// (never created, or ended).
    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError>;

    /// Applies the fields `update` sets and returns the group afterwards;
    /// `None` when it does not exist.
    async fn update_group(&self, id: GroupId, update: &GroupUpdate) -> Result<Option<Group>, StoreError>;

    /// `user`'s membership of a group, `None` when not a member (or no such group).
    async fn member(&self, id: GroupId, user: UserId) -> Result<Option<GroupMember>, StoreError>;

    /// Up to `limit` members with user ids above `after` (all if `None`),
    /// by user id ascending: paging with the last id visits each member once.
    async fn group_members(
        &self,
        id: GroupId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError>;

    /// Every member's id (the fan-out list; bounded by the member limit).
    async fn group_member_ids(&self, id: GroupId) -> Result<Vec<UserId>, StoreError>;

    /// Adds each existing user of `users` who is not a member yet, as a
    /// plain member, unless the group would then have more than `max`
    /// members (`Full`, nothing added). CQL: two adds racing may each see
    /// room; each counts again after writing and takes its own users out
    /// if the group is over the limit, so the limit holds (and both may fail).
    async fn add_group_members(&self, id: GroupId, users: &[UserId], max: usize) -> Result<AddOutcome, StoreError>;

    /// Removes `user` from the group (removal or leaving). When the owner
    /// goes, the oldest admin (else the oldest member) becomes owner; when
    /// the last member goes, the group ends: its row, members and messages
    /// are deleted. `None` when `user` was not a member.
    async fn remove_group_member(&self, id: GroupId, user: UserId) -> Result<Option<Removal>, StoreError>;

    /// Sets a member's role to `Admin` or `Member` (ownership only moves
    /// by succession). False when `user` is not a member or is the owner
    /// (nothing changes).
    async fn set_group_role(&self, id: GroupId, user: UserId, role: Role) -> Result<bool, StoreError>;

    /// Stores a message to the group named by `m.conversation_id`, from
    /// `m.from_id`, if the sender is a member when it commits: `None`
    /// (nothing stored) otherwise, whether or not the group exists. Nonce
    /// and age rules as [`super::Store::insert_message`]: a repeated nonce
    /// returns the original (`created: false`), an id older than
    /// [`super::MESSAGE_MAX_AGE_MS`] is refused with `Unavailable`.
    async fn send_group(&self, m: &Message) -> Result<Option<Inserted>, StoreError>;

    /// Up to `limit` messages of the groups `user` is a member of now, with
    /// ids above `after`, oldest first, each once (paged like
    /// [`super::Store::messages_since`], which covers direct messages).
    async fn group_messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// Up to `limit` of `user`'s groups whose [`GroupSummary::activity`] is
    /// below `before` (all if `None`), most recent first.
    async fn group_conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<GroupSummary>, StoreError>;
}
