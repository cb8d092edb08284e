use std::sync::Arc;

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::conn::history;
use super::payload::{encode_close, encode_frame};
use super::*;
use crate::protocol::close;

fn handle(id: u64, session: &str, cap: usize) -> (ConnHandle, outq::OutReceiver) {
    let (tx, rx) = outq::channel(cap);
    (ConnHandle::new(ConnId(id), SessionId(session.into()), tx, Arc::new(ConnControl::default())), rx)
}

fn pos(epoch: &str, offset: u64) -> Option<Position> {
    Some(Position { epoch: epoch.into(), offset })
}

fn live(h: &ConnHandle, epoch: &str, last: u64) {
    h.hold_from(pos(epoch, last));
    h.release(Ok(history(epoch, last, vec![], true)), None);
}

fn offsets(rx: &mut outq::OutReceiver) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Some(f) = rx.try_recv() {
        let v: serde_json::Value = serde_json::from_str(f.as_str()).unwrap();
        out.push(if v["event"] == "sync.needed" { serde_json::json!("sync") } else { v["pos"]["offset"].clone() });
    }
    out
}

#[test]
fn frames_reach_every_socket_but_the_excepted_one_stamped_with_their_position() {
    let hub = LocalHub::new(16);
    let (a, mut ra) = handle(1, "s1", 4);
    let (b, mut rb) = handle(2, "s2", 4);
    live(&a, "e", 0);
    live(&b, "e", 0);
    hub.users.insert(UserId(7), vec![a.clone(), b]);
    let frame = Utf8Bytes::from("{\"x\":1}");
    hub.deliver("ib:7", pos("e", 1), encode_frame(Some(ConnId(1)), &frame));
    assert!(ra.try_recv().is_none());
    assert_eq!(rb.try_recv().unwrap().as_str(), "{\"x\":1,\"pos\":{\"epoch\":\"e\",\"offset\":1}}");
    // The excepted socket's position moved all the same: no gap next time.
    assert_eq!(a.position(), (Some("e".into()), 1));
}

#[test]
fn a_full_queue_closes_only_that_socket() {
    let hub = LocalHub::new(16);
    let (a, _ra) = handle(1, "s1", 1);
    let (b, _rb) = handle(2, "s2", 8);
    let (ca, cb) = (a.control.clone(), b.control.clone());
    hub.users.insert(UserId(7), vec![a, b]);
    let frame = Utf8Bytes::from("{}");
    for i in 1..=3 {
        hub.deliver("ib:7", pos("e", i), encode_frame(None, &frame));
    }
    assert_eq!(ca.requested().map(|r| r.0), Some(close::SLOW_CONSUMER));
    assert!(cb.requested().is_none());
}

#[test]
fn close_targets_pick_the_right_sessions() {
    let hub = LocalHub::new(16);
    let (a, _ra) = handle(1, "s1", 1);
    let (b, _rb) = handle(2, "s2", 1);
    let (ca, cb) = (a.control.clone(), b.control.clone());
    hub.users.insert(UserId(7), vec![a, b]);
    hub.deliver("ib:7", pos("e", 1), encode_close(4500, &CloseTarget::Session(SessionId("s2".into()))));
    assert!(ca.requested().is_none());
    assert_eq!(cb.requested().map(|r| r.0), Some(4500));
    hub.deliver("ib:7", pos("e", 2), encode_close(4500, &CloseTarget::AllExcept(Some(SessionId("s2".into())))));
    assert_eq!(ca.requested().map(|r| r.0), Some(4500));
}

#[test]
fn duplicates_are_dropped_and_a_gap_is_filled_from_history_in_order() {
    let hub = LocalHub::new(16);
    let (a, mut ra) = handle(1, "s1", 16);
    live(&a, "e", 0);
    hub.users.insert(UserId(7), vec![a.clone()]);
    let f = |n: u64| encode_frame(None, &Utf8Bytes::from(format!("{{\"n\":{n}}}")));
    hub.deliver("ib:7", pos("e", 1), f(1));
    hub.deliver("ib:7", pos("e", 1), f(1));
    hub.deliver("ib:7", pos("e", 4), f(4)); // 2 and 3 were lost
    hub.deliver("ib:7", pos("e", 5), f(5)); // held while the gap is open
    assert_eq!(hub.take_fills(), vec![UserId(7)]);
    let h = history("e", 5, (2..=5).map(|n| (n, f(n))).collect(), true);
    let r = a.release(Ok(h), Some("gap"));
    assert!(r.recovered && !r.refill);
    assert_eq!(offsets(&mut ra), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_gap_history_no_longer_covers_asks_the_client_to_sync() {
    let hub = LocalHub::new(16);
    let (a, mut ra) = handle(1, "s1", 16);
    live(&a, "e", 0);
    hub.users.insert(UserId(7), vec![a.clone()]);
    let f = |n: u64| encode_frame(None, &Utf8Bytes::from(format!("{{\"n\":{n}}}")));
    hub.deliver("ib:7", pos("e", 9), f(9));
    let r = a.release(Ok(history("e", 9, vec![(9, f(9))], false)), Some("gap"));
    assert!(!r.recovered);
    assert_eq!(offsets(&mut ra), vec![serde_json::json!("sync")]);
    assert_eq!(r.position, pos("e", 9));
    // A new epoch (history lost) also asks for a sync, then delivers.
    hub.deliver("ib:7", pos("f", 1), f(1));
    assert_eq!(offsets(&mut ra), vec![serde_json::json!("sync"), serde_json::json!(1)]);
}

#[test]
fn resync_holds_every_socket_and_queues_every_user() {
    let hub = LocalHub::new(16);
    let (a, _ra) = handle(1, "s1", 16);
    live(&a, "e", 3);
    hub.users.insert(UserId(7), vec![a.clone()]);
    hub.resync();
    assert!(a.holding());
    assert_eq!(hub.take_fills(), vec![UserId(7)]);
    let _ = Bytes::new();
}

#[test]
fn a_resume_judged_by_a_racing_gap_fill_is_not_recovered() {
    // A broker reconnect holds every socket and fills their gaps; a socket
    // attaching with an unknown epoch at that moment is released twice: by
    // the fill (which finds the epoch gone, asks for a sync and moves the
    // socket to the current epoch) and then by the attach itself.
    let (a, mut ra) = handle(1, "s1", 16);
    a.hold_from(pos("old", 1));
    assert!(!a.hold());
    let fill = a.release(Ok(history("cur", 3, vec![], true)), Some("gap"));
    assert!(!fill.recovered);
    let attach = a.release(Ok(history("cur", 3, vec![], true)), None);
    assert!(attach.recovered, "the second release finds the socket current");
    assert!(!a.resumed(), "but the resume position was not honoured");
    assert_eq!(offsets(&mut ra), vec![serde_json::json!("sync")]);

    // An honoured resume stays honoured.
    let (b, _rb) = handle(2, "s2", 16);
    b.hold_from(pos("cur", 3));
    assert!(b.release(Ok(history("cur", 3, vec![], true)), None).recovered);
    assert!(b.resumed());
}
