//! A socket's bounded outbound queue: frames the hub and the handlers
//! queue for the socket's task to write.
//!
//! Not tokio's bounded channel, for memory: that one allocates its shared
//! state and a first block of 32 slots when it is created (~0.8 KiB per
//! socket, paid by every idle socket); this one is a small shared record
//! whose buffer grows with use and is given back when the queue drains.
//! One lock guards the frames and the waiting task's waker; the critical
//! sections are a push or a pop.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Capacity kept by a queue that has drained; more is given back.
const KEEP: usize = 16;

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The queue holds its limit: the socket is not keeping up.
    Full,
    /// The socket's task has ended.
    Closed,
}

struct State {
    frames: VecDeque<Utf8Bytes>,
    waker: Option<Waker>,
    receiver_alive: bool,
}

struct Shared {
    state: Mutex<State>,
    limit: usize,
    senders: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a single push or pop: a poisoned lock
        // still holds a consistent queue.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A queue of at most `limit` frames (at least 1): its sending handle
/// (cloneable) and its one receiver.
pub fn channel(limit: usize) -> (OutSender, OutReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { frames: VecDeque::new(), waker: None, receiver_alive: true }),
        limit: limit.max(1),
        senders: AtomicUsize::new(1),
    });
    (OutSender { shared: shared.clone() }, OutReceiver { shared })
}

/// Queues frames for one socket; never waits.
pub struct OutSender {
    shared: Arc<Shared>,
}

impl OutSender {
    /// Queues `frame` unless the queue is full or its socket has ended.
    pub fn try_send(&self, frame: Utf8Bytes) -> Result<(), TrySendError> {
        let waker = {
            let mut s = self.shared.lock();
            if !s.receiver_alive {
                return Err(TrySendError::Closed);
            }
            if s.frames.len() >= self.shared.limit {
                return Err(TrySendError::Full);
            }
            s.frames.push_back(frame);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Room left now.
    pub fn capacity(&self) -> usize {
        self.shared.limit.saturating_sub(self.shared.lock().frames.len())
    }

    /// The queue's limit.
    pub fn max_capacity(&self) -> usize {
        self.shared.limit
    }
}

impl Clone for OutSender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        OutSender { shared: self.shared.clone() }
    }
}

impl Drop for OutSender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last sender: a waiting receiver learns the queue is done.
            let waker = self.shared.lock().waker.take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl std::fmt::Debug for OutSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutSender").field("limit", &self.shared.limit).finish()
    }
}

/// The socket's end of its queue.
pub struct OutReceiver {
    shared: Arc<Shared>,
}

impl OutReceiver {
    /// The next frame, waiting for one; `None` once every sender is gone
    /// and the queue is empty.
    pub async fn recv(&mut self) -> Option<Utf8Bytes> {
        poll_fn(|cx| {
            let mut s = self.shared.lock();
            if let Some(f) = pop(&mut s) {
                return Poll::Ready(Some(f));
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                return Poll::Ready(None);
            }
            match &s.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => s.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Utf8Bytes> {
        pop(&mut self.shared.lock())
    }
}

impl Drop for OutReceiver {
    fn drop(&mut self) {
        let mut s = self.shared.lock();
        s.receiver_alive = false;
        s.frames = VecDeque::new();
    }
}

/// Pops the oldest frame; a drained queue gives back a grown buffer.
fn pop(s: &mut State) -> Option<Utf8Bytes> {
    let f = s.frames.pop_front();
    if s.frames.is_empty() && s.frames.capacity() > KEEP {
        s.frames = VecDeque::new();
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(s)
    }

    #[tokio::test]
    async fn frames_come_out_in_order_up_to_the_limit() {
        let (tx, mut rx) = channel(2);
        assert_eq!(tx.try_send(f("a")), Ok(()));
        assert_eq!(tx.try_send(f("b")), Ok(()));
        assert_eq!(tx.try_send(f("c")), Err(TrySendError::Full));
        assert_eq!(tx.capacity(), 0);
        assert_eq!(rx.recv().await.as_deref(), Some("a"));
        assert_eq!(tx.capacity(), 1);
        assert_eq!(rx.try_recv().as_deref(), Some("b"));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_on_a_frame_and_ends_with_the_last_sender() {
        let (tx, mut rx) = channel(4);
        let tx2 = tx.clone();
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let end = rx.recv().await;
            (first, end)
        });
        tokio::task::yield_now().await;
        tx2.try_send(f("x")).unwrap();
        drop(tx2);
        drop(tx);
        let (first, end) = waiter.await.unwrap();
        assert_eq!(first.as_deref(), Some("x"));
        assert_eq!(end, None);
    }

    #[test]
    fn a_gone_receiver_refuses_frames() {
        let (tx, rx) = channel(4);
        drop(rx);
        assert_eq!(tx.try_send(f("x")), Err(TrySendError::Closed));
    }

    #[test]
    fn a_drained_queue_gives_its_buffer_back() {
        let (tx, mut rx) = channel(1000);
        for _ in 0..100 {
            tx.try_send(f("x")).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(tx.shared.lock().frames.capacity(), 0);
    }
}
