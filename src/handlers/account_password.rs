//! `account.password`: change my password. Every other session of mine is
//! revoked and its sockets closed (code 4500); this session stays. Every
//! push device of mine is removed.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::hub::CloseTarget;
use crate::protocol::{AccountPassword, close};

pub async fn handle(app: &App, conn: &mut ConnState, r: AccountPassword) -> Result<Reply> {
    let me = conn.user()?.clone();
    app.auth.change_password(&me.user, &me.session, &r.old_password, &r.new_password, conn.peer.ip()).await?;
    // Every push device goes, this session's too (issue 16): a stolen
    // session's registration must not outlive a password change.
    if let Err(e) = app.store.remove_devices(me.user.id, None).await {
        tracing::warn!(error = %e, "password changed but push devices not removed");
    }
    let others = CloseTarget::AllExcept(Some(me.session));
    if let Err(e) = app.hub.close_sockets(me.user.id, others, close::SESSION_REVOKED).await {
        tracing::warn!(error = %e, "password changed but other sessions' sockets not closed");
    }
    reply(&serde_json::json!({}))
}
