//! The store conformance suite: every promise of the `Store` trait, checked
//! against each backend. SQLite always runs. The CQL cases (`scylla::*`)
//! run when `HUBBUB_TEST_SCYLLA=host:port` names a live node (the test
//! command starts a real Apache Cassandra with `tools/cassandra/cassandra.sh`;
//! a ScyllaDB node works the same): each case gets a fresh keyspace, dropped
//! afterwards. Without the variable they FAIL under `CI=true` and elsewhere
//! print a loud "SKIPPED" and pass (README: "ScyllaDB and Cassandra").

use std::sync::Arc;
use std::time::Duration;

use hubbub::error::StoreError;
use hubbub::model::{
    ConversationId, DirectSend, FollowCounts, FollowId, Message, MessageId, ProfileUpdate, RotateOutcome, Rotation,
    Session, SessionId, User, UserCredentials, UserId,
};
use hubbub::snowflake::Generator;
use hubbub::store::{ScyllaOptions, ScyllaStore, SqliteStore, Store};

/// A backend under test plus whatever keeps it alive.
struct Backend {
    store: Arc<dyn Store>,
    _keep: Option<tempfile::TempDir>,
    /// A ScyllaDB store whose keyspace is dropped after the case.
    scylla: Option<Arc<ScyllaStore>>,
}

async fn sqlite() -> Option<Backend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"), Duration::from_secs(10)).await.expect("open");
    Some(Backend { store: Arc::new(store), _keep: Some(dir), scylla: None })
}

/// A ScyllaDB store in a fresh keyspace, or `None` when
/// `HUBBUB_TEST_SCYLLA` is not set.
async fn scylla() -> Option<Backend> {
    let nodes = std::env::var("HUBBUB_TEST_SCYLLA").ok().filter(|v| !v.is_empty())?;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let keyspace = format!("hubbub_test_{}_{}_{n}", std::process::id(), hubbub::model::now_ms() % 1_000_000);
    let mut options = ScyllaOptions::new(nodes.split(',').map(str::to_string).collect(), keyspace);
    options.request_timeout = Duration::from_secs(20);
    ScyllaStore::migrate(&options).await.expect("migrate a fresh keyspace");
    let store = Arc::new(ScyllaStore::open(&options).await.expect("open"));
    Some(Backend { store: store.clone(), _keep: None, scylla: Some(store) })
}

fn user(ids: &Generator, name: &str) -> UserCredentials {
    UserCredentials {
        user: User { id: UserId(ids.next_id()), username: name.into(), display_name: name.into(), created_at_ms: 1 },
        password_hash: "hash".into(),
    }
}

fn dm(ids: &Generator, from: &User, to: &User, text: &str, nonce: Option<&str>) -> Message {
    Message {
        id: MessageId(ids.next_id()),
        conversation_id: ConversationId::direct(from.id, to.id),
        from_id: from.id,
        from: from.username.clone(),
        to_id: to.id,
        to: to.username.clone(),
        text: text.into(),
        nonce: nonce.map(Into::into),
    }
}

#[path = "store_conformance/hardening.rs"]
mod hardening_suite;
#[path = "store_conformance/lifecycle.rs"]
mod lifecycle_suite;
#[path = "store_conformance/push.rs"]
mod push_suite;
#[path = "store_conformance/reactions.rs"]
mod reactions_suite;
#[path = "store_conformance/read_state.rs"]
mod read_state_suite;
#[path = "store_conformance/safety.rs"]
mod safety_suite;

#[path = "store_conformance/groups.rs"]
mod groups_suite;

mod suite {
    pub use super::groups_suite::*;
    pub use super::hardening_suite::*;
    pub use super::lifecycle_suite::*;
    pub use super::posts_suite::*;
    pub use super::push_suite::*;
    pub use super::reactions_suite::*;
    pub use super::read_state_suite::*;
    pub use super::safety_suite::*;
    use super::*;

    pub async fn users(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let ann = user(&ids, "Ann");
        s.create_user(&ann).await.unwrap();
        let clash = user(&ids, "ANN");
        assert!(matches!(s.create_user(&clash).await, Err(StoreError::Conflict(_))));
        let found = s.user_by_username("aNn").await.unwrap().unwrap();
        assert_eq!(found.user, ann.user);
        assert_eq!(found.password_hash, "hash");
        assert_eq!(s.user_by_id(ann.user.id).await.unwrap(), Some(ann.user.clone()));
        assert_eq!(s.user_by_id(clash.user.id).await.unwrap(), None);
        assert!(s.user_by_username("nobody").await.unwrap().is_none());
    }

