//! Server heartbeats: a WebSocket ping every `--ping-interval` seconds on
//! every socket, and the rule that closes a peer that stopped answering.
//!
//! Why: reverse proxies and mobile networks drop sockets that carry no
//! bytes for a while (nginx's `proxy_read_timeout` is 60 s by default), and
//! a peer that vanished without a FIN would otherwise hold its socket
//! until a write times out. A ping from the server keeps the path warm and
//! its pong (or any other frame) proves the peer is alive.
//!
//! The rule: a ping is sent each interval; `misses` pings in a row with no
//! frame at all from the peer in between close the socket with
//! [`crate::protocol::close::PING_TIMEOUT`]. A peer is therefore closed at
//! most `(misses + 1) × interval` after the last frame it sent. Pure state,
//! no I/O: the connection's loop asks [`Heartbeat::due`] when to wake and
//! acts on what [`Heartbeat::tick`] says.

use std::time::Duration;

use tokio::time::Instant;

/// How far away "never" is when heartbeats are off (tokio timers accept
/// any instant; a year is far enough and cannot overflow).
const OFF: Duration = Duration::from_secs(365 * 24 * 3600);

/// What the connection does when the heartbeat timer fires.
#[derive(Debug, PartialEq, Eq)]
pub enum Beat {
    /// Send a ping frame now.
    Ping,
    /// The peer left `misses` pings unanswered: close it.
    Dead,
}

/// One socket's heartbeat state.
#[derive(Debug)]
pub struct Heartbeat {
    interval: Option<Duration>,
    misses: u32,
    unanswered: u32,
    next: Instant,
}

impl Heartbeat {
    /// Heartbeats every `interval` (`None` or zero: never), closing after
    /// `misses` unanswered pings (at least 1).
    pub fn new(interval: Option<Duration>, misses: u32) -> Self {
        let interval = interval.filter(|d| !d.is_zero());
        let next = Instant::now() + interval.unwrap_or(OFF);
        Heartbeat { interval, misses: misses.max(1), unanswered: 0, next }
    }

    /// True when this socket sends pings at all.
    pub fn enabled(&self) -> bool {
        self.interval.is_some()
    }

    /// When the connection should call [`Self::tick`] next.
    pub fn due(&self) -> Instant {
        self.next
    }

    /// The peer sent a frame (a pong or anything else): it is alive.
    pub fn heard(&mut self) {
        self.unanswered = 0;
    }

    /// The timer fired: ping again, or give up on the peer.
    pub fn tick(&mut self) -> Beat {
        let Some(interval) = self.interval else {
            self.next = Instant::now() + OFF;
            return Beat::Ping;
        };
        if self.unanswered >= self.misses {
            return Beat::Dead;
        }
        self.unanswered += 1;
        self.next = Instant::now() + interval;
        Beat::Ping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_after_misses_unanswered_pings() {
        let mut h = Heartbeat::new(Some(Duration::from_secs(1)), 2);
        assert_eq!(h.tick(), Beat::Ping);
        assert_eq!(h.tick(), Beat::Ping);
        assert_eq!(h.tick(), Beat::Dead);
    }

    #[test]
    fn any_frame_resets_the_count() {
        let mut h = Heartbeat::new(Some(Duration::from_secs(1)), 2);
        for _ in 0..10 {
            assert_eq!(h.tick(), Beat::Ping);
            h.heard();
        }
        assert_eq!(h.tick(), Beat::Ping);
        assert_eq!(h.tick(), Beat::Ping);
        assert_eq!(h.tick(), Beat::Dead);
    }

    #[test]
    fn zero_interval_is_off() {
        let h = Heartbeat::new(Some(Duration::ZERO), 2);
        assert!(!h.enabled());
        assert!(h.due() > Instant::now() + Duration::from_secs(3600));
    }
}
