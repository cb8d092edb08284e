//! Throttling of failed password checks (logins, and the current password
//! of `account.password` / `account.delete`).
//!
//! Three buckets, each taking a token per failure:
//! - per (account, address) (IPv6: per /64): empty means that address may
//!   not try that account for a while;
//! - per address: empty means that address may not try any account;
//! - per account: empty means the account is under attack. Only addresses
//!   that have already failed against it are then refused; an address with
//!   no failure for this account still gets its attempt checked, so a
//!   guessing campaign from many addresses cannot lock the real user out.
//!
//! The trade-off: while an account's bucket is empty, each new address still
//! gets one guess at it (then its pair bucket holds a failure and it is
//! refused), so a campaign gets about one guess per address it controls,
//! plus the pair and account refills; the pair and address buckets bound
//! each address.

use std::net::IpAddr;

use crate::config::Config;
use crate::error::Error;
use crate::ratelimit::{KeyedBuckets, addr_key};

/// Failed-password buckets.
pub struct LoginThrottle {
    by_pair: KeyedBuckets<(String, IpAddr)>,
    by_user: KeyedBuckets<String>,
    by_addr: KeyedBuckets<IpAddr>,
}

fn refused() -> Error {
    Error::RateLimited("too many failed logins; try again later".into())
}

impl LoginThrottle {
    /// Buckets from the configuration: `login_failures_per_user_addr` per
    /// (account, address) (one back every 60 s), `login_failures_per_user`
    /// per account (one back every 30 s) and `login_failures_per_addr` per
    /// address (one back every 3 s).
    pub fn new(config: &Config) -> Self {
        Self::with(config.login_failures_per_user_addr, config.login_failures_per_user, config.login_failures_per_addr)
    }

    fn with(per_pair: u32, per_user: u32, per_addr: u32) -> Self {
        let f = |n: u32| f64::from(n.max(1));
        LoginThrottle {
            by_pair: KeyedBuckets::new(f(per_pair), 1.0 / 60.0),
            by_user: KeyedBuckets::new(f(per_user), 1.0 / 30.0),
            by_addr: KeyedBuckets::new(f(per_addr), 1.0 / 3.0),
        }
    }

    /// Refuses when the pair or the address bucket is empty, or when the
    /// account's is and this address has failed against it before.
    pub fn check(&self, username_key: &str, addr: IpAddr) -> Result<(), Error> {
        let addr = addr_key(addr);
        let pair = (username_key.to_owned(), addr);
        if !self.by_pair.has_token(&pair) || !self.by_addr.has_token(&addr) {
            return Err(refused());
        }
        if !self.by_user.has_token(&username_key.to_owned()) && self.by_pair.is_touched(&pair) {
            return Err(refused());
        }
        Ok(())
    }

    /// Records a failure.
    pub fn failed(&self, username_key: &str, addr: IpAddr) {
        let addr = addr_key(addr);
        self.by_pair.try_take(&(username_key.to_owned(), addr));
        self.by_user.try_take(&username_key.to_owned());
        self.by_addr.try_take(&addr);
    }

    /// Records a success: that address's failures for the account are
    /// forgiven, and so are the account's (its owner got in).
    pub fn succeeded(&self, username_key: &str, addr: IpAddr) {
        self.by_pair.forget(&(username_key.to_owned(), addr_key(addr)));
        self.by_user.forget(&username_key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_pairs_addresses_and_attacked_accounts() {
        let t = LoginThrottle::with(2, 3, 4);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        t.failed("alice", a);
        assert!(t.check("alice", a).is_ok());
        t.failed("alice", a);
        assert!(t.check("alice", a).is_err(), "pair bucket is empty");
        assert!(t.check("alice", b).is_ok(), "another address may still try");
        t.failed("alice", b);
        assert!(t.check("alice", b).is_err(), "account bucket empty and b has failed");
        assert!(t.check("alice", c).is_ok(), "an address without failures gets through");
        t.failed("bob", a);
        t.failed("carol", a);
        assert!(t.check("dave", a).is_err(), "address bucket is empty");
        t.succeeded("alice", c);
        assert!(t.check("alice", b).is_ok(), "the owner's success forgives the account");
    }
}
