//! Authentication: registration, login, access and refresh tokens, logout,
//! password changes and account deletion.
//! Rules live here; the store only keeps users and sessions.

mod account;
pub mod keyring;
pub(crate) mod keys;
pub mod keys_cmd;
pub mod password;
pub mod pool;
mod register_limit;
mod throttle;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, StoreError, bad_request};
use crate::model::{RotateOutcome, Rotation, Session, SessionId, User, UserCredentials, UserId, now_ms};
use crate::snowflake::Generator;
use crate::store::Store;
use crate::validate;

pub use keyring::Keyring;
pub use keys::Keys;
pub use pool::{HashPool, PoolLimits};
pub use register_limit::RegisterLimit;
pub use throttle::LoginThrottle;

/// A freshly authenticated session with its tokens.
#[derive(Debug)]
pub struct Issued {
    pub user: User,
    pub session: SessionId,
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// Result of presenting a refresh token.
#[derive(Debug)]
pub enum Refreshed {
    /// A valid, current token: here is the new pair.
    Issued(Issued),
    /// An already-used token: the whole session was revoked.
    Reused { user: UserId, session: SessionId },
}

/// What `auth.register` asks for.
#[derive(Clone, Copy, Debug)]
pub struct NewAccount<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub display_name: Option<&'a str>,
}

/// The authentication service.
pub struct Auth {
    keyring: Arc<Keyring>,
    store: Arc<dyn Store>,
    throttle: LoginThrottle,
    pool: HashPool,
    register_limit: RegisterLimit,
    bcrypt_cost: u32,
    access_ttl: u64,
    refresh_ttl: u64,
    refresh_reuse_grace_ms: i64,
    /// A hash checked when the user does not exist, so a login takes as long
    /// whether or not the name is registered.
    dummy_hash: String,
}

const BAD_LOGIN: &str = "invalid username or password";
const BANNED: &str = "this account is banned";

impl Auth {
    /// Loads or generates the signing key and prepares the service.
    pub async fn new(config: &Config, store: Arc<dyn Store>) -> Result<Auth, Error> {
        let (key_path, dir, ttl) = (config.jwt_private_key.clone(), config.data_dir.clone(), config.access_token_ttl);
        let keyring = tokio::task::spawn_blocking(move || Keyring::open(key_path.as_deref(), &dir, ttl))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let dummy_hash = password::hash("hubbub-dummy-password".into(), config.bcrypt_cost).await?;
        Ok(Auth {
            keyring: Arc::new(keyring),
            store,
            throttle: LoginThrottle::new(config),
            pool: HashPool::new(PoolLimits {
                threads: config.bcrypt_threads_or_cpus(),
                queue: config.bcrypt_queue,
                per_key: config.bcrypt_per_key,
            }),
            register_limit: RegisterLimit::new(config.register_per_addr, config.register_global_per_min),
            bcrypt_cost: config.bcrypt_cost,
            access_ttl: config.access_token_ttl,
            refresh_ttl: config.refresh_token_ttl,
            refresh_reuse_grace_ms: config.refresh_reuse_grace_ms as i64,
            dummy_hash,
        })
    }

    /// The public keys tokens are verified with, as a JWKS document.
    pub fn jwks_json(&self) -> String {
        self.keyring.jwks_json()
    }

    /// The signing keys (the app runs their reload task).
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Creates an account and its first session. Limited per address and
    /// in all (see [`RegisterLimit`]); the hash runs on the pool.
    pub async fn register(&self, ids: &Generator, new: NewAccount<'_>, addr: IpAddr) -> Result<Issued, Error> {
        let NewAccount { username, password, display_name } = new;
        validate::username(username)?;
        password::validate(password)?;
        let display_name = validate::display_name(display_name, username)?;
        if self.store.user_by_username(username).await?.is_some() {
            return Err(Error::Conflict("username is taken".into()));
        }
        self.check_display_name(&display_name, username).await?;
        self.register_limit.check(addr)?;
        let (plain, cost) = (password.to_owned(), self.bcrypt_cost);
        let password_hash = match self.pool.run(addr, None, move || password::hash_blocking(&plain, cost)).await {
            Ok(hashed) => hashed?,
            Err(e) => {
                self.register_limit.refund(addr);
                return Err(e);
            }
        };
        let user =
            User { id: UserId(ids.next_id()), username: username.to_owned(), display_name, created_at_ms: now_ms() };
        match self.store.create_user(&UserCredentials { user: user.clone(), password_hash }).await {
            Err(StoreError::Conflict(_)) => return Err(Error::Conflict("username is taken".into())),
            other => other?,
        }
        self.start_session(user).await
    }

    /// Checks credentials (throttled per username and address) and starts a session.
    pub async fn login(&self, username: &str, password: &str, addr: IpAddr) -> Result<Issued, Error> {
        let key = username.to_lowercase();
        self.throttle.check(&key, addr)?;
        let found =
            if validate::username(username).is_ok() { self.store.user_by_username(username).await? } else { None };
        let hash = found.as_ref().map_or_else(|| self.dummy_hash.clone(), |c| c.password_hash.clone());
        let ok = self.verify_on_pool(password, hash, addr, &key).await?;
        match found {
            Some(c) if ok => {
                self.throttle.succeeded(&key, addr);
                self.refuse_banned(c.user.id).await?;
                let issued = self.start_session(c.user).await?;
                // A ban stored while the session was created: its session
                // sweep may have run before this session existed.
                if let Err(e) = self.refuse_banned(issued.user.id).await {
                    self.store.revoke_session(&issued.session).await?;
                    return Err(e);
                }
                Ok(issued)
            }
            _ => {
                self.throttle.failed(&key, addr);
                Err(Error::Unauthorized(BAD_LOGIN.into()))
            }
        }
    }

