//! Conformance cases of issue 14 (group conversations): every
//! [`GroupStore`] operation, run on every backend by
//! `tests/store_conformance.rs`.

use std::sync::Arc;

use hubbub::error::StoreError;
use hubbub::model::{
    AddOutcome, ConversationId, GroupId, GroupUpdate, Message, MessageId, NewGroup, Removal, Role, User, UserId, now_ms,
};
use hubbub::snowflake::{Generator, floor_for_ms};
use hubbub::store::Store;

use super::user;

async fn users(s: &Arc<dyn Store>, ids: &Generator, names: &[&str]) -> Vec<User> {
    let mut out = Vec::new();
    for n in names {
        let u = user(ids, n);
        s.create_user(&u).await.unwrap();
        out.push(u.user);
    }
    out
}

fn group_msg(ids: &Generator, g: GroupId, from: &User, text: &str, nonce: Option<&str>) -> Message {
    Message {
        id: MessageId(ids.next_id()),
        conversation_id: ConversationId::group(g),
        from_id: from.id,
        from: from.username.clone(),
        to_id: UserId(0),
        to: String::new(),
        text: text.into(),
        nonce: nonce.map(Into::into),
    }
}

async fn new_group(s: &Arc<dyn Store>, ids: &Generator, owner: &User, members: &[&User]) -> GroupId {
    let id = GroupId(ids.next_id());
    let g = NewGroup {
        id,
        title: "Team".into(),
        topic: String::new(),
        owner: owner.id,
        members: members.iter().map(|u| u.id).collect(),
    };
    s.create_group(&g).await.unwrap();
    id
}

pub async fn groups_create_get_update(s: Arc<dyn Store>) {
    let ids = Generator::new(1);
    let u = users(&s, &ids, &["g_own", "g_m1", "g_m2"]).await;
    let ghost = UserId(ids.next_id());
    let id = GroupId(ids.next_id());
    let new = NewGroup {
        id,
        title: "Plans".into(),
        topic: "t".into(),
        owner: u[0].id,
        members: vec![u[1].id, u[2].id, ghost, u[0].id],
    };
    let g = s.create_group(&new).await.unwrap();
    assert_eq!((g.id, g.title.as_str(), g.topic.as_str(), g.owner, g.member_count), (id, "Plans", "t", u[0].id, 3));
    assert_eq!(s.group(id).await.unwrap(), Some(g.clone()));
    assert_eq!(s.group(GroupId(ids.next_id())).await.unwrap(), None);
    let owner = s.member(id, u[0].id).await.unwrap().unwrap();
    assert_eq!((owner.user.clone(), owner.role), (u[0].clone(), Role::Owner));
    assert_eq!(s.member(id, u[1].id).await.unwrap().map(|m| m.role), Some(Role::Member));
    assert_eq!(s.member(id, ghost).await.unwrap(), None, "unknown users are skipped");
    let up = GroupUpdate { title: Some("New".into()), topic: None };
    let g2 = s.update_group(id, &up).await.unwrap().unwrap();
    assert_eq!((g2.title.as_str(), g2.topic.as_str()), ("New", "t"));
    let up = GroupUpdate { title: None, topic: Some("topic".into()) };
    assert_eq!(s.update_group(id, &up).await.unwrap().unwrap().topic, "topic");
    assert_eq!(s.update_group(GroupId(ids.next_id()), &up).await.unwrap(), None);
    // An owner that does not exist creates nothing.
    let orphan = NewGroup { id: GroupId(ids.next_id()), owner: ghost, members: vec![u[1].id], ..new };
    assert!(matches!(s.create_group(&orphan).await, Err(StoreError::UserGone)));
    assert_eq!(s.group(orphan.id).await.unwrap(), None);
}