    pub async fn sessions(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let bo = user(&ids, "bo_s");
        s.create_user(&bo).await.unwrap();
        let sid = SessionId("0123456789abcdef0123456789abcdef".into());
        s.create_session(&Session {
            id: sid.clone(),
            user_id: bo.user.id,
            refresh_hash: vec![1],
            expires_at_ms: 1_000,
        })
        .await
        .unwrap();
        assert_eq!(s.live_session_user(&sid, 999).await.unwrap(), Some(bo.user.id));
        assert_eq!(s.live_session_user(&sid, 1_000).await.unwrap(), None, "expired");
        let rot = |presented: u8, new: u8, now_ms: i64| Rotation {
            presented_hash: vec![presented],
            new_hash: vec![new],
            now_ms,
            new_expires_ms: 2_000,
            reuse_grace_ms: 100,
        };
        let rotated = s.rotate_refresh(&sid, &rot(1, 2, 10)).await.unwrap();
        assert_eq!(rotated, RotateOutcome::Rotated { user_id: bo.user.id });
        assert_eq!(s.live_session_user(&sid, 1_500).await.unwrap(), Some(bo.user.id), "expiry moved");
        // A secret never issued for this session changes nothing.
        assert_eq!(s.rotate_refresh(&sid, &rot(77, 3, 20)).await.unwrap(), RotateOutcome::Invalid);
        // The replaced secret within the grace period: rotates again (lost reply).
        assert_eq!(
            s.rotate_refresh(&sid, &rot(1, 3, 50)).await.unwrap(),
            RotateOutcome::Rotated { user_id: bo.user.id }
        );
        assert_eq!(
            s.rotate_refresh(&sid, &rot(2, 4, 60)).await.unwrap(),
            RotateOutcome::Rotated { user_id: bo.user.id }
        );
        // Past the grace period: reuse, and the session is revoked.
        let reused = s.rotate_refresh(&sid, &rot(1, 5, 500)).await.unwrap();
        assert_eq!(reused, RotateOutcome::ReuseDetected { user_id: bo.user.id });
        assert_eq!(s.live_session_user(&sid, 10).await.unwrap(), None, "reuse revokes");
        assert_eq!(s.rotate_refresh(&sid, &rot(4, 6, 510)).await.unwrap(), RotateOutcome::Invalid);
        let unknown = SessionId("ffffffffffffffffffffffffffffffff".into());
        assert_eq!(s.rotate_refresh(&unknown, &rot(1, 2, 10)).await.unwrap(), RotateOutcome::Invalid);

        let sid2 = SessionId("11111111111111111111111111111111".into());
        s.create_session(&Session {
            id: sid2.clone(),
            user_id: bo.user.id,
            refresh_hash: vec![9],
            expires_at_ms: i64::MAX,
        })
        .await
        .unwrap();
        assert!(s.revoke_session(&sid2).await.unwrap());
        assert!(!s.revoke_session(&sid2).await.unwrap(), "idempotent");
        assert_eq!(s.live_session_user(&sid2, 10).await.unwrap(), None);
    }

    pub async fn messages(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let (cy, di, ed) = (user(&ids, "cy_m"), user(&ids, "di_m"), user(&ids, "ed_m"));
        for u in [&cy, &di, &ed] {
            s.create_user(u).await.unwrap();
        }
        let (cy, di, ed) = (cy.user, di.user, ed.user);
        let mut sent = Vec::new();
        for i in 0..25 {
            let m = if i % 2 == 0 {
                dm(&ids, &cy, &di, &format!("t{i}"), None)
            } else {
                dm(&ids, &di, &cy, &format!("t{i}"), None)
            };
            let ins = s.insert_message(&m).await.unwrap();
            assert!(ins.created);
            assert_eq!(ins.message, m);
            sent.push(m);
        }
        let other = dm(&ids, &ed, &cy, "from ed", Some("nonce-1"));
        assert!(s.insert_message(&other).await.unwrap().created);
        let retry = Message { id: MessageId(ids.next_id()), text: "changed".into(), ..other.clone() };
        let again = s.insert_message(&retry).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.message, other, "a repeated nonce returns the original");

