//! Row decoding without a server: every read statement's result columns
//! (names and types from `cql/`) are type-checked against the Rust row
//! type its call sites decode into, and sample rows are encoded the way a
//! RESULT frame carries them and decoded back.

use bytes::Bytes;
use scylla::deserialize::FrameSlice;
use scylla::deserialize::row::{ColumnIterator, DeserializeRow};
use scylla::frame::response::result::{ColumnSpec, ColumnType, NativeType, TableSpec};
use scylla::serialize::row::{RowSerializationContext, SerializeRow};
use scylla::serialize::writers::RowWriter;
use scylla::value::Counter;

use super::rows::{ConversationRow, ItemRow, MessageRow, PostRow, SentRow, SessionRow, UserRow};
use super::schema;
use super::statements::{Kind, Q, table, table_of};
use crate::model::{ItemId, ItemKind, Message, PostId, TimelineItem, UserId};

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

/// The result columns of read `q`: names and types as the server reports them.
fn result_specs(q: Q) -> Vec<ColumnSpec<'static>> {
    let (_, kind, cql) = table().into_iter().find(|(n, _, _)| *n == q).unwrap();
    assert_eq!(kind, Kind::Read, "{q:?}");
    let tables = schema::tables();
    let cols = &tables[table_of(&cql).unwrap()];
    let list = cql.strip_prefix("SELECT ").unwrap().split(" FROM ").next().unwrap();
    list.split(',')
        .map(str::trim)
        .map(|c| {
            // The one aggregate (reactions): COUNT(*) is a bigint named `count`.
            let (name, ty) = if c == "COUNT(*)" { ("count", "bigint") } else { (c, cols[c].as_str()) };
            let typ = ColumnType::Native(native(ty));
            ColumnSpec::owned(name.to_string(), typ, TableSpec::owned("ks".into(), "t".into()))
        })
        .collect()
}

fn type_checks<R: for<'f, 'm> DeserializeRow<'f, 'm>>(q: Q) {
    let specs = result_specs(q);
    R::type_check(&specs).unwrap_or_else(|e| panic!("{q:?} into {}: {e}", std::any::type_name::<R>()));
}

/// Encodes `values` as one result row of `q` and decodes it as `R`.
fn round_trip<R>(q: Q, values: impl SerializeRow) -> R
where
    R: for<'f, 'm> DeserializeRow<'f, 'm>,
{
    let specs = result_specs(q);
    let mut buf = Vec::new();
    values.serialize(&RowSerializationContext::from_specs(&specs), &mut RowWriter::new(&mut buf)).unwrap();
    let frame = Bytes::from(buf);
    R::type_check(&specs).unwrap();
    R::deserialize(ColumnIterator::new(&specs, FrameSlice::new(&frame))).unwrap()
}

