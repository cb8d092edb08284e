//! The wire protocol: every frame a client sends or receives, as serde types.
//! No I/O and no storage here, so the load tester can import it.
//! `protocol.md` documents each type below; keep the two in step.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::model::{FollowId, ItemId, MessageId, PostId};

mod chat_state;
mod lifecycle;
mod push;
mod reactions;
mod safety;
pub use chat_state::*;
pub use lifecycle::*;
pub use push::*;
pub use reactions::*;
pub use safety::*;

/// The part of a request every frame has: its kind and an optional request
/// id that the reply echoes. Parsed first, so even a malformed request gets a
/// reply carrying its `id`. Every field may be missing, also in serde's
/// sequence form (`["ping"]`, which `Request` accepts too for kinds
/// without fields), so whatever parses as a `Request` parses as an envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: Option<serde_json::Value>,
    pub id: Option<serde_json::Value>,
}

/// Every request a client can send, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum Request {
    #[serde(rename = "auth.register")]
    AuthRegister(AuthRegister),
    #[serde(rename = "auth.login")]
    AuthLogin(AuthLogin),
    #[serde(rename = "auth.token")]
    AuthToken(AuthToken),
    #[serde(rename = "auth.refresh")]
    AuthRefresh(AuthRefresh),
    #[serde(rename = "auth.logout")]
    AuthLogout {},
    #[serde(rename = "message.send")]
    MessageSend(MessageSend),
    #[serde(rename = "message.history")]
    MessageHistory(MessageHistory),
    #[serde(rename = "message.sync")]
    MessageSync(MessageSync),
    #[serde(rename = "conversation.list")]
    ConversationList(ConversationList),
    #[serde(rename = "profile.get")]
    ProfileGet(ProfileGet),
    #[serde(rename = "profile.update")]
    ProfileUpdate(ProfileUpdate),
    #[serde(rename = "user.search")]
    UserSearch(UserSearch),
    #[serde(rename = "follow.add")]
    FollowAdd(FollowTarget),
    #[serde(rename = "follow.remove")]
    FollowRemove(FollowTarget),
    #[serde(rename = "follow.followers")]
    FollowFollowers(FollowList),
    #[serde(rename = "follow.following")]
    FollowFollowing(FollowList),
    #[serde(rename = "account.password")]
    AccountPassword(AccountPassword),
    #[serde(rename = "account.delete")]
    AccountDelete(AccountDelete),
    #[serde(rename = "post.create")]
    PostCreate(PostCreate),
    #[serde(rename = "post.get")]
    PostGet(PostTarget),
    #[serde(rename = "post.delete")]
    PostDelete(PostTarget),
    #[serde(rename = "post.like")]
    PostLike(PostTarget),
    #[serde(rename = "post.unlike")]
    PostUnlike(PostTarget),
    #[serde(rename = "post.repost")]
    PostRepost(PostTarget),
    #[serde(rename = "post.unrepost")]
    PostUnrepost(PostTarget),
    #[serde(rename = "timeline.home")]
    TimelineHome(TimelineHome),
    #[serde(rename = "timeline.user")]
    TimelineUser(TimelineUser),
    #[serde(rename = "presence.query")]
    PresenceQuery(PresenceUsers),
    #[serde(rename = "presence.watch")]
    PresenceWatch(PresenceUsers),
    #[serde(rename = "presence.unwatch")]
    PresenceUnwatch(PresenceUsers),
    #[serde(rename = "group.create")]
    GroupCreate(GroupCreate),
    #[serde(rename = "group.get")]
    GroupGet(GroupTarget),
    #[serde(rename = "group.update")]
    GroupUpdate(GroupUpdate),
    #[serde(rename = "group.members")]
    GroupMembers(GroupMembers),
    #[serde(rename = "group.add")]
    GroupAdd(GroupAdd),
    #[serde(rename = "group.remove")]
    GroupRemove(GroupMemberTarget),
    #[serde(rename = "group.leave")]
    GroupLeave(GroupTarget),
    #[serde(rename = "group.role")]
    GroupRole(GroupRole),
    #[serde(rename = "conversation.read")]
    ConversationRead(ConversationRead),
    #[serde(rename = "change.sync")]
    ChangeSync(ChangeSync),
    #[serde(rename = "settings.get")]
    SettingsGet {},
    #[serde(rename = "settings.update")]
    SettingsUpdate(SettingsUpdate),
    #[serde(rename = "typing.start")]
    TypingStart(Typing),
    #[serde(rename = "typing.stop")]
    TypingStop(Typing),
    #[serde(rename = "user.block")]
    UserBlock(BlockTarget),
    #[serde(rename = "user.unblock")]
    UserUnblock(BlockTarget),
    #[serde(rename = "user.blocks")]
    UserBlocks(BlockList),
    #[serde(rename = "conversation.mute")]
    ConversationMute(ConversationMute),
    #[serde(rename = "conversation.unmute")]
    ConversationUnmute(ConversationUnmute),
    #[serde(rename = "report.create")]
    ReportCreate(ReportCreate),
    #[serde(rename = "message.react")]
    MessageReact(MessageReact),
    #[serde(rename = "message.unreact")]
    MessageUnreact(MessageReact),
    #[serde(rename = "message.edit")]
    MessageEdit(MessageEdit),
    #[serde(rename = "message.delete")]
    MessageDelete(MessageDelete),
    #[serde(rename = "device.register")]
    DeviceRegister(DeviceRegister),
    #[serde(rename = "device.list")]
    DeviceList {},
    #[serde(rename = "device.remove")]
    DeviceRemove(DeviceRemove),
    #[serde(rename = "push.config")]
    PushConfig {},
    #[serde(rename = "ping")]
    Ping {},
}

