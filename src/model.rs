//! Domain types shared by every layer: newtype ids and the records the store
//! keeps. No I/O, no wire format (the wire lives in `protocol`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::snowflake;

macro_rules! snowflake_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl $name {
            /// Milliseconds since the Unix epoch at which this id was minted.
            pub fn unix_ms(self) -> i64 {
                snowflake::unix_ms(self.0)
            }

            /// Parses the decimal string form used on the wire.
            pub fn parse(s: &str) -> Option<Self> {
                s.parse::<i64>().ok().filter(|v| *v >= 0).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $name {
            /// The decimal string form (`collect_str` would run every
            /// digit through serde_json's escaping writer: ~2% of a
            /// message's instructions went to id formatting).
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(itoa::Buffer::new().format(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(concat!("expected a ", stringify!($name), " (a decimal string)"))
                })
            }
        }
    };
}

snowflake_id!(
    /// A user's immutable id. Never reused, even after the account is deleted.
    UserId
);
snowflake_id!(
    /// A message id: a snowflake, so ids sort by creation time (k-sorted across nodes).
    MessageId
);
snowflake_id!(
    /// A follow's id: a snowflake minted when the follow was made. Follower
    /// and following lists are ordered (and paged) by it.
    FollowId
);

snowflake_id!(
    /// A post id: a snowflake minted when the post was created.
    PostId
);
snowflake_id!(
    /// A group conversation's id: a snowflake minted when the group was
    /// created. Its decimal string is the group's [`ConversationId`].
    GroupId
);
snowflake_id!(
    /// A change id: a snowflake minted when a change to chat state (a read
    /// pointer, later an edit or a reaction) was made. A user's change feed
    /// is ordered (and paged) by it.
    ChangeId
);
snowflake_id!(
    /// A timeline item id. A post's item has the post's id; a repost's item
    /// has its own id, minted when the repost was made. Timelines are
    /// ordered and paged by it.
    ItemId
);

/// A login session (a refresh-token family). Random, 128 bits, hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation id. For a direct conversation it is derived from the two
/// user ids (`"<low>-<high>"`), so both sides compute it without a lookup;
/// a group's is its [`GroupId`] as a decimal string (no `-`), so the two
/// forms never collide.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConversationId(pub String);

/// `parts` joined into one string of exactly their length (`format!` of
/// ids grows its buffer several times; these keys are built per message).
pub fn join_id(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| s.push_str(p));
    s
}

/// What kind of conversation an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConversationKind {
    /// Two users (or one user with themself).
    Direct,
    /// A group with members and roles.
    Group,
}

impl ConversationKind {
    /// The wire name: `direct` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationKind::Direct => "direct",
            ConversationKind::Group => "group",
        }
    }
}

/// A conversation id taken apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationRef {
    /// A direct conversation between two users (`lo <= hi`).
    Direct(UserId, UserId),
    /// A group.
    Group(GroupId),
}

impl ConversationId {
    /// The direct conversation between two users, independent of order.
    pub fn direct(a: UserId, b: UserId) -> Self {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let (mut l, mut h) = (itoa::Buffer::new(), itoa::Buffer::new());
        ConversationId(join_id(&[l.format(lo.0), "-", h.format(hi.0)]))
    }

    /// A group's conversation.
    pub fn group(id: GroupId) -> Self {
        ConversationId(itoa::Buffer::new().format(id.0).to_owned())
    }

    /// Parses a conversation id as a client sends it: `None` unless it is
    /// exactly the canonical form of a direct or group conversation.
    pub fn parse(s: &str) -> Option<ConversationRef> {
        // Canonical: each number as it formats (no sign, no leading zero),
        // and a direct id's lower user first. Checked without allocating
        // (every message send parses one).
        let canonical = |text: &str, v: i64| itoa::Buffer::new().format(v) == text;
        match s.split_once('-') {
            Some((a, b)) => {
                let (x, y) = (UserId::parse(a)?, UserId::parse(b)?);
                (x <= y && canonical(a, x.0) && canonical(b, y.0)).then_some(ConversationRef::Direct(x, y))
            }
            None => {
                let g = GroupId::parse(s)?;
                canonical(s, g.0).then_some(ConversationRef::Group(g))
            }
        }
    }

    /// Direct or group, from the id's form.
    pub fn kind(&self) -> ConversationKind {
        if self.0.contains('-') { ConversationKind::Direct } else { ConversationKind::Group }
    }

