//! `auth.login`: check credentials; the socket becomes that user's.

use super::{ConnState, Reply, issued_reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::AuthLogin;

pub async fn handle(app: &App, conn: &mut ConnState, r: AuthLogin) -> Result<Reply> {
    let issued = app.auth.login(&r.username, &r.password, conn.peer.ip()).await?;
    issued_reply(app, conn, issued, true).await
}
