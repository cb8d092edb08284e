//! Conformance cases of the `PushStore` area (issue 16): devices (bound,
//! update in place, removal by session / all, account deletion), the
//! preview setting, and the queue (merge by collapse key, per-device
//! bound, leases, completion against a merge, retry, drop), the intake
//! and the intake's stored cursor (monotonic). Included by
//! `tests/store_conformance.rs`, run on every backend.

use std::sync::Arc;

use hubbub::model::{ConversationId, MessageId, SessionId, User, now_ms};
use hubbub::snowflake::{Generator, floor_for_ms};
use hubbub::store::Store;
use hubbub::store::push::{Device, DeviceId, DeviceTarget, Enqueued, IntakeCursor, Preview, PushJob, Registered};

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

/// No upper bound for [`Store::push_intake`].
const ALL: MessageId = MessageId(i64::MAX);

pub async fn push_intake_goes_with_the_message_and_batches_once(s: Arc<dyn Store>) {
    // The worker id is the intake partition: unique to this case.
    let ids = Generator::new(211);
    let (ann, bob) = (user(&ids, "pi_ann"), user(&ids, "pi_bob"));
    s.create_user(&ann).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let (ann, bob) = (ann.user, bob.user);
    let dev = webpush(&ids, &bob, "s1", "https://push.example/pi");
    s.add_device(&dev, 5).await.unwrap();
    let node = i64::from(hubbub::snowflake::worker_of(ids.next_id()));
    let first = s.insert_message(&super::dm(&ids, &ann, &bob, "hello", None)).await.unwrap();
    assert!(first.push_intake, "a message to a user with a device says it wrote an intake entry");
    let first = first.message;
    let second = s.insert_message(&super::dm(&ids, &ann, &bob, "again", None)).await.unwrap().message;
    // Both entries, oldest first, each with its message as stored.
    let entries = s.push_intake(node, MessageId(0), ALL, 10).await.unwrap();
    let got: Vec<_> = entries.iter().map(|e| (e.id, e.message.as_ref().map(|m| m.text.as_str()))).collect();
    assert_eq!(got, vec![(first.id, Some("hello")), (second.id, Some("again"))]);
    assert_eq!(s.push_intake(node, first.id, ALL, 10).await.unwrap().len(), 1, "above the cursor only");
    let upto_first = s.push_intake(node, MessageId(0), first.id, 10).await.unwrap();
    assert_eq!(upto_first.iter().map(|e| e.id).collect::<Vec<_>>(), [first.id], "at most `upto`");
    assert_eq!(s.push_intake(node, MessageId(0), ALL, 1).await.unwrap().len(), 1, "bounded");
    let jobs: Vec<PushJob> =
        [&first, &second].iter().map(|m| job(dev.id, &bob, &format!("m:{}", m.id.0), m.id.0, &m.text)).collect();
    let done = [first.id, second.id];
    let out = s.enqueue_push_batch(&jobs, 10, &done).await.unwrap();
    assert_eq!(out, vec![Enqueued::New, Enqueued::New]);
    assert!(s.push_intake(node, MessageId(0), ALL, 10).await.unwrap().is_empty(), "entries deleted with the batch");
    // The same batch again (a retry after an error): nothing counted twice.
    let out = s.enqueue_push_batch(&jobs, 10, &done).await.unwrap();
    assert_eq!(out, vec![Enqueued::Merged, Enqueued::Merged]);
    let claimed = s.claim_push("node-pi", now_ms(), 60_000, 10).await.unwrap();
    let mut counts: Vec<_> = claimed.iter().filter(|j| j.device == dev.id).map(|j| (j.message, j.count)).collect();
    counts.sort();
    assert_eq!(counts, vec![(first.id, 1), (second.id, 1)]);
    // Two messages merging under one key in one batch: one job, count 2.
    let gw = |m: &hubbub::model::Message| job(dev.id, &bob, "c:pi", m.id.0, &m.text);
    let third = s.insert_message(&super::dm(&ids, &ann, &bob, "three", None)).await.unwrap().message;
    let fourth = s.insert_message(&super::dm(&ids, &ann, &bob, "four", None)).await.unwrap().message;
    let out = s.enqueue_push_batch(&[gw(&third), gw(&fourth)], 10, &[third.id, fourth.id]).await.unwrap();
    assert_eq!(out.iter().filter(|o| **o == Enqueued::New).count(), 1);
    let merged = s.claim_push("node-pi", now_ms(), 60_000, 10).await.unwrap();
    let c = merged.iter().find(|j| j.collapse == "c:pi").unwrap();
    assert_eq!((c.message, c.count, c.text.as_str()), (fourth.id, 2, "four"));
    // A repeated nonce writes nothing, so nothing for the intake either
    // (the sender's push wake-up depends on it).
    let once = s.insert_message(&super::dm(&ids, &ann, &bob, "once", Some("pi-nonce"))).await.unwrap();
    assert!(once.created && once.push_intake);
    let again = s.insert_message(&super::dm(&ids, &ann, &bob, "once", Some("pi-nonce"))).await.unwrap();
    assert!(!again.created && !again.push_intake, "a repeat says it wrote no intake entry");
    // To a user with no device: a backend may skip the entry (SQLite does),
    // but `push_intake` says truly whether there is one.
    let carl = user(&ids, "pi_carl");
    s.create_user(&carl).await.unwrap();
    let to_carl = s.insert_message(&super::dm(&ids, &ann, &carl.user, "no device", None)).await.unwrap();
    let entries = s.push_intake(node, MessageId(0), ALL, 100).await.unwrap();
    assert!(entries.iter().any(|e| e.id == once.message.id));
    assert_eq!(entries.iter().any(|e| e.id == to_carl.message.id), to_carl.push_intake);
}