pub async fn groups_members_roles_limit(s: Arc<dyn Store>) {
    let ids = Generator::new(1);
    let u = users(&s, &ids, &["h_own", "h_a", "h_b", "h_c", "h_d", "h_e"]).await;
    let id = new_group(&s, &ids, &u[0], &[&u[1]]).await;
    // Add: existing members and unknown users skipped, the limit counts everyone.
    let ghost = UserId(ids.next_id());
    let out = s.add_group_members(id, &[u[1].id, u[2].id, ghost, u[3].id, u[2].id], 4).await.unwrap();
    assert_eq!(out, AddOutcome::Added { added: vec![u[2].id, u[3].id], member_count: 4 });
    assert_eq!(s.add_group_members(id, &[u[4].id], 4).await.unwrap(), AddOutcome::Full);
    assert_eq!(s.member(id, u[4].id).await.unwrap(), None, "a refused add adds nobody");
    assert_eq!(s.add_group_members(GroupId(ids.next_id()), &[u[4].id], 4).await.unwrap(), AddOutcome::NoGroup);
    let out = s.add_group_members(id, &[u[4].id, u[5].id], 6).await.unwrap();
    assert_eq!(out, AddOutcome::Added { added: vec![u[4].id, u[5].id], member_count: 6 });
    // Pages by user id, each member once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.group_members(id, after, 4).await.unwrap();
        seen.extend(page.iter().map(|m| m.user.id));
        if page.len() < 4 {
            break;
        }
        after = page.last().map(|m| m.user.id);
    }
    let mut want: Vec<UserId> = u.iter().map(|x| x.id).collect();
    want.sort();
    assert_eq!(seen, want);
    let mut all = s.group_member_ids(id).await.unwrap();
    all.sort();
    assert_eq!(all, want);
    // Roles: admin and back; the owner's role does not change by set_group_role.
    assert!(s.set_group_role(id, u[3].id, Role::Admin).await.unwrap());
    assert_eq!(s.member(id, u[3].id).await.unwrap().unwrap().role, Role::Admin);
    assert!(s.set_group_role(id, u[3].id, Role::Member).await.unwrap());
    assert!(!s.set_group_role(id, u[0].id, Role::Member).await.unwrap());
    assert!(!s.set_group_role(id, u[1].id, Role::Owner).await.unwrap());
    assert!(!s.set_group_role(id, ghost, Role::Admin).await.unwrap());
    assert_eq!(s.group(id).await.unwrap().unwrap().owner, u[0].id);
}

pub async fn groups_succession_and_end(s: Arc<dyn Store>) {
    let ids = Generator::new(1);
    let u = users(&s, &ids, &["i_own", "i_old", "i_adm", "i_new"]).await;
    let id = new_group(&s, &ids, &u[0], &[&u[1]]).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.add_group_members(id, &[u[2].id], 10).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.add_group_members(id, &[u[3].id], 10).await.unwrap();
    s.set_group_role(id, u[2].id, Role::Admin).await.unwrap();
    // A plain member leaving changes no owner.
    assert_eq!(s.remove_group_member(id, u[3].id).await.unwrap(), Some(Removal { new_owner: None, ended: false }));
    assert_eq!(s.remove_group_member(id, u[3].id).await.unwrap(), None, "not a member any more");
    // The owner leaves: the oldest admin inherits, though a member is older.
    let r = s.remove_group_member(id, u[0].id).await.unwrap();
    assert_eq!(r, Some(Removal { new_owner: Some(u[2].id), ended: false }));
    let g = s.group(id).await.unwrap().unwrap();
    assert_eq!((g.owner, g.member_count), (u[2].id, 2));
    // No admin left: the oldest member inherits.
    let r = s.remove_group_member(id, u[2].id).await.unwrap();
    assert_eq!(r, Some(Removal { new_owner: Some(u[1].id), ended: false }));
    let m = group_msg(&ids, id, &u[1], "last words", None);
    assert!(s.send_group(&m).await.unwrap().is_some());
    // The last member leaves: the group and its history are gone.
    assert_eq!(s.remove_group_member(id, u[1].id).await.unwrap(), Some(Removal { new_owner: None, ended: true }));
    assert_eq!(s.group(id).await.unwrap(), None);
    assert!(s.history(&ConversationId::group(id), None, 10).await.unwrap().is_empty());
    assert!(s.group_conversations(u[1].id, None, 10).await.unwrap().is_empty());
    assert_eq!(s.add_group_members(id, &[u[1].id], 10).await.unwrap(), AddOutcome::NoGroup);
}

