//! The bound values of the wide statements (four or more markers), built
//! in one place so their order and types are unit-tested against the
//! schema without a server: `tests` serializes each against column specs
//! read from `cql/`, exactly as the driver does against a prepared
//! statement's metadata.

use scylla::value::MaybeUnset;

use super::keys::{bucket_of, write_timestamp};
use super::rows::{fanout_code, kind_code};
use crate::model::{FanoutState, Message, ProfileUpdate, Session, TimelineItem, UserCredentials, UserId};

/// An optional text: unset (no tombstone) when absent.
fn opt(s: &Option<String>) -> MaybeUnset<&str> {
    s.as_deref().map_or(MaybeUnset::Unset, MaybeUnset::Set)
}

/// [`super::statements::Q::UserInsert`].
pub fn user_insert(c: &UserCredentials) -> (i64, &str, &str, &str, i64) {
    let u = &c.user;
    (u.id.0, &u.username, &u.display_name, &c.password_hash, u.created_at_ms)
}

/// [`super::statements::Q::UserUpdateProfile`]: fields left alone are
/// unset; a cleared color or avatar is `''`, never a null.
pub fn profile_update(u: &ProfileUpdate) -> [MaybeUnset<String>; 4] {
    let set = |v: &Option<String>| v.clone().map_or(MaybeUnset::Unset, MaybeUnset::Set);
    let clear = |v: &Option<Option<String>>| {
        v.as_ref().map_or(MaybeUnset::Unset, |i| MaybeUnset::Set(i.clone().unwrap_or_default()))
    };
    [set(&u.display_name), set(&u.bio), clear(&u.color), clear(&u.avatar_url)]
}

/// [`super::statements::Q::SessionInsert`].
pub fn session_insert(s: &Session) -> (&str, i64, &[u8], i64) {
    (&s.id.0, s.user_id.0, &s.refresh_hash, s.expires_at_ms)
}

/// [`super::statements::Q::SessionRotate`]: new secret and expiry, where
/// the current secret is still `current`.
pub fn session_rotate<'a>(
    id: &'a str,
    new_hash: &'a [u8],
    new_expires_ms: i64,
    current: &'a [u8],
) -> (&'a [u8], i64, &'a str, &'a [u8]) {
    (new_hash, new_expires_ms, id, current)
}

/// [`super::statements::Q::NonceClaim`].
pub fn nonce_claim<'a>(m: &'a Message, nonce: &'a str) -> (i64, &'a str, &'a str, i64) {
    (m.from_id.0, nonce, &m.conversation_id.0, m.id.0)
}

/// [`super::statements::Q::MessageInsert`].
#[allow(clippy::type_complexity)]
pub fn message_insert(m: &Message) -> (&str, i32, i64, i64, &str, i64, &str, &str, MaybeUnset<&str>) {
    let c = &m.conversation_id.0;
    (c, bucket_of(m.id.0), m.id.0, m.from_id.0, &m.from, m.to_id.0, &m.to, &m.text, opt(&m.nonce))
}

/// [`super::statements::Q::SentInsert`].
pub fn sent_insert(m: &Message) -> (i64, i64, &str, i64, MaybeUnset<&str>) {
    (m.from_id.0, m.id.0, &m.conversation_id.0, m.to_id.0, opt(&m.nonce))
}

/// [`super::statements::Q::InboxInsert`] for participant `me`.
#[allow(clippy::type_complexity)]
pub fn inbox_insert(me: UserId, m: &Message) -> (i64, i32, i64, &str, i64, &str, i64, &str, &str, MaybeUnset<&str>) {
    let c = &m.conversation_id.0;
    (me.0, bucket_of(m.id.0), m.id.0, c, m.from_id.0, &m.from, m.to_id.0, &m.to, &m.text, opt(&m.nonce))
}

/// [`super::statements::Q::ConversationUpsert`] for `me`'s row about
/// `peer`, written at the message id's [`write_timestamp`] (the newest
/// message wins whatever order the writes arrive in). The row is a copy of
/// the last message, so a message without a nonce writes a null nonce
/// (unset would keep the previous message's nonce in the copy).
#[allow(clippy::type_complexity)]
pub fn conversation_upsert(
    me: UserId,
    peer: UserId,
    m: &Message,
) -> (i64, i64, &str, i64, i64, &str, i64, &str, &str, Option<&str>, i64) {
    let c = &m.conversation_id.0;
    let ts = write_timestamp(m.id.0);
    (me.0, peer.0, c, m.id.0, m.from_id.0, &m.from, m.to_id.0, &m.to, &m.text, m.nonce.as_deref(), ts)
}

