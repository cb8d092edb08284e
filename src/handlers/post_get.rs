//! `post.get`: one post, with my likes/reposts marks.

use super::post_views::load_post;
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{PostReply, PostTarget};

pub async fn handle(app: &App, conn: &mut ConnState, r: PostTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    reply(&PostReply { post: load_post(app, me, r.post_id).await? })
}
