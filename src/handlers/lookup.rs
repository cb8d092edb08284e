//! Lookups several handlers share: a user by name, a profile with its
//! counts, a page of a follow list.

use super::{Reply, reply, user_view};
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{FollowEntry, Profile, User, UserId, rfc3339};
use crate::protocol::{FollowPageReply, ProfileView};
use crate::validate;

/// The user named `username` (case-insensitively), or `not_found`; a name
/// that breaks the username rules cannot exist, so it is `not_found` too.
pub async fn user_named(app: &App, username: &str) -> Result<User> {
    let not_found = || Error::NotFound(format!("no user named `{username}`"));
    validate::username(username).map_err(|_| not_found())?;
    Ok(app.store.user_by_username(username).await?.ok_or_else(not_found)?.user)
}

/// The socket's user as stored now (the display name may have changed
/// since the socket authenticated), or `unauthorized` if the account is gone.
pub async fn current_user(app: &App, conn: &super::ConnState) -> Result<User> {
    let id = conn.user()?.user.id;
    app.store.user_by_id(id).await?.ok_or_else(|| Error::Unauthorized("this account no longer exists".into()))
}

/// `id`'s profile with its follower and following counts, in wire form.
pub async fn load_profile(app: &App, id: UserId) -> Result<ProfileView> {
    let profile = app.store.profile(id).await?.ok_or_else(|| Error::NotFound("no such user".into()))?;
    profile_view(app, &profile).await
}

/// A stored profile plus fresh counts, in wire form.
pub async fn profile_view(app: &App, p: &Profile) -> Result<ProfileView> {
    let counts = app.store.follow_counts(p.user.id).await?;
    Ok(ProfileView {
        id: p.user.id.to_string(),
        username: p.user.username.clone(),
        display_name: p.user.display_name.clone(),
        bio: p.bio.clone(),
        color: p.color.clone(),
        avatar_url: p.avatar_url.clone(),
        created_at: rfc3339(p.user.created_at_ms),
        followers: counts.followers,
        following: counts.following,
    })
}

/// The reply for one page of a follow list: a full page carries the last
/// entry's follow id as the cursor of the next.
pub fn follow_page_reply(page: &[FollowEntry], limit: usize) -> Result<Reply> {
    let next_after = if page.len() == limit { page.last().map(|e| e.follow_id.to_string()) } else { None };
    reply(&FollowPageReply { users: page.iter().map(|e| user_view(&e.user)).collect(), next_after })
}
