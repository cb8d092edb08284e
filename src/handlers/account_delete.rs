//! `account.delete`: delete my account and everything that is mine. Every
//! socket of mine is closed with code 4500; this one gets the reply first.
//! The remaining members of my groups get `group.member_removed`.

use super::{ConnState, Reply, reply};
use crate::app::App;
use crate::error::Result;
use crate::hub::CloseTarget;
use crate::protocol::{AccountDelete, close};

pub async fn handle(app: &App, conn: &mut ConnState, r: AccountDelete) -> Result<Reply> {
    let me = conn.user()?.clone();
    let groups = super::group_access::groups_of(app, me.user.id).await?;
    app.auth.delete_account(&me.user, &r.password, conn.peer.ip()).await?;
    super::group_access::announce_departure(app, &me.user, &groups).await;
    // This socket: unauthenticated at once, closed after the reply is written.
    conn.forget_user(app).await;
    conn.control.close(close::SESSION_REVOKED, "account deleted");
    if let Err(e) = app.hub.close_sockets(me.user.id, CloseTarget::AllExcept(None), close::SESSION_REVOKED).await {
        tracing::warn!(error = %e, "account deleted but its other sockets not closed");
    }
    reply(&serde_json::json!({}))
}
