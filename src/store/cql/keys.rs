//! Pure key arithmetic of the ScyllaDB store: time buckets, search
//! prefixes, write timestamps, and the ordering of lists that CQL cannot
//! order for us. No I/O; everything here is unit-tested without a server.

use std::collections::BTreeSet;

use crate::snowflake;

/// Width of a time bucket: 10 days (Discord's choice; keeps a busy
/// conversation's partition well under ~100 MB).
pub const BUCKET_MS: i64 = 10 * 24 * 3600 * 1000;

/// Longest search prefix that gets its own partition. Longer queries read
/// the partition of their first `MAX_PREFIX_CHARS` characters and filter.
pub const MAX_PREFIX_CHARS: usize = 16;

/// The bucket of a snowflake id: which 10-day window since the project
/// epoch it was minted in. Ids before the epoch (or negative) fall in 0.
pub fn bucket_of(id: i64) -> i32 {
    let since_epoch = (snowflake::unix_ms(id.max(0)) - snowflake::EPOCH_MS).max(0);
    (since_epoch / BUCKET_MS).min(i64::from(i32::MAX)) as i32
}

/// The newest bucket a page "below `before`" can touch (all when `None`).
pub fn newest_bucket_below(before: Option<i64>) -> i32 {
    before.map_or(i32::MAX, |b| bucket_of(b.saturating_sub(1)))
}

/// The exclusive upper bound on ids for a page "below `before`".
pub fn upper_bound(before: Option<i64>) -> i64 {
    before.unwrap_or(i64::MAX)
}

/// How many rows a CQL `LIMIT` may ask for, from a trait-level limit.
pub fn cql_limit(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX).max(1)
}

/// Leads every search partition key: CQL rejects an empty partition key,
/// and the empty prefix (everyone) needs a partition too.
const SEARCH_KEY_LEAD: char = '#';

/// The search partition of a lowercase query: its first
/// [`MAX_PREFIX_CHARS`] characters, behind [`SEARCH_KEY_LEAD`].
pub fn search_partition(query_lower: &str) -> String {
    std::iter::once(SEARCH_KEY_LEAD).chain(query_lower.chars().take(MAX_PREFIX_CHARS)).collect()
}

/// Every search partition a user with these terms is written to: each
/// term's prefixes of 0 to [`MAX_PREFIX_CHARS`] characters, deduplicated.
pub fn search_prefixes(terms: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for term in terms {
        let mut prefix = String::from(SEARCH_KEY_LEAD);
        out.insert(prefix.clone());
        for c in term.chars().take(MAX_PREFIX_CHARS) {
            prefix.push(c);
            out.insert(prefix.clone());
        }
    }
    out
}

/// The write timestamp (microseconds since the Unix epoch) of a row that
/// must keep the newest message: the id's millisecond, plus its low 22 bits
/// (worker, sequence) scaled into the microseconds. Never decreases as ids
/// grow, and stays near real time (ScyllaDB rejects timestamps more than
/// 3 days ahead; raw snowflakes would be).
pub fn write_timestamp(id: i64) -> i64 {
    const LOW_BITS: i64 = 22;
    let low = id & ((1 << LOW_BITS) - 1);
    snowflake::unix_ms(id) * 1000 + ((low * 1000) >> LOW_BITS)
}

/// The timestamp of a delete that must win over every row written with
/// [`write_timestamp`] so far: one day past `now_ms` (inside ScyllaDB's
/// 3-day limit).
pub fn tombstone_timestamp(now_ms: i64) -> i64 {
    (now_ms + 24 * 3600 * 1000) * 1000
}

/// How old a username claim without its user must be before a new
/// registration may take it over: far longer than any registration takes
/// between claiming the name and writing the user (a few request timeouts).
pub const ORPHAN_CLAIM_MS: i64 = 10 * 60 * 1000;

/// True when a claim by `owner` (whose user row is missing) was made long
/// enough ago that its registration or deletion must have died part-way:
/// the id says when it was minted.
pub fn claim_is_orphaned(owner: i64, now_ms: i64) -> bool {
    now_ms - snowflake::unix_ms(owner) > ORPHAN_CLAIM_MS
}

/// Orders a conversation list newest first and keeps the page below
/// `before`: `(last message id, payload)` pairs, at most `limit`.
pub fn conversation_page<T>(mut rows: Vec<(i64, T)>, before: Option<i64>, limit: usize) -> Vec<T> {
    let bound = upper_bound(before);
    rows.retain(|(id, _)| *id < bound);
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    rows.into_iter().take(limit).map(|(_, t)| t).collect()
}

