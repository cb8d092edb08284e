//! The push intake's position (issue 16): which id ranges a pass reads,
//! where the intake resumes after a restart, and how often it stores how
//! far it got.
//!
//! The intake's cursor is an id at or below which every entry of this node
//! was turned into jobs (each entry is deleted in the call that queues its
//! jobs). It is stored at most once per [`SAVE_EVERY`], never on every
//! pass: a crash re-reads at most that window plus one pass, and re-reading
//! is safe, because what was done is deleted (SQLite: gone; CQL: a
//! tombstone the read skips), and what was not is what must be read.
//! A restart resumes at the stored cursor, or the store's floor, but never
//! further back than `--push-give-up-secs` (older entries are not read).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::metrics::push as m;
use crate::error::StoreError;
use crate::model::{MessageId, now_ms};
use crate::snowflake::{floor_for_ms, unix_ms};
use crate::store::Store;
use crate::store::push::{Intake, IntakeCursor};

/// At most one cursor save per this interval.
pub(super) const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How long a save on shutdown may take.
const SAVE_ON_STOP: Duration = Duration::from_secs(2);

/// The start: `found` (stored cursor or floor), but not before
/// `oldest` (the give-up window) nor after `settled` (a clock that went
/// back: ids minted now may be lower than a stored cursor). Returns the
/// cursor and where it came from (`stored`, `floor`, `give_up`).
pub(super) fn resume_point(
    found: Option<IntakeCursor>,
    oldest: MessageId,
    settled: MessageId,
) -> (MessageId, &'static str) {
    match found {
        Some(c) if c.id() > oldest => {
            let from = if matches!(c, IntakeCursor::Stored(_)) { "stored" } else { "floor" };
            (c.id().min(settled).max(oldest), from)
        }
        _ => (oldest, "give_up"),
    }
}

/// Where the intake reads: `cursor` (every entry at or below it is done;
/// stored now and then) trails the clock by the settling time, since an
/// entry may land up to [`crate::store::MESSAGE_MAX_AGE_MS`] after its id's
/// time; `seen` is the newest entry done. A pass reads two disjoint
/// ranges: the **sweep** `(cursor, settled]`, where only late entries are
/// still live, and the **fresh** range above `max(seen, settled)`. So a
/// deleted entry's tombstone (CQL) is read once, by the sweep that passes
/// it, not by every pass during the seconds the cursor trails it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Position {
    pub(super) cursor: MessageId,
    seen: MessageId,
}

/// No upper bound for a read.
const ALL: MessageId = MessageId(i64::MAX);

impl Position {
    /// Nothing done above `start`.
    pub(super) fn new(start: MessageId) -> Position {
        Position { cursor: start, seen: start }
    }

    /// Up to `limit` entries (sweep first, oldest first within each range)
    /// and the position once they are done. The sweep (cursor to
    /// `settled`) runs only once it spans `sweep_ms` of ids: passes run as
    /// often as sends wake them, and a sweep on each would double the
    /// store reads per message for entries that are almost never there
    /// (late writes); those wait at most `sweep_ms` more.
    pub(super) async fn read(
        self,
        store: &dyn Store,
        node: i64,
        settled: MessageId,
        limit: usize,
        sweep_ms: i64,
    ) -> Result<(Vec<Intake>, Position), StoreError> {
        let settled = settled.max(self.cursor);
        let sweep = unix_ms(settled.0) - unix_ms(self.cursor.0) >= sweep_ms;
        let mut entries = if sweep { store.push_intake(node, self.cursor, settled, limit).await? } else { Vec::new() };
        if entries.len() >= limit {
            // The sweep alone fills the batch: the cursor moves to its newest.
            let newest = entries.iter().map(|e| e.id).max().unwrap_or(self.cursor);
            return Ok((entries, Position { cursor: newest, seen: self.seen.max(newest) }));
        }
        let fresh = store.push_intake(node, self.seen.max(settled), ALL, limit - entries.len()).await?;
        let seen = fresh.iter().map(|e| e.id).max().unwrap_or(self.seen).max(self.seen);
        entries.extend(fresh);
        Ok((entries, Position { cursor: if sweep { settled } else { self.cursor }, seen }))
    }
}

