//! The store conformance suite: every promise of the `Store` trait, checked
//! against each backend. SQLite always runs; a backend added later plugs in
//! with one more `backend_tests!` line.

use std::sync::Arc;
use std::time::Duration;

use hubbub::error::StoreError;
use hubbub::model::{
    ConversationId, Message, MessageId, RotateOutcome, Session, SessionId, User, UserCredentials, UserId,
};
use hubbub::snowflake::Generator;
use hubbub::store::{SqliteStore, Store};

/// A backend under test plus whatever keeps it alive.
struct Backend {
    store: Arc<dyn Store>,
    _keep: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db"), Duration::from_secs(10)).await.expect("open");
    Backend { store: Arc::new(store), _keep: Some(dir) }
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

mod suite {
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
        s.create_session(&Session { id: sid.clone(), user_id: bo.user.id, refresh_hash: vec![1], expires_at_ms: 1_000 })
            .await
            .unwrap();
        assert_eq!(s.live_session_user(&sid, 999).await.unwrap(), Some(bo.user.id));
        assert_eq!(s.live_session_user(&sid, 1_000).await.unwrap(), None, "expired");
        let rotated = s.rotate_refresh(&sid, &[1], &[2], 10, 2_000).await.unwrap();
        assert_eq!(rotated, RotateOutcome::Rotated { user_id: bo.user.id });
        assert_eq!(s.live_session_user(&sid, 1_500).await.unwrap(), Some(bo.user.id), "expiry moved");
        let reused = s.rotate_refresh(&sid, &[1], &[3], 10, 2_000).await.unwrap();
        assert_eq!(reused, RotateOutcome::ReuseDetected { user_id: bo.user.id });
        assert_eq!(s.live_session_user(&sid, 10).await.unwrap(), None, "reuse revokes");
        assert_eq!(s.rotate_refresh(&sid, &[2], &[4], 10, 2_000).await.unwrap(), RotateOutcome::Invalid);
        let unknown = SessionId("ffffffffffffffffffffffffffffffff".into());
        assert_eq!(s.rotate_refresh(&unknown, &[1], &[2], 10, 2_000).await.unwrap(), RotateOutcome::Invalid);

        let sid2 = SessionId("11111111111111111111111111111111".into());
        s.create_session(&Session { id: sid2.clone(), user_id: bo.user.id, refresh_hash: vec![9], expires_at_ms: i64::MAX })
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
            let m = if i % 2 == 0 { dm(&ids, &cy, &di, &format!("t{i}"), None) } else { dm(&ids, &di, &cy, &format!("t{i}"), None) };
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

    pub async fn close_refuses_later_calls(s: Arc<dyn Store>) {
        let ids = Generator::new(1);
        s.create_user(&user(&ids, "fay_c")).await.unwrap();
        s.close().await;
        assert!(matches!(s.create_user(&user(&ids, "gus_c")).await, Err(StoreError::Unavailable(_))));
    }
}

macro_rules! backend_tests {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let b = super::$backend().await;
                    super::suite::$case(b.store.clone()).await;
                }
            )*
        }
    };
}

backend_tests!(sqlite: users, sessions, messages, close_refuses_later_calls);
