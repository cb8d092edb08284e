//! Every CQL statement of the ScyllaDB store, in one table of
//! (name, kind, CQL), prepared once at start into [`Statements`].
//!
//! Kinds: `Read` and `Write` are idempotent (the driver may retry them and
//! run them speculatively); `Lwt` statements are lightweight transactions,
//! never retried blindly: a timeout is resolved by reading back; `Counter`
//! updates are sent once and never retried (a timeout leaves the count
//! possibly off by one: see `cql/005_counts.cql`).

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;

use crate::error::StoreError;

/// How a statement may be executed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A SELECT: idempotent, paged.
    Read,
    /// A plain write: idempotent (same values, same outcome).
    Write,
    /// A lightweight transaction (`IF ...`): not idempotent.
    Lwt,
    /// A counter update (`SET c = c + ?`): not idempotent, never retried.
    Counter,
}

/// Rows fetched per page of a SELECT.
pub const PAGE_SIZE: i32 = 500;

const ITEM_COLS: &str = "item_id, kind, actor_id, post_id, post_author";
const MESSAGE_COLS: &str = "message_id, conversation_id, from_id, from_name, to_id, to_name, body, nonce";

macro_rules! statements {
    ($($name:ident: $kind:ident => $cql:expr;)*) => {
        /// The name of a statement; indexes [`Statements`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Q { $($name),* }

        /// (name, kind, CQL) of every statement, in [`Q`] order.
        pub fn table() -> Vec<(Q, Kind, String)> {
            vec![$((Q::$name, Kind::$kind, String::from($cql))),*]
        }
    };
}

