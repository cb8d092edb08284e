//! Like, repost and follow counts on CQL: the counter tables of
//! `cql/005_counts.cql`, read with one single-row read each.
//!
//! A count moves only after the lightweight transaction on its set (likes,
//! reposts, `following`) reported that the set changed, or after a
//! timed-out one was read back and found applied; the counter update is
//! then sent once ([`super::exec::Db::add`], never retried). If it fails or
//! times out it may or may not have been applied, so it is logged and left:
//! the change of the set stands and the count is off by one from then on.
//! Counts are therefore exact as long as no count update (and no LWT
//! resolved by read-back while a concurrent request changed the same pair)
//! failed, and drift by at most that many otherwise; a count that drifted
//! below zero reads as zero.

use scylla::value::Counter;

use super::ScyllaStore;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{FollowCounts, PostId, UserId};

/// A counter column as a count: absent is zero, below zero (drift) is zero.
pub fn count(c: Option<Counter>) -> u64 {
    c.map_or(0, |c| u64::try_from(c.0).unwrap_or(0))
}

impl ScyllaStore {
    /// Adds `delta` to the counter `q` of `key`, once. A failure is logged
    /// and swallowed (see the module doc): the caller's change has already
    /// happened and must not fail or be repeated because its count did not
    /// move.
    pub(super) async fn bump(&self, q: Q, key: i64, delta: i64) {
        if let Err(e) = self.db.add(q, (Counter(delta), key)).await {
            tracing::warn!(statement = ?q, key, delta, error = %e, "count update failed: the count may be off by one");
        }
    }

    /// Moves both follow counts of a follow that was just made (`+1`) or
    /// undone (`-1`), concurrently.
    pub(super) async fn bump_follow(&self, follower: UserId, followee: UserId, delta: i64) {
        tokio::join!(self.bump(Q::FollowingAdd, follower.0, delta), self.bump(Q::FollowersAdd, followee.0, delta));
    }

    /// The like and repost counts of a post (zero when it has none).
    pub(super) async fn post_counts(&self, post: PostId) -> Result<(u64, u64), StoreError> {
        let row: Option<(Option<Counter>, Option<Counter>)> = self.db.one(Q::PostCountsGet, (post.0,)).await?;
        Ok(row.map_or((0, 0), |(likes, reposts)| (count(likes), count(reposts))))
    }

    /// One single-row read.
    pub(super) async fn follow_counts_cql(&self, user: UserId) -> Result<FollowCounts, StoreError> {
        let row: Option<(Option<Counter>, Option<Counter>)> = self.db.one(Q::FollowCountsGet, (user.0,)).await?;
        let (followers, following) = row.map_or((0, 0), |(a, b)| (count(a), count(b)));
        Ok(FollowCounts { followers, following })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_negative_counters_read_as_zero() {
        assert_eq!(count(None), 0);
        assert_eq!(count(Some(Counter(7))), 7);
        assert_eq!(count(Some(Counter(-2))), 0, "drifted below zero");
    }
}