        // History: newest first, paged by `before`, only this conversation.
        let conv = ConversationId::direct(cy.id, di.id);
        let mut got = Vec::new();
        let mut before = None;
        loop {
            let page = s.history(&conv, before, 10).await.unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|m| m.id);
            got.extend(page);
        }
        let mut want = sent.clone();
        want.reverse();
        assert_eq!(got, want);

        // Since: oldest first, both directions, other conversations included.
        let all = s.messages_since(cy.id, MessageId(0), 100).await.unwrap();
        assert_eq!(all.len(), 26);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let after = s.messages_since(cy.id, sent[20].id, 3).await.unwrap();
        assert_eq!(after.iter().map(|m| m.id).collect::<Vec<_>>(), vec![sent[21].id, sent[22].id, sent[23].id]);
        assert_eq!(s.messages_since(ed.id, MessageId(0), 100).await.unwrap(), vec![other.clone()]);

        // Conversations: most recent first, with the peer and last message.
        let convs = s.conversations(cy.id, None, 10).await.unwrap();
        assert_eq!(convs.len(), 2);
        assert_eq!(convs[0].peer, ed);
        assert_eq!(convs[0].last_message, other);
        assert_eq!(convs[1].peer, di);
        assert_eq!(convs[1].last_message, sent[24]);
        let older = s.conversations(cy.id, Some(other.id), 10).await.unwrap();
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].peer, di);
        assert_eq!(s.conversations(di.id, None, 10).await.unwrap()[0].peer, cy);
    }

    pub async fn send_direct(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let (fay, gus) = (user(&ids, "Fay_s"), user(&ids, "Gus_s"));
        for u in [&fay, &gus] {
            s.create_user(u).await.unwrap();
        }
        let (fay, gus) = (fay.user, gus.user);
        let send = |to: &str, text: &str, nonce: Option<&str>| DirectSend {
            id: MessageId(ids.next_id()),
            from: fay.clone(),
            to_username: to.into(),
            text: text.into(),
            nonce: nonce.map(str::to_string),
        };

        assert_eq!(s.send_direct(&send("nobody_s", "x", None)).await.unwrap(), None, "unknown name");
        let first = send("gus_S", "hi", Some("n-1"));
        let stored = s.send_direct(&first).await.unwrap().expect("stored");
        assert!(stored.created);
        assert_eq!(stored.message, first.to_message(&gus), "the name is matched case-insensitively");
        assert_eq!(stored.message.to, "Gus_s");
        let again = s.send_direct(&send("gus_s", "changed", Some("n-1"))).await.unwrap().expect("original");
        assert!(!again.created);
        assert_eq!(again.message, stored.message, "a repeated nonce returns the original");
        assert_eq!(s.messages_since(gus.id, MessageId(0), 10).await.unwrap(), vec![stored.message.clone()]);

        // To oneself: one conversation, each message once.
        let me = s.send_direct(&send("fay_s", "note", None)).await.unwrap().expect("stored").message;
        assert_eq!(s.messages_since(fay.id, MessageId(0), 10).await.unwrap(), vec![stored.message.clone(), me.clone()]);
        let convs = s.conversations(fay.id, None, 10).await.unwrap();
        assert_eq!(convs.iter().map(|c| c.peer.id).collect::<Vec<_>>(), vec![fay.id, gus.id]);

        // Ids are only k-sorted: an older id stored late is synced in id
        // order and does not move the conversation back.
        let (early, late) = (send("gus_s", "early", None), send("gus_s", "late", None));
        let late = s.send_direct(&late).await.unwrap().expect("stored").message;
        let early = s.send_direct(&early).await.unwrap().expect("stored").message;
        let synced = s.messages_since(gus.id, stored.message.id, 10).await.unwrap();
        assert_eq!(synced, vec![early, late.clone()]);
        let convs = s.conversations(gus.id, None, 10).await.unwrap();
        assert_eq!(convs.len(), 1);
        assert_eq!(convs[0].last_message, late);

        // A deleted recipient is unknown; nothing is stored for it.
        assert!(s.delete_user(gus.id).await.unwrap());
        assert_eq!(s.send_direct(&send("gus_s", "anyone?", None)).await.unwrap(), None);
        assert_eq!(s.messages_since(fay.id, late.id, 10).await.unwrap(), vec![]);
    }

    /// Sync pages through many conversations in id order, each message once.
    pub async fn sync_pages(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let hub = user(&ids, "hub_p");
        s.create_user(&hub).await.unwrap();
        let mut peers = Vec::new();
        for i in 0..5 {
            let p = user(&ids, &format!("peer_p{i}"));
            s.create_user(&p).await.unwrap();
            peers.push(p.user);
        }
        let mut sent = Vec::new();
        for i in 0..60 {
            let peer = &peers[(i * 7) % peers.len()];
            let m = if i % 3 == 0 {
                dm(&ids, peer, &hub.user, &format!("p{i}"), None)
            } else {
                dm(&ids, &hub.user, peer, &format!("p{i}"), None)
            };
            s.insert_message(&m).await.unwrap();
            sent.push(m);
        }
        let (mut got, mut after) = (Vec::new(), MessageId(0));
        loop {
            let page = s.messages_since(hub.user.id, after, 7).await.unwrap();
            assert!(page.len() <= 7);
            let Some(last) = page.last() else { break };
            after = last.id;
            got.extend(page);
        }
        assert_eq!(got, sent);
        let convs = s.conversations(hub.user.id, None, 10).await.unwrap();
        assert_eq!(convs.len(), 5);
        assert!(convs.windows(2).all(|w| w[0].last_message.id > w[1].last_message.id));
    }

    pub async fn profiles(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let hu = user(&ids, "hu_p");
        s.create_user(&hu).await.unwrap();
        let p = s.profile(hu.user.id).await.unwrap().unwrap();
        assert_eq!(p.user, hu.user);
        assert_eq!((p.bio.as_str(), p.color.clone(), p.avatar_url.clone()), ("", None, None), "defaults");
        assert_eq!(s.profile(UserId(ids.next_id())).await.unwrap(), None);

        let set = ProfileUpdate {
            display_name: Some("Hu Li".into()),
            bio: Some("line one\nline two".into()),
            color: Some(Some("#a0b1c2".into())),
            avatar_url: Some(Some("https://example.com/a.png".into())),
        };
        let after = s.update_profile(hu.user.id, &set).await.unwrap().unwrap();
        assert_eq!(after.user.display_name, "Hu Li");
        assert_eq!(after.bio, "line one\nline two");
        assert_eq!(s.profile(hu.user.id).await.unwrap(), Some(after.clone()), "stored as returned");
        assert_eq!(s.user_by_id(hu.user.id).await.unwrap().unwrap().display_name, "Hu Li");

        // Partial: only bio changes; `Some(None)` clears the color.
        let partial = ProfileUpdate { bio: Some("new".into()), color: Some(None), ..Default::default() };
        let p = s.update_profile(hu.user.id, &partial).await.unwrap().unwrap();
        assert_eq!(p.user.display_name, "Hu Li");
        assert_eq!(p.bio, "new");
        assert_eq!(p.color, None);
        assert_eq!(p.avatar_url.as_deref(), Some("https://example.com/a.png"));
        assert_eq!(s.update_profile(UserId(ids.next_id()), &partial).await.unwrap(), None);
    }

    pub async fn search(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let make = |name: &str, display: &str| {
            let mut c = user(&ids, name);
            c.user.display_name = display.into();
            c
        };
        let users = [
            make("annabel", "Annabel Lee"),
            make("ann", "Plain Ann"),
            make("Zed", "Ann Zed"),
            make("bob_x", "Bob"),
            make("per%cent", "x"),
            make("perXcent", "x"),
        ];
        for u in &users {
            s.create_user(u).await.unwrap();
        }
        let names = |v: Vec<User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
        // Exact username first, then by lowercase username; each user once.
        assert_eq!(names(s.search_users("ANN", 10).await.unwrap()), ["ann", "annabel", "Zed"]);
        assert_eq!(names(s.search_users("ann", 2).await.unwrap()), ["ann", "annabel"]);
        assert_eq!(names(s.search_users("lee", 10).await.unwrap()), ["annabel"], "display-name words");
        assert_eq!(names(s.search_users("zed", 10).await.unwrap()), ["Zed"]);
        assert_eq!(names(s.search_users("bob_", 10).await.unwrap()), ["bob_x"], "_ is literal");
        assert_eq!(names(s.search_users("per%", 10).await.unwrap()), ["per%cent"], "% is literal");
        assert!(s.search_users("nobody", 10).await.unwrap().is_empty());

        // A new display name replaces the old words.
        let bob = users[3].user.id;
        let rename = ProfileUpdate { display_name: Some("Robert Smith".into()), ..Default::default() };
        s.update_profile(bob, &rename).await.unwrap();
        assert_eq!(names(s.search_users("smi", 10).await.unwrap()), ["bob_x"]);
        assert_eq!(names(s.search_users("bob", 10).await.unwrap()), ["bob_x"], "username still found");
        assert!(s.search_users("rob", 10).await.unwrap().iter().any(|u| u.id == bob));
        s.update_profile(bob, &ProfileUpdate { display_name: Some("Zzz".into()), ..Default::default() }).await.unwrap();
        assert!(s.search_users("robert", 10).await.unwrap().is_empty(), "old words are gone");
    }

    pub async fn follows(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let (a, b, c) = (user(&ids, "a_f"), user(&ids, "b_f"), user(&ids, "c_f"));
        for u in [&a, &b, &c] {
            s.create_user(u).await.unwrap();
        }
        let (a, b, c) = (a.user.id, b.user.id, c.user.id);
        let counts = |followers, following| FollowCounts { followers, following };
        assert_eq!(s.follow_counts(a).await.unwrap(), counts(0, 0));
        assert!(s.add_follow(a, b, FollowId(ids.next_id())).await.unwrap());
        assert!(!s.add_follow(a, b, FollowId(ids.next_id())).await.unwrap(), "twice: no change");
        assert!(s.add_follow(c, b, FollowId(ids.next_id())).await.unwrap());
        assert!(s.add_follow(b, a, FollowId(ids.next_id())).await.unwrap());
        assert_eq!(s.follow_counts(b).await.unwrap(), counts(2, 1));
        assert_eq!(s.follow_counts(a).await.unwrap(), counts(1, 1));
        let followers = s.followers(b, None, 10).await.unwrap();
        assert_eq!(followers.iter().map(|e| e.user.id).collect::<Vec<_>>(), vec![c, a], "newest first");
        assert_eq!(s.following(a, None, 10).await.unwrap()[0].user.id, b);

        // An unknown user on either side writes nothing.
        let ghost = UserId(ids.next_id());
        assert!(!s.add_follow(a, ghost, FollowId(ids.next_id())).await.unwrap());
        assert!(matches!(s.add_follow(ghost, a, FollowId(ids.next_id())).await, Err(StoreError::UserGone)));
        assert_eq!(s.follow_counts(a).await.unwrap(), counts(1, 1));

        assert!(s.remove_follow(a, b).await.unwrap());
        assert!(!s.remove_follow(a, b).await.unwrap(), "idempotent");
        assert_eq!(s.follow_counts(b).await.unwrap(), counts(1, 1));
        assert_eq!(s.follow_counts(a).await.unwrap(), counts(1, 0));
    }

    pub async fn follow_pages(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let star = user(&ids, "star");
        s.create_user(&star).await.unwrap();
        let mut fans = Vec::new();
        for i in 0..57 {
            let f = user(&ids, &format!("fan{i}"));
            s.create_user(&f).await.unwrap();
            assert!(s.add_follow(f.user.id, star.user.id, FollowId(ids.next_id())).await.unwrap());
            assert!(s.add_follow(star.user.id, f.user.id, FollowId(ids.next_id())).await.unwrap());
            fans.push(f.user.id);
        }
        for following in [false, true] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = if following {
                    s.following(star.user.id, after, 10).await.unwrap()
                } else {
                    s.followers(star.user.id, after, 10).await.unwrap()
                };
                if page.is_empty() {
                    break;
                }
                assert!(page.windows(2).all(|w| w[0].follow_id > w[1].follow_id));
                after = page.last().map(|e| e.follow_id);
                seen.extend(page.into_iter().map(|e| e.user.id));
            }
            let mut want = fans.clone();
            want.reverse();
            assert_eq!(seen, want, "each once, newest first");
        }
        assert_eq!(s.follow_counts(star.user.id).await.unwrap(), FollowCounts { followers: 57, following: 57 });
    }

    pub async fn user_sessions(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let (jo, ki) = (user(&ids, "jo_u"), user(&ids, "ki_u"));
        s.create_user(&jo).await.unwrap();
        s.create_user(&ki).await.unwrap();
        let session = |n: u8, owner: &UserCredentials| Session {
            id: SessionId(format!("{n:032x}")),
            user_id: owner.user.id,
            refresh_hash: vec![n],
            expires_at_ms: i64::MAX,
        };
        let (s1, s2, s3, other) = (session(1, &jo), session(2, &jo), session(3, &jo), session(4, &ki));
        for x in [&s1, &s2, &s3, &other] {
            s.create_session(x).await.unwrap();
        }
        assert_eq!(s.revoke_user_sessions(jo.user.id, Some(&s2.id)).await.unwrap(), 2);
        assert_eq!(s.revoke_user_sessions(jo.user.id, Some(&s2.id)).await.unwrap(), 0, "idempotent");
        assert_eq!(s.live_session_user(&s1.id, 0).await.unwrap(), None);
        assert_eq!(s.live_session_user(&s3.id, 0).await.unwrap(), None);
        assert_eq!(s.live_session_user(&s2.id, 0).await.unwrap(), Some(jo.user.id), "kept");
        assert_eq!(s.live_session_user(&other.id, 0).await.unwrap(), Some(ki.user.id), "other users untouched");
        assert_eq!(s.revoke_user_sessions(jo.user.id, None).await.unwrap(), 1);
        assert_eq!(s.live_session_user(&s2.id, 0).await.unwrap(), None);

        assert!(s.set_password_hash(jo.user.id, "new-hash").await.unwrap());
        assert_eq!(s.user_by_username("jo_u").await.unwrap().unwrap().password_hash, "new-hash");
        assert!(!s.set_password_hash(UserId(ids.next_id()), "x").await.unwrap());
    }

    pub async fn delete_user(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        let (gone, stay, third) = (user(&ids, "Gone_d"), user(&ids, "stay_d"), user(&ids, "third_d"));
        for u in [&gone, &stay, &third] {
            s.create_user(u).await.unwrap();
        }
        let sid = SessionId("22222222222222222222222222222222".into());
        let session =
            Session { id: sid.clone(), user_id: gone.user.id, refresh_hash: vec![1], expires_at_ms: i64::MAX };
        s.create_session(&session).await.unwrap();
        let (g, st, th) = (gone.user.clone(), stay.user.clone(), third.user.clone());
        s.add_follow(g.id, st.id, FollowId(ids.next_id())).await.unwrap();
        s.add_follow(st.id, g.id, FollowId(ids.next_id())).await.unwrap();
        s.add_follow(th.id, st.id, FollowId(ids.next_id())).await.unwrap();
        let from_gone = dm(&ids, &g, &st, "from gone", None);
        let to_gone = dm(&ids, &st, &g, "to gone", None);
        let unrelated = dm(&ids, &st, &th, "unrelated", None);
        for m in [&from_gone, &to_gone, &unrelated] {
            s.insert_message(m).await.unwrap();
        }
        s.update_profile(g.id, &ProfileUpdate { bio: Some("bio".into()), ..Default::default() }).await.unwrap();

        assert!(s.delete_user(g.id).await.unwrap());
        assert!(!s.delete_user(g.id).await.unwrap(), "idempotent");
        assert_eq!(s.user_by_id(g.id).await.unwrap(), None);
        assert!(s.user_by_username("gone_d").await.unwrap().is_none());
        assert_eq!(s.profile(g.id).await.unwrap(), None);
        assert!(s.search_users("gone", 10).await.unwrap().is_empty());
        assert_eq!(s.live_session_user(&sid, 0).await.unwrap(), None, "sessions end");
        assert_eq!(s.follow_counts(st.id).await.unwrap(), FollowCounts { followers: 1, following: 0 });
        assert_eq!(s.followers(st.id, None, 10).await.unwrap()[0].user, th);
        assert!(s.following(st.id, None, 10).await.unwrap().is_empty());

        // Every conversation with the user is gone, both directions.
        assert!(s.history(&from_gone.conversation_id, None, 10).await.unwrap().is_empty());
        let synced = s.messages_since(st.id, MessageId(0), 10).await.unwrap();
        assert_eq!(synced, vec![unrelated.clone()]);
        let convs = s.conversations(st.id, None, 10).await.unwrap();
        assert_eq!(convs.len(), 1);
        assert_eq!(convs[0].peer, th);

        // The name is free again, for a new user with a new id.
        let again = user(&ids, "gone_D");
        s.create_user(&again).await.unwrap();
        assert_eq!(s.live_session_user(&sid, 0).await.unwrap(), None);
        assert_eq!(s.follow_counts(again.user.id).await.unwrap(), FollowCounts::default());
        assert_eq!(s.profile(again.user.id).await.unwrap().unwrap().bio, "");
    }

    pub async fn close_refuses_later_calls(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        s.create_user(&user(&ids, "fay_c")).await.unwrap();
        s.close().await;
        assert!(matches!(s.create_user(&user(&ids, "gus_c")).await, Err(StoreError::Unavailable(_))));
    }
}