/// Every request kind, for "unknown type" checks and metrics labels.
pub const REQUEST_KINDS: &[&str] = &[
    "auth.register",
    "auth.login",
    "auth.token",
    "auth.refresh",
    "auth.logout",
    "message.send",
    "message.history",
    "message.sync",
    "conversation.list",
    "profile.get",
    "profile.update",
    "user.search",
    "follow.add",
    "follow.remove",
    "follow.followers",
    "follow.following",
    "account.password",
    "account.delete",
    "post.create",
    "post.get",
    "post.delete",
    "post.like",
    "post.unlike",
    "post.repost",
    "post.unrepost",
    "timeline.home",
    "timeline.user",
    "presence.query",
    "presence.watch",
    "presence.unwatch",
    "group.create",
    "group.get",
    "group.update",
    "group.members",
    "group.add",
    "group.remove",
    "group.leave",
    "group.role",
    "conversation.read",
    "change.sync",
    "settings.get",
    "settings.update",
    "typing.start",
    "typing.stop",
    "user.block",
    "user.unblock",
    "user.blocks",
    "conversation.mute",
    "conversation.unmute",
    "report.create",
    "message.react",
    "message.unreact",
    "message.edit",
    "message.delete",
    "device.register",
    "device.list",
    "device.remove",
    "push.config",
    "ping",
];

impl Request {
    /// True for the kinds that write on the user's behalf; each takes one
    /// token from the user's write budget (shared by the user's sockets).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::MessageSend(_)
                | Request::ProfileUpdate(_)
                | Request::FollowAdd(_)
                | Request::FollowRemove(_)
                | Request::PostCreate(_)
                | Request::PostDelete(_)
                | Request::PostLike(_)
                | Request::PostUnlike(_)
                | Request::PostRepost(_)
                | Request::PostUnrepost(_)
                | Request::GroupCreate(_)
                | Request::GroupUpdate(_)
                | Request::GroupAdd(_)
                | Request::GroupRemove(_)
                | Request::GroupLeave(_)
                | Request::GroupRole(_)
                | Request::ConversationRead(_)
                | Request::MessageEdit(_)
                | Request::MessageDelete(_)
                | Request::SettingsUpdate(_)
                | Request::UserBlock(_)
                | Request::UserUnblock(_)
                | Request::ConversationMute(_)
                | Request::ConversationUnmute(_)
                | Request::ReportCreate(_)
                | Request::MessageReact(_)
                | Request::MessageUnreact(_)
                | Request::DeviceRegister(_)
                | Request::DeviceRemove(_)
        )
    }

    /// True for the kinds an unauthenticated socket may send.
    pub fn allowed_before_auth(&self) -> bool {
        matches!(
            self,
            Request::AuthRegister(_)
                | Request::AuthLogin(_)
                | Request::AuthToken(_)
                | Request::AuthRefresh(_)
                | Request::Ping {}
        )
    }
}

