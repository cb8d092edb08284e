//! Follows on CQL: `following` (written only with lightweight
//! transactions) decides whether a follow exists; `following_by_time` and
//! `followers_by_time` page the two lists newest first; the counts move
//! with the claim and the release (see [`super::counts`]).

use super::ScyllaStore;
use super::exec::Lwt;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{FollowEntry, FollowId, UserId};

/// Which list a page reads.
#[derive(Clone, Copy)]
pub(super) enum Side {
    Followers,
    Following,
}

impl ScyllaStore {
    /// Claims the pair with `IF NOT EXISTS`; the winner writes both list
    /// rows and moves both counts. A timed-out claim is read back to see
    /// whose id won (ids are unique, so a match is this call's claim).
    /// A call that finds the pair already claimed repairs its list rows
    /// (see `repair_follow_rows`).
    /// Both users are read first, concurrently: `UserGone` without the
    /// follower, `false` without the followee, nothing written either way.
    pub(super) async fn add_follow_cql(
        &self,
        follower: UserId,
        followee: UserId,
        id: FollowId,
    ) -> Result<bool, StoreError> {
        let (me, them) = tokio::try_join!(self.user_row(follower), self.user_row(followee))?;
        if me.is_none() {
            return Err(StoreError::UserGone);
        }
        if them.is_none() {
            return Ok(false);
        }
        let ours = match self.db.lwt(Q::FollowClaim, (follower.0, followee.0, id.0)).await? {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Unknown => {
                let row: Option<(i64,)> = self.db.one_serial(Q::FollowGet, (follower.0, followee.0)).await?;
                row.is_some_and(|(f,)| f == id.0)
            }
        };
        if ours {
            tokio::try_join!(
                self.db.write(Q::FollowingInsert, (follower.0, id.0, followee.0)),
                self.db.write(Q::FollowersInsert, (followee.0, id.0, follower.0)),
            )?;
            self.bump_follow(follower, followee, 1).await;
        } else {
            self.repair_follow_rows(follower, followee).await?;
        }
        Ok(ours)
    }

    /// An existing claim may lack its list rows: the call that claimed it
    /// failed (a timeout) between the claim and the rows, and its caller
    /// retried, landing here. Writes the rows again under the claim's id
    /// (idempotent), then reads the claim once more and deletes them if
    /// the follow was released meanwhile, so a racing `remove_follow`
    /// leaves no row behind. Counts are not moved here: a racing first
    /// call may still be about to move them, and a claim whose rows failed
    /// leaves its counts one short (the drift the `Store` docs allow).
    async fn repair_follow_rows(&self, follower: UserId, followee: UserId) -> Result<(), StoreError> {
        let row: Option<(i64,)> = self.db.one_serial(Q::FollowGet, (follower.0, followee.0)).await?;
        let Some((fid,)) = row else { return Ok(()) };
        tokio::try_join!(
            self.db.write(Q::FollowingInsert, (follower.0, fid, followee.0)),
            self.db.write(Q::FollowersInsert, (followee.0, fid, follower.0)),
        )?;
        let still: Option<(i64,)> = self.db.one_serial(Q::FollowGet, (follower.0, followee.0)).await?;
        if still.map(|(f,)| f) != Some(fid) {
            tokio::try_join!(
                self.db.write(Q::FollowingDelete, (follower.0, fid, followee.0)),
                self.db.write(Q::FollowersDelete, (followee.0, fid, follower.0)),
            )?;
        }
        Ok(())
    }

    /// Reads the follow's id, releases the claim on exactly that id (and
    /// moves both counts back when the release applied), then deletes both
    /// list rows.
    pub(super) async fn remove_follow_cql(&self, follower: UserId, followee: UserId) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = self.db.one_serial(Q::FollowGet, (follower.0, followee.0)).await?;
        let Some((fid,)) = row else { return Ok(false) };
        let removed = match self.db.lwt(Q::FollowRelease, (follower.0, followee.0, fid)).await? {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Unknown => self.db.one_serial::<(i64,)>(Q::FollowGet, (follower.0, followee.0)).await?.is_none(),
        };
        // The list rows go either way (idempotent cleanup of this follow id).
        tokio::try_join!(
            self.db.write(Q::FollowingDelete, (follower.0, fid, followee.0)),
            self.db.write(Q::FollowersDelete, (followee.0, fid, follower.0)),
        )?;
        if removed {
            self.bump_follow(follower, followee, -1).await;
        }
        Ok(removed)
    }

    /// One page of a list: rows below the cursor, newest first, each joined
    /// with the other user (rows whose user is gone are skipped).
    pub(super) async fn follow_page_cql(
        &self,
        side: Side,
        user: UserId,
        after: Option<FollowId>,
        limit: usize,
    ) -> Result<Vec<FollowEntry>, StoreError> {
        let q = match side {
            Side::Followers => Q::FollowersPage,
            Side::Following => Q::FollowingPage,
        };
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut rows = self.db.stream::<(i64, i64)>(q, (user.0, after.map_or(i64::MAX, |a| a.0))).await?;
        while out.len() < limit {
            let Some((fid, other)) = rows.next_row().await? else { break };
            if let Some(u) = self.user_by_id_cql(UserId(other)).await? {
                out.push(FollowEntry { user: u, follow_id: FollowId(fid) });
            }
        }
        Ok(out)
    }

    /// Everyone `user` follows, with follow ids (all pages).
    pub(super) async fn follow_ids_cql(&self, user: UserId) -> Result<Vec<(UserId, FollowId)>, StoreError> {
        let rows: Vec<(i64, i64)> = self.db.rows(Q::FollowingPage, (user.0, i64::MAX)).await?;
        Ok(rows.into_iter().map(|(fid, u)| (UserId(u), FollowId(fid))).collect())
    }
}
