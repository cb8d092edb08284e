//! `auth.token`: authenticate the socket with an access token.

use super::{ConnState, Reply, reply, user_view};
use crate::app::App;
use crate::error::Result;
use crate::protocol::{AuthToken, AuthTokenReply};

pub async fn handle(app: &App, conn: &mut ConnState, r: AuthToken) -> Result<Reply> {
    let (user, session) = app.auth.verify_token(&r.token).await?;
    let view = user_view(&user);
    conn.become_user(app, user, session).await?;
    reply(&AuthTokenReply { user: view })
}
