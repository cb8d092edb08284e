//! `timeline.user`: one user's posts and reposts, newest first.

use super::lookup::user_named;
use super::post_views::item_views;
use super::{ConnState, Reply, page_bytes, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{TimelineReply, TimelineUser};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: TimelineUser) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let user = user_named(app, &r.username).await?;
    let page = app.store.user_items(user.id, r.before, limit).await?;
    let mut next_before = if page.len() == limit { page.last().map(|i| i.id.to_string()) } else { None };
    let mut items = item_views(app, me, &page).await?;
    if page_bytes::fit(&mut items, app.config.max_reply_bytes) {
        next_before = items.last().map(|i| i.id.clone());
    }
    reply(&TimelineReply { items, next_before })
}
