//! `auth.refresh`: rotate a refresh token. Reusing an old one ends the whole
//! session, on every node.

use super::{ConnState, Reply, issued_reply};
use crate::app::App;
use crate::auth::Refreshed;
use crate::error::{Error, Result};
use crate::hub::CloseTarget;
use crate::protocol::{AuthRefresh, close};

pub async fn handle(app: &App, conn: &mut ConnState, r: AuthRefresh) -> Result<Reply> {
    // Refuse before rotating when this socket could not join the user's
    // sockets, so the client keeps a refresh token that works.
    if let Some(user) = app.auth.refresh_token_owner(&r.refresh_token).await? {
        let already_theirs = conn.auth.as_ref().is_some_and(|a| a.user.id == user);
        if !already_theirs && !app.hub.has_room(user) {
            return Err(Error::LimitExceeded(format!(
                "at most {} open sockets per user",
                app.config.max_sockets_per_user
            )));
        }
    }
    match app.auth.refresh(&r.refresh_token).await? {
        Refreshed::Issued(issued) => issued_reply(app, conn, issued, false).await,
        Refreshed::Reused { user, session } => {
            tracing::warn!(user = %user, "refresh token reuse: session revoked");
            if conn.auth.as_ref().is_some_and(|a| a.session == session) {
                conn.forget_user(app).await;
            }
            if let Err(e) = app.hub.close_sockets(user, CloseTarget::Session(session), close::SESSION_REVOKED).await {
                tracing::warn!(error = %e, "could not close a revoked session's sockets");
            }
            Err(Error::Unauthorized("refresh token already used; the session has been revoked".into()))
        }
    }
}
