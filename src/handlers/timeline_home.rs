//! `timeline.home`: posts and reposts by the people I follow and by me,
//! newest first (rules in [`crate::timeline`]).

use super::post_views::item_views;
use super::{ConnState, Reply, page_bytes, reply};
use crate::app::App;
use crate::error::Result;
use crate::model::{ItemId, now_ms};
use crate::protocol::{TimelineHome, TimelineReply};
use crate::{snowflake, timeline, validate};

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: TimelineHome) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let floor = ItemId(snowflake::floor_for_ms(now_ms() - app.config.home_timeline_days as i64 * 86_400_000));
    let page = timeline::home(app.store.as_ref(), me, r.before, limit, floor).await?;
    let mut items = item_views(app, me, &page.items).await?;
    let mut next_before = page.next_before.map(|c| c.to_string());
    if page_bytes::fit(&mut items, app.config.max_reply_bytes) {
        next_before = items.last().map(|i| i.id.clone());
    }
    reply(&TimelineReply { items, next_before })
}