#[derive(Debug, Deserialize)]
pub struct AuthRegister {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuthLogin {
    pub username: String,
    pub password: String,
}

/// `auth.token`: an access token, and optionally the last inbox position
/// the client saw, to get what it missed.
#[derive(Debug, Deserialize)]
pub struct AuthToken {
    pub token: String,
    #[serde(default)]
    pub resume: Option<Pos>,
}

/// A position in the user's inbox: every event carries one as `pos`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pos {
    /// Changes when the server lost the inbox's history; offsets restart.
    pub epoch: String,
    /// Contiguous within an epoch.
    pub offset: u64,
}

/// `presence.query`, `presence.watch`, `presence.unwatch`: whom.
#[derive(Debug, Deserialize)]
pub struct PresenceUsers {
    pub usernames: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuthRefresh {
    pub refresh_token: String,
}

/// `message.send`: to a user by name (`to`) or to a conversation by id
/// (`conversation`, direct or group); exactly one of the two.
#[derive(Debug, Deserialize)]
pub struct MessageSend {
    pub to: Option<String>,
    pub conversation: Option<String>,
    pub text: String,
    pub nonce: Option<String>,
    /// The message this one replies to (same conversation, one I may see).
    pub reply_to: Option<MessageId>,
}

/// `message.history`: of my conversation with a user (`with`) or of a
/// conversation by id (`conversation`); exactly one of the two.
#[derive(Debug, Deserialize)]
pub struct MessageHistory {
    pub with: Option<String>,
    pub conversation: Option<String>,
    pub before: Option<MessageId>,
    pub limit: Option<u32>,
}

/// `group.create`.
#[derive(Debug, Deserialize)]
pub struct GroupCreate {
    pub title: String,
    pub topic: Option<String>,
    /// Usernames to add besides the creator.
    #[serde(default)]
    pub members: Vec<String>,
}

/// `group.get`, `group.leave`: which group.
#[derive(Debug, Deserialize)]
pub struct GroupTarget {
    pub conversation: String,
}

/// `group.update`: absent fields keep their value.
#[derive(Debug, Deserialize)]
pub struct GroupUpdate {
    pub conversation: String,
    pub title: Option<String>,
    pub topic: Option<String>,
}

/// `group.members`: a page of members by user id.
#[derive(Debug, Deserialize)]
pub struct GroupMembers {
    pub conversation: String,
    pub after: Option<crate::model::UserId>,
    pub limit: Option<u32>,
}

/// `group.add`.
#[derive(Debug, Deserialize)]
pub struct GroupAdd {
    pub conversation: String,
    pub members: Vec<String>,
}

/// `group.remove`: one member, by username.
#[derive(Debug, Deserialize)]
pub struct GroupMemberTarget {
    pub conversation: String,
    pub username: String,
}

/// `group.role`: `admin` or `member`.
#[derive(Debug, Deserialize)]
pub struct GroupRole {
    pub conversation: String,
    pub username: String,
    pub role: String,
}

#[derive(Debug, Deserialize)]
pub struct MessageSync {
    pub since: MessageId,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct ConversationList {
    pub before: Option<MessageId>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct ProfileGet {
    pub username: String,
}

/// `profile.update`: absent (or null) `display_name`/`bio` keep the current
/// value; for `color` and `avatar_url`, absent keeps it and null clears it.
#[derive(Debug, Deserialize)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub color: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub avatar_url: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
pub struct UserSearch {
    pub query: String,
    pub limit: Option<u32>,
}

/// `follow.add` and `follow.remove`: the user to (un)follow.
#[derive(Debug, Deserialize)]
pub struct FollowTarget {
    pub username: String,
}

/// `follow.followers` and `follow.following`: a page of a user's list.
#[derive(Debug, Deserialize)]
pub struct FollowList {
    pub username: String,
    pub after: Option<FollowId>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct AccountPassword {
    pub old_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
pub struct AccountDelete {
    pub password: String,
}

/// `post.create`.
#[derive(Debug, Deserialize)]
pub struct PostCreate {
    pub text: String,
}

/// `post.get`, `post.delete`, `post.like`, `post.unlike`, `post.repost`,
/// `post.unrepost`. The field is `post_id`: `id` is the envelope's request id.
#[derive(Debug, Deserialize)]
pub struct PostTarget {
    pub post_id: PostId,
}

/// `timeline.home`.
#[derive(Debug, Deserialize)]
pub struct TimelineHome {
    pub before: Option<ItemId>,
    pub limit: Option<u32>,
}

/// `timeline.user`.
#[derive(Debug, Deserialize)]
pub struct TimelineUser {
    pub username: String,
    pub before: Option<ItemId>,
    pub limit: Option<u32>,
}

/// Stable error codes of `error` replies. Clients switch on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownType,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    TooLarge,
    LimitExceeded,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// WebSocket close codes the server sends. 4000-4499: reconnect (with
/// backoff); 4500-4999: do not reconnect with the same credentials.
pub mod close {
    /// The server is shutting down or restarting: reconnect with backoff.
    pub const SERVER_RESTART: u16 = 4000;
    /// The socket's outbound queue overflowed: reconnect, then resume/sync.
    pub const SLOW_CONSUMER: u16 = 4001;
    /// No successful `auth.*` within the deadline: reconnect and authenticate.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// Far too many requests over the rate limit: reconnect after a pause.
    pub const RATE_ABUSE: u16 = 4003;
    /// The peer left `--ping-misses` server pings in a row unanswered (see
    /// `ping_interval` in auth replies): reconnect, then resume.
    pub const PING_TIMEOUT: u16 = 4004;
    /// The session ended (logout, refresh-token reuse, password change,
    /// account deleted): log in again, do not reuse these tokens.
    pub const SESSION_REVOKED: u16 = 4500;
    /// An operator banned the account (`hubbub admin ban`): every socket of
    /// the user closes, on every node; login is refused until an unban.
    pub const BANNED: u16 = 4501;

    /// The reason text sent with a close code the hub sends on a user's
    /// behalf (through the broker, so every node uses the same words).
    pub fn reason(code: u16) -> &'static str {
        match code {
            BANNED => "account banned",
            _ => "session ended",
        }
    }
    /// A frame exceeded the size limit (standard code 1009).
    pub const TOO_BIG: u16 = 1009;
    /// A text message was not valid UTF-8 (standard code 1007).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// The client broke the WebSocket protocol (standard code 1002).
    pub const PROTOCOL_ERROR: u16 = 1002;
}

/// `{"type":"ok","id":…,"data":…}`: the success reply.
#[derive(Serialize)]
pub struct OkReply<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a Option<serde_json::Value>,
    pub data: &'a RawValue,
}

/// `{"type":"error","id":…,"code":…,"message":…}`: the failure reply.
#[derive(Serialize, Deserialize, Debug)]
pub struct ErrorReply {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<serde_json::Value>,
    pub code: ErrorCode,
    pub message: String,
}

/// `{"type":"event","event":…,"data":…}`: a pushed event.
#[derive(Serialize)]
pub struct EventFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event: &'a str,
    pub data: &'a T,
}

/// A user as the wire shows one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

/// A message as the wire shows one. In a group, `to` is empty; `from` is
/// empty and `from_deleted` true when the sender's account was deleted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageView {
    pub id: String,
    pub conversation_id: String,
    /// `direct` or `group`.
    #[serde(default = "direct_kind")]
    pub kind: String,
    pub from: String,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub from_deleted: bool,
    pub to: String,
    pub text: String,
    pub sent_at: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// Reactions, sorted by emoji, with my `me` flags; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reactions: Vec<ReactionView>,
    /// When the text was last edited (RFC 3339); absent if never.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub edited_at: Option<String>,
    /// The message was deleted: `text` is empty (a tombstone).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deleted: bool,
    /// The message this one replies to, as it reads when the view is built.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<ReplyView>,
}

fn direct_kind() -> String {
    "direct".into()
}

/// A group as the wire shows one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupView {
    /// The group's conversation id.
    pub conversation_id: String,
    pub title: String,
    pub topic: String,
    /// The owner's user id.
    pub owner_id: String,
    pub member_count: u64,
}