mod posts_suite {
    use super::*;
    use hubbub::model::{FanoutState, FollowId, ItemId, ItemKind, PostId, TimelineItem};

    async fn setup(s: &Arc<dyn Store>, ids: &Generator, names: &[&str]) -> Vec<User> {
        let mut out = Vec::new();
        for n in names {
            let u = user(ids, n);
            s.create_user(&u).await.unwrap();
            out.push(u.user);
        }
        out
    }

    pub async fn posts_likes_reposts(s: Arc<dyn Store>) {
        let ids = Generator::new(2);
        let us = setup(&s, &ids, &["pa_p", "pb_p"]).await;
        let (a, b) = (&us[0], &us[1]);
        let p = PostId(ids.next_id());
        assert!(s.create_post(p, a.id, "hi", FanoutState::Pending).await.unwrap());
        assert!(
            !s.create_post(PostId(ids.next_id()), UserId(1), "x", FanoutState::Pending).await.unwrap(),
            "unknown author"
        );
        let got = s.posts(&[p, PostId(999)]).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].author.clone(), got[0].text.as_str(), got[0].likes), (a.clone(), "hi", 0));

        let t = s.set_like(p, b.id, true).await.unwrap().unwrap();
        assert_eq!((t.changed, t.count), (true, 1));
        let t = s.set_like(p, b.id, true).await.unwrap().unwrap();
        assert_eq!((t.changed, t.count), (false, 1));
        assert!(s.viewer_marks(b.id, &[p]).await.unwrap()[0].1.liked);
        let t = s.set_like(p, b.id, false).await.unwrap().unwrap();
        assert_eq!((t.changed, t.count), (true, 0));
        assert_eq!(s.set_like(PostId(5), b.id, true).await.unwrap(), None);

        let item = ItemId(ids.next_id());
        let t = s.add_repost(p, b.id, item, FanoutState::Done).await.unwrap().unwrap();
        assert_eq!((t.changed, t.count), (true, 1));
        let t = s.add_repost(p, b.id, ItemId(ids.next_id()), FanoutState::Done).await.unwrap().unwrap();
        assert_eq!((t.changed, t.count), (false, 1), "a second repost changes nothing");
        let timeline = s.user_items(b.id, None, 10).await.unwrap();
        assert_eq!(timeline.len(), 1);
        assert_eq!((timeline[0].id, timeline[0].kind, timeline[0].post_author), (item, ItemKind::Repost, a.id));
        assert!(s.viewer_marks(b.id, &[p]).await.unwrap()[0].1.reposted);
        let t = s.remove_repost(p, b.id).await.unwrap().unwrap();
        assert_eq!((t.changed, t.count), (true, 0));
        assert!(s.user_items(b.id, None, 10).await.unwrap().is_empty());
        assert_eq!(s.remove_repost(PostId(5), b.id).await.unwrap(), None);
    }

    pub async fn timelines_and_fanout(s: Arc<dyn Store>) {
        let ids = Generator::new(3);
        let us = setup(&s, &ids, &["ta_p", "tb_p", "tc_p"]).await;
        let (a, b, c) = (&us[0], &us[1], &us[2]);
        s.add_follow(b.id, a.id, FollowId(ids.next_id())).await.unwrap();
        let p1 = PostId(ids.next_id());
        s.create_post(p1, a.id, "one", FanoutState::Pending).await.unwrap();
        let p2 = PostId(ids.next_id());
        s.create_post(p2, a.id, "two", FanoutState::OnRead).await.unwrap();
        let p3 = PostId(ids.next_id());
        s.create_post(p3, c.id, "not followed", FanoutState::Pending).await.unwrap();

        // Not yet copied: b reads both of a's items from a's timeline, nothing of c's.
        let unfanned = s.unfanned_items(b.id, None, 10).await.unwrap();
        assert_eq!(unfanned.iter().map(|i| i.post_id).collect::<Vec<_>>(), vec![p2, p1]);
        assert_eq!(s.follow_ids(b.id).await.unwrap().len(), 1);
        let pending = s.pending_fanout(10).await.unwrap();
        assert_eq!(pending.iter().map(|i| i.post_id).collect::<Vec<_>>(), vec![p1, p3], "oldest first");

        // Copy p1 to b, mark it done: it moves from the merged set to b's home.
        let item1 =
            TimelineItem { id: ItemId(p1.0), kind: ItemKind::Post, actor: a.id, post_id: p1, post_author: a.id };
        s.fan_out(&item1, &[b.id, a.id]).await.unwrap();
        s.fan_out(&item1, &[b.id]).await.unwrap(); // idempotent
        s.set_fanout(item1.id, FanoutState::Done).await.unwrap();
        assert_eq!(s.home_items(b.id, None, 10).await.unwrap(), vec![item1]);
        assert_eq!(
            s.unfanned_items(b.id, None, 10).await.unwrap().iter().map(|i| i.post_id).collect::<Vec<_>>(),
            vec![p2]
        );
        assert_eq!(s.pending_fanout(10).await.unwrap().iter().map(|i| i.post_id).collect::<Vec<_>>(), vec![p3]);
        assert_eq!(s.user_items(a.id, Some(ItemId(p2.0)), 10).await.unwrap(), vec![item1], "paged below p2");

        // Deleting a post removes it from every timeline.
        assert!(s.delete_post(p1).await.unwrap());
        assert!(!s.delete_post(p1).await.unwrap());
        assert!(s.home_items(b.id, None, 10).await.unwrap().is_empty());
        assert_eq!(s.user_items(a.id, None, 10).await.unwrap().len(), 1);

        // Trimming removes copies below the horizon.
        let p4 = PostId(ids.next_id());
        s.create_post(p4, a.id, "four", FanoutState::Pending).await.unwrap();
        let item4 =
            TimelineItem { id: ItemId(p4.0), kind: ItemKind::Post, actor: a.id, post_id: p4, post_author: a.id };
        s.fan_out(&item4, &[b.id]).await.unwrap();
        assert_eq!(s.trim_home(ItemId(p4.0)).await.unwrap(), 0);
        assert_eq!(s.trim_home(ItemId(p4.0 + 1)).await.unwrap(), 1);
    }

    pub async fn deleting_a_user_removes_their_posts_and_marks(s: Arc<dyn Store>) {
        let ids = Generator::new(4);
        let us = setup(&s, &ids, &["da_p", "db_p"]).await;
        let (a, b) = (&us[0], &us[1]);
        let pa = PostId(ids.next_id());
        s.create_post(pa, a.id, "a's", FanoutState::Done).await.unwrap();
        let pb = PostId(ids.next_id());
        s.create_post(pb, b.id, "b's", FanoutState::Done).await.unwrap();
        s.set_like(pa, b.id, true).await.unwrap();
        s.set_like(pb, a.id, true).await.unwrap();
        s.add_repost(pa, b.id, ItemId(ids.next_id()), FanoutState::Done).await.unwrap();
        s.add_repost(pb, a.id, ItemId(ids.next_id()), FanoutState::Done).await.unwrap();
        assert!(s.delete_user(b.id).await.unwrap());
        let left = s.posts(&[pa, pb]).await.unwrap();
        assert_eq!(left.len(), 1, "b's post is gone");
        assert_eq!((left[0].likes, left[0].reposts), (0, 0), "b's like and repost no longer count");
        assert_eq!(s.user_items(a.id, None, 10).await.unwrap().len(), 1, "a's repost of b's post is gone");
    }

    /// Counts move once per change of the set under concurrency: users
    /// liking, following and reposting at once, each follow and repost sent
    /// twice at once (a retry racing its original), count once each, and
    /// a deleted user's marks drop out. (The exactness contract of
    /// `Store::posts` / `Store::follow_counts` on CQL holds while no count
    /// update fails; none does here.)
    pub async fn concurrent_changes_count_once(s: Arc<dyn Store>) {
        use futures_util::future::join_all;
        let ids = Generator::new(5);
        let us = setup(&s, &ids, &["ca_c", "cb_c", "cc_c", "cd_c", "ce_c", "cf_c"]).await;
        let (author, fans) = (&us[0], &us[1..]);
        let p = PostId(ids.next_id());
        assert!(s.create_post(p, author.id, "hot", FanoutState::Done).await.unwrap());

        let likes = join_all(fans.iter().map(|u| s.set_like(p, u.id, true))).await;
        assert!(likes.into_iter().all(|t| t.unwrap().unwrap().changed));
        let twice = |u: &User| [(u.id, FollowId(ids.next_id())), (u.id, FollowId(ids.next_id()))];
        let follows: Vec<_> = fans.iter().flat_map(twice).collect();
        let made = join_all(follows.iter().map(|(u, id)| s.add_follow(*u, author.id, *id))).await;
        assert_eq!(made.into_iter().filter(|r| *r.as_ref().unwrap()).count(), fans.len(), "one per pair");
        let items: Vec<_> =
            fans.iter().flat_map(|u| [(u.id, ItemId(ids.next_id())), (u.id, ItemId(ids.next_id()))]).collect();
        let reposts = join_all(items.iter().map(|(u, i)| s.add_repost(p, *u, *i, FanoutState::Done))).await;
        assert_eq!(reposts.into_iter().filter(|t| t.as_ref().unwrap().unwrap().changed).count(), fans.len());

        let post = &s.posts(&[p]).await.unwrap()[0];
        assert_eq!((post.likes, post.reposts), (5, 5));
        assert_eq!(s.follow_counts(author.id).await.unwrap(), FollowCounts { followers: 5, following: 0 });
        assert_eq!(s.follow_counts(fans[0].id).await.unwrap(), FollowCounts { followers: 0, following: 1 });

        let unlikes = join_all(fans[..2].iter().map(|u| s.set_like(p, u.id, false))).await;
        assert!(unlikes.into_iter().all(|t| t.unwrap().unwrap().changed));
        assert!(s.delete_user(fans[4].id).await.unwrap());
        let post = &s.posts(&[p]).await.unwrap()[0];
        assert_eq!((post.likes, post.reposts), (2, 4), "unliked twice; the deleted user's like and repost");
        assert_eq!(s.follow_counts(author.id).await.unwrap().followers, 4, "the deleted user's follow");
    }
}

