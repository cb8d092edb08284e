//! Conformance cases of the `ReadStateStore` area (issue 15): read
//! pointers move forward only, every move lands in the change feeds,
//! unread counts are bounded, receipt settings default to on. Included by
//! `tests/store_conformance.rs`, run on every backend.

use std::sync::Arc;

use hubbub::error::StoreError;
use hubbub::model::{ChangeId, ConversationId, MessageId, User, now_ms};
use hubbub::snowflake::{Generator, floor_for_ms};
use hubbub::store::Store;
use hubbub::store::read_state::{Change, ChangeKind, ReadMark, ReadOutcome};

use super::{dm, user};

fn mark(ids: &Generator, who: &User, conv: &ConversationId, at: MessageId, receipts: &[&User]) -> ReadMark {
    ReadMark {
        user: who.id,
        conversation: conv.clone(),
        message_id: at,
        change: ChangeId(ids.next_id()),
        receipts_to: receipts.iter().map(|u| u.id).collect(),
    }
}

pub async fn read_pointers_move_forward_only(s: Arc<dyn Store>) {
    let ids = Generator::new(7);
    let (ann, bob) = (user(&ids, "rp_ann"), user(&ids, "rp_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(s.insert_message(&dm(&ids, &bob.user, &ann.user, &format!("m{i}"), None)).await.unwrap().message);
    }
    let conv = sent[0].conversation_id.clone();
    let m = mark(&ids, &ann.user, &conv, sent[1].id, &[&bob.user]);
    assert_eq!(s.mark_read(&m).await.unwrap(), ReadOutcome::Moved);
    let back = mark(&ids, &ann.user, &conv, sent[0].id, &[&bob.user]);
    assert_eq!(s.mark_read(&back).await.unwrap(), ReadOutcome::NotForward { current: sent[1].id });
    let same = mark(&ids, &ann.user, &conv, sent[1].id, &[]);
    assert_eq!(s.mark_read(&same).await.unwrap(), ReadOutcome::NotForward { current: sent[1].id });
    // A message of another conversation, or none at all.
    let other = ConversationId::direct(ann.user.id, ann.user.id);
    let wrong = mark(&ids, &ann.user, &other, sent[2].id, &[]);
    assert_eq!(s.mark_read(&wrong).await.unwrap(), ReadOutcome::NoSuchMessage);
    let missing = mark(&ids, &ann.user, &conv, MessageId(ids.next_id()), &[]);
    assert_eq!(s.mark_read(&missing).await.unwrap(), ReadOutcome::NoSuchMessage);
    let u = s.unread(ann.user.id, std::slice::from_ref(&conv), 999).await.unwrap();
    assert_eq!(u[0].read_up_to, Some(sent[1].id));
    assert_eq!((u[0].count, u[0].capped), (1, false));
    // Bob's pointer is his own.
    let b = s.unread(bob.user.id, std::slice::from_ref(&conv), 999).await.unwrap();
    assert_eq!((b[0].read_up_to, b[0].count), (None, 0), "bob sent them all");
    // Moves, refused ones included, left exactly one change per feed.
    let ann_feed = s.changes_since(ann.user.id, ChangeId(0), 100).await.unwrap();
    let want = Change {
        id: m.change,
        kind: ChangeKind::Read,
        conversation: conv.clone(),
        by: ann.user.id,
        message_id: sent[1].id,
    };
    assert_eq!(ann_feed, vec![want.clone()]);
    let bob_feed = s.changes_since(bob.user.id, ChangeId(0), 100).await.unwrap();
    assert_eq!(bob_feed, vec![Change { kind: ChangeKind::Receipt, ..want }]);
}

pub async fn racing_moves_end_at_the_largest(s: Arc<dyn Store>) {
    let ids = Generator::new(8);
    let (ann, bob) = (user(&ids, "race_ann"), user(&ids, "race_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..6 {
        sent.push(s.insert_message(&dm(&ids, &bob.user, &ann.user, &format!("m{i}"), None)).await.unwrap().message);
    }
    let conv = sent[0].conversation_id.clone();
    let marks: Vec<_> = [3, 1, 5, 0, 4, 2].iter().map(|i| mark(&ids, &ann.user, &conv, sent[*i].id, &[])).collect();
    let runs = marks.iter().map(|m| s.mark_read(m));
    futures_util::future::join_all(runs).await.into_iter().for_each(|r| {
        r.unwrap();
    });
    let u = s.unread(ann.user.id, std::slice::from_ref(&conv), 999).await.unwrap();
    assert_eq!((u[0].read_up_to, u[0].count), (Some(sent[5].id), 0));
    // The feed's largest pointer is the stored one (clients keep the max).
    let feed = s.changes_since(ann.user.id, ChangeId(0), 100).await.unwrap();
    assert_eq!(feed.iter().map(|c| c.message_id).max(), Some(sent[5].id));
}

pub async fn unread_counts_are_capped_and_skip_my_messages(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let (ann, bob, cy) = (user(&ids, "un_ann"), user(&ids, "un_bob"), user(&ids, "un_cy"));
    for u in [&ann, &bob, &cy] {
        s.create_user(u).await.unwrap();
    }
    let cap = 5;
    let mut last = None;
    for i in 0..4 {
        last = Some(s.insert_message(&dm(&ids, &bob.user, &ann.user, &format!("b{i}"), None)).await.unwrap().message);
        s.insert_message(&dm(&ids, &ann.user, &bob.user, &format!("a{i}"), None)).await.unwrap();
    }
    for i in 0..3 {
        s.insert_message(&dm(&ids, &cy.user, &ann.user, &format!("c{i}"), None)).await.unwrap();
    }
    let with_bob = ConversationId::direct(ann.user.id, bob.user.id);
    let with_cy = ConversationId::direct(ann.user.id, cy.user.id);
    let nobody = ConversationId::direct(ann.user.id, ann.user.id);
    let convs = [with_bob.clone(), with_cy.clone(), nobody.clone()];
    let u = s.unread(ann.user.id, &convs, cap).await.unwrap();
    assert_eq!(u.iter().map(|x| &x.conversation).collect::<Vec<_>>(), convs.iter().collect::<Vec<_>>());
    // 8 messages with bob (4 his) are more than cap + 1: capped, counted among the first 6.
    assert!(u[0].capped, "{u:?}");
    assert_eq!(u[0].count, 3, "bob's among the first six: b0 b1 b2");
    assert_eq!((u[1].count, u[1].capped), (3, false));
    assert_eq!((u[2].count, u[2].capped, u[2].read_up_to), (0, false, None));
    // Reading up to bob's last message leaves only ann's own after it.
    let m = mark(&ids, &ann.user, &with_bob, last.unwrap().id, &[]);
    assert_eq!(s.mark_read(&m).await.unwrap(), ReadOutcome::Moved);
    let u = s.unread(ann.user.id, &convs[..1], cap).await.unwrap();
    assert_eq!((u[0].count, u[0].capped), (0, false));
}

pub async fn change_feeds_page_once_each(s: Arc<dyn Store>) {
    let ids = Generator::new(10);
    let (ann, bob) = (user(&ids, "cf_ann"), user(&ids, "cf_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let mut want = Vec::new();
    for i in 0..7 {
        let m = s.insert_message(&dm(&ids, &bob.user, &ann.user, &format!("m{i}"), None)).await.unwrap().message;
        let mk = mark(&ids, &ann.user, &m.conversation_id, m.id, &[]);
        assert_eq!(s.mark_read(&mk).await.unwrap(), ReadOutcome::Moved);
        want.push(mk.change);
    }
    let mut got = Vec::new();
    let mut after = ChangeId(0);
    loop {
        let page = s.changes_since(ann.user.id, after, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = last.id;
        got.extend(page.iter().map(|c| c.id));
    }
    assert_eq!(got, want);
    assert!(s.changes_since(bob.user.id, ChangeId(0), 10).await.unwrap().is_empty(), "no receipts asked for");
    assert!(s.changes_since(ann.user.id, ChangeId(0), 0).await.unwrap().is_empty());
}

pub async fn stale_change_ids_are_refused(s: Arc<dyn Store>) {
    let ids = Generator::new(11);
    let (ann, bob) = (user(&ids, "st_ann"), user(&ids, "st_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let m = s.insert_message(&dm(&ids, &bob.user, &ann.user, "x", None)).await.unwrap().message;
    let mut old = mark(&ids, &ann.user, &m.conversation_id, m.id, &[&bob.user]);
    old.change = ChangeId(floor_for_ms(now_ms() - 60_000));
    assert!(matches!(s.mark_read(&old).await, Err(StoreError::Unavailable(_))));
    assert!(s.changes_since(ann.user.id, ChangeId(0), 10).await.unwrap().is_empty());
    assert!(s.changes_since(bob.user.id, ChangeId(0), 10).await.unwrap().is_empty());
    let u = s.unread(ann.user.id, std::slice::from_ref(&m.conversation_id), 9).await.unwrap();
    assert_eq!((u[0].read_up_to, u[0].count), (None, 1));
}

pub async fn receipt_settings_default_on(s: Arc<dyn Store>) {
    let ids = Generator::new(12);
    let (ann, bob) = (user(&ids, "rs_ann"), user(&ids, "rs_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    assert_eq!(s.read_receipts(&[ann.user.id, bob.user.id]).await.unwrap(), [true, true]);
    s.set_read_receipts(bob.user.id, false).await.unwrap();
    assert_eq!(s.read_receipts(&[ann.user.id, bob.user.id]).await.unwrap(), [true, false]);
    s.set_read_receipts(bob.user.id, true).await.unwrap();
    assert_eq!(s.read_receipts(&[bob.user.id]).await.unwrap(), [true]);
    assert!(s.read_receipts(&[]).await.unwrap().is_empty());
}

pub async fn deletion_takes_the_read_state(s: Arc<dyn Store>) {
    let ids = Generator::new(7);
    let (ann, bob) = (user(&ids, "rd_ann"), user(&ids, "rd_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let to_ann = s.insert_message(&dm(&ids, &bob.user, &ann.user, "to ann", None)).await.unwrap().message;
    let to_bob = s.insert_message(&dm(&ids, &ann.user, &bob.user, "to bob", None)).await.unwrap().message;
    let conv = to_ann.conversation_id.clone();
    let m = mark(&ids, &ann.user, &conv, to_ann.id, &[&bob.user]);
    assert_eq!(s.mark_read(&m).await.unwrap(), ReadOutcome::Moved);
    let m = mark(&ids, &bob.user, &conv, to_bob.id, &[&ann.user]);
    assert_eq!(s.mark_read(&m).await.unwrap(), ReadOutcome::Moved);
    s.set_read_receipts(ann.user.id, false).await.unwrap();
    assert!(!s.changes_since(ann.user.id, ChangeId(0), 100).await.unwrap().is_empty());

    assert!(s.delete_user(ann.user.id).await.unwrap());
    // Ann's pointers, feed and settings are gone (a default on read).
    assert!(s.changes_since(ann.user.id, ChangeId(0), 100).await.unwrap().is_empty());
    let u = s.unread(ann.user.id, std::slice::from_ref(&conv), 999).await.unwrap();
    assert_eq!((u[0].read_up_to, u[0].count), (None, 0));
    assert_eq!(s.read_receipts(&[ann.user.id]).await.unwrap(), [true]);
    // Bob's pointer in the conversation that went with her is gone too.
    let b = s.unread(bob.user.id, std::slice::from_ref(&conv), 999).await.unwrap();
    assert_eq!((b[0].read_up_to, b[0].count), (None, 0));
}