pub async fn groups_send_history_sync(s: Arc<dyn Store>) {
    let ids = Generator::new(1);
    let u = users(&s, &ids, &["j_own", "j_mem", "j_out"]).await;
    let id = new_group(&s, &ids, &u[0], &[&u[1]]).await;
    let start = MessageId(ids.next_id());
    let m1 = group_msg(&ids, id, &u[0], "hello all", Some("n-1"));
    let got = s.send_group(&m1).await.unwrap().unwrap();
    assert!(got.created);
    assert_eq!(got.message, m1);
    // The same nonce again stores nothing and returns the original.
    let again = group_msg(&ids, id, &u[0], "hello all", Some("n-1"));
    let got = s.send_group(&again).await.unwrap().unwrap();
    assert_eq!((got.created, got.message.id), (false, m1.id));
    // A non-member, and a group that does not exist: nothing stored, same answer.
    assert_eq!(s.send_group(&group_msg(&ids, id, &u[2], "let me in", None)).await.unwrap(), None);
    let nowhere = GroupId(ids.next_id());
    assert_eq!(s.send_group(&group_msg(&ids, nowhere, &u[0], "x", None)).await.unwrap(), None);
    // A stale id is refused (the commit-age bound).
    let stale =
        Message { id: MessageId(floor_for_ms(now_ms() - 60_000) | 7), ..group_msg(&ids, id, &u[1], "old", None) };
    assert!(matches!(s.send_group(&stale).await, Err(StoreError::Unavailable(_))));
    let m2 = group_msg(&ids, id, &u[1], "hi back", None);
    s.send_group(&m2).await.unwrap().unwrap();
    let conv = ConversationId::group(id);
    let hist = s.history(&conv, None, 10).await.unwrap();
    assert_eq!(hist.iter().map(|m| m.id).collect::<Vec<_>>(), [m2.id, m1.id]);
    assert_eq!(s.history(&conv, Some(m2.id), 10).await.unwrap(), vec![m1.clone()]);
    // Both members sync both messages, oldest first, in pages.
    for who in [&u[0], &u[1]] {
        let all = s.group_messages_since(who.id, start, 10).await.unwrap();
        assert_eq!(all, vec![m1.clone(), m2.clone()]);
        let first = s.group_messages_since(who.id, start, 1).await.unwrap();
        assert_eq!(first, vec![m1.clone()]);
        assert_eq!(s.group_messages_since(who.id, m1.id, 5).await.unwrap(), vec![m2.clone()]);
        assert!(s.group_messages_since(who.id, m2.id, 5).await.unwrap().is_empty());
    }
    assert!(s.group_messages_since(u[2].id, start, 10).await.unwrap().is_empty(), "non-member");
    // A removed member syncs nothing of the group any more, old or new.
    s.remove_group_member(id, u[1].id).await.unwrap();
    let m3 = group_msg(&ids, id, &u[0], "after", None);
    s.send_group(&m3).await.unwrap().unwrap();
    assert!(s.group_messages_since(u[1].id, start, 10).await.unwrap().is_empty());
    assert_eq!(s.send_group(&group_msg(&ids, id, &u[1], "still here?", None)).await.unwrap(), None);
    assert!(s.group_conversations(u[1].id, None, 10).await.unwrap().is_empty());
}

pub async fn groups_conversation_list(s: Arc<dyn Store>) {
    let ids = Generator::new(1);
    let u = users(&s, &ids, &["k_a", "k_b"]).await;
    let quiet = new_group(&s, &ids, &u[0], &[&u[1]]).await;
    let busy = new_group(&s, &ids, &u[0], &[&u[1]]).await;
    let m = group_msg(&ids, busy, &u[1], "news", None);
    s.send_group(&m).await.unwrap().unwrap();
    let newer = new_group(&s, &ids, &u[0], &[]).await;
    let list = s.group_conversations(u[0].id, None, 10).await.unwrap();
    let order: Vec<GroupId> = list.iter().map(|c| c.group.id).collect();
    assert_eq!(order, [newer, busy, quiet], "by last message, else creation");
    assert_eq!(list[1].last_message, Some(m.clone()));
    assert_eq!(list[1].group.member_count, 2);
    assert_eq!(list[0].last_message, None);
    let page = s.group_conversations(u[0].id, Some(list[1].activity()), 10).await.unwrap();
    assert_eq!(page.iter().map(|c| c.group.id).collect::<Vec<_>>(), [quiet]);
    assert_eq!(s.group_conversations(u[0].id, None, 1).await.unwrap().len(), 1);
    let theirs = s.group_conversations(u[1].id, None, 10).await.unwrap();
    assert_eq!(theirs.iter().map(|c| c.group.id).collect::<Vec<_>>(), [busy, quiet]);
}