statements! {
    // ---- users, usernames, search
    UsernameClaim: Lwt => "INSERT INTO usernames (username_key, user_id) VALUES (?, ?) IF NOT EXISTS";
    UsernameGet: Read => "SELECT user_id FROM usernames WHERE username_key = ?";
    UsernameRelease: Lwt => "DELETE FROM usernames WHERE username_key = ? IF user_id = ?";
    UserInsert: Write =>
        "INSERT INTO users (user_id, username, display_name, password_hash, created_at) VALUES (?, ?, ?, ?, ?)";
    UserGet: Read =>
        "SELECT user_id, username, display_name, password_hash, created_at, bio, color, avatar_url \
         FROM users WHERE user_id = ?";
    UserUpdateProfile: Write =>
        "UPDATE users SET display_name = ?, bio = ?, color = ?, avatar_url = ? WHERE user_id = ?";
    UserSetPassword: Write => "UPDATE users SET password_hash = ? WHERE user_id = ?";
    UserDelete: Write => "DELETE FROM users WHERE user_id = ?";
    SearchInsert: Write => "INSERT INTO user_search (prefix, username_key, user_id) VALUES (?, ?, ?)";
    SearchDelete: Write => "DELETE FROM user_search WHERE prefix = ? AND username_key = ? AND user_id = ?";
    SearchScan: Read => "SELECT username_key, user_id FROM user_search WHERE prefix = ?";
    // ---- sessions
    SessionInsert: Lwt =>
        "INSERT INTO sessions (session_id, user_id, refresh_hash, expires_at, revoked) \
         VALUES (?, ?, ?, ?, false) IF NOT EXISTS";
    SessionGet: Read => "SELECT user_id, refresh_hash, expires_at, revoked FROM sessions WHERE session_id = ?";
    SessionRotate: Lwt =>
        "UPDATE sessions SET refresh_hash = ?, expires_at = ? WHERE session_id = ? \
         IF refresh_hash = ? AND revoked = false";
    SessionRevoke: Lwt => "UPDATE sessions SET revoked = true WHERE session_id = ? IF revoked = false";
    SessionDelete: Lwt => "DELETE FROM sessions WHERE session_id = ? IF EXISTS";
    SessionByUserInsert: Write => "INSERT INTO sessions_by_user (user_id, session_id) VALUES (?, ?)";
    SessionsOfUser: Read => "SELECT session_id FROM sessions_by_user WHERE user_id = ?";
    SessionsOfUserDelete: Write => "DELETE FROM sessions_by_user WHERE user_id = ?";
    RefreshUsedInsert: Write => "INSERT INTO refresh_used (session_id, hash, used_at) VALUES (?, ?, ?)";
    RefreshUsedGet: Read => "SELECT used_at FROM refresh_used WHERE session_id = ? AND hash = ?";
    RefreshUsedDelete: Write => "DELETE FROM refresh_used WHERE session_id = ?";
    // ---- messages
    NonceClaim: Lwt =>
        "INSERT INTO message_nonces (from_id, nonce, conversation_id, message_id) VALUES (?, ?, ?, ?) IF NOT EXISTS";
    NonceGet: Read => "SELECT conversation_id, message_id FROM message_nonces WHERE from_id = ? AND nonce = ?";
    NonceDelete: Lwt => "DELETE FROM message_nonces WHERE from_id = ? AND nonce = ? IF EXISTS";
    MessageInsert: Write =>
        "INSERT INTO messages (conversation_id, bucket, message_id, from_id, from_name, to_id, to_name, body, nonce) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    MessageGet: Read => format!(
        "SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id = ?");
    MessagePage: Read => format!(
        "SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id < ? LIMIT ?");
    MessageDelete: Write => "DELETE FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    ConvBucketInsert: Write => "INSERT INTO conv_buckets (conversation_id, bucket) VALUES (?, ?)";
    ConvBuckets: Read => "SELECT bucket FROM conv_buckets WHERE conversation_id = ? AND bucket <= ?";
    InboxInsert: Write =>
        "INSERT INTO inbox (user_id, bucket, message_id, conversation_id, from_id, from_name, to_id, to_name, body, \
         nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    InboxPage: Read => format!(
        "SELECT {MESSAGE_COLS} FROM inbox WHERE user_id = ? AND bucket = ? AND message_id > ? LIMIT ?");
    InboxDelete: Write => "DELETE FROM inbox WHERE user_id = ? AND bucket = ? AND message_id = ?";
    InboxBucketDelete: Write => "DELETE FROM inbox WHERE user_id = ? AND bucket = ?";
    InboxBucketInsert: Write => "INSERT INTO inbox_buckets (user_id, bucket) VALUES (?, ?)";
    InboxBuckets: Read => "SELECT bucket FROM inbox_buckets WHERE user_id = ? AND bucket >= ?";
    InboxBucketsDelete: Write => "DELETE FROM inbox_buckets WHERE user_id = ?";
    SentInsert: Write =>
        "INSERT INTO sent_messages (from_id, message_id, conversation_id, to_id, nonce) VALUES (?, ?, ?, ?, ?)";
    SentOfUser: Read => "SELECT message_id, conversation_id, to_id, nonce FROM sent_messages WHERE from_id = ?";
    SentDelete: Write => "DELETE FROM sent_messages WHERE from_id = ?";
    SentRowDelete: Write => "DELETE FROM sent_messages WHERE from_id = ? AND message_id = ?";
    ConversationUpsert: Write =>
        "INSERT INTO conversations (user_id, peer_id, conversation_id, message_id, from_id, from_name, to_id, \
         to_name, body, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    ConversationsOfUser: Read => format!("SELECT peer_id, {MESSAGE_COLS} FROM conversations WHERE user_id = ?");
    ConversationDelete: Write => "DELETE FROM conversations USING TIMESTAMP ? WHERE user_id = ? AND peer_id = ?";
    ConversationsDelete: Write => "DELETE FROM conversations USING TIMESTAMP ? WHERE user_id = ?";
    // ---- groups
    GroupInsert: Write => "INSERT INTO groups (group_id, title, topic) VALUES (?, ?, ?)";
    GroupGet: Read => "SELECT title, topic FROM groups WHERE group_id = ?";
    GroupSetTitle: Write => "UPDATE groups SET title = ? WHERE group_id = ?";
    GroupSetTopic: Write => "UPDATE groups SET topic = ? WHERE group_id = ?";
    GroupDelete: Write => "DELETE FROM groups WHERE group_id = ?";
    GroupLastUpsert: Write =>
        "INSERT INTO group_last (group_id, message_id, conversation_id, from_id, from_name, to_id, to_name, body, \
         nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    GroupLastGet: Read => format!("SELECT {MESSAGE_COLS} FROM group_last WHERE group_id = ?");
    GroupLastDelete: Write => "DELETE FROM group_last USING TIMESTAMP ? WHERE group_id = ?";
    GroupMemberInsert: Write =>
        "INSERT INTO group_members (group_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)";
    GroupMemberGet: Read => "SELECT user_id, role, joined_at FROM group_members WHERE group_id = ? AND user_id = ?";
    GroupMemberSetRole: Write => "UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?";
    GroupMemberDelete: Write => "DELETE FROM group_members WHERE group_id = ? AND user_id = ?";
    GroupMembersAll: Read => "SELECT user_id, role, joined_at FROM group_members WHERE group_id = ?";
    GroupMembersPage: Read =>
        "SELECT user_id, role, joined_at FROM group_members WHERE group_id = ? AND user_id > ? LIMIT ?";
    GroupMembersDelete: Write => "DELETE FROM group_members WHERE group_id = ?";
    UserGroupInsert: Write => "INSERT INTO user_groups (user_id, group_id) VALUES (?, ?)";
    UserGroupDelete: Write => "DELETE FROM user_groups WHERE user_id = ? AND group_id = ?";
    UserGroups: Read => "SELECT group_id FROM user_groups WHERE user_id = ?";
    GroupFeedInsert: Write =>
        "INSERT INTO group_feed (conversation_id, bucket, message_id, from_id, from_name, to_id, to_name, body, \
         nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    GroupFeedPage: Read => format!(
        "SELECT {MESSAGE_COLS} FROM group_feed WHERE conversation_id = ? AND bucket = ? AND message_id > ? LIMIT ?");
    GroupFeedDelete: Write => "DELETE FROM group_feed WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    GroupFeedBucketDelete: Write => "DELETE FROM group_feed WHERE conversation_id = ? AND bucket = ?";
    MessageBucketDelete: Write => "DELETE FROM messages WHERE conversation_id = ? AND bucket = ?";
    ConvBucketsFrom: Read => "SELECT bucket FROM conv_buckets WHERE conversation_id = ? AND bucket >= ?";
    ConvBucketsDelete: Write => "DELETE FROM conv_buckets WHERE conversation_id = ?";
    // ---- follows
    FollowClaim: Lwt => "INSERT INTO following (user_id, followee_id, follow_id) VALUES (?, ?, ?) IF NOT EXISTS";
    FollowGet: Read => "SELECT follow_id FROM following WHERE user_id = ? AND followee_id = ?";
    FollowRelease: Lwt => "DELETE FROM following WHERE user_id = ? AND followee_id = ? IF follow_id = ?";
    FollowingInsert: Write => "INSERT INTO following_by_time (user_id, follow_id, followee_id) VALUES (?, ?, ?)";
    FollowingDelete: Write =>
        "DELETE FROM following_by_time WHERE user_id = ? AND follow_id = ? AND followee_id = ?";
    FollowingPage: Read =>
        "SELECT follow_id, followee_id FROM following_by_time WHERE user_id = ? AND follow_id < ?";
    FollowersInsert: Write => "INSERT INTO followers_by_time (user_id, follow_id, follower_id) VALUES (?, ?, ?)";
    FollowersDelete: Write =>
        "DELETE FROM followers_by_time WHERE user_id = ? AND follow_id = ? AND follower_id = ?";
    FollowersPage: Read =>
        "SELECT follow_id, follower_id FROM followers_by_time WHERE user_id = ? AND follow_id < ?";
    // ---- counts (counter tables; updated once per change of the set)
    FollowCountsGet: Read => "SELECT followers, following FROM follow_counts WHERE user_id = ?";
    FollowersAdd: Counter => "UPDATE follow_counts SET followers = followers + ? WHERE user_id = ?";
    FollowingAdd: Counter => "UPDATE follow_counts SET following = following + ? WHERE user_id = ?";
    FollowCountsDelete: Write => "DELETE FROM follow_counts WHERE user_id = ?";
    PostCountsGet: Read => "SELECT likes, reposts FROM post_counts WHERE post_id = ?";
    LikesAdd: Counter => "UPDATE post_counts SET likes = likes + ? WHERE post_id = ?";
    RepostsAdd: Counter => "UPDATE post_counts SET reposts = reposts + ? WHERE post_id = ?";
    PostCountsDelete: Write => "DELETE FROM post_counts WHERE post_id = ?";
    // ---- posts, likes, reposts
    PostInsert: Write => "INSERT INTO posts (post_id, author_id, body) VALUES (?, ?, ?)";
    PostGet: Read => "SELECT post_id, author_id, body FROM posts WHERE post_id = ?";
    PostDelete: Write => "DELETE FROM posts WHERE post_id = ?";
    LikeClaim: Lwt => "INSERT INTO likes (post_id, user_id) VALUES (?, ?) IF NOT EXISTS";
    LikeRelease: Lwt => "DELETE FROM likes WHERE post_id = ? AND user_id = ? IF EXISTS";
    LikeGet: Read => "SELECT user_id FROM likes WHERE post_id = ? AND user_id = ?";
    LikesOfPost: Read => "SELECT user_id FROM likes WHERE post_id = ?";
    LikeByUserInsert: Write => "INSERT INTO likes_by_user (user_id, post_id) VALUES (?, ?)";
    LikeByUserDelete: Write => "DELETE FROM likes_by_user WHERE user_id = ? AND post_id = ?";
    LikesOfUser: Read => "SELECT post_id FROM likes_by_user WHERE user_id = ?";
    RepostClaim: Lwt => "INSERT INTO reposts (post_id, user_id, item_id) VALUES (?, ?, ?) IF NOT EXISTS";
    RepostRelease: Lwt => "DELETE FROM reposts WHERE post_id = ? AND user_id = ? IF item_id = ?";
    RepostGet: Read => "SELECT item_id FROM reposts WHERE post_id = ? AND user_id = ?";
    RepostsOfPost: Read => "SELECT user_id, item_id FROM reposts WHERE post_id = ?";
    RepostByUserInsert: Write => "INSERT INTO reposts_by_user (user_id, post_id) VALUES (?, ?)";
    RepostByUserDelete: Write => "DELETE FROM reposts_by_user WHERE user_id = ? AND post_id = ?";
    RepostsOfUser: Read => "SELECT post_id FROM reposts_by_user WHERE user_id = ?";
    // ---- timeline items
    ItemInsert: Write =>
        "INSERT INTO items (item_id, kind, actor_id, post_id, post_author, fanout) VALUES (?, ?, ?, ?, ?, ?)";
    ItemGet: Read => format!("SELECT {ITEM_COLS} FROM items WHERE item_id = ?");
    ItemSetFanout: Write => "UPDATE items SET fanout = ? WHERE item_id = ?";
    ItemDelete: Write => "DELETE FROM items WHERE item_id = ?";
    UserItemInsert: Write =>
        "INSERT INTO user_items (actor_id, bucket, item_id, kind, post_id, post_author) VALUES (?, ?, ?, ?, ?, ?)";
    UserItemPage: Read => format!(
        "SELECT {ITEM_COLS} FROM user_items WHERE actor_id = ? AND bucket = ? AND item_id < ? LIMIT ?");
    UserItemDelete: Write => "DELETE FROM user_items WHERE actor_id = ? AND bucket = ? AND item_id = ?";
    UserItemBucketInsert: Write => "INSERT INTO user_item_buckets (actor_id, bucket) VALUES (?, ?)";
    UserItemBuckets: Read => "SELECT bucket FROM user_item_buckets WHERE actor_id = ? AND bucket <= ?";
    UserItemBucketsDelete: Write => "DELETE FROM user_item_buckets WHERE actor_id = ?";
    ItemByPostInsert: Write => "INSERT INTO items_by_post (post_id, item_id) VALUES (?, ?)";
    ItemsOfPost: Read => "SELECT item_id FROM items_by_post WHERE post_id = ?";
    ItemByPostDelete: Write => "DELETE FROM items_by_post WHERE post_id = ? AND item_id = ?";
    UnfannedInsert: Write =>
        "INSERT INTO unfanned (actor_id, item_id, kind, post_id, post_author) VALUES (?, ?, ?, ?, ?)";
    UnfannedPage: Read => format!("SELECT {ITEM_COLS} FROM unfanned WHERE actor_id = ? AND item_id < ? LIMIT ?");
    UnfannedDelete: Write => "DELETE FROM unfanned WHERE actor_id = ? AND item_id = ?";
    PendingInsert: Write =>
        "INSERT INTO pending_items (shard, item_id, kind, actor_id, post_id, post_author) VALUES (?, ?, ?, ?, ?, ?)";
    PendingPage: Read => format!("SELECT {ITEM_COLS} FROM pending_items WHERE shard = ? LIMIT ?");
    PendingDelete: Write => "DELETE FROM pending_items WHERE shard = ? AND item_id = ?";
    // ---- home timelines
    HomeInsert: Write =>
        "INSERT INTO home_items (user_id, bucket, item_id, kind, actor_id, post_id, post_author) \
         VALUES (?, ?, ?, ?, ?, ?, ?)";
    HomePage: Read => format!(
        "SELECT {ITEM_COLS} FROM home_items WHERE user_id = ? AND bucket = ? AND item_id < ? LIMIT ?");
    HomeDelete: Write => "DELETE FROM home_items WHERE user_id = ? AND bucket = ? AND item_id = ?";
    HomePartitionDelete: Write => "DELETE FROM home_items WHERE user_id = ? AND bucket = ?";
    HomeBucketInsert: Write => "INSERT INTO home_buckets (user_id, bucket) VALUES (?, ?)";
    HomeBuckets: Read => "SELECT bucket FROM home_buckets WHERE user_id = ? AND bucket <= ?";
    HomeBucketsDelete: Write => "DELETE FROM home_buckets WHERE user_id = ?";
    HomeByItemInsert: Write => "INSERT INTO home_by_item (item_id, user_id) VALUES (?, ?)";
    HomeByItem: Read => "SELECT user_id FROM home_by_item WHERE item_id = ?";
    HomeByItemDelete: Write => "DELETE FROM home_by_item WHERE item_id = ? AND user_id = ?";
    HomeByBucketInsert: Write => "INSERT INTO home_by_bucket (bucket, item_id, user_id) VALUES (?, ?, ?)";
    HomeByBucketPage: Read => "SELECT item_id, user_id FROM home_by_bucket WHERE bucket = ? AND item_id < ?";
    HomeByBucketDelete: Write => "DELETE FROM home_by_bucket WHERE bucket = ? AND item_id = ? AND user_id = ?";
    HomeBucketListInsert: Write => "INSERT INTO home_bucket_list (shard, bucket) VALUES (?, ?)";
    HomeBucketList: Read => "SELECT bucket FROM home_bucket_list WHERE shard = ? AND bucket <= ?";
    // ---- read state (cql/007)
    ReadPointerGet: Read => "SELECT message_id FROM read_pointers WHERE user_id = ? AND conversation_id = ?";
    ReadPointerSet: Write =>
        "INSERT INTO read_pointers (user_id, conversation_id, message_id) VALUES (?, ?, ?) USING TIMESTAMP ?";
    MessageSendersGet: Read =>
        "SELECT from_id FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    MessageSenders: Read =>
        "SELECT from_id FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id > ? LIMIT ?";
    ChangeInsert: Write =>
        "INSERT INTO user_changes (user_id, bucket, change_id, kind, conversation_id, by_id, message_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?)";
    ChangePage: Read =>
        "SELECT change_id, kind, conversation_id, by_id, message_id FROM user_changes \
         WHERE user_id = ? AND bucket = ? AND change_id > ? LIMIT ?";
    ChangeBucketInsert: Write => "INSERT INTO change_buckets (user_id, bucket) VALUES (?, ?)";
    ChangeBuckets: Read => "SELECT bucket FROM change_buckets WHERE user_id = ? AND bucket >= ?";
    SettingsSet: Write => "INSERT INTO chat_settings (user_id, read_receipts) VALUES (?, ?)";
    SettingsGet: Read => "SELECT read_receipts FROM chat_settings WHERE user_id = ?";
    // Account deletion: pointers carry message-id timestamps, so their
    // deletes take a newer one (keys::tombstone_timestamp).
    ReadPointersDelete: Write => "DELETE FROM read_pointers USING TIMESTAMP ? WHERE user_id = ?";
    ReadPointerDelete: Write =>
        "DELETE FROM read_pointers USING TIMESTAMP ? WHERE user_id = ? AND conversation_id = ?";
    ChangeBucketDelete: Write => "DELETE FROM user_changes WHERE user_id = ? AND bucket = ?";
    ChangeBucketsDelete: Write => "DELETE FROM change_buckets WHERE user_id = ?";
    SettingsDelete: Write => "DELETE FROM chat_settings WHERE user_id = ?";
    // ---- safety (cql/011)
    BlockGet: Read => "SELECT block_id FROM blocks WHERE blocker_id = ? AND blocked_id = ?";
    BlockCount: Read => "SELECT blocked_id FROM blocks WHERE blocker_id = ? LIMIT ?";
    BlockInsert: Write => "INSERT INTO blocks (blocker_id, blocked_id, block_id) VALUES (?, ?, ?)";
    BlockDelete: Write => "DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?";
    BlocksOfUserDelete: Write => "DELETE FROM blocks WHERE blocker_id = ?";
    BlockByIdInsert: Write => "INSERT INTO blocks_by_id (blocker_id, block_id, blocked_id) VALUES (?, ?, ?)";
    BlockByIdDelete: Write => "DELETE FROM blocks_by_id WHERE blocker_id = ? AND block_id = ?";
    BlockByIdPage: Read =>
        "SELECT block_id, blocked_id FROM blocks_by_id WHERE blocker_id = ? AND block_id < ? LIMIT ?";
    BlocksByIdDelete: Write => "DELETE FROM blocks_by_id WHERE blocker_id = ?";
    BlockedByInsert: Write => "INSERT INTO blocked_by (blocked_id, blocker_id) VALUES (?, ?)";
    BlockedByDelete: Write => "DELETE FROM blocked_by WHERE blocked_id = ? AND blocker_id = ?";
    BlockedByOf: Read => "SELECT blocker_id FROM blocked_by WHERE blocked_id = ?";
    BlockedByOfDelete: Write => "DELETE FROM blocked_by WHERE blocked_id = ?";
    MuteSet: Write => "INSERT INTO mutes (user_id, conversation_id, until_ms) VALUES (?, ?, ?)";
    MuteGet: Read => "SELECT until_ms FROM mutes WHERE user_id = ? AND conversation_id = ?";
    MuteDelete: Write => "DELETE FROM mutes WHERE user_id = ? AND conversation_id = ?";
    MutesDelete: Write => "DELETE FROM mutes WHERE user_id = ?";
    ReportInsert: Write =>
        "INSERT INTO reports (bucket, report_id, reporter_id, reporter_name, kind, target_id, target_name, \
         message_id, conversation_id, message_text, reason, details, created_ms) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    ReportGet: Read =>
        "SELECT report_id, reporter_id, reporter_name, kind, target_id, target_name, message_id, conversation_id, \
         message_text, reason, details, created_ms, resolved_ms, resolution FROM reports \
         WHERE bucket = ? AND report_id = ?";
    ReportPage: Read =>
        "SELECT report_id, reporter_id, reporter_name, kind, target_id, target_name, message_id, conversation_id, \
         message_text, reason, details, created_ms, resolved_ms, resolution FROM reports \
         WHERE bucket = ? AND report_id < ?";
    ReportResolve: Write => "UPDATE reports SET resolved_ms = ?, resolution = ? WHERE bucket = ? AND report_id = ?";
    ReportBucketInsert: Write => "INSERT INTO report_buckets (shard, bucket) VALUES (?, ?)";
    ReportBuckets: Read => "SELECT bucket FROM report_buckets WHERE shard = ? AND bucket <= ?";
    BanSet: Write => "INSERT INTO bans (user_id, reason, at_ms) VALUES (?, ?, ?)";
    BanGet: Read => "SELECT reason, at_ms FROM bans WHERE user_id = ?";
    BanDelete: Write => "DELETE FROM bans WHERE user_id = ?";
    // ---- reactions (cql/009)
    ReactionGet: Read => "SELECT user_id FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?";
    ReactionCounts: Read => "SELECT emoji, COUNT(*) FROM reactions WHERE message_id = ? GROUP BY emoji";
    ReactionsOfMessage: Read => "SELECT emoji, user_id FROM reactions WHERE message_id = ?";
    ReactionInsert: Write => "INSERT INTO reactions (message_id, emoji, user_id, change_id) VALUES (?, ?, ?, ?)";
    ReactionDelete: Write => "DELETE FROM reactions WHERE message_id = ? AND emoji = ? AND user_id = ?";
    ReactionsDelete: Write => "DELETE FROM reactions WHERE message_id = ?";
    UserReactionInsert: Write => "INSERT INTO user_reactions (user_id, message_id, emoji) VALUES (?, ?, ?)";
    UserReactionDelete: Write => "DELETE FROM user_reactions WHERE user_id = ? AND message_id = ? AND emoji = ?";
    UserReactionsRange: Read =>
        "SELECT message_id, emoji FROM user_reactions WHERE user_id = ? AND message_id >= ? AND message_id <= ?";
    UserReactionsAll: Read => "SELECT message_id, emoji FROM user_reactions WHERE user_id = ?";
    UserReactionsDelete: Write => "DELETE FROM user_reactions WHERE user_id = ?";
    // ---- message lifecycle (cql/008): see the file for the timestamps
    StateReplySet: Write =>
        "UPDATE message_state SET reply_to = ? WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    StateEdit: Write =>
        "UPDATE message_state USING TIMESTAMP ? SET edited_at = ?, body = ? \
         WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    StateDelete: Write =>
        "UPDATE message_state USING TIMESTAMP ? SET deleted = true, body = null \
         WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    StateGet: Read =>
        "SELECT reply_to, edited_at, body, deleted FROM message_state \
         WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    StateRowDelete: Write =>
        "DELETE FROM message_state USING TIMESTAMP ? WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    StateBucketDelete: Write =>
        "DELETE FROM message_state USING TIMESTAMP ? WHERE conversation_id = ? AND bucket = ?";
    MessageBodyClear: Write =>
        "DELETE body FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    InboxBodyClear: Write => "DELETE body FROM inbox WHERE user_id = ? AND bucket = ? AND message_id = ?";
    GroupFeedBodyClear: Write =>
        "DELETE body FROM group_feed WHERE conversation_id = ? AND bucket = ? AND message_id = ?";
    ConversationBodyClear: Write =>
        "DELETE body FROM conversations USING TIMESTAMP ? WHERE user_id = ? AND peer_id = ?";
    GroupLastBodyClear: Write => "DELETE body FROM group_last USING TIMESTAMP ? WHERE group_id = ?";
    // ---- push (cql/010): devices and settings are plain writes; every
    // write to push_jobs is an LWT (see the schema file).
    PushDeviceInsert: Write =>
        "INSERT INTO push_devices (user_id, device_id, session_id, platform, address, p256dh, auth, app_id, data, \
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    PushDevices: Read => "SELECT device_id, user_id, session_id, platform, address, p256dh, auth, app_id, data, created_at FROM push_devices WHERE user_id = ?";
    PushDeviceGet: Read => "SELECT device_id, user_id, session_id, platform, address, p256dh, auth, app_id, data, created_at FROM push_devices WHERE user_id = ? AND device_id = ?";
    PushDeviceDelete: Write => "DELETE FROM push_devices WHERE user_id = ? AND device_id = ?";
    PushDevicesDelete: Write => "DELETE FROM push_devices WHERE user_id = ?";
    PushSettingSet: Write => "INSERT INTO push_settings (user_id, preview) VALUES (?, ?)";
    PushSettingGet: Read => "SELECT preview FROM push_settings WHERE user_id = ?";
    PushSettingDelete: Write => "DELETE FROM push_settings WHERE user_id = ?";
    PushJobInsert: Lwt =>
        "INSERT INTO push_jobs (shard, device_id, collapse_key, user_id, conversation_id, message_id, sender, body, \
         merged, version, first_ms, due_ms, attempts, lease_owner, lease_until) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS";
    PushJobGet: Read => "SELECT device_id, user_id, collapse_key, conversation_id, message_id, sender, body, merged, version, first_ms, due_ms, attempts, lease_until FROM push_jobs WHERE shard = ? AND device_id = ? AND collapse_key = ?";
    PushJobsOfDevice: Read => "SELECT collapse_key FROM push_jobs WHERE shard = ? AND device_id = ?";
    PushJobsScan: Read => "SELECT device_id, user_id, collapse_key, conversation_id, message_id, sender, body, merged, version, first_ms, due_ms, attempts, lease_until FROM push_jobs WHERE shard = ?";
    PushJobMerge: Lwt =>
        "UPDATE push_jobs SET message_id = ?, sender = ?, body = ?, merged = ?, version = ? \
         WHERE shard = ? AND device_id = ? AND collapse_key = ? IF version = ?";
    PushJobClaim: Lwt =>
        "UPDATE push_jobs SET lease_owner = ?, lease_until = ? WHERE shard = ? AND device_id = ? AND collapse_key = ? IF version = ? AND lease_until = ?";
    PushJobRelease: Lwt =>
        "UPDATE push_jobs SET lease_owner = ?, lease_until = ?, due_ms = ?, attempts = ? WHERE shard = ? AND device_id = ? AND collapse_key = ? IF lease_owner = ?";
    PushJobComplete: Lwt => "DELETE FROM push_jobs WHERE shard = ? AND device_id = ? AND collapse_key = ? IF version = ?";
    PushJobDrop: Lwt => "DELETE FROM push_jobs WHERE shard = ? AND device_id = ? AND collapse_key = ? IF EXISTS";
    // ---- device slots (cql/012): LWTs only.
    PushSlots: Read => "SELECT slot, device_id FROM push_device_slots WHERE user_id = ?";
    PushSlotGet: Read => "SELECT device_id FROM push_device_slots WHERE user_id = ? AND slot = ?";
    PushSlotClaim: Lwt =>
        "INSERT INTO push_device_slots (user_id, slot, device_id) VALUES (?, ?, ?) IF NOT EXISTS";
    PushSlotRelease: Lwt => "DELETE FROM push_device_slots WHERE user_id = ? AND slot = ? IF device_id = ?";
    // ---- push intake (cql/012): plain writes only.
    PushIntakeInsert: Write =>
        "INSERT INTO push_intake (node, slot, message_id, conversation_id) VALUES (?, ?, ?, ?)";
    PushIntakeRead: Read =>
        "SELECT message_id, conversation_id FROM push_intake WHERE node = ? AND slot = ? AND message_id > ? AND message_id <= ? LIMIT ?";
    PushIntakeDelete: Write => "DELETE FROM push_intake WHERE node = ? AND slot = ? AND message_id = ?";
    // ---- push intake cursor (cql/013): LWTs only.
    PushCursorGet: Read => "SELECT cursor FROM push_intake_cursor WHERE node = ?";
    PushCursorInit: Lwt => "INSERT INTO push_intake_cursor (node, cursor) VALUES (?, ?) IF NOT EXISTS";
    PushCursorAdvance: Lwt => "UPDATE push_intake_cursor SET cursor = ? WHERE node = ? IF cursor < ?";
}

