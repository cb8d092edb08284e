//! `post.create`: store a post, tell my other sockets, acknowledge; fan-out
//! to followers (events and home-timeline copies) runs in the background.

use super::post_views::{item_view, post_view};
use super::{ConnState, Reply, event_frame, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::fanout::Job;
use crate::model::{FanoutState, ItemId, ItemKind, Post, PostId, TimelineItem, ViewerMarks};
use crate::protocol::{PostCreate, PostNew, PostReply, events};
use crate::validate;

/// Longest post, in characters.
pub const MAX_POST_CHARS: usize = 280;

pub async fn handle(app: &App, conn: &mut ConnState, r: PostCreate) -> Result<Reply> {
    let me = super::lookup::current_user(app, conn).await?;
    validate::message_text(&r.text, MAX_POST_CHARS)?;
    let state = fanout_state(app, me.id).await?;
    let id = PostId(app.ids.next_id());
    if !app.store.create_post(id, me.id, &r.text, state).await? {
        return Err(Error::Unauthorized("this account no longer exists".into()));
    }
    let post = Post { id, author: me.clone(), text: r.text, likes: 0, reposts: 0 };
    let item = TimelineItem { id: ItemId(id.0), kind: ItemKind::Post, actor: me.id, post_id: id, post_author: me.id };
    let view = post_view(&post, ViewerMarks::default());
    let frame = event_frame(events::POST_NEW, &PostNew { item: item_view(&item, view.clone(), None) })?;
    if let Err(e) = app.hub.send_to_user(me.id, &frame, Some(conn.id)).await {
        tracing::warn!(error = %e, "post stored but not published to my other sockets");
    }
    app.fanout.enqueue(Job { item, event: Some(frame), copy: state == FanoutState::Pending }).await;
    reply(&PostReply { post: view })
}

/// Copy on write for actors under the threshold, merge on read above it.
pub async fn fanout_state(app: &App, actor: crate::model::UserId) -> Result<FanoutState> {
    let followers = app.store.follow_counts(actor).await?.followers;
    Ok(if followers < app.config.fanout_threshold { FanoutState::Pending } else { FanoutState::OnRead })
}
