//! Pipelining: one socket's `message.send` requests run side by side, so a
//! client that sends faster than one commit per request does not wait for
//! each (their writes share the SQLite writer's group commits).
//!
//! What is serialized, per socket:
//! - sends to **one conversation** (the same `to` name, or the same
//!   `conversation` id): each starts only after the previous one was
//!   stored, published and answered, so they are stored and delivered in
//!   the order sent. Sends to different conversations overlap, and their
//!   replies may come in any order (the request `id` matches them).
//! - **every other request kind** runs alone: it waits until every send
//!   in flight is answered, and nothing read after it starts before it is
//!   answered (so an `auth.*`, an edit, a `typing.*` or a `ping` sees
//!   every earlier request of the socket done).
//!
//! Bounded: at most [`MAX_IN_FLIGHT`] sends per socket, running or queued
//! behind their conversation. At the bound the socket is not read until
//! one is answered (TCP backpressure); the per-socket rate limit still
//! answers a flood with `rate_limited`. The queued requests are parsed
//! frames, at most the frame limit each.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{Sink, StreamExt};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::{Parsed, reply_frame};
use crate::app::App;
use crate::handlers::ConnState;
use crate::handlers::detached::{self, Sender};
use crate::protocol::{MessageSend, Request};

/// Most `message.send` requests of one socket in flight (running, or
/// queued behind an earlier send to the same conversation).
pub const MAX_IN_FLIGHT: usize = 32;

/// Longest wait for the sends still in flight when a socket ends.
const FINISH_LIMIT: Duration = Duration::from_secs(30);

type Job = Pin<Box<dyn Future<Output = (String, Utf8Bytes)> + Send>>;

/// One socket's requests in flight. Nothing is allocated while none is
/// (most sockets are idle most of the time): the lanes exist from the
/// first send until the last reply.
#[derive(Default)]
pub struct Pipeline {
    lanes: Option<Box<Lanes>>,
}

#[derive(Default)]
struct Lanes {
    running: FuturesUnordered<Job>,
    /// Conversations with a send running.
    busy: HashSet<String>,
    /// Sends waiting for their conversation's running send, in arrival order.
    waiting: VecDeque<(String, Job)>,
}

impl Pipeline {
    /// Whether another request may be read (fewer than [`MAX_IN_FLIGHT`]).
    pub fn has_room(&self) -> bool {
        self.lanes.as_ref().is_none_or(|l| l.running.len() + l.waiting.len() < MAX_IN_FLIGHT)
    }

    /// Starts `p` beside the others when it is a `message.send` on an
    /// authenticated socket (its reply comes from [`Pipeline::next_reply`]);
    /// else gives it back, to run alone after [`Pipeline::drain`].
    pub fn offer(&mut self, app: &Arc<App>, conn: &ConnState, p: Parsed) -> Option<Parsed> {
        let Some(auth) = conn.auth.clone() else { return Some(p) };
        let Parsed { id, kind, started, req } = p;
        let r = match req {
            Request::MessageSend(r) => r,
            req => return Some(Parsed { id, kind, started, req }),
        };
        let key = conversation_key(&r);
        let who = Sender { conn: conn.id, auth, control: conn.control.clone() };
        let app = app.clone();
        let job_key = key.clone();
        self.submit(
            key,
            Box::pin(async move {
                let result = detached::message_send(&app, &who, r).await;
                (job_key, reply_frame(&id, kind, started, result))
            }),
        );
        None
    }

    /// Runs `job` now, or after the running job of the same `key`.
    fn submit(&mut self, key: String, job: Job) {
        let lanes = self.lanes.get_or_insert_with(Box::default);
        if lanes.busy.contains(&key) {
            lanes.waiting.push_back((key, job));
        } else {
            lanes.busy.insert(key);
            lanes.running.push(job);
        }
    }

