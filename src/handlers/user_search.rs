//! `user.search`: users whose username or a display-name word starts with
//! the query (case-insensitively, literally). Public fields only.

use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{UserSearch, UserSearchReply};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 50;

pub async fn handle(app: &App, _conn: &mut ConnState, r: UserSearch) -> Result<Reply> {
    let query = validate::search_query(&r.query)?;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let users = app.store.search_users(query, limit).await?;
    reply(&UserSearchReply { users: users.iter().map(user_view).collect() })
}
