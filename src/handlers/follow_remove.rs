//! `follow.remove`: stop following a user. Idempotent; no event.

use super::lookup::user_named;
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::{Result, bad_request};
use crate::protocol::{FollowReply, FollowTarget};

pub async fn handle(app: &App, conn: &mut ConnState, r: FollowTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let target = user_named(app, &r.username).await?;
    if target.id == me {
        return Err(bad_request("you cannot unfollow yourself"));
    }
    let removed = app.store.remove_follow(me, target.id).await?;
    reply(&FollowReply { following: false, changed: removed })
}
