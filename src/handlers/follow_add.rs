//! `follow.add`: follow a user. Idempotent; only a new follow sends
//! `follow.new` to the followed user's sockets. Refused (`forbidden`)
//! while either user blocks the other.

use super::lookup::user_named;
use super::{ConnState, Reply, event_frame, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::FollowId;
use crate::protocol::{FollowNew, FollowReply, FollowTarget, events};

pub async fn handle(app: &App, conn: &mut ConnState, r: FollowTarget) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let target = user_named(app, &r.username).await?;
    if target.id == me {
        return Err(bad_request("you cannot follow yourself"));
    }
    super::user_block::check_direct(app, me, target.id, "follow").await?;
    if app.store.follow_counts(me).await?.following >= app.config.max_following
        && !app.store.follow_ids(me).await?.iter().any(|(id, _)| *id == target.id)
    {
        return Err(Error::LimitExceeded(format!("you can follow at most {} users", app.config.max_following)));
    }
    let created = app.store.add_follow(me, target.id, FollowId(app.ids.next_id())).await?;
    if !created && app.store.user_by_id(target.id).await?.is_none() {
        // Deleted between the lookup and the write: nothing was stored.
        return Err(Error::NotFound(format!("no user named `{}`", r.username)));
    }
    if created {
        // Read back so the event carries my current display name.
        let follower = app
            .store
            .user_by_id(me)
            .await?
            .ok_or_else(|| Error::Unauthorized("this account no longer exists".into()))?;
        let frame = event_frame(events::FOLLOW_NEW, &FollowNew { follower: user_view(&follower) })?;
        if let Err(e) = app.hub.send_to_user(target.id, &frame, None).await {
            tracing::warn!(error = %e, "follow stored but not published");
        }
    }
    reply(&FollowReply { following: true, changed: created })
}
