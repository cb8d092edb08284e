//! `auth.logout`: revoke this socket's session and remove its push devices. The session's other sockets
//! are closed (code 4500); this one stays open, unauthenticated.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::hub::CloseTarget;
use crate::protocol::close;

pub async fn handle(app: &App, conn: &mut ConnState) -> Result<Reply> {
    let me = conn.user()?.clone();
    app.auth.logout(&me.session).await?;
    // The session's push devices go with it (issue 16).
    if let Err(e) = app.store.remove_devices(me.user.id, Some(&me.session)).await {
        tracing::warn!(error = %e, "logged out but the session's push devices not removed");
    }
    conn.forget_user(app).await;
    if let Err(e) = app.hub.close_sockets(me.user.id, CloseTarget::Session(me.session), close::SESSION_REVOKED).await {
        tracing::warn!(error = %e, "could not close the session's other sockets");
    }
    reply(&serde_json::json!({}))
}