/// [`super::statements::Q::ItemInsert`].
pub fn item_insert(it: &TimelineItem, fanout: FanoutState) -> (i64, i32, i64, i64, i64, i32) {
    (it.id.0, kind_code(it.kind), it.actor.0, it.post_id.0, it.post_author.0, fanout_code(fanout))
}

/// [`super::statements::Q::UserItemInsert`].
pub fn user_item_insert(it: &TimelineItem) -> (i64, i32, i64, i32, i64, i64) {
    (it.actor.0, bucket_of(it.id.0), it.id.0, kind_code(it.kind), it.post_id.0, it.post_author.0)
}

/// [`super::statements::Q::UnfannedInsert`].
pub fn unfanned_insert(it: &TimelineItem) -> (i64, i64, i32, i64, i64) {
    (it.actor.0, it.id.0, kind_code(it.kind), it.post_id.0, it.post_author.0)
}

/// [`super::statements::Q::PendingInsert`] in partition `shard`.
pub fn pending_insert(shard: i32, it: &TimelineItem) -> (i32, i64, i32, i64, i64, i64) {
    (shard, it.id.0, kind_code(it.kind), it.actor.0, it.post_id.0, it.post_author.0)
}

/// [`super::statements::Q::HomeInsert`] for `user`'s home timeline.
pub fn home_insert(user: UserId, it: &TimelineItem) -> (i64, i32, i64, i32, i64, i64, i64) {
    (user.0, bucket_of(it.id.0), it.id.0, kind_code(it.kind), it.actor.0, it.post_id.0, it.post_author.0)
}

/// A page of a bucketed table (`MessagePage`, `InboxPage`, `UserItemPage`,
/// `HomePage`): partition key, bucket, id bound, limit.
pub fn bucket_page<K>(key: K, bucket: i32, bound: i64, limit: i32) -> (K, i32, i64, i32) {
    (key, bucket, bound, limit)
}

#[cfg(test)]
mod tests {
    use scylla::frame::response::result::{ColumnSpec, ColumnType, NativeType, TableSpec};
    use scylla::serialize::row::{RowSerializationContext, SerializeRow};
    use scylla::serialize::writers::RowWriter;

    use super::*;
    use crate::model::{ConversationId, ItemId, ItemKind, MessageId, PostId, SessionId, User};
    use crate::store::cql::schema;
    use crate::store::cql::statements::{Q, bind_targets, table, table_of};

    fn native(cql_type: &str) -> NativeType {
        match cql_type {
            "bigint" => NativeType::BigInt,
            "int" => NativeType::Int,
            "text" => NativeType::Text,
            "blob" => NativeType::Blob,
            "boolean" => NativeType::Boolean,
            "counter" => NativeType::Counter,
            other => panic!("type {other} not mapped"),
        }
    }

    /// Serializes `values` for statement `q` with column specs from the
    /// schema, the way the driver checks them against prepared metadata.
    fn check(q: Q, values: impl SerializeRow) {
        let (_, _, cql) = table().into_iter().find(|(n, _, _)| *n == q).unwrap();
        let tables = schema::tables();
        let cols = &tables[table_of(&cql).unwrap()];
        let names = bind_targets(&cql);
        let specs: Vec<ColumnSpec<'_>> = names
            .iter()
            .map(|n| {
                let ty = match n.as_str() {
                    "[limit]" => NativeType::Int,
                    "[timestamp]" => NativeType::BigInt,
                    col => native(&cols[col]),
                };
                ColumnSpec::borrowed(n, ColumnType::Native(ty), TableSpec::borrowed("ks", "t"))
            })
            .collect();
        let mut buf = Vec::new();
        let mut w = RowWriter::new(&mut buf);
        values
            .serialize(&RowSerializationContext::from_specs(&specs), &mut w)
            .unwrap_or_else(|e| panic!("{q:?} {names:?}: {e}"));
        assert_eq!(w.value_count(), names.len(), "{q:?}");
    }

