//! Conformance cases of the `ReactionStore` area (issue 15): one reaction
//! of each emoji per user, counts and `me` per viewer, the distinct-emoji
//! limit (also under racing reacts), the members' change feeds, and what
//! account deletion and `clear_reactions` take. Included by
//! `tests/store_conformance.rs`, run on every backend.

use std::sync::Arc;

use hubbub::error::StoreError;
use hubbub::model::{ChangeId, ConversationId, GroupId, Message, MessageId, NewGroup, User, UserId};
use hubbub::snowflake::Generator;
use hubbub::store::Store;
use hubbub::store::reactions::{ReactOutcome, ReactionCount, ReactionEdit};
use hubbub::store::read_state::ChangeKind;

use super::{dm, user};

fn edit(ids: &Generator, who: &User, m: &Message, emoji: &str, add: bool, feeds: &[&User]) -> ReactionEdit {
    ReactionEdit {
        user: who.id,
        conversation: m.conversation_id.clone(),
        message_id: m.id,
        emoji: emoji.into(),
        add,
        change: ChangeId(ids.next_id()),
        feeds: feeds.iter().map(|u| u.id).collect(),
        max_distinct: 20,
    }
}

fn rc(emoji: &str, count: u32, me: bool) -> ReactionCount {
    ReactionCount { emoji: emoji.into(), count, me }
}

