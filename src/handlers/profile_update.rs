//! `profile.update`: change some of my profile's fields. Stored first, then
//! `profile.updated` goes to my other sockets, then the reply.

use super::lookup::profile_view;
use super::{ConnState, Reply, event_frame, reply};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::{self, User};
use crate::protocol::{ProfileEnvelope, ProfileUpdate, events};
use crate::validate;

pub async fn handle(app: &App, conn: &mut ConnState, r: ProfileUpdate) -> Result<Reply> {
    let me = conn.user()?.user.clone();
    let changes = changes(&me, r)?;
    if changes.is_empty() {
        return Err(bad_request("nothing to update: send display_name, bio, color or avatar_url"));
    }
    if let Some(name) = &changes.display_name {
        app.auth.check_display_name(name, &me.username).await?;
    }
    let stored = app
        .store
        .update_profile(me.id, &changes)
        .await?
        .ok_or_else(|| Error::Unauthorized("this account no longer exists".into()))?;
    if let Some(a) = conn.auth.as_mut() {
        a.user.display_name = stored.user.display_name.clone();
    }
    let envelope = ProfileEnvelope { profile: profile_view(app, &stored).await? };
    let frame = event_frame(events::PROFILE_UPDATED, &envelope)?;
    if let Err(e) = app.hub.send_to_user(me.id, &frame, Some(conn.id)).await {
        tracing::warn!(error = %e, "profile stored but not published to the user's other sockets");
    }
    reply(&envelope)
}

/// Validates the request into a store update. A blank display name means
/// "the username"; `""` or null clears color and avatar_url.
fn changes(me: &User, r: ProfileUpdate) -> Result<model::ProfileUpdate> {
    let display_name = r.display_name.as_deref().map(|d| validate::display_name(Some(d), &me.username)).transpose()?;
    if let Some(bio) = &r.bio {
        validate::bio(bio)?;
    }
    let color = match r.color {
        None => None,
        Some(c) => Some(c.filter(|c| !c.is_empty()).map(|c| validate::color(&c)).transpose()?),
    };
    let avatar_url = match r.avatar_url {
        None => None,
        Some(u) => Some(u.filter(|u| !u.is_empty()).map(|u| validate::avatar_url(&u).map(|()| u)).transpose()?),
    };
    Ok(model::ProfileUpdate { display_name, bio: r.bio, color, avatar_url })
}
