//! `follow.following`: a page of the users someone follows, newest follow
//! first, keyset-paged by follow id.

use super::follow_followers::{DEFAULT_LIMIT, MAX_LIMIT};
use super::lookup::{follow_page_reply, user_named};
use super::{ConnState, Reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::FollowList;
use crate::validate;

pub async fn handle(app: &App, _conn: &mut ConnState, r: FollowList) -> Result<Reply> {
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let user = user_named(app, &r.username).await?;
    let page = app.store.following(user.id, r.after, limit).await?;
    follow_page_reply(&page, limit)
}
