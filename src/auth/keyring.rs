//! The set of access-token keys a node signs and verifies with, so the
//! signing key can be rotated without logging anyone out.
//!
//! Keys live in the data directory: the first one as `jwt-ed25519.pem`
//! (generated on first start, as before rotation existed), later ones as
//! `jwt-keys/<activates_at_ms>-<kid>.pem`, written by `hubbub keys rotate`.
//! A key's **activation time** is in its file name, so every node that
//! reads the directory agrees on it without talking to the others:
//!
//! - *pending*: not yet active. Nodes already verify with it and publish it
//!   in the JWKS, but do not sign with it, so each node learns the key
//!   (within `--jwt-keys-reload-secs`) before any token it signed arrives.
//! - *signing*: the newest active key. New tokens carry its `kid`.
//! - *verifying*: an older key, kept while tokens it signed may still be
//!   live: until the next key's activation + the access-token lifetime +
//!   [`MARGIN_MS`].
//! - *expired*: every token it signed has expired; no longer used or
//!   published. `hubbub keys retire KID` then renames its file to
//!   `*.retired` (retiring earlier needs `--force` and refuses those tokens).
//!
//! Nodes re-read the directory every `--jwt-keys-reload-secs` and on SIGHUP.
//! With `--jwt-private-key` the ring is that one key and is never reloaded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use super::keys::Keys;
use crate::error::Error;

/// The directory, inside the data directory, of rotated keys.
pub const KEYS_DIR: &str = "jwt-keys";

/// Slack added to a key's verification period, for clock differences
/// between nodes and the verifier's leeway.
pub const MARGIN_MS: i64 = 60_000;

/// One key of the ring.
#[derive(Clone)]
pub struct Entry {
    pub keys: Arc<Keys>,
    /// When nodes start signing with it (ms since the Unix epoch; 0 for the
    /// first key).
    pub activates_at_ms: i64,
    /// The file it was read from.
    pub path: PathBuf,
}

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Verified and published; signing from `from_ms`.
    Pending { from_ms: i64 },
    /// Signs new tokens.
    Signing,
    /// Verifies tokens it signed until `until_ms`.
    Verifying { until_ms: i64 },
    /// No token it signed is live: not used; may be retired.
    Expired,
}

/// The state of each key of `activations` (sorted ascending) at `now_ms`,
/// when access tokens live `ttl_ms`.
pub fn states(activations: &[i64], now_ms: i64, ttl_ms: i64) -> Vec<KeyState> {
    let signer = activations.iter().rposition(|&a| a <= now_ms).unwrap_or(0);
    (0..activations.len())
        .map(|i| match i.cmp(&signer) {
            std::cmp::Ordering::Equal => KeyState::Signing,
            std::cmp::Ordering::Greater => KeyState::Pending { from_ms: activations[i] },
            std::cmp::Ordering::Less => {
                let until_ms = activations[i + 1] + ttl_ms + MARGIN_MS;
                if now_ms < until_ms { KeyState::Verifying { until_ms } } else { KeyState::Expired }
            }
        })
        .collect()
}

/// Reads every key of the data directory, oldest activation first;
/// generates the first key if there is none.
pub fn scan(data_dir: &Path) -> Result<Vec<Entry>, Error> {
    let mut entries = scan_existing(data_dir)?;
    if entries.is_empty() {
        Keys::load_or_generate(None, data_dir)?;
        entries = scan_existing(data_dir)?;
    }
    Ok(entries)
}

fn scan_existing(data_dir: &Path) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    let first = data_dir.join(super::keys::GENERATED_KEY_FILE);
    if first.exists() {
        entries.push(Entry { keys: Arc::new(Keys::load(&first)?), activates_at_ms: 0, path: first });
    }
    let dir = data_dir.join(KEYS_DIR);
    let listing = match std::fs::read_dir(&dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
        Err(e) => return Err(Error::Internal(format!("reading {}: {e}", dir.display()))),
    };
    for item in listing {
        let path = item.map_err(|e| Error::Internal(format!("reading {}: {e}", dir.display())))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let Some(at) = name.strip_suffix(".pem").and_then(|n| n.split_once('-')).and_then(|(a, _)| a.parse().ok())
        else {
            continue; // *.retired, temporary files, anything else
        };
        entries.push(Entry { keys: Arc::new(Keys::load(&path)?), activates_at_ms: at, path });
    }
    entries.sort_by_key(|e| e.activates_at_ms);
    Ok(entries)
}

/// A node's keys: which signs, which verify. Shared by every connection.
pub struct Keyring {
    /// `None` with `--jwt-private-key` (nothing to reload).
    data_dir: Option<PathBuf>,
    entries: RwLock<Arc<Vec<Entry>>>,
    ttl_ms: i64,
}

