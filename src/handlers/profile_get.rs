//! `profile.get`: anyone's public profile, with follower and following counts.

use super::lookup::{load_profile, user_named};
use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{ProfileEnvelope, ProfileGet};

pub async fn handle(app: &App, _conn: &mut ConnState, r: ProfileGet) -> Result<Reply> {
    let user = user_named(app, &r.username).await?;
    reply(&ProfileEnvelope { profile: load_profile(app, user.id).await? })
}
