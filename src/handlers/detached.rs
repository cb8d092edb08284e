//! Requests run beside the socket's other requests (pipelining,
//! [`crate::pipeline`]): they see the socket as it was when they arrived,
//! never change it, and pass the same checks as [`super::dispatch`].
//! Only `message.send` runs this way; every other kind runs alone.

use std::sync::Arc;

use super::{Reply, SocketAuth, message_send};
use crate::app::App;
use crate::error::{Error, Result, StoreError};
use crate::hub::{ConnControl, ConnId};
use crate::protocol::MessageSend;

/// What a detached request knows of its socket.
#[derive(Clone, Debug)]
pub struct Sender {
    /// The socket.
    pub conn: ConnId,
    /// Its user and session when the request arrived.
    pub auth: SocketAuth,
    /// The hub's close requests for the socket.
    pub control: Arc<ConnControl>,
}

/// `message.send` with [`super::dispatch`]'s checks: nothing runs on a
/// socket the hub asked to close, the user's write budget applies, and a
/// send whose account was deleted meanwhile is not acknowledged.
pub async fn message_send(app: &App, who: &Sender, r: MessageSend) -> Result<Reply> {
    if who.control.requested().is_some() {
        return Err(Error::Unauthorized("this socket is closing".into()));
    }
    let me = who.auth.user.id;
    if !app.user_writes.try_take(me).await {
        return Err(Error::RateLimited("too many writes from this account; slow down".into()));
    }
    let result = message_send::send(app, who.auth.user.clone(), who.conn, r).await;
    if who.control.requested().is_some() && result.is_ok() && app.store.user_by_id(me).await?.is_none() {
        return Err(StoreError::UserGone.into());
    }
    result
}
