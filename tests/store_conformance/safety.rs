//! Conformance cases of the `SafetyStore` area (issue 16): blocks (bound,
//! paging, who-blocks-whom), mutes and the `muted` push seam, reports with
//! their snapshots, bans, and account deletion removing blocks and mutes
//! both ways. Included by `tests/store_conformance.rs`, run on every backend.

use std::sync::Arc;

use hubbub::error::StoreError;
use hubbub::model::{ConversationId, DirectSend, MessageId, User, UserCredentials, UserId};
use hubbub::snowflake::Generator;
use hubbub::store::Store;
use hubbub::store::safety::{Ban, BlockOutcome, MUTED_FOREVER, Report, ReportTarget};

use super::user;

pub async fn blocks_bound_page_and_answer_who_blocks(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let users: Vec<_> = (0..5).map(|i| user(&ids, &format!("bl_{i}"))).collect();
    for u in &users {
        s.create_user(u).await.unwrap();
    }
    let id = |i: usize| users[i].user.id;
    let mut block_ids = Vec::new();
    for i in 1..4 {
        let b = ids.next_id();
        assert_eq!(s.block(id(0), id(i), b, 3).await.unwrap(), BlockOutcome::Added);
        block_ids.push(b);
    }
    assert_eq!(s.block(id(0), id(1), ids.next_id(), 3).await.unwrap(), BlockOutcome::Already);
    assert_eq!(s.block(id(0), id(4), ids.next_id(), 3).await.unwrap(), BlockOutcome::Full, "bounded");
    // Newest first, paged by id, each once.
    let first = s.blocks(id(0), None, 2).await.unwrap();
    assert_eq!(first.iter().map(|b| b.user).collect::<Vec<_>>(), [id(3), id(2)]);
    assert_eq!(first[0].id, block_ids[2], "the original id is kept");
    let rest = s.blocks(id(0), Some(first[1].id), 2).await.unwrap();
    assert_eq!(rest.iter().map(|b| b.user).collect::<Vec<_>>(), [id(1)]);
    // Who among these blocks user 2? Only 0, once.
    let who = s.blockers_of(id(2), &[id(1), id(0), id(3), id(0)]).await.unwrap();
    assert_eq!(who, [id(0)]);
    assert!(s.blockers_of(id(0), &[id(2)]).await.unwrap().is_empty(), "a block is one-way");
    assert!(s.unblock(id(0), id(2)).await.unwrap());
    assert!(!s.unblock(id(0), id(2)).await.unwrap(), "idempotent");
    assert!(s.blockers_of(id(2), &[id(0)]).await.unwrap().is_empty());
    assert_eq!(s.blocks(id(0), None, 10).await.unwrap().len(), 2);
    // Room again under the bound.
    assert_eq!(s.block(id(0), id(4), ids.next_id(), 3).await.unwrap(), BlockOutcome::Added);
    let gone = UserId(ids.next_id());
    assert!(matches!(s.block(gone, id(1), ids.next_id(), 3).await, Err(StoreError::UserGone)));
}

