//! Login sessions and refresh rotation on CQL. The `sessions` table is
//! written only with lightweight transactions, so a rotation is a
//! compare-and-set on the current secret.

use super::ScyllaStore;
use super::binds;
use super::exec::Lwt;
use super::rows::SessionRow;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{RotateOutcome, Rotation, Session, SessionId, UserId};

impl ScyllaStore {
    pub(super) async fn create_session_cql(&self, s: &Session) -> Result<(), StoreError> {
        self.db.write(Q::SessionByUserInsert, (s.user_id.0, &s.id.0)).await?;
        let outcome = self.db.lwt(Q::SessionInsert, binds::session_insert(s)).await?;
        if outcome == Lwt::Applied {
            return Ok(());
        }
        // Not applied or timed out: it is ours if the stored row is ours.
        let row: Option<SessionRow> = self.db.one_serial(Q::SessionGet, (&s.id.0,)).await?;
        match row {
            Some(r) if r.user_id == s.user_id.0 && r.refresh_hash == s.refresh_hash => Ok(()),
            Some(_) => Err(StoreError::Conflict("session")),
            None => Err(StoreError::Unavailable("session write not confirmed".into())),
        }
    }

    pub(super) async fn live_session_user_cql(
        &self,
        id: &SessionId,
        now_ms: i64,
    ) -> Result<Option<UserId>, StoreError> {
        let row: Option<SessionRow> = self.db.one(Q::SessionGet, (&id.0,)).await?;
        let Some(row) = row.filter(|r| r.live_at(now_ms)) else { return Ok(None) };
        let user = UserId(row.user_id);
        Ok(self.user_row(user).await?.map(|_| user))
    }

    /// Reads the session at SERIAL consistency, decides like the reference
    /// backend, and applies the change as a compare-and-set on the secret it
    /// read. A lost race (another rotation won) answers `Invalid`; a timeout
    /// is resolved by reading back whether our new secret is in place.
    pub(super) async fn rotate_refresh_cql(&self, id: &SessionId, r: &Rotation) -> Result<RotateOutcome, StoreError> {
        let row: Option<SessionRow> = self.db.one_serial(Q::SessionGet, (&id.0,)).await?;
        let Some(row) = row.filter(|s| s.live_at(r.now_ms)) else { return Ok(RotateOutcome::Invalid) };
        let user_id = UserId(row.user_id);
        if row.refresh_hash != r.presented_hash {
            let used: Option<(i64,)> = self.db.one(Q::RefreshUsedGet, (&id.0, &r.presented_hash)).await?;
            match used {
                None => return Ok(RotateOutcome::Invalid),
                Some((at,)) if r.now_ms - at >= r.reuse_grace_ms => {
                    self.revoke_session_cql(id).await?;
                    return Ok(RotateOutcome::ReuseDetected { user_id });
                }
                Some(_) => {} // replaced moments ago: the client lost our reply
            }
        }
        self.db.write(Q::RefreshUsedInsert, (&id.0, &row.refresh_hash, r.now_ms)).await?;
        let cas = binds::session_rotate(&id.0, &r.new_hash, r.new_expires_ms, &row.refresh_hash);
        let applied = match self.db.lwt(Q::SessionRotate, cas).await? {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Unknown => {
                let now: Option<SessionRow> = self.db.one_serial(Q::SessionGet, (&id.0,)).await?;
                now.is_some_and(|s| s.refresh_hash == r.new_hash && !s.revoked)
            }
        };
        Ok(if applied { RotateOutcome::Rotated { user_id } } else { RotateOutcome::Invalid })
    }

    pub(super) async fn revoke_session_cql(&self, id: &SessionId) -> Result<bool, StoreError> {
        match self.db.lwt(Q::SessionRevoke, (&id.0,)).await? {
            Lwt::Applied => Ok(true),
            Lwt::NotApplied => Ok(false),
            // Revoked now either way; whether by us is unknowable, say so.
            Lwt::Unknown => {
                let row: Option<SessionRow> = self.db.one_serial(Q::SessionGet, (&id.0,)).await?;
                Ok(row.is_some_and(|s| s.revoked))
            }
        }
    }

    /// One compare-and-set per session of the user. Not atomic across
    /// sessions: a failure part-way leaves some revoked (a retry finishes).
    pub(super) async fn revoke_user_sessions_cql(
        &self,
        user: UserId,
        keep: Option<&SessionId>,
    ) -> Result<u64, StoreError> {
        let ids: Vec<(String,)> = self.db.rows(Q::SessionsOfUser, (user.0,)).await?;
        let mut n = 0;
        for (sid,) in ids {
            if keep.is_some_and(|k| k.0 == sid) {
                continue;
            }
            if self.revoke_session_cql(&SessionId(sid)).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}
