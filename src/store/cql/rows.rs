//! Rows as the ScyllaDB store reads them (`#[derive(DeserializeRow)]`,
//! matched to columns by name) and their conversion to model types.

use scylla::DeserializeRow;

use crate::model::{
    ConversationId, FanoutState, ItemId, ItemKind, Message, MessageId, PostId, Profile, TimelineItem, User,
    UserCredentials, UserId,
};

/// The stored code of an item kind.
pub fn kind_code(k: ItemKind) -> i32 {
    match k {
        ItemKind::Post => 0,
        ItemKind::Repost => 1,
    }
}

/// The stored code of a fan-out state.
pub fn fanout_code(f: FanoutState) -> i32 {
    match f {
        FanoutState::OnRead => 0,
        FanoutState::Pending => 1,
        FanoutState::Done => 2,
    }
}

/// A timeline item as every item table stores it.
#[derive(Clone, Debug, DeserializeRow)]
pub struct ItemRow {
    pub item_id: i64,
    pub kind: i32,
    pub actor_id: i64,
    pub post_id: i64,
    pub post_author: i64,
}

impl From<ItemRow> for TimelineItem {
    fn from(r: ItemRow) -> TimelineItem {
        TimelineItem {
            id: ItemId(r.item_id),
            kind: if r.kind == 0 { ItemKind::Post } else { ItemKind::Repost },
            actor: UserId(r.actor_id),
            post_id: PostId(r.post_id),
            post_author: UserId(r.post_author),
        }
    }
}

/// A `posts` row.
#[derive(Clone, Debug, DeserializeRow)]
pub struct PostRow {
    pub post_id: i64,
    pub author_id: i64,
    pub body: String,
}

/// A `users` row. Every column but the key is optional: a row whose
/// username is missing (a profile update racing an account deletion) is
/// treated as no user at all.
#[derive(Clone, Debug, DeserializeRow)]
pub struct UserRow {
    pub user_id: i64,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub created_at: Option<i64>,
    pub bio: Option<String>,
    pub color: Option<String>,
    pub avatar_url: Option<String>,
}

/// Empty text stands for "not set" in optional profile fields (no nulls written).
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl UserRow {
    /// The public user, if the row is a whole user.
    pub fn user(&self) -> Option<User> {
        Some(User {
            id: UserId(self.user_id),
            username: self.username.clone()?,
            display_name: self.display_name.clone().unwrap_or_default(),
            created_at_ms: self.created_at.unwrap_or(0),
        })
    }

    /// The user with credentials.
    pub fn credentials(&self) -> Option<UserCredentials> {
        Some(UserCredentials { user: self.user()?, password_hash: self.password_hash.clone().unwrap_or_default() })
    }

    /// The profile with defaults filled in.
    pub fn profile(self) -> Option<Profile> {
        let user = self.user()?;
        Some(Profile {
            user,
            bio: self.bio.unwrap_or_default(),
            color: non_empty(self.color),
            avatar_url: non_empty(self.avatar_url),
        })
    }
}

/// A message as `messages`, `inbox` and `conversations` store it.
#[derive(Clone, Debug, DeserializeRow)]
pub struct MessageRow {
    pub message_id: i64,
    pub conversation_id: String,
    pub from_id: i64,
    pub from_name: String,
    pub to_id: i64,
    pub to_name: String,
    /// Null once the message was deleted (its text cleared).
    pub body: Option<String>,
    pub nonce: Option<String>,
}

impl From<MessageRow> for Message {
    fn from(r: MessageRow) -> Message {
        Message {
            id: MessageId(r.message_id),
            conversation_id: ConversationId(r.conversation_id),
            from_id: UserId(r.from_id),
            from: r.from_name,
            to_id: UserId(r.to_id),
            to: r.to_name,
            text: r.body.unwrap_or_default(),
            nonce: r.nonce,
        }
    }
}

