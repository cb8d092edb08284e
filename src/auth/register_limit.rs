//! Limits on creating accounts: per source address (IPv6: per /64) and on
//! the whole node, so one address cannot mint accounts by the hundred and
//! many addresses together cannot flood the bcrypt pool with registrations.

use std::net::IpAddr;
use std::sync::Mutex;

use crate::error::Error;
use crate::ratelimit::{KeyedBuckets, TokenBucket, addr_key};

/// Registration buckets: `per_addr` accounts per address per hour (all at
/// once, then one back every `3600 / per_addr` s) and `global_per_min` per
/// minute on this node in all (burst of the same size).
pub struct RegisterLimit {
    by_addr: KeyedBuckets<IpAddr>,
    global: Mutex<TokenBucket>,
}

impl RegisterLimit {
    /// Limits of `per_addr` per hour per address and `global_per_min` per minute.
    pub fn new(per_addr: u32, global_per_min: u32) -> Self {
        let (a, g) = (f64::from(per_addr.max(1)), f64::from(global_per_min.max(1)));
        RegisterLimit { by_addr: KeyedBuckets::new(a, a / 3600.0), global: Mutex::new(TokenBucket::new(g, g / 60.0)) }
    }

    /// Takes a registration from `addr`'s and the node's budgets, or
    /// refuses with `rate_limited`. The address is checked first, so one
    /// address's refused attempts do not use up the node's budget.
    pub fn check(&self, addr: IpAddr) -> Result<(), Error> {
        let key = addr_key(addr);
        if !self.by_addr.has_token(&key) {
            return Err(Error::RateLimited("too many accounts created from this address; try again later".into()));
        }
        let global_ok = self.global.lock().unwrap_or_else(|p| p.into_inner()).try_take();
        if !global_ok {
            return Err(Error::RateLimited("too many accounts are being created right now; try again shortly".into()));
        }
        self.by_addr.try_take(&key);
        Ok(())
    }
}

impl RegisterLimit {
    /// Gives back a registration taken by [`Self::check`] whose work was
    /// then refused (the hashing pool was full): a refused attempt does not
    /// use up the address's or the node's allowance.
    pub fn refund(&self, addr: IpAddr) {
        self.by_addr.give_back(&addr_key(addr));
        self.global.lock().unwrap_or_else(|p| p.into_inner()).give_back();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_then_global() {
        let l = RegisterLimit::new(2, 3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a).is_ok() && l.check(a).is_ok());
        assert!(matches!(l.check(a), Err(Error::RateLimited(m)) if m.contains("address")));
        assert!(l.check(b).is_ok());
        assert!(matches!(l.check(b), Err(Error::RateLimited(m)) if m.contains("right now")));
        l.refund(b);
        assert!(l.check(b).is_ok(), "a refunded registration can be used again");
    }
}
