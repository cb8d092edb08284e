//! `auth.register`: create an account; the socket becomes that user's.

use super::{ConnState, Reply, issued_reply};
use crate::app::App;
use crate::error::Result;
use crate::protocol::AuthRegister;

pub async fn handle(app: &App, conn: &mut ConnState, r: AuthRegister) -> Result<Reply> {
    let issued = app.auth.register(&app.ids, &r.username, &r.password, r.display_name.as_deref()).await?;
    issued_reply(app, conn, issued, true).await
}
