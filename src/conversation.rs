//! Who may see a conversation: the one access check every chat-state
//! request (read pointers, typing, receipts) goes through.
//!
//! [`access`] answers, for a user and a conversation id, whether the user
//! is a member and who the members are (ids only: a group has up to
//! `--max-group-members` members, and delivery needs nothing else).
//! - A direct conversation (id `"<low user id>-<high user id>"`, see
//!   [`ConversationId::direct`]) exists between any two existing users,
//!   whether or not a message was sent yet, just as
//!   `message.history {with}` works for any existing user.
//! - A group (id: its [`crate::model::GroupId`]) has the members the
//!   group store lists now; a removed member or one who left is not one.
//!
//! A caller who is not a member gets the same `not_found` error for a
//! conversation that exists and one that does not, so ids cannot be probed.

use crate::error::{Error, Result};
use crate::model::{ConversationId, ConversationKind, ConversationRef, GroupId, UserId};
use crate::store::Store;

/// A conversation as its member sees it.
#[derive(Clone, Debug)]
pub struct Conversation {
    /// Its canonical id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Every member's id, the asking user's included, each once (bounded by
    /// `--max-group-members`).
    pub members: Vec<UserId>,
}

impl Conversation {
    /// The members other than `me`.
    pub fn others(&self, me: UserId) -> Vec<UserId> {
        self.members.iter().copied().filter(|u| *u != me).collect()
    }
}

/// The one error a non-member gets, whether or not the conversation exists.
pub fn not_found() -> Error {
    Error::NotFound("no such conversation".into())
}

/// The two user ids of a canonical direct conversation id
/// (`"<low>-<high>"`, decimal, no padding), or `None`.
pub fn direct_pair(id: &ConversationId) -> Option<(UserId, UserId)> {
    match ConversationId::parse(&id.0)? {
        ConversationRef::Direct(lo, hi) => Some((lo, hi)),
        ConversationRef::Group(_) => None,
    }
}

/// The conversation `id` if `me` is a member of it; `not_found` otherwise
/// (no such conversation, not a member, or the other member is gone).
pub async fn access(store: &dyn Store, me: UserId, id: &ConversationId) -> Result<Conversation> {
    match ConversationId::parse(&id.0).ok_or_else(not_found)? {
        ConversationRef::Direct(lo, hi) => direct(store, me, lo, hi).await,
        ConversationRef::Group(g) => group(store, me, g).await,
    }
}

async fn direct(store: &dyn Store, me: UserId, lo: UserId, hi: UserId) -> Result<Conversation> {
    if me != lo && me != hi {
        return Err(not_found());
    }
    let members = if lo == hi { vec![lo] } else { vec![lo, hi] };
    for uid in &members {
        store.user_by_id(*uid).await?.ok_or_else(not_found)?;
    }
    Ok(Conversation { id: ConversationId::direct(lo, hi), kind: ConversationKind::Direct, members })
}

async fn group(store: &dyn Store, me: UserId, g: GroupId) -> Result<Conversation> {
    store.member(g, me).await?.ok_or_else(not_found)?;
    let mut members = store.group_member_ids(g).await?;
    // A removal committed between the two reads: still not a member.
    if !members.contains(&me) {
        return Err(not_found());
    }
    members.sort_unstable();
    members.dedup();
    Ok(Conversation { id: ConversationId::group(g), kind: ConversationKind::Group, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_direct_ids_parse() {
        let id = ConversationId::direct(UserId(9), UserId(5));
        assert_eq!(direct_pair(&id), Some((UserId(5), UserId(9))));
        for bad in ["9-5", "05-9", "5-9-1", "5", "-5-9", "a-b", "", "5-"] {
            assert_eq!(direct_pair(&ConversationId(bad.into())), None, "{bad}");
        }
        assert_eq!(direct_pair(&ConversationId("7-7".into())), Some((UserId(7), UserId(7))));
    }
}
