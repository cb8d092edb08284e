//! Account changes that need the current password: changing it and
//! deleting the account. Wrong passwords count against the same throttle as
//! failed logins, so a stolen socket cannot be used to guess the password.

use std::net::IpAddr;

use super::{Auth, password};
use crate::error::Error;
use crate::model::{SessionId, User};

impl Auth {
    /// Checks `password` against `user`'s stored hash. A wrong password is
    /// `forbidden` (the socket stays authenticated); too many failures are
    /// `rate_limited`; a user who no longer exists is `unauthorized`.
    async fn check_password(&self, user: &User, password: &str, addr: IpAddr) -> Result<(), Error> {
        let key = user.username.to_lowercase();
        self.throttle.check(&key, addr)?;
        let creds = self
            .store
            .user_by_username(&user.username)
            .await?
            .filter(|c| c.user.id == user.id)
            .ok_or_else(|| Error::Unauthorized("this account no longer exists".into()))?;
        if self.verify_on_pool(password, creds.password_hash, addr, &key).await? {
            self.throttle.succeeded(&key, addr);
            Ok(())
        } else {
            self.throttle.failed(&key, addr);
            Err(Error::Forbidden("wrong password".into()))
        }
    }

    /// Replaces `user`'s password after checking the old one and revokes
    /// every other session of the user; `keep` (the caller's) stays live.
    /// Sessions are revoked before the new hash is stored: if the second
    /// step fails, the old password still works and a retry completes it.
    pub async fn change_password(
        &self,
        user: &User,
        keep: &SessionId,
        old_password: &str,
        new_password: &str,
        addr: IpAddr,
    ) -> Result<(), Error> {
        password::validate(new_password)?;
        self.check_password(user, old_password, addr).await?;
        let (plain, cost) = (new_password.to_owned(), self.bcrypt_cost);
        let hash = self.pool.run(addr, None, move || password::hash_blocking(&plain, cost)).await??;
        self.store.revoke_user_sessions(user.id, Some(keep)).await?;
        if !self.store.set_password_hash(user.id, &hash).await? {
            return Err(Error::Unauthorized("this account no longer exists".into()));
        }
        Ok(())
    }

    /// Deletes `user`'s account and everything that is theirs after
    /// checking the password. Every session ends with it.
    pub async fn delete_account(&self, user: &User, password: &str, addr: IpAddr) -> Result<(), Error> {
        self.check_password(user, password, addr).await?;
        self.store.delete_user(user.id).await?;
        Ok(())
    }
}