    /// Checks an access token: signature, expiry, and that its session is
    /// still live (logout and revocation take effect at once).
    pub async fn verify_token(&self, token: &str) -> Result<(User, SessionId), Error> {
        let kid = tokens::kid_of(token)?;
        let keys = self
            .keyring
            .verifier(&kid)
            .ok_or_else(|| Error::Unauthorized("invalid access token: unknown key".into()))?;
        let (user_id, session) = tokens::verify_access(&keys, token)?;
        let revoked = || Error::Unauthorized("session has ended; log in again".into());
        match self.store.live_session_user(&session, now_ms()).await? {
            Some(owner) if owner == user_id => {}
            _ => {
                // A ban revoked it: say so.
                self.refuse_banned(user_id).await?;
                return Err(revoked());
            }
        }
        let user = self.store.user_by_id(user_id).await?.ok_or_else(revoked)?;
        Ok((user, session))
    }

    /// Rotates a refresh token. Presenting an old one revokes the session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Refreshed, Error> {
        let (session, presented) = tokens::parse_refresh(refresh_token)?;
        let (token, new_hash) = tokens::new_refresh(&session)?;
        let now = now_ms();
        let expires = now + self.refresh_ttl as i64 * 1000;
        let rotation = Rotation {
            presented_hash: presented,
            new_hash,
            now_ms: now,
            new_expires_ms: expires,
            reuse_grace_ms: self.refresh_reuse_grace_ms,
        };
        match self.store.rotate_refresh(&session, &rotation).await? {
            RotateOutcome::Rotated { user_id } => {
                let user = self
                    .store
                    .user_by_id(user_id)
                    .await?
                    .ok_or_else(|| Error::Unauthorized("invalid refresh token".into()))?;
                let access_token = tokens::issue_access(&*self.keyring.signer()?, user.id, &session, self.access_ttl)?;
                Ok(Refreshed::Issued(Issued {
                    user,
                    session,
                    access_token,
                    refresh_token: token,
                    expires_in: self.access_ttl,
                }))
            }
            RotateOutcome::ReuseDetected { user_id } => Ok(Refreshed::Reused { user: user_id, session }),
            RotateOutcome::Invalid => {
                // A ban revoked the session: say so (`forbidden`), not "invalid".
                if self.store.ban_of_session(&session).await?.is_some() {
                    return Err(Error::Forbidden(BANNED.into()));
                }
                Err(Error::Unauthorized("invalid refresh token".into()))
            }
        }
    }

    /// The user a refresh token's session belongs to, if the session is live
    /// (the secret is not checked here).
    pub async fn refresh_token_owner(&self, refresh_token: &str) -> Result<Option<UserId>, Error> {
        let (session, _) = tokens::parse_refresh(refresh_token)?;
        Ok(self.store.live_session_user(&session, now_ms()).await?)
    }

    /// `forbidden` ("this account is banned") when an operator banned `user`.
    pub async fn refuse_banned(&self, user: UserId) -> Result<(), Error> {
        match self.store.ban_of(user).await? {
            Some(_) => Err(Error::Forbidden(BANNED.into())),
            None => Ok(()),
        }
    }

    /// Revokes a session: its refresh token and access tokens stop working.
    pub async fn logout(&self, session: &SessionId) -> Result<(), Error> {
        self.store.revoke_session(session).await?;
        Ok(())
    }

    /// Refuses a display name that passes for another user's username
    /// (case-insensitively, with or without a leading `@`): `bad_request`.
    /// A user's own username is fine.
    pub async fn check_display_name(&self, display_name: &str, own_username: &str) -> Result<(), Error> {
        let Some(named) = validate::display_name_as_username(display_name) else { return Ok(()) };
        if named.eq_ignore_ascii_case(own_username) || self.store.user_by_username(named).await?.is_none() {
            return Ok(());
        }
        Err(bad_request("display_name must not be another user's username"))
    }

    /// Checks `password` against `hash` on the pool, charged to `addr` and
    /// the account `key`.
    async fn verify_on_pool(&self, password: &str, hash: String, addr: IpAddr, key: &str) -> Result<bool, Error> {
        let plain = password.to_owned();
        self.pool.run(addr, Some(key), move || password::verify_blocking(&plain, &hash)).await
    }

    async fn start_session(&self, user: User) -> Result<Issued, Error> {
        let session = SessionId(tokens::random_hex(16)?);
        let (refresh_token, refresh_hash) = tokens::new_refresh(&session)?;
        self.store
            .create_session(&Session {
                id: session.clone(),
                user_id: user.id,
                refresh_hash,
                expires_at_ms: now_ms() + self.refresh_ttl as i64 * 1000,
            })
            .await?;
        let access_token = tokens::issue_access(&*self.keyring.signer()?, user.id, &session, self.access_ttl)?;
        Ok(Issued { user, session, access_token, refresh_token, expires_in: self.access_ttl })
    }
}