    /// The group this id names, if it is a group's.
    pub fn group_id(&self) -> Option<GroupId> {
        match ConversationId::parse(&self.0) {
            Some(ConversationRef::Group(g)) => Some(g),
            _ => None,
        }
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as others may see them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub created_at_ms: i64,
}

/// A user together with their credentials; never leaves the server.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

/// A user's public profile. A user who never edited theirs has the
/// defaults: empty bio, no color, no avatar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub user: User,
    pub bio: String,
    /// `#rrggbb`, lowercase.
    pub color: Option<String>,
    pub avatar_url: Option<String>,
}

/// A partial profile change: `None` leaves a field as it is. For `color`
/// and `avatar_url`, `Some(None)` clears the field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub color: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
}

impl ProfileUpdate {
    /// True when the update changes nothing.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.bio.is_none() && self.color.is_none() && self.avatar_url.is_none()
    }
}

/// How many users follow a user, and how many that user follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowCounts {
    pub followers: u64,
    pub following: u64,
}

/// One entry of a follower or following list: the other user and the
/// follow's id (the page cursor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowEntry {
    pub user: User,
    pub follow_id: FollowId,
}

/// A stored message. `from`/`to` carry the usernames at send time. In a
/// group conversation (see [`ConversationId::kind`]) there is no single
/// recipient: `to_id` is `UserId(0)` and `to` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub from_id: UserId,
    pub from: String,
    pub to_id: UserId,
    pub to: String,
    pub text: String,
    pub nonce: Option<String>,
}

/// A direct message whose recipient is still a name: what
/// `Store::send_direct` resolves and stores in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectSend {
    pub id: MessageId,
    pub from: User,
    /// The recipient's username, matched case-insensitively.
    pub to_username: String,
    pub text: String,
    pub nonce: Option<String>,
}

impl DirectSend {
    /// The message this send makes once its recipient is known to be `to`.
    pub fn to_message(&self, to: &User) -> Message {
        self.clone().into_message(to)
    }

    /// [`Self::to_message`], moving the text instead of copying it.
    pub fn into_message(self, to: &User) -> Message {
        Message {
            id: self.id,
            conversation_id: ConversationId::direct(self.from.id, to.id),
            from_id: self.from.id,
            from: self.from.username,
            to_id: to.id,
            to: to.username.clone(),
            text: self.text,
            nonce: self.nonce,
        }
    }
}

/// One entry of a user's conversation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conversation_id: ConversationId,
    pub peer: User,
    pub last_message: Message,
}

/// A login session as the store keeps it.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// SHA-256 of the current refresh secret.
    pub refresh_hash: Vec<u8>,
    pub expires_at_ms: i64,
}

/// A request to rotate a session's refresh secret.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// SHA-256 of the secret the client presented.
    pub presented_hash: Vec<u8>,
    /// SHA-256 of the secret that replaces it.
    pub new_hash: Vec<u8>,
    pub now_ms: i64,
    /// The session's new expiry.
    pub new_expires_ms: i64,
    /// How long after its use a replaced secret may still rotate (the client
    /// may have lost the reply that carried its successor).
    pub reuse_grace_ms: i64,
}

