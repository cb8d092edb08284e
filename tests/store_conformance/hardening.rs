//! Conformance cases of issue 12 ("Hardening"): writes of deleted users,
//! sync passes under random interleavings of sends (late ones included),
//! syncs and deletions, and the commit-age bound on message ids. Included
//! by `tests/store_conformance.rs`, run on every backend.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hubbub::error::StoreError;
use hubbub::model::{
    ConversationId, DirectSend, FanoutState, FollowId, ItemId, Message, MessageId, PostId, ProfileUpdate, User, UserId,
    now_ms,
};
use hubbub::snowflake::{Generator, floor_for_ms};
use hubbub::store::{MESSAGE_MAX_AGE_MS, Store};

use super::{dm, user};

/// A small deterministic generator (splitmix64): the same seed gives the
/// same interleaving on every run and every backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An id minted `age_ms` ago by worker 1023 (no other generator in these
/// cases uses it), unique through `seq`.
fn id_aged(age_ms: i64) -> MessageId {
    // One sequence for the whole process: two property seeds (or two tests
    // sharing a store) that age a message to the same millisecond must
    // still mint different ids, as two real generators never collide.
    static SEQ: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    MessageId(floor_for_ms(now_ms() - age_ms) | (1023 << 12) | (seq & 0xfff))
}

/// Late messages are minted up to this long ago (as a concurrent node or a
/// batch that waited for the write lock produces them) ...
const LATE_MS: i64 = 3_000;
/// ... and the client keeps its cursor this far back (the server's sync
/// horizon), which must exceed `LATE_MS` for no message to be skipped.
const HORIZON_MS: i64 = 4_000;

/// One client of the model: where its sync cursor stands.
struct Client {
    user: User,
    cursor: MessageId,
}

/// What the store must hold: every live message, by id.
#[derive(Default)]
struct Model {
    messages: BTreeMap<MessageId, Message>,
}

impl Model {
    fn of(&self, u: UserId) -> Vec<Message> {
        self.messages.values().filter(|m| m.from_id == u || m.to_id == u).cloned().collect()
    }
}

/// Reads one sync pass of `c` (pages of random size until a short page),
/// checks it, and moves the cursor as `message.sync` does.
async fn sync_pass(s: &Arc<dyn Store>, rng: &mut Rng, model: &Model, c: &mut Client) {
    let start = c.cursor;
    let (mut got, mut after) = (Vec::new(), start);
    loop {
        let limit = 1 + rng.below(8) as usize;
        let page = s.messages_since(c.user.id, after, limit).await.unwrap();
        let short = page.len() < limit;
        if let Some(last) = page.last() {
            after = last.id;
        }
        got.extend(page);
        if short {
            break;
        }
    }
    let ids: Vec<MessageId> = got.iter().map(|m| m.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "one pass returns each message once, in id order: {ids:?}");
    let want: Vec<Message> = model.of(c.user.id).into_iter().filter(|m| m.id > start).collect();
    assert_eq!(got, want, "a pass returns exactly the messages after the cursor");
    let horizon = MessageId(floor_for_ms(now_ms() - HORIZON_MS));
    c.cursor = ids.last().copied().unwrap_or(start).min(horizon);
}

/// Each conversation listed once, at its newest message, with a live peer.
async fn check_conversations(s: &Arc<dyn Store>, model: &Model, u: &User) {
    let listed = s.conversations(u.id, None, 1000).await.unwrap();
    let mut newest: HashMap<ConversationId, MessageId> = HashMap::new();
    for m in model.of(u.id) {
        let e = newest.entry(m.conversation_id.clone()).or_insert(m.id);
        *e = (*e).max(m.id);
    }
    let got: HashMap<ConversationId, MessageId> =
        listed.iter().map(|c| (c.conversation_id.clone(), c.last_message.id)).collect();
    assert_eq!(got.len(), listed.len(), "a conversation is listed once");
    assert_eq!(got, newest, "each conversation at its newest message");
}

/// Random interleavings of sends (some with ids older than the newest,
/// as another node produces them), sync passes, and account deletions
/// with re-registration of the freed name, across many conversations.
/// Every sync pass returns each message once and none is ever skipped.
pub async fn sync_once_per_pass(s: Arc<dyn Store>) {
    let seeds: u64 = std::env::var("HUBBUB_PROP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    for seed in 0..seeds {
        run_interleaving(&s, seed).await;
    }
}

