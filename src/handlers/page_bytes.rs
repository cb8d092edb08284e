//! Pages are bounded by bytes as well as by count: a reply stops adding
//! items once its frame would pass `max_reply_bytes`, and its cursor is set
//! to the last item it kept, so the next page starts right after it and
//! nothing is skipped. The first item is always kept (one item is far
//! smaller than the cap: a message of 4000 characters is at most ~24 KB).

use serde::Serialize;

/// Room kept for the reply's envelope (type, id, cursor fields).
const ENVELOPE_BYTES: usize = 256;

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON size of `item`, in bytes.
fn json_len<T: Serialize>(item: &T) -> usize {
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, item);
    c.0
}

/// Keeps the longest prefix of `items` (at least one) whose JSON, with the
/// separators and an envelope, fits in `cap` bytes. True when items were
/// dropped: the caller then sets its cursor from the last item kept.
pub fn fit<T: Serialize>(items: &mut Vec<T>, cap: usize) -> bool {
    let mut total = ENVELOPE_BYTES;
    for (i, item) in items.iter().enumerate() {
        total += json_len(item) + 1;
        if total > cap && i > 0 {
            items.truncate(i);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_prefix_under_the_cap_and_at_least_one() {
        let mut v = vec!["x".repeat(100); 10];
        assert!(fit(&mut v, 256 + 3 * 103));
        assert_eq!(v.len(), 3);
        let mut one = vec!["x".repeat(1000), "y".into()];
        assert!(fit(&mut one, 10));
        assert_eq!(one.len(), 1);
        let mut all = vec!["a".to_string(); 5];
        assert!(!fit(&mut all, 10_000));
        assert_eq!(all.len(), 5);
    }
}