    fn message(nonce: Option<&str>) -> Message {
        Message {
            id: MessageId(1 << 40),
            conversation_id: ConversationId("1-2".into()),
            from_id: UserId(1),
            from: "a".into(),
            to_id: UserId(2),
            to: "b".into(),
            text: "hi".into(),
            nonce: nonce.map(Into::into),
        }
    }

    fn item() -> TimelineItem {
        TimelineItem {
            id: ItemId(1 << 41),
            kind: ItemKind::Repost,
            actor: UserId(3),
            post_id: PostId(9),
            post_author: UserId(4),
        }
    }

    #[test]
    fn account_values_match_their_columns() {
        let c = UserCredentials {
            user: User { id: UserId(1), username: "Ann".into(), display_name: "Ann".into(), created_at_ms: 5 },
            password_hash: "h".into(),
        };
        check(Q::UserInsert, user_insert(&c));
        let u = ProfileUpdate { bio: Some("b".into()), color: Some(None), ..Default::default() };
        let [d, b, col, a] = profile_update(&u);
        assert!(matches!(d, MaybeUnset::Unset) && matches!(a, MaybeUnset::Unset), "untouched fields stay unset");
        assert!(matches!(&col, MaybeUnset::Set(s) if s.is_empty()), "a cleared field is '', not null");
        check(Q::UserUpdateProfile, (d, b, col, a, 1i64));
        let s = Session { id: SessionId("s".into()), user_id: UserId(1), refresh_hash: vec![1], expires_at_ms: 9 };
        check(Q::SessionInsert, session_insert(&s));
        check(Q::SessionRotate, session_rotate("s", &[2], 10, &[1]));
    }

    #[test]
    fn message_values_match_their_columns() {
        for m in [message(None), message(Some("n"))] {
            check(Q::NonceClaim, nonce_claim(&m, "n"));
            check(Q::MessageInsert, message_insert(&m));
            check(Q::SentInsert, sent_insert(&m));
            check(Q::InboxInsert, inbox_insert(UserId(2), &m));
            check(Q::ConversationUpsert, conversation_upsert(UserId(1), UserId(2), &m));
        }
        let m = message(None);
        let v = message_insert(&m);
        assert_eq!((v.0, v.1, v.2, v.7), ("1-2", bucket_of(1 << 40), 1 << 40, "hi"));
        assert!(matches!(v.8, MaybeUnset::Unset), "no nonce: unset, never null");
        let ts = conversation_upsert(UserId(1), UserId(2), &message(None)).10;
        assert_eq!(ts, write_timestamp(1 << 40), "timestamp from the message id, in microseconds");
        check(Q::MessagePage, bucket_page("1-2", 3, 99, 50));
        check(Q::InboxPage, bucket_page(1i64, 3, 99, 50));
    }

    #[test]
    fn item_values_match_their_columns() {
        let it = item();
        check(Q::ItemInsert, item_insert(&it, FanoutState::Pending));
        check(Q::UserItemInsert, user_item_insert(&it));
        check(Q::UnfannedInsert, unfanned_insert(&it));
        check(Q::PendingInsert, pending_insert(0, &it));
        check(Q::HomeInsert, home_insert(UserId(7), &it));
        check(Q::UserItemPage, bucket_page(3i64, 1, 99, 10));
        check(Q::HomePage, bucket_page(7i64, 1, 99, 10));
        assert_eq!(home_insert(UserId(7), &it), (7, bucket_of(1 << 41), 1 << 41, 1, 3, 9, 4));
    }

    /// The counter updates bind (delta, key), as `counts::bump` sends them.
    #[test]
    fn counter_values_match_their_columns() {
        use scylla::value::Counter;
        for q in [Q::LikesAdd, Q::RepostsAdd, Q::FollowersAdd, Q::FollowingAdd] {
            check(q, (Counter(-1), 7i64));
        }
        let swapped = std::panic::catch_unwind(|| check(Q::LikesAdd, (7i64, Counter(1))));
        assert!(swapped.is_err(), "a counter is not a bigint");
    }

    #[test]
    fn a_swapped_value_is_caught() {
        let result = std::panic::catch_unwind(|| check(Q::SessionInsert, (1i64, "s", vec![1u8], 9i64)));
        assert!(result.is_err(), "the check must reject values in the wrong order");
    }
}