async fn run_interleaving(s: &Arc<dyn Store>, seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(7919) + 17);
    let ids = Generator::new(2);
    let mut model = Model::default();
    let mut clients = Vec::new();
    for i in 0..6 {
        let u = user(&ids, &format!("pp{seed}_{i}"));
        s.create_user(&u).await.unwrap();
        clients.push(Client { user: u.user, cursor: MessageId(0) });
    }
    let mut gone: Vec<User> = Vec::new();
    for step in 0..120 {
        let roll = rng.below(100);
        let (a, b) = (rng.below(6) as usize, rng.below(6) as usize);
        if roll < 70 {
            let (from, to) = (clients[a].user.clone(), clients[b].user.clone());
            let mut m = dm(&ids, &from, &to, &format!("s{seed}-{step}"), None);
            if roll < 25 {
                m.id = id_aged(1 + rng.below(LATE_MS as u64) as i64);
            }
            assert!(s.insert_message(&m).await.unwrap().created);
            for c in [&clients[a], &clients[b]] {
                assert!(m.id > c.cursor, "seed {seed}: a message lands above every cursor");
            }
            model.messages.insert(m.id, m);
        } else if roll < 94 {
            sync_pass(s, &mut rng, &model, &mut clients[a]).await;
        } else if roll < 97 {
            // Delete an account; the name is registered again at once.
            let old = clients[a].user.clone();
            assert!(s.delete_user(old.id).await.unwrap());
            model.messages.retain(|_, m| m.from_id != old.id && m.to_id != old.id);
            let again = user(&ids, &old.username);
            s.create_user(&again).await.unwrap();
            clients[a] = Client { user: again.user, cursor: MessageId(0) };
            gone.push(old);
        } else if let Some(dead) = gone.last() {
            // A deleted account's queued request, either side.
            let live = clients[b].user.clone();
            for (from, to) in [(dead, &live), (&live, dead)] {
                let m = dm(&ids, from, to, "after delete", None);
                assert!(matches!(s.insert_message(&m).await, Err(StoreError::UserGone)), "seed {seed}");
            }
        }
    }
    for c in &mut clients {
        sync_pass(s, &mut rng, &model, c).await;
        c.cursor = MessageId(0);
        sync_pass(s, &mut rng, &model, c).await;
        check_conversations(s, &model, &c.user).await;
    }
}

/// Once an account is deleted, none of its writes (nor a message to it)
/// succeeds, and nothing of them is left behind.
pub async fn deleted_users_write_nothing(s: Arc<dyn Store>) {
    let ids = Generator::new(3);
    let (ann, bob) = (user(&ids, "gone_w"), user(&ids, "live_w"));
    for u in [&ann, &bob] {
        s.create_user(u).await.unwrap();
    }
    let (a, b) = (ann.user.clone(), bob.user.clone());
    let post = PostId(ids.next_id());
    assert!(s.create_post(post, b.id, "bob's", FanoutState::Done).await.unwrap());
    assert!(s.delete_user(a.id).await.unwrap());

    let gone = |r: Result<_, StoreError>| matches!(r, Err(StoreError::UserGone));
    assert!(gone(s.insert_message(&dm(&ids, &a, &b, "queued", None)).await.map(|_| ())));
    assert!(gone(s.insert_message(&dm(&ids, &b, &a, "to gone", None)).await.map(|_| ())));
    let send = DirectSend {
        id: MessageId(ids.next_id()),
        from: a.clone(),
        to_username: "live_w".into(),
        text: "queued".into(),
        nonce: Some("n-gone".into()),
    };
    assert!(gone(s.send_direct(&send).await.map(|_| ())));
    assert!(gone(s.set_like(post, a.id, true).await.map(|_| ())));
    assert!(gone(s.add_repost(post, a.id, ItemId(ids.next_id()), FanoutState::Done).await.map(|_| ())));
    assert!(gone(s.remove_repost(post, a.id).await.map(|_| ())));
    assert!(gone(s.add_follow(a.id, b.id, FollowId(ids.next_id())).await.map(|_| ())));
    assert!(!s.create_post(PostId(ids.next_id()), a.id, "queued", FanoutState::Done).await.unwrap());
    let bio = ProfileUpdate { bio: Some("queued".into()), ..Default::default() };
    assert_eq!(s.update_profile(a.id, &bio).await.unwrap(), None);

    let p = &s.posts(&[post]).await.unwrap()[0];
    assert_eq!((p.likes, p.reposts), (0, 0), "no orphan like or repost counted");
    assert!(s.messages_since(b.id, MessageId(0), 10).await.unwrap().is_empty());
    assert!(s.conversations(b.id, None, 10).await.unwrap().is_empty());
    assert_eq!(s.follow_counts(b.id).await.unwrap().followers, 0);
    assert!(s.user_items(b.id, None, 10).await.unwrap().len() == 1, "only bob's own post");
}

