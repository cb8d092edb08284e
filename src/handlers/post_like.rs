//! `post.like`: like a post (idempotent); a new like tells the author.

use super::post_views::load_post_with_author;
use super::{ConnState, Reply, event_frame, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::{PostLiked, PostReply, PostTarget, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: PostTarget) -> Result<Reply> {
    let me = super::lookup::current_user(app, conn).await?;
    let toggle =
        app.store.set_like(r.post_id, me.id, true).await?.ok_or_else(|| Error::NotFound("no such post".into()))?;
    let (author, post) = load_post_with_author(app, me.id, r.post_id).await?;
    if toggle.changed && author != me.id {
        let event = PostLiked { post_id: post.id.clone(), by: user_view(&me), likes: toggle.count };
        let frame = event_frame(events::POST_LIKED, &event)?;
        if let Err(e) = app.hub.send_to_user(author, &frame, None).await {
            tracing::debug!(error = %e, "post.liked not published");
        }
    }
    reply(&PostReply { post })
}
