//! `post.delete`: the author removes a post; it leaves every timeline and
//! its likes and reposts go with it.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Error, Result};
use crate::protocol::PostTarget;

pub async fn handle(app: &App, conn: &mut ConnState, r: PostTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let post = app.store.posts(&[r.post_id]).await?.pop().ok_or_else(|| Error::NotFound("no such post".into()))?;
    if post.author.id != me {
        return Err(Error::Forbidden("only the author can delete a post".into()));
    }
    app.store.delete_post(r.post_id).await?;
    reply(&serde_json::json!({}))
}
