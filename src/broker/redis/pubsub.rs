//! One pub/sub link per Redis instance: a task that owns the connection,
//! applies subscribe/unsubscribe requests in batches, hands messages to the
//! sink, and on a lost link reconnects with backoff, resubscribes every
//! channel still wanted, and tells the sink it may have missed messages.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::timeout;

use crate::broker::{BrokerSink, Position};
use crate::error::BrokerError;

/// Prefix of every pub/sub channel and key hubbub uses in Redis.
pub const PREFIX: &str = "hubbub:";

/// Requests waiting for the link task, per instance.
pub const QUEUE: usize = 4096;

/// Channels per SUBSCRIBE/UNSUBSCRIBE command.
const BATCH: usize = 512;

/// Asks the link to bring `channel` in line with [`BrokerSink::wants`].
pub struct Reconcile {
    pub channel: String,
    pub done: oneshot::Sender<Result<(), BrokerError>>,
}

/// What the link task needs.
pub struct Link {
    pub client: redis::Client,
    pub sink: Arc<dyn BrokerSink>,
    pub requests: mpsc::Receiver<Reconcile>,
    pub stop: watch::Receiver<bool>,
    pub timeout: Duration,
}

fn unavailable(what: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(what.to_string())
}

/// Splits a published message into its position (if any) and payload.
pub fn decode(raw: &[u8]) -> Option<(Option<Position>, Bytes)> {
    let nl = raw.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&raw[..nl]).ok()?;
    let payload = Bytes::copy_from_slice(&raw[nl + 1..]);
    if header == "v" {
        return Some((None, payload));
    }
    let (epoch, offset) = header.split_once(' ')?;
    Some((Some(Position { epoch: epoch.to_owned(), offset: offset.parse().ok()? }), payload))
}

impl Link {
    /// Runs until stopped.
    pub async fn run(mut self) {
        let mut desired: HashSet<String> = HashSet::new();
        let mut backoff = Duration::from_millis(100);
        let mut connected_before = false;
        loop {
            if *self.stop.borrow() {
                return;
            }
            match self.serve(&mut desired, connected_before).await {
                Served::Stopped => return,
                Served::Lost(why) => {
                    if connected_before {
                        tracing::warn!(error = %why, "redis pub/sub link lost; reconnecting");
                    }
                }
                Served::NeverUp(why) => tracing::warn!(error = %why, ?backoff, "redis pub/sub link down; retrying"),
                Served::WasUp(why) => {
                    connected_before = true;
                    backoff = Duration::from_millis(100);
                    tracing::warn!(error = %why, "redis pub/sub link lost; reconnecting");
                }
            }
            if self.wait_out(&mut desired, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Sleeps `d` while answering requests with "unavailable" (remembering
    /// the channels, so the next link subscribes them). True when stopped.
    async fn wait_out(&mut self, desired: &mut HashSet<String>, d: Duration) -> bool {
        let until = tokio::time::Instant::now() + d;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return false,
                _ = self.stop.changed() => return true,
                r = self.requests.recv() => match r {
                    None => return true,
                    Some(r) => {
                        if self.sink.wants(&r.channel) {
                            desired.insert(r.channel);
                        } else {
                            desired.remove(&r.channel);
                        }
                        let _ = r.done.send(Err(unavailable("redis pub/sub link is down")));
                    }
                },
            }
        }
    }

    async fn serve(&mut self, desired: &mut HashSet<String>, was_up: bool) -> Served {
        let ps = match timeout(self.timeout, self.client.get_async_pubsub()).await {
            Ok(Ok(ps)) => ps,
            Ok(Err(e)) => return if was_up { Served::Lost(e.to_string()) } else { Served::NeverUp(e.to_string()) },
            Err(_) => return Served::NeverUp("connect timed out".into()),
        };
        let (mut tx, mut rx) = ps.split();
        desired.retain(|c| self.sink.wants(c));
        let all: Vec<String> = desired.iter().map(|c| format!("{PREFIX}{c}")).collect();
        for chunk in all.chunks(BATCH) {
            match timeout(self.timeout, tx.subscribe(chunk.to_vec())).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Served::Lost(e.to_string()),
                Err(_) => return Served::Lost("resubscribe timed out".into()),
            }
        }
        // Channels wanted before this link was up may have missed messages
        // (after an outage, or a first connect that came late).
        if was_up || !desired.is_empty() {
            tracing::info!(channels = desired.len(), "redis pub/sub link up; resubscribed");
            self.sink.resync();
        }
        loop {
            tokio::select! {
                m = rx.next() => match m {
                    None => return Served::WasUp("connection closed".into()),
                    Some(msg) => self.handle(&msg),
                },
                r = self.requests.recv() => match r {
                    None => return Served::Stopped,
                    Some(first) => {
                        if let Err(e) = self.apply(&mut tx, desired, first).await {
                            return Served::WasUp(e.to_string());
                        }
                    }
                },
                _ = self.stop.changed() => return Served::Stopped,
            }
        }
    }

    fn handle(&self, msg: &redis::Msg) {
        let Some(channel) = msg.get_channel_name().strip_prefix(PREFIX) else { return };
        match decode(msg.get_payload_bytes()) {
            Some((pos, payload)) => self.sink.deliver(channel, pos, payload),
            None => tracing::warn!(channel, "redis: ignoring a malformed pub/sub message"),
        }
    }

    /// Applies `first` and whatever else is queued, as one SUBSCRIBE and one
    /// UNSUBSCRIBE (per batch), then answers every request.
    async fn apply(
        &mut self,
        tx: &mut redis::aio::PubSubSink,
        desired: &mut HashSet<String>,
        first: Reconcile,
    ) -> Result<(), BrokerError> {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match self.requests.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (mut sub, mut unsub) = (Vec::new(), Vec::new());
        for r in &batch {
            let wanted = self.sink.wants(&r.channel);
            if wanted && desired.insert(r.channel.clone()) {
                sub.push(format!("{PREFIX}{}", r.channel));
            } else if !wanted && desired.remove(&r.channel) {
                unsub.push(format!("{PREFIX}{}", r.channel));
            }
        }
        let mut result = Ok(());
        if !sub.is_empty() {
            result = match timeout(self.timeout, tx.subscribe(sub)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(unavailable(e)),
                Err(_) => Err(unavailable("subscribe timed out")),
            };
        }
        if result.is_ok() && !unsub.is_empty() {
            result = match timeout(self.timeout, tx.unsubscribe(unsub)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(unavailable(e)),
                Err(_) => Err(unavailable("unsubscribe timed out")),
            };
        }
        for r in batch {
            let _ = r.done.send(result.as_ref().map(|_| ()).map_err(unavailable));
        }
        result
    }
}

enum Served {
    Stopped,
    /// Could not (re)connect after having been up.
    Lost(String),
    /// Has never connected yet.
    NeverUp(String),
    /// Was up and serving, then failed.
    WasUp(String),
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn messages_split_into_position_and_payload() {
        let (pos, p) = decode(b"ab12 7\nF 0\n{}").unwrap();
        let pos = pos.unwrap();
        assert_eq!((pos.epoch.as_str(), pos.offset), ("ab12", 7));
        assert_eq!(&p[..], b"F 0\n{}");
        let (pos, p) = decode(b"v\nhello").unwrap();
        assert!(pos.is_none());
        assert_eq!(&p[..], b"hello");
        assert!(decode(b"no newline").is_none());
        assert!(decode(b"e x\n").is_none());
    }
}