/// What happened when a refresh secret was presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The secret was current (or replaced within the grace period); the
    /// new one is now the session's only valid secret.
    Rotated { user_id: UserId },
    /// The secret was one this session already replaced, past the grace
    /// period: the session is now revoked (reuse detection).
    ReuseDetected { user_id: UserId },
    /// No such live session, or a secret this session never issued.
    Invalid,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T06:43:16.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_conversation_is_order_independent() {
        assert_eq!(ConversationId::direct(UserId(5), UserId(9)), ConversationId::direct(UserId(9), UserId(5)));
        assert_eq!(ConversationId::direct(UserId(9), UserId(5)).0, "5-9");
        assert_eq!(ConversationId::group(GroupId(i64::MAX)).0, i64::MAX.to_string());
    }

    #[test]
    fn only_canonical_conversation_ids_parse() {
        use ConversationRef::{Direct, Group};
        let (u, g) = (UserId, GroupId);
        assert_eq!(ConversationId::parse("5-9"), Some(Direct(u(5), u(9))));
        assert_eq!(ConversationId::parse("7-7"), Some(Direct(u(7), u(7))));
        assert_eq!(ConversationId::parse("0-10"), Some(Direct(u(0), u(10))));
        assert_eq!(ConversationId::parse("42"), Some(Group(g(42))));
        for bad in [
            "9-5", "05-9", "5-09", "+5-9", "5-+9", "5--9", "-5", "042", "+42", "", "-", "5-", "a-b", "x", " 5-9",
            "5-9 ",
        ] {
            assert_eq!(ConversationId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_formats_utc_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn ids_round_trip_as_strings() {
        let id = MessageId(123456789012345678);
        let s = serde_json::to_string(&id).unwrap();
        assert_eq!(s, "\"123456789012345678\"");
        assert_eq!(serde_json::from_str::<MessageId>(&s).unwrap(), id);
        assert!(serde_json::from_str::<MessageId>("\"-1\"").is_err());
        assert!(serde_json::from_str::<MessageId>("\"abc\"").is_err());
    }
}

/// A post with its counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub id: PostId,
    pub author: User,
    pub text: String,
    pub likes: u64,
    pub reposts: u64,
}

/// What a timeline item shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// The author's own post.
    Post,
    /// Someone (the actor) reposted a post.
    Repost,
}

/// One entry of a user or home timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimelineItem {
    pub id: ItemId,
    pub kind: ItemKind,
    /// Who put it on their timeline: the author of a post, the reposter of a repost.
    pub actor: UserId,
    pub post_id: PostId,
    /// The post's author (equal to `actor` for a post).
    pub post_author: UserId,
}

/// How an item reaches followers' home timelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanoutState {
    /// Never copied: readers merge it from the actor's timeline (popular actors).
    OnRead,
    /// To be copied into followers' home timelines; until then readers merge it.
    Pending,
    /// Copied into every follower's home timeline.
    Done,
}

/// The outcome of an idempotent toggle (like, repost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Toggle {
    /// False when the request changed nothing (already in that state).
    pub changed: bool,
    /// The count afterwards.
    pub count: u64,
}

/// What one viewer has done to a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewerMarks {
    pub liked: bool,
    pub reposted: bool,
}

/// A member's role in a group. Exactly one member is the owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Created the group (or inherited it); manages admins.
    Owner,
    /// Edits the group and adds and removes members.
    Admin,
    /// Reads and writes.
    Member,
}

impl Role {
    /// The wire and storage name: `owner`, `admin` or `member`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// The inverse of [`Role::as_str`].
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    /// True for the owner and admins (they may edit the group and its members).
    pub fn manages(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

/// A group as its members see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: GroupId,
    pub title: String,
    pub topic: String,
    /// The current owner.
    pub owner: UserId,
    pub member_count: u64,
}

impl Group {
    /// The group's conversation id.
    pub fn conversation_id(&self) -> ConversationId {
        ConversationId::group(self.id)
    }
}

/// A group to create: `owner` becomes its owner, each of `members` (other
/// than the owner) a plain member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewGroup {
    pub id: GroupId,
    pub title: String,
    pub topic: String,
    pub owner: UserId,
    pub members: Vec<UserId>,
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMember {
    pub user: User,
    pub role: Role,
    /// When the member joined (Unix ms); the oldest admin (else member)
    /// inherits the group when the owner leaves (ties: lower user id).
    pub joined_ms: i64,
}

/// A change to a group's title and topic: `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupUpdate {
    pub title: Option<String>,
    pub topic: Option<String>,
}

/// What adding members did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// These users were added (existing members and unknown users are
    /// skipped); the group has `member_count` members now.
    Added { added: Vec<UserId>, member_count: u64 },
    /// Adding them would pass the member limit: nothing changed.
    Full,
    /// No such group.
    NoGroup,
}

/// What removing a member (or a member leaving) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The member who became owner because the owner left.
    pub new_owner: Option<UserId>,
    /// The last member left: the group and its history are gone.
    pub ended: bool,
}

/// One group in a user's conversation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSummary {
    pub group: Group,
    /// The newest message, if any was sent.
    pub last_message: Option<Message>,
}

impl GroupSummary {
    /// Where the group sorts in the conversation list: its newest
    /// message's id, or the group's id when it has no message yet.
    pub fn activity(&self) -> MessageId {
        self.last_message.as_ref().map_or(MessageId(self.group.id.0), |m| m.id)
    }
}
