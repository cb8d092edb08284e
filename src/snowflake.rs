//! 64-bit snowflake ids: 41 bits of milliseconds since [`EPOCH_MS`], 10 bits
//! of worker id, 12 bits of sequence; the top bit stays 0 so the id is a
//! positive CQL `bigint` and SQLite `INTEGER`.
//!
//! A generator never hands out the same id twice and never goes backwards,
//! even if the wall clock steps back: it keeps minting from its last
//! timestamp (borrowing from the future) until the clock catches up.

use std::sync::Mutex;

/// The project epoch: 2024-01-01T00:00:00Z.
pub const EPOCH_MS: i64 = 1_704_067_200_000;
const WORKER_BITS: u32 = 10;
const SEQ_BITS: u32 = 12;
/// Largest valid worker id.
pub const MAX_WORKER: u16 = (1 << WORKER_BITS) - 1;

/// Milliseconds since the Unix epoch encoded in a snowflake.
pub fn unix_ms(id: i64) -> i64 {
    (id >> (WORKER_BITS + SEQ_BITS)) + EPOCH_MS
}

/// The worker id that minted `id`.
pub fn worker_of(id: i64) -> u16 {
    ((id >> SEQ_BITS) & i64::from(MAX_WORKER)) as u16
}

/// The smallest id that could be minted at `unix_ms` (for time-based bounds).
pub fn floor_for_ms(unix_ms: i64) -> i64 {
    (unix_ms - EPOCH_MS).max(0) << (WORKER_BITS + SEQ_BITS)
}

/// Mints unique, increasing ids for one worker.
#[derive(Debug)]
pub struct Generator {
    worker: i64,
    state: Mutex<(i64, i64)>, // (last ms since epoch, sequence)
}

impl Generator {
    /// A generator for `worker` (0..=1023).
    pub fn new(worker: u16) -> Self {
        Generator { worker: i64::from(worker.min(MAX_WORKER)), state: Mutex::new((0, 0)) }
    }

    /// The next id.
    pub fn next_id(&self) -> i64 {
        let now = crate::model::now_ms() - EPOCH_MS;
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (last, seq) = *st;
        let (ms, seq) = if now > last {
            (now, 0)
        } else if seq + 1 < (1 << SEQ_BITS) {
            (last, seq + 1)
        } else {
            (last + 1, 0) // sequence exhausted or clock behind: borrow the next ms
        };
        *st = (ms, seq);
        (ms << (WORKER_BITS + SEQ_BITS)) | (self.worker << SEQ_BITS) | seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_carry_worker_and_time() {
        let g = Generator::new(7);
        let mut prev = 0;
        for _ in 0..10_000 {
            let id = g.next_id();
            assert!(id > prev && id > 0);
            assert_eq!((id >> SEQ_BITS) & i64::from(MAX_WORKER), 7);
            prev = id;
        }
        assert!((unix_ms(prev) - crate::model::now_ms()).abs() < 5_000);
    }

    #[test]
    fn clock_step_back_never_repeats() {
        let g = Generator::new(1);
        *g.state.lock().unwrap() = (i64::MAX >> 23, 0); // "last" far in the future
        let a = g.next_id();
        let b = g.next_id();
        assert!(b > a);
    }

    #[test]
    fn floor_is_below_any_id_of_that_ms() {
        let g = Generator::new(3);
        let id = g.next_id();
        assert!(floor_for_ms(unix_ms(id)) <= id);
    }
}