impl Keyring {
    /// Loads the configured key, or the data directory's keys (generating
    /// the first). Blocking file I/O.
    pub fn open(configured: Option<&Path>, data_dir: &Path, access_ttl_secs: u64) -> Result<Keyring, Error> {
        let (dir, entries) = match configured {
            Some(p) => {
                let keys = Arc::new(Keys::load(p)?);
                (None, vec![Entry { keys, activates_at_ms: 0, path: p.to_path_buf() }])
            }
            None => (Some(data_dir.to_path_buf()), scan(data_dir)?),
        };
        let ttl_ms = i64::try_from(access_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
        Ok(Keyring { data_dir: dir, entries: RwLock::new(Arc::new(entries)), ttl_ms })
    }

    fn snapshot(&self) -> Arc<Vec<Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn with_states(&self) -> Vec<(Entry, KeyState)> {
        let entries = self.snapshot();
        let acts: Vec<i64> = entries.iter().map(|e| e.activates_at_ms).collect();
        entries.iter().cloned().zip(states(&acts, crate::model::now_ms(), self.ttl_ms)).collect()
    }

    /// The key new tokens are signed with.
    pub fn signer(&self) -> Result<Arc<Keys>, Error> {
        let all = self.with_states();
        let signing = all.iter().find(|(_, s)| *s == KeyState::Signing).or(all.first());
        signing.map(|(e, _)| e.keys.clone()).ok_or_else(|| Error::Internal("no signing key".into()))
    }

    /// The key with id `kid`, when tokens signed by it are accepted now.
    pub fn verifier(&self, kid: &str) -> Option<Arc<Keys>> {
        self.with_states().into_iter().find(|(e, s)| e.keys.kid == kid && *s != KeyState::Expired).map(|(e, _)| e.keys)
    }

    /// The JWKS document: every key that verifies now (pending ones included).
    pub fn jwks_json(&self) -> String {
        let keys: Vec<serde_json::Value> = self
            .with_states()
            .iter()
            .filter(|(_, s)| *s != KeyState::Expired)
            .map(|(e, _)| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                    "kid": e.keys.kid, "x": e.keys.public_x})
            })
            .collect();
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// Re-reads the data directory (blocking); keeps the old keys on failure.
    pub fn reload(&self) -> Result<(), Error> {
        let Some(dir) = &self.data_dir else { return Ok(()) };
        let fresh = scan_existing(dir)?;
        if fresh.is_empty() {
            return Err(Error::Internal(format!("no signing key left in {}", dir.display())));
        }
        let old: Vec<String> = self.snapshot().iter().map(|e| e.keys.kid.clone()).collect();
        let new: Vec<String> = fresh.iter().map(|e| e.keys.kid.clone()).collect();
        if old != new {
            tracing::info!(keys = ?new, "signing keys changed");
        }
        *self.entries.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// Reloads every `every` and on SIGHUP until `stop`.
    pub async fn run_reloads(self: Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        if self.data_dir.is_none() {
            return;
        }
        let mut hup = hangups();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = next_hangup(&mut hup) => tracing::info!("SIGHUP: re-reading the signing keys"),
                _ = stop.changed() => return,
            }
            let ring = self.clone();
            match tokio::task::spawn_blocking(move || ring.reload()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "could not re-read the signing keys; keeping the old ones"),
                Err(e) => tracing::warn!(error = %e, "re-reading the signing keys failed"),
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

fn hangups() -> Hangups {
    #[cfg(unix)]
    return tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    None
}

async fn next_hangup(h: &mut Hangups) {
    #[cfg(unix)]
    if let Some(s) = h {
        if s.recv().await.is_some() {
            return;
        }
    }
    let _ = h;
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_moves_signing_at_activation_and_keeps_the_old_key_for_a_token_lifetime() {
        let ttl = 900_000;
        let acts = [0, 10_000];
        assert_eq!(states(&acts, 5_000, ttl), [KeyState::Signing, KeyState::Pending { from_ms: 10_000 }]);
        let until_ms = 10_000 + ttl + MARGIN_MS;
        assert_eq!(states(&acts, 10_000, ttl), [KeyState::Verifying { until_ms }, KeyState::Signing]);
        assert_eq!(states(&acts, until_ms, ttl), [KeyState::Expired, KeyState::Signing]);
    }

    #[test]
    fn a_keyring_loads_rotated_keys_and_ignores_retired_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = scan(dir.path()).unwrap();
        assert_eq!(first.len(), 1);
        std::fs::create_dir_all(dir.path().join(KEYS_DIR)).unwrap();
        std::fs::write(dir.path().join(KEYS_DIR).join("5-x.pem.retired"), "junk").unwrap();
        assert_eq!(scan(dir.path()).unwrap().len(), 1);
    }
}
