//! `auth.token`: authenticate the socket with an access token, optionally
//! resuming from the last inbox position the client saw.

use super::{ConnState, Reply, pos_view, reply, user_view};
use crate::app::App;
use crate::broker::Position;
use crate::error::Result;
use crate::protocol::{AuthToken, AuthTokenReply};

pub async fn handle(app: &App, conn: &mut ConnState, r: AuthToken) -> Result<Reply> {
    let (user, session) = app.auth.verify_token(&r.token).await?;
    let view = user_view(&user);
    let resuming = r.resume.is_some();
    let resume = r.resume.map(|p| Position { epoch: p.epoch, offset: p.offset });
    let attached = conn.become_user(app, user, session, resume).await?;
    reply(&AuthTokenReply {
        user: view,
        recovered: resuming.then_some(attached.recovered),
        pos: attached.position.map(pos_view),
        ping_interval: app.config.edge.ping_interval,
    })
}
