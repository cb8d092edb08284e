//! `hubbub keys list|rotate|retire`: operator commands on the data
//! directory's signing keys ([`super::keyring`] explains the life of a key).

use std::path::Path;

use super::keyring::{self, KeyState};
use super::keys::{Keys, install_private};
use crate::config::{Config, KeysCommand};
use crate::error::Error;
use crate::model::now_ms;

/// Runs one `hubbub keys` command; returns the lines to print.
pub fn run(cmd: &KeysCommand) -> Result<Vec<String>, Error> {
    let config = cmd.config();
    if config.jwt_private_key.is_some() {
        return Err(Error::BadRequest(
            "--jwt-private-key pins one key; rotation manages the keys in the data directory".into(),
        ));
    }
    match cmd {
        KeysCommand::List { .. } => list(config),
        KeysCommand::Rotate { .. } => rotate(config),
        KeysCommand::Retire { kid, force, .. } => retire(config, kid, *force),
    }
}

fn ttl_ms(config: &Config) -> i64 {
    i64::try_from(config.access_token_ttl.saturating_mul(1000)).unwrap_or(i64::MAX / 4)
}

/// Every key with its state.
fn list(config: &Config) -> Result<Vec<String>, Error> {
    let entries = keyring::scan(&config.data_dir)?;
    let acts: Vec<i64> = entries.iter().map(|e| e.activates_at_ms).collect();
    let states = keyring::states(&acts, now_ms(), ttl_ms(config));
    Ok(entries
        .iter()
        .zip(states)
        .map(|(e, s)| format!("{}  {}  {}", e.keys.kid, describe(s), e.path.display()))
        .collect())
}

fn describe(s: KeyState) -> String {
    match s {
        KeyState::Pending { from_ms } => format!("pending (signs from {})", when(from_ms)),
        KeyState::Signing => "signing".into(),
        KeyState::Verifying { until_ms } => format!("verifying (until {})", when(until_ms)),
        KeyState::Expired => "expired (may be retired)".into(),
    }
}

fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Writes a new key that activates after the configured delay.
fn rotate(config: &Config) -> Result<Vec<String>, Error> {
    let old = keyring::scan(&config.data_dir)?;
    let at = now_ms().saturating_add(i64::try_from(config.jwt_key_activation_secs * 1000).unwrap_or(i64::MAX / 4));
    let at = at.max(old.last().map_or(0, |e| e.activates_at_ms + 1));
    let (pem, kid) = Keys::generate_pem()?;
    let path = config.data_dir.join(keyring::KEYS_DIR).join(format!("{at}-{kid}.pem"));
    install_private(&path, pem.as_bytes(), "JWT key")?;
    Ok(vec![
        format!("new signing key {kid} in {}", path.display()),
        format!(
            "nodes verify with it within {} s (or at once on SIGHUP) and sign with it from {}",
            config.jwt_keys_reload_secs,
            when(at)
        ),
        format!(
            "older keys keep verifying until {} (then `hubbub keys retire KID`)",
            when(at + ttl_ms(config) + keyring::MARGIN_MS)
        ),
    ])
}

/// Renames key `kid`'s file to `*.retired`.
fn retire(config: &Config, kid: &str, force: bool) -> Result<Vec<String>, Error> {
    let entries = keyring::scan(&config.data_dir)?;
    let acts: Vec<i64> = entries.iter().map(|e| e.activates_at_ms).collect();
    let states = keyring::states(&acts, now_ms(), ttl_ms(config));
    let (entry, state) = entries
        .iter()
        .zip(states)
        .find(|(e, _)| e.keys.kid == kid)
        .ok_or_else(|| Error::NotFound(format!("no key {kid} in {}", config.data_dir.display())))?;
    match state {
        KeyState::Signing | KeyState::Pending { .. } => {
            return Err(Error::Conflict(format!("key {kid} is {}: rotate first", describe(state))));
        }
        KeyState::Verifying { until_ms } if !force => {
            return Err(Error::Conflict(format!(
                "tokens signed by {kid} may be live until {}; wait, or retire with --force (their users refresh or log in again)",
                when(until_ms)
            )));
        }
        _ => {}
    }
    let retired = retired_path(&entry.path);
    std::fs::rename(&entry.path, &retired)
        .map_err(|e| Error::Internal(format!("renaming {}: {e}", entry.path.display())))?;
    Ok(vec![format!(
        "retired key {kid} ({}); nodes refuse its tokens within {} s",
        retired.display(),
        config.jwt_keys_reload_secs
    )])
}

fn retired_path(p: &Path) -> std::path::PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".retired");
    s.into()
}