/// One member of a group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberView {
    pub user: UserView,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// RFC 3339, UTC.
    pub joined_at: String,
}

/// Reply data of `group.create`, `group.get`, `group.update`,
/// `group.remove`, `group.role`; also the data of `group.updated`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupEnvelope {
    pub group: GroupView,
    /// My role (replies only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub role: Option<String>,
    /// Who made the change (events only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<UserView>,
    /// A member whose role changed (`group.role` and its event).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub member: Option<MemberView>,
}

/// Reply data of `group.members`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupMembersReply {
    pub members: Vec<MemberView>,
    /// Pass as `after` for the next page; null when there is none.
    pub next_after: Option<String>,
}

/// Reply data of `group.add`; also the data of `group.member_added`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupMembersAdded {
    pub group: GroupView,
    /// The users added now (already members and unknown names are left out).
    pub members: Vec<UserView>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<UserView>,
}

/// Data of `group.member_removed` (to the remaining members and to the
/// removed one), and reply data of `group.remove` and `group.leave`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GroupMemberRemoved {
    pub conversation_id: String,
    pub user: UserView,
    /// Who removed them; equal to `user` when they left.
    pub by: UserView,
    /// The member who became owner because the owner left.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub new_owner_id: Option<String>,
    /// The last member left: the group is gone.
    pub ended: bool,
    /// The group afterwards (absent when it ended).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<GroupView>,
}

