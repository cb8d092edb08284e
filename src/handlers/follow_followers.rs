//! `follow.followers`: a page of the users following someone, newest
//! follow first, keyset-paged by follow id.

use super::lookup::{follow_page_reply, user_named};
use super::{ConnState, Reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::FollowList;
use crate::validate;

/// Default and largest page (shared with `follow.following`).
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, _conn: &mut ConnState, r: FollowList) -> Result<Reply> {
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let user = user_named(app, &r.username).await?;
    let page = app.store.followers(user.id, r.after, limit).await?;
    follow_page_reply(&page, limit)
}
