//! The bcrypt pool: every password hash and check runs here, on at most
//! `threads` blocking threads at once, with a bounded wait and a cap per
//! address and per account, so a flood from one address or against one
//! account cannot delay anybody else's login by more than a few hashes.
//!
//! Admission, in order (each refusal is `rate_limited`, nothing waits
//! without bound):
//! 1. the caller's address (IPv6: its /64) and, for logins, the account have
//!    fewer than `per_key` jobs admitted (running or waiting);
//! 2. fewer than `threads + queue` jobs are admitted in all.
//!
//! Admitted jobs then wait for a thread in arrival order (tokio's semaphore
//! is FIFO), so a job waits behind at most `threads + queue - 1` others:
//! at most `ceil((threads + queue) / threads)` hash times, and behind a
//! single address's flood at most `per_key` others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::error::Error;
use crate::ratelimit::addr_key;

/// What a job is charged to: its source address and, when known, the
/// account whose password is checked (lowercase username).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PoolKey {
    Addr(IpAddr),
    Account(String),
}

/// Sizes of the pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolLimits {
    /// Hashes running at once.
    pub threads: usize,
    /// Jobs admitted beyond the running ones.
    pub queue: usize,
    /// Jobs admitted per address and per account.
    pub per_key: usize,
}

/// A bounded, fair pool for bcrypt work.
pub struct HashPool {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    per_key: usize,
    counts: Arc<Mutex<HashMap<PoolKey, usize>>>,
}

/// Holds a job's per-key counts; gives them back when dropped.
struct KeyCharge {
    keys: Vec<PoolKey>,
    counts: Arc<Mutex<HashMap<PoolKey, usize>>>,
}

impl Drop for KeyCharge {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

impl HashPool {
    /// A pool of the given sizes (each at least 1; the queue may be 0).
    pub fn new(limits: PoolLimits) -> HashPool {
        let threads = limits.threads.max(1);
        HashPool {
            running: Arc::new(Semaphore::new(threads)),
            admitted: Arc::new(Semaphore::new(threads + limits.queue)),
            per_key: limits.per_key.max(1),
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Runs `job` on a blocking thread once admitted for `addr` (and
    /// `account`), or refuses with `rate_limited`.
    pub async fn run<T, F>(&self, addr: IpAddr, account: Option<&str>, job: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let mut keys = vec![PoolKey::Addr(addr_key(addr))];
        keys.extend(account.map(|a| PoolKey::Account(a.to_owned())));
        let _charge = self.charge(keys)?;
        let _admitted =
            self.admitted.clone().try_acquire_owned().map_err(|_| {
                Error::RateLimited("the server is busy checking passwords; retry in a few seconds".into())
            })?;
        let _running = self.running.clone().acquire_owned().await.map_err(|e| Error::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(job).await.map_err(|e| Error::Internal(e.to_string()))
    }

    fn charge(&self, keys: Vec<PoolKey>) -> Result<KeyCharge, Error> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(full) = keys.iter().find(|k| counts.get(*k).is_some_and(|n| *n >= self.per_key)) {
            let whose = match full {
                PoolKey::Addr(_) => "from this address",
                PoolKey::Account(_) => "for this account",
            };
            return Err(Error::RateLimited(format!(
                "too many password checks in progress {whose}; wait for the previous ones"
            )));
        }
        for k in &keys {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        Ok(KeyCharge { keys, counts: self.counts.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pool(threads: usize, queue: usize, per_key: usize) -> Arc<HashPool> {
        Arc::new(HashPool::new(PoolLimits { threads, queue, per_key }))
    }

    #[tokio::test]
    async fn per_address_and_total_admission_are_bounded() {
        let p = pool(1, 1, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p1 = p.clone();
        let first = tokio::spawn(async move { p1.run(a, None, move || rx.recv().is_ok()).await });
        while p.admitted.available_permits() == 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let again = p.run(a, None, || true).await;
        assert!(matches!(again, Err(Error::RateLimited(m)) if m.contains("address")));
        let p2 = p.clone();
        let second = tokio::spawn(async move { p2.run(b, Some("bob"), || true).await });
        while p.admitted.available_permits() == 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let full = p.run(c, None, || true).await;
        assert!(matches!(full, Err(Error::RateLimited(m)) if m.contains("busy")));
        tx.send(()).unwrap();
        assert!(first.await.unwrap().unwrap());
        assert!(second.await.unwrap().unwrap());
        assert!(p.run(a, Some("bob"), || 7).await.unwrap() == 7);
        assert!(p.counts.lock().unwrap().is_empty());
    }
}