    /// The next reply of a send in flight; pending forever when none is.
    pub async fn next_reply(&mut self) -> Utf8Bytes {
        let Some(lanes) = self.lanes.as_mut() else { return std::future::pending().await };
        match lanes.running.next().await {
            Some((key, frame)) => {
                lanes.release(key);
                if lanes.running.is_empty() && lanes.waiting.is_empty() {
                    self.lanes = None;
                }
                frame
            }
            None => std::future::pending().await,
        }
    }

    /// Whether no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.lanes.as_ref().is_none_or(|l| l.running.is_empty() && l.waiting.is_empty())
    }

    /// Runs every send in flight to its end, writing each reply; `false`
    /// when a write failed (the socket is gone).
    pub async fn drain<S>(&mut self, sink: &mut S, limit: Duration) -> bool
    where
        S: Sink<Message, Error = WsError> + Unpin,
    {
        while !self.is_empty() {
            let frame = self.next_reply().await;
            if !super::write_text(sink, frame, limit).await {
                return false;
            }
        }
        true
    }

    /// Lets the sends in flight finish when the socket ended (their writes
    /// were handed to the store; they are published, never acknowledged).
    pub async fn finish(mut self) {
        let work = async {
            while !self.is_empty() {
                self.next_reply().await;
            }
        };
        let _ = timeout(FINISH_LIMIT, work).await;
    }
}

impl Lanes {
    /// `key`'s send ended: start the next one queued for it, if any.
    fn release(&mut self, key: String) {
        match self.waiting.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                if let Some((_, job)) = self.waiting.remove(i) {
                    self.running.push(job);
                }
            }
            None => {
                self.busy.remove(&key);
            }
        }
    }
}

/// The conversation a send goes to, as the client named it.
fn conversation_key(r: &MessageSend) -> String {
    match (&r.to, &r.conversation) {
        (Some(to), _) => {
            let mut key = String::with_capacity(3 + to.len());
            key.push_str("to:");
            key.extend(to.chars().flat_map(char::to_lowercase));
            key
        }
        (None, Some(c)) => crate::model::join_id(&["c:", c]),
        // Invalid (answered bad_request): any key will do.
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A job of `key` that logs `name` when it starts and when it ends.
    fn job(log: &Arc<Mutex<Vec<String>>>, key: &str, name: &str) -> Job {
        let (log, key, name) = (log.clone(), key.to_owned(), name.to_owned());
        Box::pin(async move {
            log.lock().unwrap().push(format!("start {name}"));
            tokio::task::yield_now().await;
            log.lock().unwrap().push(format!("end {name}"));
            (key, Utf8Bytes::from(name))
        })
    }

    #[tokio::test]
    async fn one_key_runs_in_order_and_others_overlap() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut p = Pipeline::default();
        for (key, name) in [("a", "a1"), ("b", "b1"), ("a", "a2"), ("a", "a3")] {
            p.submit(key.into(), job(&log, key, name));
        }
        let mut replies = Vec::new();
        while !p.is_empty() {
            replies.push(p.next_reply().await.to_string());
        }
        let log = log.lock().unwrap().clone();
        let at = |e: &str| log.iter().position(|l| l == e).unwrap();
        assert!(at("end a1") < at("start a2") && at("end a2") < at("start a3"), "{log:?}");
        assert!(at("start b1") < at("end a1"), "different keys overlap: {log:?}");
        let a: Vec<_> = replies.iter().filter(|r| r.starts_with('a')).collect();
        assert_eq!(a, ["a1", "a2", "a3"]);
        assert_eq!(replies.len(), 4);
        assert!(p.lanes.is_none(), "the lanes go once the last reply is out");
    }

    #[tokio::test]
    async fn the_bound_counts_running_and_queued() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut p = Pipeline::default();
        for i in 0..MAX_IN_FLIGHT {
            assert!(p.has_room());
            let key = if i % 2 == 0 { "same".to_owned() } else { format!("k{i}") };
            p.submit(key.clone(), job(&log, &key, &i.to_string()));
        }
        assert!(!p.has_room());
        p.next_reply().await;
        assert!(p.has_room());
    }
}