/// A conversation-list row: the peer and a copy of the last message.
#[derive(Clone, Debug, DeserializeRow)]
pub struct ConversationRow {
    pub peer_id: i64,
    pub message_id: i64,
    pub conversation_id: String,
    pub from_id: i64,
    pub from_name: String,
    pub to_id: i64,
    pub to_name: String,
    pub body: Option<String>,
    pub nonce: Option<String>,
}

impl ConversationRow {
    /// The last message of the conversation.
    pub fn message(&self) -> Message {
        Message {
            id: MessageId(self.message_id),
            conversation_id: ConversationId(self.conversation_id.clone()),
            from_id: UserId(self.from_id),
            from: self.from_name.clone(),
            to_id: UserId(self.to_id),
            to: self.to_name.clone(),
            text: self.body.clone().unwrap_or_default(),
            nonce: self.nonce.clone(),
        }
    }
}

/// A `sessions` row.
#[derive(Clone, Debug, DeserializeRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub refresh_hash: Vec<u8>,
    pub expires_at: i64,
    pub revoked: bool,
}

impl SessionRow {
    /// Present, not revoked and not expired at `now_ms` (the owner's
    /// existence is checked separately).
    pub fn live_at(&self, now_ms: i64) -> bool {
        !self.revoked && self.expires_at > now_ms
    }
}

/// A `sent_messages` row.
#[derive(Clone, Debug, DeserializeRow)]
pub struct SentRow {
    pub message_id: i64,
    pub conversation_id: String,
    pub to_id: i64,
    pub nonce: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> UserRow {
        UserRow {
            user_id: 7,
            username: Some("Ann".into()),
            display_name: Some("Ann B".into()),
            password_hash: Some("h".into()),
            created_at: Some(5),
            bio: None,
            color: Some(String::new()),
            avatar_url: Some("https://x/a.png".into()),
        }
    }

    #[test]
    fn user_rows_fill_profile_defaults_and_read_empty_as_unset() {
        let p = row().profile().unwrap();
        assert_eq!(
            p.user,
            User { id: UserId(7), username: "Ann".into(), display_name: "Ann B".into(), created_at_ms: 5 }
        );
        assert_eq!(p.bio, "");
        assert_eq!(p.color, None);
        assert_eq!(p.avatar_url.as_deref(), Some("https://x/a.png"));
        assert_eq!(row().credentials().unwrap().password_hash, "h");
    }

    #[test]
    fn a_row_without_username_is_no_user() {
        let r = UserRow { username: None, ..row() };
        assert!(r.user().is_none() && r.credentials().is_none() && r.profile().is_none());
    }

    #[test]
    fn sessions_are_live_until_expiry_unless_revoked() {
        let s = SessionRow { user_id: 1, refresh_hash: vec![1], expires_at: 1_000, revoked: false };
        assert!(s.live_at(999) && !s.live_at(1_000));
        assert!(!SessionRow { revoked: true, ..s }.live_at(0));
    }

    #[test]
    fn item_codes_round_trip() {
        for kind in [ItemKind::Post, ItemKind::Repost] {
            let r = ItemRow { item_id: 3, kind: kind_code(kind), actor_id: 1, post_id: 2, post_author: 4 };
            let item = TimelineItem::from(r);
            assert_eq!(
                item,
                TimelineItem { id: ItemId(3), kind, actor: UserId(1), post_id: PostId(2), post_author: UserId(4) }
            );
        }
        let codes: Vec<i32> = [FanoutState::OnRead, FanoutState::Pending, FanoutState::Done].map(fanout_code).to_vec();
        assert_eq!(codes, [0, 1, 2], "the codes cql/004_posts.cql documents");
    }

    #[test]
    fn message_rows_become_messages() {
        let r = MessageRow {
            message_id: 9,
            conversation_id: "1-2".into(),
            from_id: 1,
            from_name: "a".into(),
            to_id: 2,
            to_name: "b".into(),
            body: Some("hi".into()),
            nonce: None,
        };
        let m = Message::from(r);
        assert_eq!((m.id, m.conversation_id.0.as_str(), m.text.as_str()), (MessageId(9), "1-2", "hi"));
    }
}
