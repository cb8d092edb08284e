//! Conformance cases of the `LifecycleStore` area (issue 15): edits,
//! deletes (text gone from every stored copy, the row kept), replies, the
//! change feeds, racing edits and stale change ids. Included by
//! `tests/store_conformance.rs`, run on every backend.

use std::sync::Arc;

use hubbub::error::StoreError;
use hubbub::model::{ChangeId, ConversationId, GroupId, Message, MessageId, NewGroup, User, UserId, now_ms};
use hubbub::snowflake::{Generator, floor_for_ms};
use hubbub::store::Store;
use hubbub::store::lifecycle::{LifecycleOutcome, MessageChange, MessageState};
use hubbub::store::read_state::ChangeKind;

use super::{dm, user};

fn change(ids: &Generator, m: &Message, by: &User, feeds: &[&User]) -> MessageChange {
    MessageChange {
        conversation: m.conversation_id.clone(),
        message_id: m.id,
        by: by.id,
        change: ChangeId(ids.next_id()),
        feeds: feeds.iter().map(|u| u.id).collect(),
    }
}

async fn state(s: &Arc<dyn Store>, m: &Message) -> Option<MessageState> {
    s.message_states(&[(m.conversation_id.clone(), m.id)]).await.unwrap().pop()
}

async fn kinds(s: &Arc<dyn Store>, u: &User) -> Vec<(ChangeKind, MessageId)> {
    s.changes_since(u.id, ChangeId(0), 100).await.unwrap().into_iter().map(|c| (c.kind, c.message_id)).collect()
}