pub async fn mutes_and_the_push_seam(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let (ann, bob) = (user(&ids, "mu_ann"), user(&ids, "mu_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let conv = ConversationId::direct(ann.user.id, bob.user.id);
    let other = ConversationId("g123".into());
    assert!(!s.muted(ann.user.id, &conv, 1_000).await.unwrap());
    s.set_mute(ann.user.id, &conv, 5_000).await.unwrap();
    assert!(s.muted(ann.user.id, &conv, 4_999).await.unwrap());
    assert!(!s.muted(ann.user.id, &conv, 5_000).await.unwrap(), "ended");
    assert!(!s.muted(bob.user.id, &conv, 1_000).await.unwrap(), "per user");
    s.set_mute(ann.user.id, &conv, MUTED_FOREVER).await.unwrap();
    assert!(s.muted(ann.user.id, &conv, i64::MAX - 1).await.unwrap(), "replaced: no end");
    let list = s.mutes(ann.user.id, &[other.clone(), conv.clone()]).await.unwrap();
    assert_eq!(list, [None, Some(MUTED_FOREVER)]);
    assert!(s.unmute(ann.user.id, &conv).await.unwrap());
    assert!(!s.unmute(ann.user.id, &conv).await.unwrap(), "idempotent");
    assert!(!s.muted(ann.user.id, &conv, 1).await.unwrap());
}

pub async fn reports_keep_snapshots_and_resolve(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let (ann, bob) = (user(&ids, "rep_ann"), user(&ids, "rep_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let on_user = Report {
        id: ids.next_id(),
        reporter: ann.user.id,
        reporter_name: "rep_ann".into(),
        target: ReportTarget::User { id: bob.user.id, username: "rep_bob".into() },
        reason: "spam".into(),
        details: String::new(),
        created_ms: 10,
        resolved: None,
    };
    let on_message = Report {
        id: ids.next_id(),
        target: ReportTarget::Message {
            id: 77,
            conversation: ConversationId::direct(ann.user.id, bob.user.id),
            author: bob.user.id,
            author_name: "rep_bob".into(),
            text: "the words as they were".into(),
        },
        reason: "abuse".into(),
        details: "see above".into(),
        created_ms: 11,
        ..on_user.clone()
    };
    s.create_report(&on_user).await.unwrap();
    s.create_report(&on_message).await.unwrap();
    s.create_report(&on_message).await.unwrap();
    let all = s.reports(false, None, 10).await.unwrap();
    assert_eq!(all, [on_message.clone(), on_user.clone()], "newest first, each once");
    let page = s.reports(false, Some(on_message.id), 10).await.unwrap();
    assert_eq!(page, std::slice::from_ref(&on_user));
    let done = s.resolve_report(on_user.id, "warned", 99).await.unwrap().unwrap();
    assert_eq!(done.resolved, Some((99, "warned".to_string())));
    assert_eq!(s.reports(true, None, 10).await.unwrap(), std::slice::from_ref(&on_message), "open only");
    assert_eq!(s.reports(false, None, 10).await.unwrap().len(), 2);
    assert_eq!(s.resolve_report(ids.next_id(), "x", 1).await.unwrap(), None, "no such report");
    assert_eq!(s.reports(false, None, 10).await.unwrap().len(), 2, "resolving nothing creates nothing");
    // Reports outlive the accounts they name.
    s.delete_user(bob.user.id).await.unwrap();
    s.delete_user(ann.user.id).await.unwrap();
    let kept = s.reports(false, None, 10).await.unwrap();
    assert_eq!(kept[0], on_message);
}

pub async fn bans_set_lift_and_go_with_the_account(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let ann = user(&ids, "ban_ann");
    s.create_user(&ann).await.unwrap();
    assert_eq!(s.ban_of(ann.user.id).await.unwrap(), None);
    let ban = Ban { user: ann.user.id, reason: "spam".into(), at_ms: 5 };
    s.set_ban(&ban).await.unwrap();
    assert_eq!(s.ban_of(ann.user.id).await.unwrap(), Some(ban.clone()));
    let again = Ban { reason: "more spam".into(), at_ms: 6, ..ban };
    s.set_ban(&again).await.unwrap();
    assert_eq!(s.ban_of(ann.user.id).await.unwrap(), Some(again));
    assert!(s.remove_ban(ann.user.id).await.unwrap());
    assert!(!s.remove_ban(ann.user.id).await.unwrap(), "idempotent");
    s.set_ban(&Ban { user: ann.user.id, reason: String::new(), at_ms: 7 }).await.unwrap();
    s.delete_user(ann.user.id).await.unwrap();
    assert_eq!(s.ban_of(ann.user.id).await.unwrap(), None);
}

pub async fn deletion_removes_blocks_and_mutes_both_ways(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let (ann, bob, cy) = (user(&ids, "dl_ann"), user(&ids, "dl_bob"), user(&ids, "dl_cy"));
    for u in [&ann, &bob, &cy] {
        s.create_user(u).await.unwrap();
    }
    let (a, b, c) = (ann.user.id, bob.user.id, cy.user.id);
    s.block(a, b, ids.next_id(), 10).await.unwrap();
    s.block(b, a, ids.next_id(), 10).await.unwrap();
    s.block(c, b, ids.next_id(), 10).await.unwrap();
    let conv = ConversationId::direct(a, b);
    s.set_mute(b, &conv, MUTED_FOREVER).await.unwrap();
    s.set_mute(a, &conv, MUTED_FOREVER).await.unwrap();
    // The mute goes with the conversation, found through its messages.
    s.insert_message(&super::dm(&ids, &ann.user, &bob.user, "hi", None)).await.unwrap();
    assert!(s.delete_user(b).await.unwrap());
    assert!(s.blocks(a, None, 10).await.unwrap().is_empty(), "my block of the deleted user");
    assert!(s.blocks(c, None, 10).await.unwrap().is_empty());
    assert!(s.blocks(b, None, 10).await.unwrap().is_empty(), "the deleted user's blocks");
    assert!(s.blockers_of(a, &[b]).await.unwrap().is_empty());
    assert!(!s.muted(b, &conv, 1).await.unwrap());
    // The peer's mute of the conversation went with it.
    assert_eq!(s.mutes(a, std::slice::from_ref(&conv)).await.unwrap(), [None]);
}

/// Two new users, stored.
async fn two_users(s: &Arc<dyn Store>, ids: &Generator, a: &str, b: &str) -> (UserCredentials, UserCredentials) {
    let (a, b) = (user(ids, a), user(ids, b));
    s.create_user(&a).await.unwrap();
    s.create_user(&b).await.unwrap();
    (a, b)
}

/// A direct message from `from` to the username `to`, without a nonce.
fn direct(ids: &Generator, from: &User, to: &str, text: &str) -> DirectSend {
    DirectSend {
        id: MessageId(ids.next_id()),
        from: from.clone(),
        to_username: to.into(),
        text: text.into(),
        nonce: None,
    }
}

/// `send_direct`'s other checks: an unknown recipient is `None`, a block
/// both ways is reported as the sender's own, a message to oneself is never
/// blocked, and a deleted sender (with no nonce to retry) is `UserGone`.
pub async fn direct_send_outcomes(s: Arc<dyn Store>) {
    let ids = Generator::new(11);
    let (a, b) = two_users(&s, &ids, "dso_a", "dso_b").await;
    let send = |from: &User, to: &str, text: &str| direct(&ids, from, to, text);
    assert!(s.send_direct(&send(&a.user, "dso_nobody", "lost")).await.unwrap().is_none());
    assert_eq!(s.block(a.user.id, b.user.id, ids.next_id(), 10).await.unwrap(), BlockOutcome::Added);
    assert_eq!(s.block(b.user.id, a.user.id, ids.next_id(), 10).await.unwrap(), BlockOutcome::Added);
    assert!(matches!(s.send_direct(&send(&a.user, "dso_b", "x")).await, Err(StoreError::SenderBlocks)));
    assert!(matches!(s.send_direct(&send(&b.user, "dso_a", "y")).await, Err(StoreError::SenderBlocks)));
    let note = s.send_direct(&send(&a.user, "DSO_A", "note to self")).await.unwrap().expect("stored");
    assert_eq!((note.message.to_id, note.message.text.as_str()), (a.user.id, "note to self"));
    assert!(s.delete_user(a.user.id).await.unwrap());
    assert!(matches!(s.send_direct(&send(&a.user, "dso_b", "z")).await, Err(StoreError::UserGone)));
}

/// `send_direct` checks blocks with the write, either way, and stores
/// nothing when one holds.
pub async fn direct_sends_refused_by_a_block_either_way(s: Arc<dyn Store>) {
    let ids = Generator::new(10);
    let (a, b) = two_users(&s, &ids, "sdb_a", "sdb_b").await;
    let send = |from: &User, to: &str, text: &str| direct(&ids, from, to, text);
    assert!(s.send_direct(&send(&a.user, "SDB_B", "before")).await.unwrap().is_some());
    assert_eq!(s.block(a.user.id, b.user.id, ids.next_id(), 10).await.unwrap(), BlockOutcome::Added);
    assert!(matches!(s.send_direct(&send(&a.user, "sdb_b", "mine")).await, Err(StoreError::SenderBlocks)));
    assert!(matches!(s.send_direct(&send(&b.user, "sdb_a", "theirs")).await, Err(StoreError::RecipientBlocks)));
    let conv = ConversationId::direct(a.user.id, b.user.id);
    let texts: Vec<String> = s.history(&conv, None, 10).await.unwrap().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["before"], "nothing stored while blocked");
    assert!(s.unblock(a.user.id, b.user.id).await.unwrap());
    assert!(s.send_direct(&send(&b.user, "sdb_a", "after")).await.unwrap().is_some());
}
