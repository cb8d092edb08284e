//! Conformance cases of the `PushStore` area (issue 16): devices (bound,
//! update in place, removal by session / all, account deletion), the
//! preview setting, and the queue (merge by collapse key, per-device
//! bound, leases, completion against a merge, retry, drop). Included by
//! `tests/store_conformance.rs`, run on every backend.

use std::sync::Arc;

use hubbub::model::{ConversationId, MessageId, SessionId, User, now_ms};
use hubbub::snowflake::Generator;
use hubbub::store::Store;
use hubbub::store::push::{Device, DeviceId, DeviceTarget, Enqueued, Preview, PushJob, Registered};

use super::user;

fn webpush(ids: &Generator, who: &User, session: &str, endpoint: &str) -> Device {
    Device {
        id: DeviceId(ids.next_id()),
        user: who.id,
        session: SessionId(session.into()),
        target: DeviceTarget::WebPush { endpoint: endpoint.into(), p256dh: "pk".into(), auth: "au".into() },
        created_ms: now_ms(),
    }
}

fn job(device: DeviceId, who: &User, collapse: &str, message: i64, text: &str) -> PushJob {
    PushJob {
        device,
        user: who.id,
        collapse: collapse.into(),
        conversation: ConversationId("c1".into()),
        message: MessageId(message),
        sender: "ann".into(),
        text: text.into(),
        count: 1,
        version: 1,
        first_ms: now_ms(),
        due_ms: now_ms() - 1,
        attempts: 0,
    }
}

pub async fn push_devices_bounded_updated_removed(s: Arc<dyn Store>) {
    let ids = Generator::new(9);
    let creds = user(&ids, "pd_ann");
    s.create_user(&creds).await.unwrap();
    let ann = creds.user;
    let a = webpush(&ids, &ann, "s1", "https://push.example/a");
    assert_eq!(s.add_device(&a, 2).await.unwrap(), Registered::New(a.clone()));
    // The same endpoint again: updated in place, id kept.
    let mut again = webpush(&ids, &ann, "s2", "https://push.example/a");
    again.target =
        DeviceTarget::WebPush { endpoint: "https://push.example/a".into(), p256dh: "k2".into(), auth: "a2".into() };
    let Registered::Updated(u) = s.add_device(&again, 2).await.unwrap() else { panic!("expected an update") };
    assert_eq!((u.id, u.session.0.as_str()), (a.id, "s2"));
    let gw = Device {
        id: DeviceId(ids.next_id()),
        user: ann.id,
        session: SessionId("s1".into()),
        target: DeviceTarget::Gateway { pushkey: "tok".into(), app_id: "app".into(), data: "{}".into() },
        created_ms: 5,
    };
    assert!(matches!(s.add_device(&gw, 2).await.unwrap(), Registered::New(_)));
    let third = webpush(&ids, &ann, "s1", "https://push.example/c");
    assert_eq!(s.add_device(&third, 2).await.unwrap(), Registered::Full);
    let listed = s.devices(ann.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(s.device(ann.id, gw.id).await.unwrap().as_ref(), Some(&gw));
    assert_eq!(s.device(ann.id, a.id).await.unwrap().map(|d| d.target), Some(again.target.clone()));
    // Removal by session: only that session's devices (the web one moved to s2).
    assert_eq!(s.remove_devices(ann.id, Some(&SessionId("s1".into()))).await.unwrap(), 1);
    assert_eq!(s.devices(ann.id).await.unwrap().len(), 1);
    assert!(s.remove_device(ann.id, a.id).await.unwrap());
    assert!(!s.remove_device(ann.id, a.id).await.unwrap());
    assert!(s.devices(ann.id).await.unwrap().is_empty());
    // All devices, and account deletion takes devices and the setting.
    s.add_device(&third, 2).await.unwrap();
    assert_eq!(s.remove_devices(ann.id, None).await.unwrap(), 1);
    s.add_device(&third, 2).await.unwrap();
    s.set_push_preview(ann.id, Preview::None).await.unwrap();
    assert_eq!(s.push_preview(ann.id).await.unwrap(), Preview::None);
    s.delete_user(ann.id).await.unwrap();
    assert!(s.devices(ann.id).await.unwrap().is_empty());
    assert_eq!(s.push_preview(ann.id).await.unwrap(), Preview::Full);
}

pub async fn push_queue_merges_leases_and_completes(s: Arc<dyn Store>) {
    let ids = Generator::new(10);
    let ann = user(&ids, "pq_ann").user;
    let dev = DeviceId(ids.next_id());
    assert_eq!(s.enqueue_push(&job(dev, &ann, "conv", 10, "one"), 2).await.unwrap(), Enqueued::New);
    assert_eq!(s.enqueue_push(&job(dev, &ann, "conv", 12, "three"), 2).await.unwrap(), Enqueued::Merged);
    // An older message (ids are only k-sorted) counts but keeps the newest content.
    assert_eq!(s.enqueue_push(&job(dev, &ann, "conv", 11, "two"), 2).await.unwrap(), Enqueued::Merged);
    assert_eq!(s.enqueue_push(&job(dev, &ann, "m:1", 13, "x"), 2).await.unwrap(), Enqueued::New);
    assert_eq!(s.enqueue_push(&job(dev, &ann, "m:2", 14, "y"), 2).await.unwrap(), Enqueued::Full);
    assert_eq!(s.push_depth().await.unwrap(), 2);

    let now = now_ms();
    let claimed = s.claim_push("node-a", now, 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let conv = claimed.iter().find(|j| j.collapse == "conv").unwrap().clone();
    assert_eq!((conv.message, conv.text.as_str(), conv.count), (MessageId(12), "three", 3));
    // Leased: nobody else gets them until the lease ends.
    assert!(s.claim_push("node-b", now + 1, 60_000, 10).await.unwrap().is_empty());
    // A merge while in flight: completing the old version keeps the job, due again.
    assert_eq!(s.enqueue_push(&job(dev, &ann, "conv", 15, "four"), 2).await.unwrap(), Enqueued::Merged);
    assert!(!s.complete_push(&conv, "node-a").await.unwrap());
    let again = s.claim_push("node-b", now + 2, 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message, again[0].count), (MessageId(15), 4));
    assert!(s.complete_push(&again[0], "node-b").await.unwrap());

    // A failed send: due later, one more attempt.
    let other = claimed.iter().find(|j| j.collapse == "m:1").unwrap().clone();
    s.retry_push(&other, "node-a", now + 5_000).await.unwrap();
    assert!(s.claim_push("node-a", now + 10, 60_000, 10).await.unwrap().is_empty());
    let retried = s.claim_push("node-a", now + 5_000, 60_000, 10).await.unwrap();
    assert_eq!((retried.len(), retried[0].attempts), (1, 1));
    // A crashed node's lease is taken over once it expires.
    let taken = s.claim_push("node-b", now + 5_000 + 60_001, 60_000, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    s.drop_push(&taken[0]).await.unwrap();
    s.drop_push(&taken[0]).await.unwrap();
    assert_eq!(s.push_depth().await.unwrap(), 0);
}