pub async fn edits_and_deletes_in_direct_conversations(s: Arc<dyn Store>) {
    let ids = Generator::new(21);
    let (ann, bob) = (user(&ids, "lc_ann"), user(&ids, "lc_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let (ann, bob) = (ann.user, bob.user);
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(s.insert_message(&dm(&ids, &ann, &bob, &format!("secret {i}"), None)).await.unwrap().message);
    }
    let conv = sent[0].conversation_id.clone();
    assert_eq!(state(&s, &sent[0]).await, None, "no record until something happens");

    // Edit: the state carries the new text and the change's time.
    let e = change(&ids, &sent[0], &ann, &[&ann, &bob]);
    assert_eq!(s.edit_message(&e, "fixed").await.unwrap(), LifecycleOutcome::Done);
    let st = state(&s, &sent[0]).await.unwrap();
    assert_eq!((st.text.as_deref(), st.edited_at_ms, st.deleted), (Some("fixed"), Some(e.change.unix_ms()), false));
    let mut shown = s.message(&conv, sent[0].id).await.unwrap().unwrap();
    st.apply(&mut shown);
    assert_eq!(shown.text, "fixed");
    // Unknown message, or one of another conversation.
    let mut unknown = change(&ids, &sent[0], &ann, &[&ann]);
    unknown.message_id = MessageId(ids.next_id());
    assert_eq!(s.edit_message(&unknown, "x").await.unwrap(), LifecycleOutcome::NoSuchMessage);
    let mut elsewhere = change(&ids, &sent[0], &ann, &[&ann]);
    elsewhere.conversation = ConversationId::direct(ann.id, ann.id);
    assert_eq!(s.edit_message(&elsewhere, "x").await.unwrap(), LifecycleOutcome::NoSuchMessage);
    assert_eq!(s.delete_message(&elsewhere).await.unwrap(), LifecycleOutcome::NoSuchMessage);

    // Delete the newest: the text is gone from every copy, the rows stay.
    let d = change(&ids, &sent[2], &ann, &[&ann, &bob]);
    assert_eq!(s.delete_message(&d).await.unwrap(), LifecycleOutcome::Done);
    assert_eq!(s.delete_message(&change(&ids, &sent[2], &ann, &[&ann])).await.unwrap(), LifecycleOutcome::Deleted);
    let edit_after = change(&ids, &sent[2], &ann, &[&ann]);
    assert_eq!(s.edit_message(&edit_after, "back").await.unwrap(), LifecycleOutcome::Deleted);
    let st = state(&s, &sent[2]).await.unwrap();
    assert!(st.deleted && st.text.is_none());
    assert_eq!(s.message(&conv, sent[2].id).await.unwrap().unwrap().text, "");
    let history = s.history(&conv, None, 10).await.unwrap();
    assert_eq!(history.iter().map(|m| m.id).collect::<Vec<_>>(), [sent[2].id, sent[1].id, sent[0].id], "rows stay");
    assert_eq!(history[0].text, "");
    for u in [&ann, &bob] {
        let feed = s.messages_since(u.id, MessageId(0), 10).await.unwrap();
        assert_eq!(feed.len(), 3);
        assert_eq!(feed[2].text, "", "sync copy of {}", u.username);
        let list = s.conversations(u.id, None, 10).await.unwrap();
        assert_eq!((list[0].last_message.id, list[0].last_message.text.as_str()), (sent[2].id, ""));
    }
    // The tombstone still counts as a message above the pointer.
    let unread = s.unread(bob.id, std::slice::from_ref(&conv), 99).await.unwrap();
    assert_eq!(unread[0].count, 3);
    // One change per feed per applied edit or delete; refused ones left none.
    let want = [(ChangeKind::Edit, sent[0].id), (ChangeKind::Delete, sent[2].id)];
    assert_eq!(kinds(&s, &ann).await, want);
    assert_eq!(kinds(&s, &bob).await, want);
    let c = &s.changes_since(bob.id, ChangeId(0), 10).await.unwrap()[1];
    assert_eq!((c.id, c.by, &c.conversation), (d.change, ann.id, &conv));
}

pub async fn racing_edits_end_at_the_newest(s: Arc<dyn Store>) {
    let ids = Generator::new(22);
    let (ann, bob) = (user(&ids, "re_ann"), user(&ids, "re_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let m = s.insert_message(&dm(&ids, &ann.user, &bob.user, "v0", None)).await.unwrap().message;
    let first = change(&ids, &m, &ann.user, &[&ann.user]);
    let second = change(&ids, &m, &ann.user, &[&ann.user]);
    // The later edit commits first; the earlier one arriving after it loses.
    assert_eq!(s.edit_message(&second, "v2").await.unwrap(), LifecycleOutcome::Done);
    assert_eq!(s.edit_message(&first, "v1").await.unwrap(), LifecycleOutcome::Done);
    let st = state(&s, &m).await.unwrap();
    assert_eq!((st.text.as_deref(), st.edited_at_ms), (Some("v2"), Some(second.change.unix_ms())));
    // Stale change ids are refused and write nothing.
    let mut old = change(&ids, &m, &ann.user, &[&ann.user, &bob.user]);
    old.change = ChangeId(floor_for_ms(now_ms() - 60_000));
    assert!(matches!(s.edit_message(&old, "late").await, Err(StoreError::Unavailable(_))));
    assert!(matches!(s.delete_message(&old).await, Err(StoreError::Unavailable(_))));
    assert_eq!(state(&s, &m).await.unwrap().text.as_deref(), Some("v2"));
    assert!(s.changes_since(bob.user.id, ChangeId(0), 10).await.unwrap().is_empty());
}

pub async fn group_deletes_and_replies(s: Arc<dyn Store>) {
    let ids = Generator::new(23);
    let mut u: Vec<User> = Vec::new();
    for n in ["gl_own", "gl_mem", "gl_oth"] {
        let c = user(&ids, n);
        s.create_user(&c).await.unwrap();
        u.push(c.user);
    }
    let g = GroupId(ids.next_id());
    let new =
        NewGroup { id: g, title: "T".into(), topic: String::new(), owner: u[0].id, members: vec![u[1].id, u[2].id] };
    s.create_group(&new).await.unwrap();
    let conv = ConversationId::group(g);
    let msg = |from: &User, text: &str| Message {
        id: MessageId(ids.next_id()),
        conversation_id: conv.clone(),
        from_id: from.id,
        from: from.username.clone(),
        to_id: UserId(0),
        to: String::new(),
        text: text.into(),
        nonce: None,
    };
    let original = s.send_group(&msg(&u[1], "hush")).await.unwrap().unwrap().message;
    // A reply is recorded before its message.
    let reply = msg(&u[2], "re");
    s.set_reply(&conv, reply.id, original.id).await.unwrap();
    let reply = s.send_group(&reply).await.unwrap().unwrap().message;
    assert_eq!(state(&s, &reply).await.unwrap().reply_to, Some(original.id));
    let both = s
        .message_states(&[(conv.clone(), original.id), (conv.clone(), reply.id), (conv.clone(), MessageId(1))])
        .await
        .unwrap();
    assert_eq!(both.len(), 1, "only the reply has a record: {both:?}");
    // The owner deletes the member's message, then the reply (the last one).
    let all: Vec<&User> = u.iter().collect();
    assert_eq!(s.delete_message(&change(&ids, &original, &u[0], &all)).await.unwrap(), LifecycleOutcome::Done);
    assert_eq!(s.delete_message(&change(&ids, &reply, &u[0], &all)).await.unwrap(), LifecycleOutcome::Done);
    let st = state(&s, &reply).await.unwrap();
    assert_eq!((st.reply_to, st.deleted), (Some(original.id), true), "the reply target stays");
    let history = s.history(&conv, None, 10).await.unwrap();
    assert!(history.len() == 2 && history.iter().all(|m| m.text.is_empty()), "{history:?}");
    for member in &u {
        let feed = s.group_messages_since(member.id, MessageId(0), 10).await.unwrap();
        assert!(feed.len() == 2 && feed.iter().all(|m| m.text.is_empty()), "{feed:?}");
        let list = s.group_conversations(member.id, None, 10).await.unwrap();
        assert_eq!(list[0].last_message.as_ref().map(|m| m.text.as_str()), Some(""));
        let k = kinds(&s, member).await;
        assert_eq!(k, [(ChangeKind::Delete, original.id), (ChangeKind::Delete, reply.id)]);
    }
}

pub async fn deletion_takes_the_lifecycle_state(s: Arc<dyn Store>) {
    let ids = Generator::new(24);
    let (ann, bob) = (user(&ids, "ld_ann"), user(&ids, "ld_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let first = s.insert_message(&dm(&ids, &ann.user, &bob.user, "one", None)).await.unwrap().message;
    let second = dm(&ids, &bob.user, &ann.user, "two", None);
    s.set_reply(&second.conversation_id, second.id, first.id).await.unwrap();
    let second = s.insert_message(&second).await.unwrap().message;
    let e = change(&ids, &first, &ann.user, &[&ann.user, &bob.user]);
    assert_eq!(s.edit_message(&e, "edited secret").await.unwrap(), LifecycleOutcome::Done);
    let d = change(&ids, &second, &bob.user, &[&ann.user, &bob.user]);
    assert_eq!(s.delete_message(&d).await.unwrap(), LifecycleOutcome::Done);
    assert!(s.delete_user(ann.user.id).await.unwrap());
    let keys = [(first.conversation_id.clone(), first.id), (second.conversation_id.clone(), second.id)];
    assert!(s.message_states(&keys).await.unwrap().is_empty(), "edited text and tombstones went with the conversation");
    assert!(s.message(&first.conversation_id, first.id).await.unwrap().is_none());
}