/// Merges per-actor lists (each newest first) into one page: newest first,
/// each id once, at most `limit`.
pub fn merge_newest_first<T: Clone>(lists: Vec<Vec<T>>, id: impl Fn(&T) -> i64, limit: usize) -> Vec<T> {
    let mut all: Vec<T> = lists.into_iter().flatten().collect();
    all.sort_by_key(|t| std::cmp::Reverse(id(t)));
    all.dedup_by_key(|t| id(t));
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snowflake::{EPOCH_MS, floor_for_ms};

    fn id_at(ms_since_epoch: i64) -> i64 {
        floor_for_ms(EPOCH_MS + ms_since_epoch)
    }

    #[test]
    fn buckets_are_ten_day_windows_since_the_epoch() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(id_at(BUCKET_MS - 1)), 0);
        assert_eq!(bucket_of(id_at(BUCKET_MS)), 1);
        assert_eq!(bucket_of(id_at(25 * BUCKET_MS + 7)), 25);
        // Worker and sequence bits never move an id to another bucket.
        assert_eq!(bucket_of(id_at(BUCKET_MS - 1) | 0x3f_ffff), 0);
        assert!(bucket_of(i64::MAX) > 25);
    }

    #[test]
    fn a_page_below_a_cursor_starts_in_the_cursors_bucket_or_the_one_before() {
        assert_eq!(newest_bucket_below(None), i32::MAX);
        let first_of_bucket_3 = id_at(3 * BUCKET_MS);
        // Ids strictly below the first id of bucket 3 all live in bucket 2 or older.
        assert_eq!(newest_bucket_below(Some(first_of_bucket_3)), 2);
        assert_eq!(newest_bucket_below(Some(first_of_bucket_3 + 1)), 3);
        assert_eq!(newest_bucket_below(Some(0)), 0);
        assert_eq!(upper_bound(None), i64::MAX);
        assert_eq!(upper_bound(Some(42)), 42);
    }

    #[test]
    fn cql_limits_are_positive_ints() {
        assert_eq!(cql_limit(0), 1);
        assert_eq!(cql_limit(50), 50);
        assert_eq!(cql_limit(usize::MAX), i32::MAX);
    }

    #[test]
    fn search_prefixes_cover_every_prefix_up_to_the_cap() {
        let p = search_prefixes(&["ann".into(), "an".into()]);
        assert_eq!(p.into_iter().collect::<Vec<_>>(), ["#", "#a", "#an", "#ann"], "never an empty key");
        let long = "abcdefghijklmnopqrstuvwxyz".to_string();
        let p = search_prefixes(std::slice::from_ref(&long));
        assert_eq!(p.len(), MAX_PREFIX_CHARS + 1);
        assert!(p.contains("#abcdefghijklmnop") && !p.contains("#abcdefghijklmnopq"));
        // Characters, not bytes.
        let p = search_prefixes(&["élise".into()]);
        assert!(p.contains("#é") && p.contains("#él"));
        assert_eq!(search_partition("abcdefghijklmnopqrstuvwxyz"), "#abcdefghijklmnop");
        assert_eq!(search_partition("él"), "#él");
        assert_eq!(search_partition(""), "#");
        // A query reads a partition every matching term was written to.
        assert!(
            search_prefixes(&["abcdefghijklmnopqrstuvwxyz".into()]).contains(&search_partition("abcdefghijklmnopqr"))
        );
    }

    #[test]
    fn write_timestamps_follow_ids_and_stay_near_now() {
        let ids = crate::snowflake::Generator::new(1023);
        let mut prev = 0;
        for _ in 0..5_000 {
            let ts = write_timestamp(ids.next_id());
            assert!(ts >= prev, "never decreases");
            prev = ts;
        }
        let now_us = crate::model::now_ms() * 1000;
        assert!((prev - now_us).abs() < 60_000_000, "microseconds near now: {prev} vs {now_us}");
        // Ids of different milliseconds always order their timestamps.
        assert!(write_timestamp(id_at(5) | 0x3f_ffff) < write_timestamp(id_at(6)));
        assert_eq!(write_timestamp(id_at(5)), (EPOCH_MS + 5) * 1000);
    }

    #[test]
    fn tombstones_outrank_every_message_timestamp_within_three_days() {
        let now = crate::model::now_ms();
        let ids = crate::snowflake::Generator::new(1023);
        let t = tombstone_timestamp(now);
        assert!(t > write_timestamp(ids.next_id()));
        assert!(t < (now + 3 * 24 * 3600 * 1000) * 1000, "ScyllaDB's future-timestamp limit");
    }

    #[test]
    fn only_old_claims_without_a_user_are_orphaned() {
        let now = EPOCH_MS + 100 * ORPHAN_CLAIM_MS;
        assert!(!claim_is_orphaned(floor_for_ms(now - 1_000), now), "a registration in flight");
        assert!(!claim_is_orphaned(floor_for_ms(now - ORPHAN_CLAIM_MS), now));
        assert!(claim_is_orphaned(floor_for_ms(now - ORPHAN_CLAIM_MS - 1), now));
    }

    #[test]
    fn merged_lists_are_newest_first_without_duplicates() {
        let merged = merge_newest_first(vec![vec![9, 4, 1], vec![8, 4], vec![]], |x| *x, 4);
        assert_eq!(merged, [9, 8, 4, 1]);
        assert_eq!(merge_newest_first(vec![vec![3, 2], vec![5]], |x| *x, 2), [5, 3]);
    }

    #[test]
    fn conversation_pages_are_newest_first_below_the_cursor() {
        let rows = vec![(5, "e"), (9, "i"), (1, "a"), (7, "g")];
        assert_eq!(conversation_page(rows.clone(), None, 10), ["i", "g", "e", "a"]);
        assert_eq!(conversation_page(rows.clone(), Some(7), 2), ["e", "a"]);
        assert_eq!(conversation_page(rows, Some(1), 2), Vec::<&str>::new());
    }
}