/// Reply data of `auth.register`, `auth.login` and `auth.refresh`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuthReply {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    /// The socket's inbox position now (absent if the broker is unreachable).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pos: Option<Pos>,
    /// Seconds between the server's WebSocket pings (0: none).
    #[serde(default)]
    pub ping_interval: u64,
}

/// Reply data of `auth.token`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuthTokenReply {
    pub user: UserView,
    /// Present when the request had `resume`: true when every missed event
    /// follows this reply, false when the client must `message.sync`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recovered: Option<bool>,
    /// The socket's inbox position now (absent if the broker is unreachable).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pos: Option<Pos>,
    /// Seconds between the server's WebSocket pings (0: none).
    #[serde(default)]
    pub ping_interval: u64,
}

/// One user's presence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PresenceView {
    pub username: String,
    pub online: bool,
    /// RFC 3339, UTC: when the user was last seen online; null if never.
    pub last_seen: Option<String>,
}

/// Reply data of `presence.query` and `presence.watch`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PresenceReply {
    /// In the order asked; unknown usernames are left out.
    pub users: Vec<PresenceView>,
}

/// Reply data of `message.send`; also the data of the `message.new` event.
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageEnvelope {
    pub message: MessageView,
}

/// Reply data of `message.history`.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryReply {
    pub messages: Vec<MessageView>,
    /// Pass as `before` for the next (older) page; null when there is none.
    pub next_before: Option<String>,
}

/// Reply data of `message.sync`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncReply {
    pub messages: Vec<MessageView>,
    pub more: bool,
    /// Pass as `since` on the next call.
    pub next: String,
}

/// One entry of `conversation.list`: a direct conversation (`with`) or a
/// group (`group`). `last_message` is null for a group nobody wrote in yet.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationView {
    pub conversation_id: String,
    /// `direct` or `group`.
    #[serde(default = "direct_kind")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub with: Option<UserView>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<GroupView>,
    pub last_message: Option<MessageView>,
    /// Messages from others above my read pointer (at most the cap, 999).
    #[serde(default)]
    pub unread: u32,
    /// More than the cap lie above my pointer: show `unread` as "999+".
    #[serde(default)]
    pub unread_capped: bool,
    /// My read pointer in this conversation; null if I never read it.
    #[serde(default)]
    pub read_up_to: Option<String>,
    /// I muted it (`conversation.mute`) and the mute has not ended.
    #[serde(default)]
    pub muted: bool,
    /// The mute's end (unix ms); null when not muted or muted with no end.
    #[serde(default)]
    pub muted_until: Option<i64>,
}

/// Reply data of `conversation.list`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConversationListReply {
    pub conversations: Vec<ConversationView>,
    /// Pass as `before` for the next page; null when there is none.
    pub next_before: Option<String>,
    /// First page only (no `before`): the sum of `unread` over my most
    /// recent conversations (up to 100 of them), at most the cap (999).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unread_total: Option<u32>,
    /// With `unread_total`: the sum reached the cap, or a count was capped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unread_total_capped: Option<bool>,
}

/// A user's public profile as the wire shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProfileView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub bio: String,
    /// `#rrggbb` or null.
    pub color: Option<String>,
    /// An http(s) URL or null.
    pub avatar_url: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub followers: u64,
    pub following: u64,
}

/// Reply data of `profile.get` and `profile.update`; also the data of the
/// `profile.updated` event.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileEnvelope {
    pub profile: ProfileView,
}

/// Reply data of `user.search`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserSearchReply {
    pub users: Vec<UserView>,
}

/// Reply data of `follow.add` and `follow.remove`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FollowReply {
    /// Whether I follow the user now.
    pub following: bool,
    /// False when the request changed nothing (already so).
    pub changed: bool,
}

