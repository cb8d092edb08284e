//! Throttling of failed logins, per username and per source address, so
//! password guessing is slow whichever of the two an attacker varies.

use std::net::IpAddr;

use dashmap::DashMap;

use crate::error::Error;
use crate::ratelimit::TokenBucket;

/// Entries kept before full (forgettable) buckets are swept out.
const SWEEP_AT: usize = 50_000;

/// Failed-login buckets. Each failure takes a token; with none left, logins
/// for that name or address are refused with `rate_limited` until refilled.
pub struct LoginThrottle {
    by_user: DashMap<String, TokenBucket>,
    by_addr: DashMap<IpAddr, TokenBucket>,
    per_user: f64,
    per_addr: f64,
}

impl LoginThrottle {
    /// `per_user` failures per username (one back every 30 s) and `per_addr`
    /// per address (one back every 3 s).
    pub fn new(per_user: u32, per_addr: u32) -> Self {
        LoginThrottle {
            by_user: DashMap::new(),
            by_addr: DashMap::new(),
            per_user: f64::from(per_user.max(1)),
            per_addr: f64::from(per_addr.max(1)),
        }
    }

    /// Refuses when either bucket is empty.
    pub fn check(&self, username_key: &str, addr: IpAddr) -> Result<(), Error> {
        let empty_user = self.by_user.get_mut(username_key).is_some_and(|mut b| !b.has_token());
        let empty_addr = self.by_addr.get_mut(&addr).is_some_and(|mut b| !b.has_token());
        if empty_user || empty_addr {
            return Err(Error::RateLimited("too many failed logins; try again later".into()));
        }
        Ok(())
    }

    /// Records a failed login.
    pub fn failed(&self, username_key: &str, addr: IpAddr) {
        let (pu, pa) = (self.per_user, self.per_addr);
        self.by_user.entry(username_key.to_owned()).or_insert_with(|| TokenBucket::new(pu, 1.0 / 30.0)).try_take();
        self.by_addr.entry(addr).or_insert_with(|| TokenBucket::new(pa, 1.0 / 3.0)).try_take();
        if self.by_user.len() > SWEEP_AT {
            self.by_user.retain(|_, b| !b.is_full());
        }
        if self.by_addr.len() > SWEEP_AT {
            self.by_addr.retain(|_, b| !b.is_full());
        }
    }

    /// Records a successful login: that username's failures are forgiven.
    pub fn succeeded(&self, username_key: &str) {
        self.by_user.remove(username_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_by_user_and_by_addr() {
        let t = LoginThrottle::new(2, 3);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        t.failed("alice", a);
        assert!(t.check("alice", a).is_ok());
        t.failed("alice", a);
        assert!(t.check("alice", b).is_err(), "per-user bucket is empty");
        assert!(t.check("bob", a).is_ok());
        t.failed("bob", a);
        assert!(t.check("carol", a).is_err(), "per-address bucket is empty");
        t.succeeded("alice");
        assert!(t.check("alice", b).is_ok());
    }
}