pub async fn groups_account_deletion(s: Arc<dyn Store>) {
    let ids = Generator::new(1);
    let u = users(&s, &ids, &["l_own", "l_mem"]).await;
    let id = new_group(&s, &ids, &u[0], &[&u[1]]).await;
    let solo = new_group(&s, &ids, &u[0], &[]).await;
    let m = group_msg(&ids, id, &u[0], "remember me", None);
    s.send_group(&m).await.unwrap().unwrap();
    assert!(s.delete_user(u[0].id).await.unwrap());
    // Out of every group; ownership passed; the history stays for the rest.
    let g = s.group(id).await.unwrap().unwrap();
    assert_eq!((g.owner, g.member_count), (u[1].id, 1));
    assert_eq!(s.member(id, u[0].id).await.unwrap(), None);
    let hist = s.history(&ConversationId::group(id), None, 10).await.unwrap();
    assert_eq!(hist.iter().map(|x| (x.id, x.from_id)).collect::<Vec<_>>(), [(m.id, u[0].id)]);
    assert_eq!(s.user_by_id(hist[0].from_id).await.unwrap(), None, "readers see the sender is gone");
    // Their group of one ended with them.
    assert_eq!(s.group(solo).await.unwrap(), None);
    // A deleted user sends nothing.
    assert!(matches!(s.send_group(&group_msg(&ids, id, &u[0], "boo", None)).await, Err(StoreError::UserGone)));
}

/// Read pointers and unread counts in a group: each member's count is the
/// others' messages above their own pointer; a pointer only names a
/// message of that group; receipts land in the feeds named.
pub async fn group_read_pointers_and_unread_counts(s: Arc<dyn Store>) {
    use hubbub::model::ChangeId;
    use hubbub::store::read_state::{ChangeKind, ReadMark, ReadOutcome};
    let ids = Generator::new(13);
    let u = users(&s, &ids, &["gu_ann", "gu_bea", "gu_cid"]).await;
    let (ann, bea, cid) = (&u[0], &u[1], &u[2]);
    let g = new_group(&s, &ids, ann, &[bea, cid]).await;
    let other = new_group(&s, &ids, ann, &[bea]).await;
    let conv = ConversationId::group(g);
    let mut sent = Vec::new();
    for (from, text) in [(ann, "a1"), (ann, "a2"), (bea, "b1"), (cid, "c1")] {
        sent.push(s.send_group(&group_msg(&ids, g, from, text, None)).await.unwrap().unwrap().message);
    }
    let elsewhere = s.send_group(&group_msg(&ids, other, ann, "x", None)).await.unwrap().unwrap().message;
    let counts = |v: Vec<hubbub::store::read_state::Unread>| v.iter().map(|x| (x.count, x.capped)).collect::<Vec<_>>();
    for (who, want) in [(ann, 2), (bea, 3), (cid, 3)] {
        assert_eq!(
            counts(s.unread(who.id, std::slice::from_ref(&conv), 10).await.unwrap()),
            vec![(want, false)],
            "{}",
            who.username
        );
    }
    let mark = |who: &User, at: MessageId, to: &[&User]| ReadMark {
        user: who.id,
        conversation: conv.clone(),
        message_id: at,
        change: ChangeId(ids.next_id()),
        receipts_to: to.iter().map(|u| u.id).collect(),
    };
    assert_eq!(s.mark_read(&mark(cid, elsewhere.id, &[])).await.unwrap(), ReadOutcome::NoSuchMessage);
    assert_eq!(s.mark_read(&mark(cid, sent[2].id, &[ann, bea])).await.unwrap(), ReadOutcome::Moved);
    let u = s.unread(cid.id, std::slice::from_ref(&conv), 10).await.unwrap();
    assert_eq!((u[0].count, u[0].read_up_to), (0, Some(sent[2].id)), "only cid's own c1 is above");
    for who in [ann, bea] {
        let feed = s.changes_since(who.id, ChangeId(0), 10).await.unwrap();
        assert!(feed.iter().any(|c| c.kind == ChangeKind::Receipt && c.by == cid.id && c.conversation == conv));
    }
    assert_eq!(s.unread(bea.id, std::slice::from_ref(&conv), 1).await.unwrap()[0].count, 1, "capped at 1");
}
