//! Users, usernames, profiles and user search on CQL.

use std::collections::BTreeSet;

use super::ScyllaStore;
use super::binds;
use super::exec::Lwt;
use super::keys::{claim_is_orphaned, search_partition, search_prefixes};
use super::rows::UserRow;
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{Profile, ProfileUpdate, User, UserCredentials, UserId, now_ms};
use crate::store::search_terms;

impl ScyllaStore {
    pub(super) async fn user_row(&self, id: UserId) -> Result<Option<UserRow>, StoreError> {
        let row: Option<UserRow> = self.db.one(Q::UserGet, (id.0,)).await?;
        Ok(row.filter(|r| r.username.is_some()))
    }

    /// `Err(UserGone)` unless every one of `users` has a user row. Writes
    /// of a user check before and again after writing (undoing themselves
    /// if the account went meanwhile): account deletion removes the user
    /// row first, so a write that passes the second check landed before
    /// the deletion began and is removed by it.
    /// The rows are read concurrently (one round trip), each user once.
    pub(super) async fn require_users(&self, users: &[UserId]) -> Result<(), StoreError> {
        let distinct = users.iter().enumerate().filter(|(i, u)| !users[..*i].contains(u)).map(|(_, u)| *u);
        let rows = futures_util::future::try_join_all(distinct.map(|u| self.user_row(u))).await?;
        if rows.iter().any(Option::is_none) {
            return Err(StoreError::UserGone);
        }
        Ok(())
    }

    /// Claims the username (LWT), then writes the user and its search rows.
    /// A retry after a timeout finds its own claim and carries on. A claim
    /// left by a registration or deletion that died part-way (no user row,
    /// and minted long ago: see [`claim_is_orphaned`]) is released and the
    /// name claimed again.
    pub(super) async fn create_user_cql(&self, c: &UserCredentials) -> Result<(), StoreError> {
        let key = c.user.username.to_lowercase();
        let mut owner = self.claim_username(&key, c.user.id).await?;
        if let Some(other) = owner.filter(|o| *o != c.user.id.0 && claim_is_orphaned(*o, now_ms())) {
            if self.user_row(UserId(other)).await?.is_none() {
                self.db.lwt(Q::UsernameRelease, (&key, other)).await?;
                owner = self.claim_username(&key, c.user.id).await?;
            }
        }
        if owner != Some(c.user.id.0) {
            return Err(StoreError::Conflict("username"));
        }
        let u = &c.user;
        self.db.write(Q::UserInsert, binds::user_insert(c)).await?;
        self.index_search(u.id, &key, &BTreeSet::new(), &search_prefixes(&search_terms(&u.username, &u.display_name)))
            .await
    }

    /// Tries to claim `key` for `id`; returns who owns it afterwards.
    async fn claim_username(&self, key: &str, id: UserId) -> Result<Option<i64>, StoreError> {
        Ok(match self.db.lwt(Q::UsernameClaim, (key, id.0)).await? {
            Lwt::Applied => Some(id.0),
            Lwt::NotApplied | Lwt::Unknown => {
                self.db.one_serial::<(Option<i64>,)>(Q::UsernameGet, (key,)).await?.and_then(|r| r.0)
            }
        })
    }

    /// Writes the search rows of `new` that are not in `old`, deletes those
    /// of `old` that are not in `new`.
    pub(super) async fn index_search(
        &self,
        id: UserId,
        username_key: &str,
        old: &BTreeSet<String>,
        new: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        for p in new.difference(old) {
            self.db.write(Q::SearchInsert, (p, username_key, id.0)).await?;
        }
        for p in old.difference(new) {
            self.db.write(Q::SearchDelete, (p, username_key, id.0)).await?;
        }
        Ok(())
    }

    pub(super) async fn user_by_username_cql(&self, username: &str) -> Result<Option<UserCredentials>, StoreError> {
        let key = username.to_lowercase();
        let Some((Some(id),)) = self.db.one::<(Option<i64>,)>(Q::UsernameGet, (&key,)).await? else {
            return Ok(None);
        };
        Ok(self.user_row(UserId(id)).await?.and_then(|r| r.credentials()))
    }

    pub(super) async fn user_by_id_cql(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.user_row(id).await?.and_then(|r| r.user()))
    }

    pub(super) async fn profile_cql(&self, id: UserId) -> Result<Option<Profile>, StoreError> {
        Ok(self.user_row(id).await?.and_then(UserRow::profile))
    }

    /// Reads the prefix partition in username order; each candidate is
    /// checked against its current terms (stale rows and queries longer than
    /// the indexed prefix are filtered here). The exact username goes first.
    pub(super) async fn search_users_cql(&self, prefix: &str, limit: usize) -> Result<Vec<User>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let q = prefix.to_lowercase();
        let mut out: Vec<User> = Vec::new();
        if let Some(exact) = self.user_by_username_cql(&q).await? {
            out.push(exact.user);
        }
        let part = search_partition(&q);
        // Pages are read lazily; a page of stale rows does not end the scan.
        let mut rows = self.db.stream::<(String, i64)>(Q::SearchScan, (&part,)).await?;
        while out.len() < limit {
            let Some((_, id)) = rows.next_row().await? else { break };
            if out.iter().any(|u| u.id.0 == id) {
                continue;
            }
            let Some(user) = self.user_by_id_cql(UserId(id)).await? else { continue };
            if search_terms(&user.username, &user.display_name).iter().any(|t| t.starts_with(&q)) {
                out.push(user);
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Read, merge, write. Not atomic against a concurrent update of the same
    /// profile (last write wins per field); fields left alone stay unset.
    pub(super) async fn update_profile_cql(
        &self,
        id: UserId,
        u: &ProfileUpdate,
    ) -> Result<Option<Profile>, StoreError> {
        let Some(row) = self.user_row(id).await? else { return Ok(None) };
        let Some(current) = row.profile() else { return Ok(None) };
        let next = Profile {
            user: User {
                display_name: u.display_name.clone().unwrap_or(current.user.display_name.clone()),
                ..current.user.clone()
            },
            bio: u.bio.clone().unwrap_or(current.bio.clone()),
            color: u.color.clone().unwrap_or(current.color.clone()),
            avatar_url: u.avatar_url.clone().unwrap_or(current.avatar_url.clone()),
        };
        if !u.is_empty() {
            let [d, b, c, a] = binds::profile_update(u);
            self.db.write(Q::UserUpdateProfile, (d, b, c, a, id.0)).await?;
        }
        if next.user.display_name != current.user.display_name {
            let key = current.user.username.to_lowercase();
            let old = search_prefixes(&search_terms(&current.user.username, &current.user.display_name));
            let new = search_prefixes(&search_terms(&next.user.username, &next.user.display_name));
            self.index_search(id, &key, &old, &new).await?;
        }
        Ok(Some(next))
    }

    pub(super) async fn set_password_hash_cql(&self, id: UserId, hash: &str) -> Result<bool, StoreError> {
        if self.user_row(id).await?.is_none() {
            return Ok(false);
        }
        self.db.write(Q::UserSetPassword, (hash, id.0)).await?;
        Ok(true)
    }
}