/// A name freed by deletion and registered again is never bound to the old
/// account's messages, in either direction.
pub async fn freed_username_gets_no_old_messages(s: Arc<dyn Store>) {
    let ids = Generator::new(3);
    let (old, bob, cy) = (user(&ids, "Reused_n"), user(&ids, "bob_n"), user(&ids, "cy_n"));
    for u in [&old, &bob, &cy] {
        s.create_user(u).await.unwrap();
    }
    let (o, b, c) = (old.user.clone(), bob.user.clone(), cy.user.clone());
    for m in [dm(&ids, &o, &b, "from old", None), dm(&ids, &b, &o, "to old", None), dm(&ids, &o, &o, "note", None)] {
        s.insert_message(&m).await.unwrap();
    }
    let keep = dm(&ids, &b, &c, "unrelated", None);
    s.insert_message(&keep).await.unwrap();
    assert!(s.delete_user(o.id).await.unwrap());
    let again = user(&ids, "reused_N");
    s.create_user(&again).await.unwrap();
    let n = again.user.clone();
    assert_ne!(n.id, o.id);

    assert!(s.messages_since(n.id, MessageId(0), 10).await.unwrap().is_empty(), "the new account has no past");
    assert!(s.conversations(n.id, None, 10).await.unwrap().is_empty());
    assert!(s.history(&ConversationId::direct(b.id, n.id), None, 10).await.unwrap().is_empty());
    let bobs = s.messages_since(b.id, MessageId(0), 10).await.unwrap();
    assert_eq!(bobs, vec![keep.clone()], "no message of the old conversation names the freed username");
    let convs = s.conversations(b.id, None, 10).await.unwrap();
    assert_eq!(convs.iter().map(|c| c.peer.id).collect::<Vec<_>>(), vec![c.id]);
    assert!(s.history(&ConversationId::direct(b.id, o.id), None, 10).await.unwrap().is_empty());

    // The new account talks afresh, under its own id.
    let fresh = dm(&ids, &b, &n, "hello again", None);
    s.insert_message(&fresh).await.unwrap();
    assert_eq!(s.messages_since(n.id, MessageId(0), 10).await.unwrap(), vec![fresh]);
}

/// A message whose id is older than `MESSAGE_MAX_AGE_MS` is refused with
/// `Unavailable` and nothing is stored (a stalled node cannot commit below
/// a sync cursor); a late one within the bound is stored; a retry of the
/// refused send with the same nonce and a fresh id is stored once.
pub async fn stale_message_ids_are_refused(s: Arc<dyn Store>) {
    let ids = Generator::new(3);
    let (ann, bob) = (user(&ids, "ann_o"), user(&ids, "bob_o"));
    for u in [&ann, &bob] {
        s.create_user(u).await.unwrap();
    }
    let (a, b) = (ann.user.clone(), bob.user.clone());
    let mut stale = dm(&ids, &a, &b, "stalled", Some("n-stale"));
    stale.id = id_aged(MESSAGE_MAX_AGE_MS + 3_000);
    assert!(matches!(s.insert_message(&stale).await, Err(StoreError::Unavailable(_))));
    let send = DirectSend {
        id: id_aged(MESSAGE_MAX_AGE_MS + 3_000),
        from: a.clone(),
        to_username: "bob_o".into(),
        text: "stalled too".into(),
        nonce: None,
    };
    assert!(matches!(s.send_direct(&send).await, Err(StoreError::Unavailable(_))));
    assert!(s.messages_since(b.id, MessageId(0), 10).await.unwrap().is_empty(), "nothing committed");
    assert!(s.history(&stale.conversation_id, None, 10).await.unwrap().is_empty());

    let mut late = dm(&ids, &a, &b, "late", None);
    late.id = id_aged(1_000);
    assert!(s.insert_message(&late).await.unwrap().created);
    let retry = Message { id: MessageId(ids.next_id()), ..stale.clone() };
    let stored = s.insert_message(&retry).await.unwrap();
    assert!(stored.created, "the refused send left no nonce claim behind");
    assert_eq!(stored.message.id, retry.id);
    let synced: Vec<MessageId> = s.messages_since(b.id, MessageId(0), 10).await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(synced, vec![late.id, retry.id]);
    let again = s.insert_message(&Message { id: MessageId(ids.next_id()), ..stale }).await.unwrap();
    assert_eq!((again.created, again.message.id), (false, retry.id));
}