/// Every statement, prepared once, indexed by [`Q`].
pub struct Statements {
    prepared: Vec<(Kind, PreparedStatement)>,
}

impl Statements {
    /// Prepares the whole table on `session` (whose keyspace is set).
    pub async fn prepare(session: &Session) -> Result<Statements, StoreError> {
        let mut prepared = Vec::new();
        for (i, (q, kind, cql)) in table().into_iter().enumerate() {
            debug_assert_eq!(q as usize, i);
            let mut st = Statement::new(cql);
            if kind == Kind::Read {
                st.set_page_size(PAGE_SIZE);
            }
            let mut p = session
                .prepare(st)
                .await
                .map_err(|e| StoreError::Backend(format!("preparing {q:?}: {e} (run `hubbub migrate`?)")))?;
            p.set_is_idempotent(matches!(kind, Kind::Read | Kind::Write));
            prepared.push((kind, p));
        }
        Ok(Statements { prepared })
    }

    /// The prepared statement named `q`.
    pub fn get(&self, q: Q) -> &PreparedStatement {
        &self.prepared[q as usize].1
    }

    /// How `q` may be executed.
    pub fn kind(&self, q: Q) -> Kind {
        self.prepared[q as usize].0
    }
}

/// The table a statement reads or writes (the word after FROM, INTO or UPDATE).
#[cfg(test)]
pub fn table_of(cql: &str) -> Option<&str> {
    let words: Vec<&str> = cql.split_whitespace().collect();
    let at = words.iter().position(|w| matches!(*w, "FROM" | "INTO" | "UPDATE"))?;
    words.get(at + 1).copied()
}

