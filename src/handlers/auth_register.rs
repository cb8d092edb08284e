//! `auth.register`: create an account; the socket becomes that user's.

use super::{ConnState, Reply, issued_reply};
use crate::app::App;
use crate::auth::NewAccount;
use crate::error::Result;
use crate::protocol::AuthRegister;

pub async fn handle(app: &App, conn: &mut ConnState, r: AuthRegister) -> Result<Reply> {
    let new = NewAccount { username: &r.username, password: &r.password, display_name: r.display_name.as_deref() };
    let issued = app.auth.register(&app.ids, new, conn.peer.ip()).await?;
    issued_reply(app, conn, issued, true).await
}