/// Runs one suite case on a backend, then drops the backend's keyspace (if
/// any) whether or not the case passed.
async fn run_case<F, Fut>(backend: Option<Backend>, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(b) = backend else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: HUBBUB_TEST_SCYLLA=host:port must name the test Cassandra/ScyllaDB node"
        );
        eprintln!("!!!!! SKIPPED a CQL case: HUBBUB_TEST_SCYLLA is not set (./test.sh sets it) !!!!!");
        return;
    };
    let outcome = tokio::spawn(case(b.store.clone())).await;
    if let Some(s) = &b.scylla {
        s.drop_keyspace().await.expect("drop the test keyspace");
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! backend_tests {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::run_case(super::$backend().await, super::suite::$case).await;
                }
            )*
        }
    };
}

/// The suite's cases, run on every backend: `sqlite::*` always, `scylla::*`
/// on the node named by `HUBBUB_TEST_SCYLLA` (see the top of this file).
macro_rules! every_backend {
    ($($case:ident),* $(,)?) => {
        backend_tests!(sqlite: $($case),*);
        backend_tests!(scylla: $($case),*);
    };
}

every_backend!(
    users,
    sessions,
    messages,
    send_direct,
    sync_pages,
    profiles,
    search,
    follows,
    follow_pages,
    user_sessions,
    delete_user,
    close_refuses_later_calls,
    posts_likes_reposts,
    timelines_and_fanout,
    deleting_a_user_removes_their_posts_and_marks,
    concurrent_changes_count_once,
    sync_once_per_pass,
    deleted_users_write_nothing,
    freed_username_gets_no_old_messages,
    stale_message_ids_are_refused,
    groups_create_get_update,
    group_read_pointers_and_unread_counts,
    groups_members_roles_limit,
    groups_succession_and_end,
    groups_send_history_sync,
    groups_conversation_list,
    groups_account_deletion,
    read_pointers_move_forward_only,
    racing_moves_end_at_the_largest,
    unread_counts_are_capped_and_skip_my_messages,
    change_feeds_page_once_each,
    stale_change_ids_are_refused,
    receipt_settings_default_on,
    deletion_takes_the_read_state,
    blocks_bound_page_and_answer_who_blocks,
    direct_sends_refused_by_a_block_either_way,
    direct_send_outcomes,
    mutes_and_the_push_seam,
    reports_keep_snapshots_and_resolve,
    bans_set_lift_and_go_with_the_account,
    deletion_removes_blocks_and_mutes_both_ways,
    reactions_count_per_emoji_with_me,
    distinct_reactions_are_limited,
    deletion_and_clear_take_reactions,
    edits_and_deletes_in_direct_conversations,
    racing_edits_end_at_the_newest,
    group_deletes_and_replies,
    deletion_takes_the_lifecycle_state,
    push_devices_bounded_updated_removed,
    push_queue_merges_leases_and_completes,
    push_jobs_complete_in_one_call,
    push_intake_goes_with_the_message_and_batches_once,
    intake_cursors_only_grow,
    racing_device_registrations_respect_the_limit,
);
