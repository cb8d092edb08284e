//! `hubbub admin ...`: operator commands against the same store and broker
//! the nodes use, so they act on a running cluster. Each returns the lines
//! it printed or an [`AdminError`] (bad input or a failed step), which the
//! binary prints before exiting non-zero.
//!
//! A ban is ordered so that nothing slips through: the ban row first (new
//! logins are refused from then on), then every session is revoked (access
//! and refresh tokens stop working), then a close request goes to the
//! user's inbox channel, which every node's hub acts on within the
//! broker's delivery time (close code 4501, "account banned").

use std::sync::Arc;
use std::time::Duration;

use crate::broker;
use crate::config::{AdminCommand, AdminReport, Config};
use crate::error::Error;
use crate::hub::{CloseTarget, Hub, HubOptions};
use crate::model::{User, now_ms, rfc3339};
use crate::protocol::close;
use crate::store::safety::{Ban, Report, ReportTarget};
use crate::store::{self, Store};

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The operator asked for something that does not exist or cannot be.
    #[error("{0}")]
    Input(String),
    /// The store or broker failed.
    #[error(transparent)]
    Failed(#[from] Error),
}

impl From<crate::error::StoreError> for AdminError {
    fn from(e: crate::error::StoreError) -> Self {
        AdminError::Failed(e.into())
    }
}

/// Runs one admin command; returns what it printed, line by line.
pub async fn run(cmd: &AdminCommand) -> Result<Vec<String>, AdminError> {
    let config = cmd.config();
    let store = open_store(config).await?;
    let out = match cmd {
        AdminCommand::Reports { open, limit, .. } => list_reports(store.as_ref(), *open, *limit as usize).await,
        AdminCommand::Report(AdminReport::Resolve { id, note, .. }) => resolve(store.as_ref(), *id, note).await,
        AdminCommand::Ban { username, reason, .. } => ban(config, store.as_ref(), username, reason).await,
        AdminCommand::Unban { username, .. } => unban(store.as_ref(), username).await,
        AdminCommand::DeleteUser { username, .. } => delete_user(config, store.as_ref(), username).await,
    };
    store.close().await;
    out
}

/// The nodes' store. On SQLite the database must already exist: an admin
/// command pointed at the wrong directory must not create an empty one.
async fn open_store(config: &Config) -> Result<Arc<dyn Store>, AdminError> {
    if config.scylla_nodes.is_empty() {
        let db = config.data_dir.join("hubbub.db");
        if !db.exists() {
            return Err(AdminError::Input(format!(
                "no hubbub database at {} (give the nodes' --data-dir, or --scylla)",
                db.display()
            )));
        }
    }
    Ok(store::open(config).await.map_err(Error::from)?)
}

async fn user_named(store: &dyn Store, username: &str) -> Result<User, AdminError> {
    let found =
        if crate::validate::username(username).is_ok() { store.user_by_username(username).await? } else { None };
    found.map(|c| c.user).ok_or_else(|| AdminError::Input(format!("no user named `{username}`")))
}

/// Closes every socket of `user` on every node with `code`, through the
/// broker the nodes share. Without `--redis` the in-process broker reaches
/// no running node: say so.
async fn close_everywhere(config: &Config, user: &User, code: u16) -> Result<String, AdminError> {
    if config.redis.is_empty() {
        return Ok(
            "no --redis given: running nodes were not asked to close sockets (their tokens no longer work)".to_string()
        );
    }
    let options = HubOptions { max_per_user: 1, recover_limit: 1, presence_ttl: Duration::from_secs(30) };
    let hub = Hub::new(options, |sink| broker::open(config, sink)).await.map_err(Error::from)?;
    let sent = hub.close_sockets(user.id, CloseTarget::AllExcept(None), code).await;
    hub.broker().close().await;
    sent.map_err(Error::from)?;
    Ok(format!("closed every socket of `{}` on every node (close code {code})", user.username))
}

async fn ban(config: &Config, store: &dyn Store, username: &str, reason: &str) -> Result<Vec<String>, AdminError> {
    let user = user_named(store, username).await?;
    store.set_ban(&Ban { user: user.id, reason: reason.to_owned(), at_ms: now_ms() }).await?;
    let revoked = store.revoke_user_sessions(user.id, None).await?;
    let mut out = vec![
        format!(
            "banned `{}` (id {}){}",
            user.username,
            user.id,
            if reason.is_empty() { String::new() } else { format!(": {reason}") }
        ),
        format!("revoked {revoked} session(s) and their refresh tokens"),
    ];
    out.push(close_everywhere(config, &user, close::BANNED).await?);
    Ok(out)
}

async fn unban(store: &dyn Store, username: &str) -> Result<Vec<String>, AdminError> {
    let user = user_named(store, username).await?;
    Ok(vec![if store.remove_ban(user.id).await? {
        format!("unbanned `{}`: they may log in again", user.username)
    } else {
        format!("`{}` was not banned; nothing changed", user.username)
    }])
}

async fn delete_user(config: &Config, store: &dyn Store, username: &str) -> Result<Vec<String>, AdminError> {
    let user = user_named(store, username).await?;
    store.delete_user(user.id).await?;
    let mut out = vec![format!("deleted `{}` (id {}) and everything that was theirs", user.username, user.id)];
    out.push(close_everywhere(config, &user, close::SESSION_REVOKED).await?);
    Ok(out)
}

async fn resolve(store: &dyn Store, id: i64, note: &str) -> Result<Vec<String>, AdminError> {
    match store.resolve_report(id, note, now_ms()).await? {
        Some(r) => Ok(vec![format!("resolved report {id}"), report_line(&r)]),
        None => Err(AdminError::Input(format!("no report with id {id}"))),
    }
}

async fn list_reports(store: &dyn Store, open: bool, limit: usize) -> Result<Vec<String>, AdminError> {
    let reports = store.reports(open, None, limit).await?;
    let mut out = vec![format!("{} {}report(s)", reports.len(), if open { "open " } else { "" })];
    out.extend(reports.iter().map(report_line));
    Ok(out)
}

/// One report on one line (text snapshots quoted as JSON strings).
pub fn report_line(r: &Report) -> String {
    let state = match &r.resolved {
        None => "open".to_string(),
        Some((at, note)) => format!("resolved {} {}", rfc3339(*at), json(note)),
    };
    let target = match &r.target {
        ReportTarget::User { username, .. } => format!("user `{username}`"),
        ReportTarget::Message { id, conversation, author_name, text, .. } => {
            format!("message {id} in {conversation} by `{author_name}`: {}", json(text))
        }
    };
    format!(
        "{} [{state}] {} by `{}` on {target}; reason {} details {}",
        r.id,
        rfc3339(r.created_ms),
        r.reporter_name,
        json(&r.reason),
        json(&r.details)
    )
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
