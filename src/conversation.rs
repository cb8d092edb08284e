//! Who may see a conversation: the one access check every chat-state
//! request (read pointers, typing, receipts) goes through.
//!
//! [`access`] answers, for a user and a conversation id, whether the user
//! is a member and who the members are. Direct conversations only for now
//! (id `"<low user id>-<high user id>"`, see [`ConversationId::direct`]): a
//! direct conversation exists between any two existing users, whether or
//! not a message was sent yet, just as `message.history {with}` works for
//! any existing user. Groups extend [`ConversationKind`] and this function.
//!
//! A caller who is not a member gets the same `not_found` error for a
//! conversation that exists and one that does not, so ids cannot be probed.

use crate::error::{Error, Result};
use crate::model::{ConversationId, User, UserId};
use crate::store::Store;

/// What kind of conversation an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationKind {
    /// Two users (or one user with themself), id derived from the pair.
    Direct,
}

/// A conversation as its member sees it.
#[derive(Clone, Debug)]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// Every member, the asking user included, each once.
    pub members: Vec<User>,
}

impl Conversation {
    /// The members other than `me`.
    pub fn others(&self, me: UserId) -> impl Iterator<Item = &User> {
        self.members.iter().filter(move |u| u.id != me)
    }
}

/// The one error a non-member gets, whether or not the conversation exists.
pub fn not_found() -> Error {
    Error::NotFound("no such conversation".into())
}

/// The two user ids of a canonical direct conversation id
/// (`"<low>-<high>"`, decimal, no padding), or `None`.
pub fn direct_pair(id: &ConversationId) -> Option<(UserId, UserId)> {
    let (a, b) = id.0.split_once('-')?;
    let (lo, hi) = (UserId::parse(a)?, UserId::parse(b)?);
    (ConversationId::direct(lo, hi) == *id).then_some((lo, hi))
}

/// The conversation `id` if `me` is a member of it; `not_found` otherwise
/// (no such conversation, not a member, or the other member is gone).
pub async fn access(store: &dyn Store, me: UserId, id: &ConversationId) -> Result<Conversation> {
    let (lo, hi) = direct_pair(id).ok_or_else(not_found)?;
    if me != lo && me != hi {
        return Err(not_found());
    }
    let mut members = Vec::with_capacity(2);
    for uid in if lo == hi { vec![lo] } else { vec![lo, hi] } {
        let user = store.user_by_id(uid).await?.ok_or_else(not_found)?;
        members.push(user);
    }
    Ok(Conversation { id: id.clone(), kind: ConversationKind::Direct, members })
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