/// Data of the `follow.new` event.
#[derive(Debug, Serialize, Deserialize)]
pub struct FollowNew {
    pub follower: UserView,
}

/// Reply data of `follow.followers` and `follow.following`.
#[derive(Debug, Serialize, Deserialize)]
pub struct FollowPageReply {
    pub users: Vec<UserView>,
    /// Pass as `after` for the next page; null when there is none.
    pub next_after: Option<String>,
}

/// A post as the wire shows one; `liked_by_me`/`reposted_by_me` are for
/// the socket's user in replies, and always false in events (which go to many readers).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PostView {
    pub id: String,
    pub author: UserView,
    pub text: String,
    pub created_at: String,
    pub likes: u64,
    pub reposts: u64,
    pub liked_by_me: bool,
    pub reposted_by_me: bool,
}

/// One timeline entry: a post, or a repost of one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimelineItemView {
    /// The item id (the page cursor): the post id for a post, the repost's own id for a repost.
    pub id: String,
    /// `"post"` or `"repost"`.
    pub kind: String,
    pub post: PostView,
    /// Who reposted it (reposts only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reposted_by: Option<UserView>,
    /// When the item was made (post time, or repost time).
    pub at: String,
}

/// Reply data of the `post.*` kinds (except `post.delete`).
#[derive(Debug, Serialize, Deserialize)]
pub struct PostReply {
    pub post: PostView,
}

/// Reply data of `timeline.home` and `timeline.user`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TimelineReply {
    pub items: Vec<TimelineItemView>,
    /// Pass as `before` for the next (older) page; null when there is none.
    pub next_before: Option<String>,
}

/// Data of the `post.new` event.
#[derive(Debug, Serialize, Deserialize)]
pub struct PostNew {
    pub item: TimelineItemView,
}

/// Data of the `post.liked` event (to the author).
#[derive(Debug, Serialize, Deserialize)]
pub struct PostLiked {
    pub post_id: String,
    pub by: UserView,
    pub likes: u64,
}

/// Data of the `post.reposted` event (to the author).
#[derive(Debug, Serialize, Deserialize)]
pub struct PostReposted {
    pub post_id: String,
    pub by: UserView,
    pub reposts: u64,
}

/// Event names the server pushes.
pub mod events {
    /// A message to or from me (direct) or to a group I am in was stored.
    pub const MESSAGE_NEW: &str = "message.new";
    /// My profile was changed from another of my sockets.
    pub const PROFILE_UPDATED: &str = "profile.updated";
    /// Someone started following me.
    pub const FOLLOW_NEW: &str = "follow.new";
    /// A post or repost by someone I follow (or by me, on my other sockets).
    pub const POST_NEW: &str = "post.new";
    /// Someone liked my post.
    pub const POST_LIKED: &str = "post.liked";
    /// Someone reposted my post.
    pub const POST_REPOSTED: &str = "post.reposted";
    /// I may have missed inbox events: call `message.sync`.
    pub const SYNC_NEEDED: &str = "sync.needed";
    /// A watched user came online or went offline.
    pub const PRESENCE_CHANGED: &str = "presence.changed";
    /// A group I am in changed (title, topic, a role, its owner).
    pub const GROUP_UPDATED: &str = "group.updated";
    /// Members were added to a group I am in (or I was added).
    pub const GROUP_MEMBER_ADDED: &str = "group.member_added";
    /// A member left or was removed (also sent to that member).
    pub const GROUP_MEMBER_REMOVED: &str = "group.member_removed";
    /// My read pointer moved (from another of my sockets).
    pub const CONVERSATION_READ: &str = "conversation.read";
    /// Another member read a conversation up to a message (a read receipt).
    pub const MESSAGE_READ: &str = "message.read";
    /// Another member is typing (ephemeral: no `pos`, may be lost).
    pub const TYPING_START: &str = "typing.start";
    /// Another member stopped typing (ephemeral).
    pub const TYPING_STOP: &str = "typing.stop";
    /// A message's reactions changed.
    pub const MESSAGE_REACTIONS: &str = "message.reactions";
    /// A message of a conversation I am in was edited.
    pub const MESSAGE_UPDATED: &str = "message.updated";
    /// A message of a conversation I am in was deleted (a tombstone).
    pub const MESSAGE_DELETED: &str = "message.deleted";
}