async fn summary(s: &Arc<dyn Store>, viewer: &User, m: &Message) -> Vec<ReactionCount> {
    let mut all = s.reaction_summaries(viewer.id, &m.conversation_id, &[m.id]).await.unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

async fn two_users(s: &Arc<dyn Store>, ids: &Generator, a: &str, b: &str) -> (User, User) {
    let (x, y) = (user(ids, a), user(ids, b));
    s.create_user(&x).await.unwrap();
    s.create_user(&y).await.unwrap();
    (x.user, y.user)
}

pub async fn reactions_count_per_emoji_with_me(s: Arc<dyn Store>) {
    let ids = Generator::new(11);
    let (ann, bob) = two_users(&s, &ids, "re_ann", "re_bob").await;
    let m = s.insert_message(&dm(&ids, &bob, &ann, "hi", None)).await.unwrap().message;
    let other = s.insert_message(&dm(&ids, &ann, &bob, "yo", None)).await.unwrap().message;
    let feeds = [&ann, &bob];
    let thumbs = "\u{1F44D}";
    let heart = "\u{2764}\u{FE0F}";
    let first = edit(&ids, &ann, &m, thumbs, true, &feeds);
    assert_eq!(s.edit_reaction(&first).await.unwrap(), ReactOutcome::Changed(vec![rc(thumbs, 1, true)]));
    // Reacting twice changes nothing and writes no second change.
    let again = edit(&ids, &ann, &m, thumbs, true, &feeds);
    assert_eq!(s.edit_reaction(&again).await.unwrap(), ReactOutcome::Unchanged(vec![rc(thumbs, 1, true)]));
    let bob_thumbs = edit(&ids, &bob, &m, thumbs, true, &feeds);
    assert!(matches!(s.edit_reaction(&bob_thumbs).await.unwrap(), ReactOutcome::Changed(_)));
    let bob_heart = edit(&ids, &bob, &m, heart, true, &feeds);
    let want_bob = vec![rc(thumbs, 2, true), rc(heart, 2 - 1, true)];
    // Sorted by emoji bytes: U+1F44D (F0 9F..) sorts after U+2764 (E2 9D..).
    let mut sorted = want_bob.clone();
    sorted.sort_by(|a, b| a.emoji.as_bytes().cmp(b.emoji.as_bytes()));
    assert_eq!(s.edit_reaction(&bob_heart).await.unwrap(), ReactOutcome::Changed(sorted.clone()));
    assert_eq!(summary(&s, &bob, &m).await, sorted);
    let ann_view: Vec<_> = sorted.iter().map(|r| rc(&r.emoji, r.count, r.emoji == thumbs)).collect();
    assert_eq!(summary(&s, &ann, &m).await, ann_view);
    // Unreacting what I did not react is a no-op.
    let not_mine = edit(&ids, &ann, &m, heart, false, &feeds);
    assert_eq!(s.edit_reaction(&not_mine).await.unwrap(), ReactOutcome::Unchanged(ann_view));
    let undo = edit(&ids, &bob, &m, thumbs, false, &feeds);
    assert_eq!(
        s.edit_reaction(&undo).await.unwrap(),
        ReactOutcome::Changed(vec![rc(heart, 1, true), rc(thumbs, 1, false)])
    );
    // Several messages at once, in the order given; none: empty.
    let both = s.reaction_summaries(ann.id, &m.conversation_id, &[other.id, m.id]).await.unwrap();
    assert_eq!(both, vec![vec![], vec![rc(heart, 1, false), rc(thumbs, 1, true)]]);
    // A message of another conversation, or none at all.
    let mut wrong = edit(&ids, &ann, &m, thumbs, true, &feeds);
    wrong.conversation = ConversationId::direct(ann.id, ann.id);
    assert_eq!(s.edit_reaction(&wrong).await.unwrap(), ReactOutcome::NoSuchMessage);
    let mut missing = edit(&ids, &ann, &m, thumbs, true, &feeds);
    missing.message_id = MessageId(ids.next_id());
    assert_eq!(s.edit_reaction(&missing).await.unwrap(), ReactOutcome::NoSuchMessage);
    // Each change is in both feeds once, by its reactor; no-ops left none.
    let want = [(first.change, ann.id), (bob_thumbs.change, bob.id), (bob_heart.change, bob.id), (undo.change, bob.id)];
    for owner in [&ann, &bob] {
        let feed = s.changes_since(owner.id, ChangeId(0), 100).await.unwrap();
        let got: Vec<_> = feed.iter().map(|c| (c.id, c.by)).collect();
        assert_eq!(got, want, "feed of {}", owner.username);
        assert!(feed.iter().all(|c| c.kind == ChangeKind::Reaction && c.message_id == m.id));
        assert!(feed.iter().all(|c| c.conversation == m.conversation_id));
    }
}

pub async fn distinct_reactions_are_limited(s: Arc<dyn Store>) {
    let ids = Generator::new(12);
    let (ann, bob) = two_users(&s, &ids, "rl_ann", "rl_bob").await;
    let m = s.insert_message(&dm(&ids, &bob, &ann, "hi", None)).await.unwrap().message;
    let lim = |mut e: ReactionEdit| {
        e.max_distinct = 3;
        e
    };
    for emoji in ["a", "b", "c"] {
        let e = lim(edit(&ids, &ann, &m, emoji, true, &[]));
        assert!(matches!(s.edit_reaction(&e).await.unwrap(), ReactOutcome::Changed(_)));
    }
    let fourth = lim(edit(&ids, &bob, &m, "d", true, &[&ann]));
    assert_eq!(s.edit_reaction(&fourth).await.unwrap(), ReactOutcome::TooMany);
    assert!(s.changes_since(ann.id, ChangeId(0), 10).await.unwrap().is_empty(), "a refusal writes no change");
    // An emoji already there still works.
    let existing = lim(edit(&ids, &bob, &m, "b", true, &[]));
    assert!(matches!(s.edit_reaction(&existing).await.unwrap(), ReactOutcome::Changed(_)));
    // Freeing an emoji makes room.
    let free = lim(edit(&ids, &ann, &m, "a", false, &[]));
    assert!(matches!(s.edit_reaction(&free).await.unwrap(), ReactOutcome::Changed(_)));
    let now = lim(edit(&ids, &bob, &m, "d", true, &[]));
    assert!(matches!(s.edit_reaction(&now).await.unwrap(), ReactOutcome::Changed(_)));
    let counts: Vec<_> = summary(&s, &bob, &m).await.into_iter().map(|r| (r.emoji, r.count)).collect();
    assert_eq!(counts, [("b".to_string(), 2), ("c".to_string(), 1), ("d".to_string(), 1)]);

    // Racing new emoji: once every call returned, at most the limit.
    let m2 = s.insert_message(&dm(&ids, &ann, &bob, "race", None)).await.unwrap().message;
    let racers: Vec<_> =
        ["p", "q", "r", "s", "t", "u"].iter().map(|e| lim(edit(&ids, &ann, &m2, e, true, &[]))).collect();
    let outcomes = futures_util::future::join_all(racers.iter().map(|e| s.edit_reaction(e))).await;
    let accepted = outcomes.iter().filter(|o| matches!(o, Ok(ReactOutcome::Changed(_)))).count();
    assert!(outcomes.iter().all(|o| matches!(o, Ok(ReactOutcome::Changed(_) | ReactOutcome::TooMany))));
    let after = summary(&s, &ann, &m2).await;
    assert!(after.len() <= 3, "{after:?}");
    assert!(accepted <= 3 && after.len() <= accepted, "accepted {accepted}, stored {after:?}");
}

pub async fn deletion_and_clear_take_reactions(s: Arc<dyn Store>) {
    let ids = Generator::new(13);
    let (ann, bob) = two_users(&s, &ids, "rd_ann2", "rd_bob2").await;
    let cy = user(&ids, "rd_cy2");
    s.create_user(&cy).await.unwrap();
    let cy = cy.user;
    let g = GroupId(ids.next_id());
    let group =
        NewGroup { id: g, title: "T".into(), topic: String::new(), owner: bob.id, members: vec![ann.id, cy.id] };
    s.create_group(&group).await.unwrap();
    let gm = Message {
        id: MessageId(ids.next_id()),
        conversation_id: ConversationId::group(g),
        from_id: bob.id,
        from: bob.username.clone(),
        to_id: UserId(0),
        to: String::new(),
        text: "group".into(),
        nonce: None,
    };
    let gm = s.send_group(&gm).await.unwrap().unwrap().message;
    for (who, emoji) in [(&ann, "x"), (&bob, "x"), (&ann, "y"), (&cy, "z")] {
        let e = edit(&ids, who, &gm, emoji, true, &[]);
        assert!(matches!(s.edit_reaction(&e).await.unwrap(), ReactOutcome::Changed(_)));
    }
    assert!(s.delete_user(ann.id).await.unwrap());
    // Ann's reactions are gone, the others' stay.
    assert_eq!(summary(&s, &bob, &gm).await, vec![rc("x", 1, true), rc("z", 1, false)]);
    let late = edit(&ids, &ann, &gm, "x", true, &[]);
    assert!(matches!(s.edit_reaction(&late).await, Err(StoreError::UserGone | StoreError::Unavailable(_))));
    assert_eq!(summary(&s, &bob, &gm).await.len(), 2, "a deleted user's react writes nothing");
    // Message deletion's helper: everything on the message, idempotent.
    assert_eq!(s.clear_reactions(&gm.conversation_id, gm.id).await.unwrap(), 2);
    assert_eq!(summary(&s, &cy, &gm).await, vec![]);
    assert_eq!(s.clear_reactions(&gm.conversation_id, gm.id).await.unwrap(), 0);
    // A user's reactions elsewhere survive clearing another message.
    let dm1 = s.insert_message(&dm(&ids, &bob, &cy, "dm", None)).await.unwrap().message;
    let e = edit(&ids, &cy, &dm1, "x", true, &[]);
    assert!(matches!(s.edit_reaction(&e).await.unwrap(), ReactOutcome::Changed(_)));
    assert_eq!(summary(&s, &cy, &dm1).await, vec![rc("x", 1, true)]);
}
