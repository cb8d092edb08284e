//! `report.create`: report a message (by conversation and id, only one I
//! can read) or a user, for the operators (`hubbub admin reports`). The
//! report keeps a snapshot (the message's text and author name, the
//! user's name) since the message may be edited or deleted and the
//! account renamed or deleted later. Rate limited per user
//! (`--reports-per-hour`), across nodes: a token bucket in the broker
//! ([`crate::ratelimit::SharedUserBudget`]; this node's own bucket while
//! Redis does not answer).

use super::lookup::user_named;
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::conversation;
use crate::error::{Error, Result, bad_request};
use crate::model::{ConversationId, MessageId, now_ms};
use crate::protocol::{ReportCreate, ReportReply};
use crate::store::safety::{Report, ReportTarget};

/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 100;
/// Longest `details`, in characters.
pub const MAX_DETAILS_CHARS: usize = 1000;

fn check_text(reason: &str, details: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(bad_request("reason must not be empty"));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::TooLarge(format!("reason must be at most {MAX_REASON_CHARS} characters")));
    }
    if details.chars().count() > MAX_DETAILS_CHARS {
        return Err(Error::TooLarge(format!("details must be at most {MAX_DETAILS_CHARS} characters")));
    }
    Ok(())
}

async fn message_target(app: &App, me: crate::model::UserId, conv: String, id: &str) -> Result<ReportTarget> {
    let no_such = || Error::NotFound("no such message".into());
    let c = conversation::access(app.store.as_ref(), me, &ConversationId(conv)).await?;
    let id = id.parse::<i64>().ok().filter(|v| *v > 0 && *v < i64::MAX).ok_or_else(no_such)?;
    let page = app.store.history(&c.id, Some(MessageId(id + 1)), 1).await?;
    let m = page.into_iter().next().filter(|m| m.id.0 == id).ok_or_else(no_such)?;
    Ok(ReportTarget::Message { id, conversation: c.id, author: m.from_id, author_name: m.from, text: m.text })
}

pub async fn handle(app: &App, conn: &mut ConnState, r: ReportCreate) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    let details = r.details.unwrap_or_default();
    check_text(&r.reason, &details)?;
    let target = match (r.conversation, r.message_id, r.username) {
        (Some(c), Some(m), None) => message_target(app, me.id, c, &m).await?,
        (None, None, Some(name)) => {
            let u = user_named(app, &name).await?;
            if u.id == me.id {
                return Err(bad_request("you cannot report yourself"));
            }
            ReportTarget::User { id: u.id, username: u.username }
        }
        _ => return Err(bad_request("give either `conversation` and `message_id`, or `username`")),
    };
    if !app.reports.try_take(me.id).await {
        return Err(Error::RateLimited(format!(
            "at most {} reports per hour; try again later",
            app.config.reports_per_hour
        )));
    }
    let report = Report {
        id: app.ids.next_id(),
        reporter: me.id,
        reporter_name: me.username,
        target,
        reason: r.reason.trim().to_owned(),
        details,
        created_ms: now_ms(),
        resolved: None,
    };
    app.store.create_report(&report).await?;
    reply(&ReportReply { report_id: report.id.to_string() })
}