pub async fn intake_cursors_only_grow(s: Arc<dyn Store>) {
    // Worker ids unique to this case (cursors are per node).
    let (node, racing, other) = (212, 213, 214);
    // Never saved: no stored cursor; maybe the store's floor, which lies
    // in the past (CQL: this keyspace's intake table was just created).
    match s.intake_cursor(node).await.unwrap() {
        None => {}
        Some(IntakeCursor::Floor(f)) => {
            assert!(f.0 <= floor_for_ms(now_ms()) && f.0 >= floor_for_ms(now_ms() - 3_600_000), "{f:?}");
        }
        Some(c) => panic!("nothing was saved: {c:?}"),
    }
    let at = |v| Some(IntakeCursor::Stored(MessageId(v)));
    s.save_intake_cursor(node, MessageId(1_000)).await.unwrap();
    assert_eq!(s.intake_cursor(node).await.unwrap(), at(1_000));
    s.save_intake_cursor(node, MessageId(500)).await.unwrap();
    assert_eq!(s.intake_cursor(node).await.unwrap(), at(1_000), "a lower cursor never overwrites a higher one");
    s.save_intake_cursor(node, MessageId(1_000)).await.unwrap();
    s.save_intake_cursor(node, MessageId(2_000)).await.unwrap();
    assert_eq!(s.intake_cursor(node).await.unwrap(), at(2_000));
    // Racing saves, the first ones included: the highest wins.
    let values = [7_000, 3_000, 9_000, 1_000, 8_000, 2_000, 9_000, 4_000];
    let saves = values.iter().map(|v| s.save_intake_cursor(racing, MessageId(*v)));
    for r in futures_util::future::join_all(saves).await {
        r.unwrap();
    }
    assert_eq!(s.intake_cursor(racing).await.unwrap(), at(9_000));
    assert!(!matches!(s.intake_cursor(other).await.unwrap(), Some(IntakeCursor::Stored(_))), "per node");
}

pub async fn racing_device_registrations_respect_the_limit(s: Arc<dyn Store>) {
    let ids = Generator::new(212);
    let creds = user(&ids, "pr_ann");
    s.create_user(&creds).await.unwrap();
    let ann = creds.user;
    for round in 0..3 {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let (s, d) = (s.clone(), webpush(&ids, &ann, "s1", &format!("https://push.example/r{round}-{i}")));
                tokio::spawn(async move { s.add_device(&d, 3).await.unwrap() })
            })
            .collect();
        let mut new = 0;
        for r in racers {
            if matches!(r.await.unwrap(), Registered::New(_)) {
                new += 1;
            }
        }
        let held = s.devices(ann.id).await.unwrap();
        assert_eq!(held.len(), 3, "round {round}: never above the limit");
        assert_eq!(new, if round == 0 { 3 } else { 1 }, "round {round}: every free place is taken");
        // Free one place for the next round.
        assert!(s.remove_device(ann.id, held[0].id).await.unwrap());
    }
    // Removing all frees every place.
    s.remove_devices(ann.id, None).await.unwrap();
    for i in 0..3 {
        let d = webpush(&ids, &ann, "s2", &format!("https://push.example/again{i}"));
        assert!(matches!(s.add_device(&d, 3).await.unwrap(), Registered::New(_)));
    }
}

pub async fn push_jobs_complete_in_one_call(s: Arc<dyn Store>) {
    let ids = Generator::new(11);
    let ann = user(&ids, "pb_ann").user;
    let dev = DeviceId(ids.next_id());
    for (key, message) in [("m:1", 1), ("m:2", 2), ("m:3", 3)] {
        assert_eq!(s.enqueue_push(&job(dev, &ann, key, message, "x"), 10).await.unwrap(), Enqueued::New);
    }
    assert!(s.complete_push_batch(&[], "node-a").await.unwrap().is_empty());
    let now = now_ms();
    let mut claimed = s.claim_push("node-a", now, 60_000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.collapse.cmp(&b.collapse));
    assert_eq!(claimed.iter().map(|j| j.collapse.as_str()).collect::<Vec<_>>(), ["m:1", "m:2", "m:3"]);
    // m:2 takes a newer message while its send is in flight.
    assert_eq!(s.enqueue_push(&job(dev, &ann, "m:2", 5, "later"), 10).await.unwrap(), Enqueued::Merged);
    // One answer per job, in order: the merged one is kept and due again.
    assert_eq!(s.complete_push_batch(&claimed, "node-a").await.unwrap(), [true, false, true]);
    assert_eq!(s.push_depth().await.unwrap(), 1);
    let again = s.claim_push("node-b", now + 1, 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].message, again[0].text.as_str(), again[0].count), (MessageId(5), "later", 2));
    // The same batch completed again (a retried call) changes nothing:
    // node-b's lease is not node-a's to release.
    assert_eq!(s.complete_push_batch(&claimed, "node-a").await.unwrap(), [false, false, false]);
    assert!(s.claim_push("node-c", now + 2, 60_000, 10).await.unwrap().is_empty());
    assert_eq!(s.complete_push_batch(&again, "node-b").await.unwrap(), [true]);
    assert_eq!(s.push_depth().await.unwrap(), 0);
}