/// Reads where to resume, retrying (every `poll`) until the store answers;
/// `None` when `stop` fires first.
pub(super) async fn start(
    store: &dyn Store,
    node: i64,
    give_up_secs: u64,
    settled: impl Fn() -> MessageId,
    poll: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<MessageId> {
    loop {
        match store.intake_cursor(node).await {
            Ok(found) => {
                let oldest = MessageId(floor_for_ms(now_ms() - give_up_secs as i64 * 1000));
                let (cursor, from) = resume_point(found, oldest, settled());
                let lag_ms = now_ms() - unix_ms(cursor.0);
                m().intake_starts.with_label_values(&[from]).inc();
                m().intake_lag_seconds.set(lag_ms / 1000);
                tracing::info!(node, cursor = cursor.0, from, lag_ms, "push: intake resumes");
                return Some(cursor);
            }
            Err(e) => tracing::warn!(error = %e, "push: intake cursor not read; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return None,
        }
    }
}

/// Stores the cursor now and then.
pub(super) struct Saver {
    node: i64,
    saved: MessageId,
    at: Option<Instant>,
}

impl Saver {
    /// Nothing saved yet by this process (the first advance is saved at once).
    pub(super) fn new(node: i64, start: MessageId) -> Saver {
        Saver { node, saved: start, at: None }
    }

    /// Saves `cursor` if it moved and the last save is [`SAVE_EVERY`] old.
    /// A failed save is logged and tried again after the interval.
    pub(super) async fn maybe_save(&mut self, store: &dyn Store, cursor: MessageId) {
        m().intake_lag_seconds.set((now_ms() - unix_ms(cursor.0)) / 1000);
        if cursor <= self.saved || self.at.is_some_and(|t| t.elapsed() < SAVE_EVERY) {
            return;
        }
        self.at = Some(Instant::now());
        self.save(store, cursor).await;
    }

    /// Saves `cursor` if it moved (shutdown), within [`SAVE_ON_STOP`].
    pub(super) async fn save_on_stop(&mut self, store: &dyn Store, cursor: MessageId) {
        if cursor > self.saved && tokio::time::timeout(SAVE_ON_STOP, self.save(store, cursor)).await.is_err() {
            tracing::warn!("push: intake cursor not saved at shutdown (timed out)");
        }
    }

    async fn save(&mut self, store: &dyn Store, cursor: MessageId) {
        match store.save_intake_cursor(self.node, cursor).await {
            Ok(()) => {
                self.saved = cursor;
                m().intake_cursor_saves.inc();
            }
            Err(e) => tracing::warn!(error = %e, "push: intake cursor not saved; tried again later"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_at_the_stored_cursor_within_the_give_up_window() {
        let (oldest, settled) = (MessageId(100), MessageId(1_000));
        assert_eq!(resume_point(None, oldest, settled), (oldest, "give_up"));
        assert_eq!(
            resume_point(Some(IntakeCursor::Stored(MessageId(500))), oldest, settled),
            (MessageId(500), "stored")
        );
        assert_eq!(resume_point(Some(IntakeCursor::Floor(MessageId(500))), oldest, settled), (MessageId(500), "floor"));
        // Older than the give-up window: entries there are not read.
        assert_eq!(resume_point(Some(IntakeCursor::Stored(MessageId(50))), oldest, settled), (oldest, "give_up"));
        // Ahead of the clock (it went back): resume at the settled point.
        assert_eq!(resume_point(Some(IntakeCursor::Stored(MessageId(5_000))), oldest, settled), (settled, "stored"));
    }
}
