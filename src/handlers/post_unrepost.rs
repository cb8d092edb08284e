//! `post.unrepost`: remove my repost and its timeline items (idempotent).

use super::post_views::load_post;
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::{PostReply, PostTarget};

pub async fn handle(app: &App, conn: &mut ConnState, r: PostTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    app.store.remove_repost(r.post_id, me).await?.ok_or_else(|| Error::NotFound("no such post".into()))?;
    reply(&PostReply { post: load_post(app, me, r.post_id).await? })
}