#[test]
fn every_read_decodes_into_the_row_type_its_callers_use() {
    let mut checked = Vec::new();
    let mut check = |q: Q, f: fn(Q)| {
        f(q);
        checked.push(q);
    };
    check(Q::UserGet, type_checks::<UserRow>);
    for q in [Q::MessageGet, Q::MessagePage, Q::InboxPage, Q::GroupLastGet, Q::GroupFeedPage] {
        check(q, type_checks::<MessageRow>);
    }
    check(Q::ConversationsOfUser, type_checks::<ConversationRow>);
    check(Q::SessionGet, type_checks::<SessionRow>);
    check(Q::SentOfUser, type_checks::<SentRow>);
    check(Q::PostGet, type_checks::<PostRow>);
    for q in [Q::ItemGet, Q::UserItemPage, Q::UnfannedPage, Q::PendingPage, Q::HomePage] {
        check(q, type_checks::<ItemRow>);
    }
    check(Q::UsernameGet, type_checks::<(Option<i64>,)>);
    check(Q::SearchScan, type_checks::<(String, i64)>);
    check(Q::NonceGet, type_checks::<(String, i64)>);
    check(Q::SessionsOfUser, type_checks::<(String,)>);
    for q in [Q::FollowCountsGet, Q::PostCountsGet] {
        check(q, type_checks::<(Option<Counter>, Option<Counter>)>);
    }
    check(Q::GroupGet, type_checks::<(Option<String>, Option<String>)>);
    for q in [Q::GroupMemberGet, Q::GroupMembersAll, Q::GroupMembersPage] {
        check(q, type_checks::<(i64, Option<String>, Option<i64>)>);
    }
    check(Q::ChangePage, type_checks::<(i64, i32, String, i64, i64)>);
    check(Q::ReactionGet, type_checks::<(i64,)>);
    for q in [Q::ReactionCounts, Q::ReactionsOfMessage] {
        check(q, type_checks::<(String, i64)>);
    }
    for q in [Q::UserReactionsRange, Q::UserReactionsAll] {
        check(q, type_checks::<(i64, String)>);
    }
    check(Q::SettingsGet, type_checks::<(Option<bool>,)>);
    check(Q::StateGet, type_checks::<(Option<i64>, Option<i64>, Option<String>, Option<bool>)>);
    for q in [Q::ReadPointerGet, Q::MessageSenders, Q::MessageSendersGet] {
        check(q, type_checks::<(i64,)>);
    }
    for q in [
        Q::ConvBuckets,
        Q::ConvBucketsFrom,
        Q::InboxBuckets,
        Q::UserItemBuckets,
        Q::HomeBuckets,
        Q::HomeBucketList,
        Q::ChangeBuckets,
    ] {
        check(q, type_checks::<(i32,)>);
    }
    for q in [Q::FollowingPage, Q::FollowersPage, Q::RepostsOfPost, Q::HomeByBucketPage] {
        check(q, type_checks::<(i64, i64)>);
    }
    for q in [
        Q::RefreshUsedGet,
        Q::FollowGet,
        Q::LikeGet,
        Q::LikesOfPost,
        Q::LikesOfUser,
        Q::RepostGet,
        Q::RepostsOfUser,
        Q::ItemsOfPost,
        Q::HomeByItem,
        Q::UserGroups,
    ] {
        check(q, type_checks::<(i64,)>);
    }
    check(Q::BlockByIdPage, type_checks::<(i64, i64)>);
    for q in [Q::BlockGet, Q::BlockCount, Q::BlockedByOf, Q::MuteGet] {
        check(q, type_checks::<(i64,)>);
    }
    check(Q::ReportBuckets, type_checks::<(i32,)>);
    for q in [Q::ReportGet, Q::ReportPage] {
        check(q, type_checks::<super::safety::ReportRow>);
    }
    check(Q::BanGet, type_checks::<(String, i64)>);
    // Push (cql/010).
    check(Q::PushDevices, type_checks::<super::push::DeviceRow>);
    check(Q::PushDeviceGet, type_checks::<super::push::DeviceRow>);
    check(Q::PushSettingGet, type_checks::<(Option<String>,)>);
    check(Q::PushJobGet, type_checks::<super::push::JobRow>);
    check(Q::PushJobsScan, type_checks::<super::push::JobRow>);
    check(Q::PushJobsOfDevice, type_checks::<(String,)>);
    // Push intake and device slots (cql/012).
    check(Q::PushSlots, type_checks::<(i32, i64)>);
    check(Q::PushSlotGet, type_checks::<(i64,)>);
    check(Q::PushIntakeRead, type_checks::<(i64, String)>);
    // Push intake cursor (cql/013).
    check(Q::PushCursorGet, type_checks::<(i64,)>);
    let reads: Vec<Q> = table().into_iter().filter(|(_, k, _)| *k == Kind::Read).map(|(q, _, _)| q).collect();
    let missing: Vec<_> = reads.iter().filter(|q| !checked.contains(q)).collect();
    assert!(missing.is_empty(), "reads without a checked row type: {missing:?}");
}

#[test]
fn a_mismatched_row_type_is_caught() {
    let specs = result_specs(Q::SessionGet);
    assert!(<(i64, i64)>::type_check(&specs).is_err());
    assert!(MessageRow::type_check(&result_specs(Q::ItemGet)).is_err());
}

#[test]
fn rows_decode_from_result_bytes() {
    let m: MessageRow = round_trip(Q::MessagePage, (7i64, "1-2", 1i64, "a", 2i64, "b", "hi", None::<&str>));
    let m = Message::from(m);
    assert_eq!((m.id.0, m.from.as_str(), m.to_id, m.text.as_str(), m.nonce), (7, "a", UserId(2), "hi", None));

    let u: UserRow =
        round_trip(Q::UserGet, (9i64, "Ann", "Ann B", "hash", 5i64, None::<&str>, Some(""), Some("https://x/a.png")));
    let p = u.profile().unwrap();
    assert_eq!(
        (p.user.username.as_str(), p.bio.as_str(), p.color, p.avatar_url.as_deref()),
        ("Ann", "", None, Some("https://x/a.png"))
    );

    let i: ItemRow = round_trip(Q::HomePage, (11i64, 1i32, 3i64, 4i64, 5i64));
    assert_eq!(
        TimelineItem::from(i),
        TimelineItem {
            id: ItemId(11),
            kind: ItemKind::Repost,
            actor: UserId(3),
            post_id: PostId(4),
            post_author: UserId(5)
        }
    );

    let s: SessionRow = round_trip(Q::SessionGet, (1i64, vec![1u8, 2], 99i64, true));
    assert_eq!((s.refresh_hash, s.revoked), (vec![1, 2], true));

    let (likes, reposts): (Option<Counter>, Option<Counter>) =
        round_trip(Q::PostCountsGet, (Some(Counter(42)), None::<Counter>));
    assert_eq!((likes, reposts), (Some(Counter(42)), None), "a counter never updated is null");
}