/// What each `?` of a statement binds, in order: a column name, or
/// `[limit]` / `[timestamp]`.
#[cfg(test)]
pub fn bind_targets(cql: &str) -> Vec<String> {
    let words: Vec<&str> =
        cql.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')').filter(|w| !w.is_empty()).collect();
    let insert_cols: Vec<&str> = match words.iter().position(|w| *w == "INTO") {
        Some(at) => {
            let end = words.iter().position(|w| *w == "VALUES").unwrap_or(words.len());
            words[at + 2..end].to_vec()
        }
        None => Vec::new(),
    };
    let mut in_values = false;
    let mut value_pos = 0;
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if *w == "VALUES" {
            in_values = true;
            continue;
        }
        if *w != "?" {
            if in_values && !matches!(*w, "false" | "true") {
                in_values = false;
            } else if in_values {
                value_pos += 1;
            }
            continue;
        }
        if in_values {
            out.push(insert_cols.get(value_pos).map_or("[?]".to_string(), |c| c.to_string()));
            value_pos += 1;
        } else if i >= 2 && words[i - 1] == "TIMESTAMP" {
            out.push("[timestamp]".into());
        } else if i >= 1 && words[i - 1] == "LIMIT" {
            out.push("[limit]".into());
        } else if i >= 2 {
            out.push(words[i - 2].to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cql::schema;

    #[test]
    fn the_table_is_in_enum_order() {
        for (i, (q, _, _)) in table().iter().enumerate() {
            assert_eq!(*q as usize, i, "{q:?}");
        }
    }

    #[test]
    fn every_statement_names_a_schema_table_and_its_columns() {
        let tables = schema::tables();
        for (q, _, cql) in table() {
            let t = table_of(&cql).unwrap_or_else(|| panic!("{q:?}: no table"));
            let cols = tables.get(t).unwrap_or_else(|| panic!("{q:?}: table {t} not in cql/"));
            for target in bind_targets(&cql) {
                if !target.starts_with('[') {
                    assert!(cols.contains_key(&target), "{q:?}: column {target} not in {t}");
                }
            }
        }
    }

    #[test]
    fn every_marker_has_a_known_target() {
        for (q, _, cql) in table() {
            let markers = cql.matches('?').count();
            let targets = bind_targets(&cql);
            assert_eq!(targets.len(), markers, "{q:?}: {targets:?}");
            assert!(!targets.iter().any(|t| t == "[?]"), "{q:?}: {targets:?}");
        }
    }

    #[test]
    fn kinds_match_the_cql() {
        for (q, kind, cql) in table() {
            let is_lwt = cql.contains(" IF ");
            assert_eq!(kind == Kind::Lwt, is_lwt, "{q:?}");
            assert_eq!(kind == Kind::Counter, cql.contains(" + ?"), "{q:?}");
            assert_eq!(kind == Kind::Read, cql.starts_with("SELECT "), "{q:?}");
            // Portable CQL only: no server-side filtering, no ordering
            // clauses the clustering order does not already give.
            assert!(!cql.contains("ALLOW FILTERING") && !cql.contains("ORDER BY"), "{q:?}");
        }
    }

    /// Every call site runs each statement the way its kind says: writes
    /// through `Db::write`, LWTs through `Db::lwt` (which reads `[applied]`),
    /// reads through the pager. Checked on the source, without a server.
    #[test]
    fn call_sites_match_the_kinds() {
        let sources = [
            include_str!("accounts.rs"),
            include_str!("sessions.rs"),
            include_str!("messages.rs"),
            include_str!("social.rs"),
            include_str!("delete.rs"),
            include_str!("posts.rs"),
            include_str!("counts.rs"),
            include_str!("groups.rs"),
            include_str!("read_state.rs"),
            include_str!("safety.rs"),
            include_str!("reactions.rs"),
            include_str!("lifecycle.rs"),
            include_str!("push.rs"),
            include_str!("device_slots.rs"),
            include_str!("push_intake.rs"),
            include_str!("intake_cursor.rs"),
        ];
        let kinds: std::collections::HashMap<String, Kind> =
            table().into_iter().map(|(q, k, _)| (format!("{q:?}"), k)).collect();
        let mut used = std::collections::HashSet::new();
        let mut checked = 0;
        for src in sources {
            for (call, want) in [
                (".write", Kind::Write),
                (".lwt", Kind::Lwt),
                (".add", Kind::Counter),
                (".one", Kind::Read),
                (".one_serial", Kind::Read),
                (".rows", Kind::Read),
                (".stream", Kind::Read),
            ] {
                for (at, _) in src.match_indices(call) {
                    let rest = &src[at + call.len()..];
                    // `.call(Q::Name` or `.call::<T>(Q::Name`; a variable is checked where it is chosen.
                    let args = if let Some(r) = rest.strip_prefix("::<") {
                        r.split_once(">(").map_or("", |(_, a)| a)
                    } else {
                        rest.strip_prefix('(').unwrap_or("")
                    };
                    let Some(named) = args.strip_prefix("Q::") else { continue };
                    let name: String = named.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                    let kind = kinds.get(&name).unwrap_or_else(|| panic!("unknown statement {name}"));
                    assert_eq!(*kind, want, "{name} called with {call}");
                    checked += 1;
                }
            }
            for (at, _) in src.match_indices("Q::") {
                used.extend(Some(src[at + 3..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>()));
            }
        }
        assert!(checked > 100, "the scan found the call sites ({checked})");
        let unused: Vec<_> = kinds.keys().filter(|k| !used.contains(*k)).collect();
        assert!(unused.is_empty(), "statements never used: {unused:?}");
    }

    #[test]
    fn bind_targets_follow_the_markers() {
        assert_eq!(bind_targets("INSERT INTO t (a, b) VALUES (?, ?) USING TIMESTAMP ?"), ["a", "b", "[timestamp]"]);
        assert_eq!(bind_targets("SELECT x FROM t WHERE a = ? AND b < ? LIMIT ?"), ["a", "b", "[limit]"]);
        assert_eq!(bind_targets("INSERT INTO t (a, r, b) VALUES (?, false, ?)"), ["a", "b"]);
        assert_eq!(bind_targets("DELETE FROM t WHERE k = ? IF v = ?"), ["k", "v"]);
    }
}
