//! `post.repost`: repost a post onto my timeline (idempotent). A new repost
//! reaches my followers like a post of mine and tells the author.

use super::post_create::fanout_state;
use super::post_views::{item_view, load_post_with_author};
use super::{ConnState, Reply, event_frame, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result};
use crate::fanout::Job;
use crate::model::{FanoutState, ItemId, ItemKind, TimelineItem};
use crate::protocol::{PostNew, PostReply, PostReposted, PostTarget, PostView, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: PostTarget) -> Result<Reply> {
    let me = super::lookup::current_user(app, conn).await?;
    let state = fanout_state(app, me.id).await?;
    let item_id = ItemId(app.ids.next_id());
    let toggle = app
        .store
        .add_repost(r.post_id, me.id, item_id, state)
        .await?
        .ok_or_else(|| Error::NotFound("no such post".into()))?;
    let (author, post) = load_post_with_author(app, me.id, r.post_id).await?;
    if toggle.changed {
        let item =
            TimelineItem { id: item_id, kind: ItemKind::Repost, actor: me.id, post_id: r.post_id, post_author: author };
        // Events go to many readers: the marks in them are no one's.
        let neutral = PostView { liked_by_me: false, reposted_by_me: false, ..post.clone() };
        let frame = event_frame(events::POST_NEW, &PostNew { item: item_view(&item, neutral, Some(user_view(&me))) })?;
        if let Err(e) = app.hub.send_to_user(me.id, &frame, Some(conn.id)).await {
            tracing::debug!(error = %e, "repost not published to my other sockets");
        }
        app.fanout.enqueue(Job { item, event: Some(frame), copy: state == FanoutState::Pending }).await;
        if author != me.id {
            let event = PostReposted { post_id: post.id.clone(), by: user_view(&me), reposts: toggle.count };
            let frame = event_frame(events::POST_REPOSTED, &event)?;
            if let Err(e) = app.hub.send_to_user(author, &frame, None).await {
                tracing::debug!(error = %e, "post.reposted not published");
            }
        }
    }
    reply(&PostReply { post })
}
