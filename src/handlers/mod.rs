//! Request handlers: one file per request kind, and [`dispatch`], which
//! routes a parsed request to its handler. This is the one place where the
//! store and the hub meet. Write order: store first, then publish, then
//! acknowledge (the reply is sent by the connection after `dispatch`).

mod account_delete;
mod account_password;
mod auth_login;
mod auth_logout;
mod auth_refresh;
mod auth_register;
mod auth_token;
mod change_sync;
mod conversation_list;
mod conversation_mute;
mod conversation_read;
pub mod detached;
mod device_list;
mod device_register;
mod device_remove;
mod follow_add;
mod follow_followers;
mod follow_following;
mod follow_remove;
mod group_access;
mod group_add;
mod group_create;
mod group_get;
mod group_members;
mod group_remove;
mod group_role;
mod group_update;
mod lifecycle;
mod lookup;
mod message_delete;
mod message_edit;
mod message_history;
mod message_react;
mod message_send;
mod message_sync;
mod page_bytes;
mod post_create;
mod post_delete;
mod post_get;
mod post_like;
mod post_repost;
mod post_unlike;
mod post_unrepost;
mod post_views;
mod presence;
mod profile_get;
mod profile_update;
mod push_config;
mod reaction_views;
mod report_create;
mod settings;
mod timeline_home;
mod timeline_user;
mod typing;
mod user_block;
mod user_search;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::app::App;
use crate::auth::Issued;
use crate::broker::Position;
use crate::error::{Error, Result};
use crate::hub::outq::OutSender;
use crate::hub::{Attached, ConnControl, ConnHandle, ConnId};
use crate::model::{SessionId, User, UserId};
use crate::protocol::{AuthReply, EventFrame, Pos, Request};

pub use views::{message_view, user_view};

/// Serialized reply data.
pub type Reply = Box<RawValue>;

/// Who a socket belongs to once authenticated.
#[derive(Clone, Debug)]
pub struct SocketAuth {
    pub user: User,
    pub session: SessionId,
}

/// Per-socket state the handlers may read and change.
pub struct ConnState {
    pub id: ConnId,
    pub peer: SocketAddr,
    pub auth: Option<SocketAuth>,
    pub tx: OutSender,
    pub control: Arc<ConnControl>,
    /// Users whose presence this socket watches (bounded).
    pub watching: Vec<UserId>,
    /// Typing signals this socket forwarded recently (bounded).
    pub typing: typing::TypingState,
    /// The hub's handle of this socket while authenticated.
    handle: Option<ConnHandle>,
}

impl ConnState {
    /// A fresh, unauthenticated socket's state.
    pub fn new(id: ConnId, peer: SocketAddr, tx: OutSender, control: Arc<ConnControl>) -> ConnState {
        ConnState {
            id,
            peer,
            auth: None,
            tx,
            control,
            watching: Vec::new(),
            typing: typing::TypingState::default(),
            handle: None,
        }
    }

    /// The authenticated user, or `unauthorized`.
    pub fn user(&self) -> Result<&SocketAuth> {
        self.auth.as_ref().ok_or_else(|| Error::Unauthorized("authenticate first".into()))
    }

    /// Makes this socket `user`'s in `session`, leaving any previous owner.
    /// With `resume`, the inbox events after that position are queued for
    /// the socket when the broker still has them all. A socket that was
    /// already this user's (a refresh) resumes from where it stood.
    pub async fn become_user(
        &mut self,
        app: &App,
        user: User,
        session: SessionId,
        resume: Option<Position>,
    ) -> Result<Attached> {
        let same_user = self.auth.as_ref().is_some_and(|a| a.user.id == user.id);
        let here = self.handle.as_ref().and_then(|h| match h.position() {
            (Some(epoch), offset) => Some(Position { epoch, offset }),
            (None, _) => None,
        });
        let resume = resume.or(if same_user { here } else { None });
        if !same_user {
            // The same user's socket is replaced in place by the hub (no
            // unsubscribe, no presence flap); anyone else's is detached first.
            self.forget_user(app).await;
        }
        let handle = ConnHandle::new(self.id, session.clone(), self.tx.clone(), self.control.clone());
        let attached = app.hub.attach(&user, handle.clone(), resume).await?;
        self.auth = Some(SocketAuth { user, session });
        self.handle = Some(handle);
        Ok(attached)
    }

    /// Returns this socket to the unauthenticated state (and stops its
    /// presence watches).
    pub async fn forget_user(&mut self, app: &App) {
        self.typing = typing::TypingState::default();
        for u in std::mem::take(&mut self.watching) {
            app.hub.unwatch(u, self.id).await;
        }
        self.handle = None;
        if let Some(a) = self.auth.take() {
            app.hub.detach(&a.user, self.id).await;
        }
    }
}

/// Runs one request. The returned value is the reply's `data`.
pub async fn dispatch(app: &App, conn: &mut ConnState, req: Request) -> Result<Reply> {
    // The hub asked this socket to close (its account was deleted, its
    // session revoked...): requests already queued on it are not run, and
    // take nothing from the user's write budget.
    if conn.control.requested().is_some() {
        return Err(Error::Unauthorized("this socket is closing".into()));
    }
    if !req.allowed_before_auth() {
        let user = conn.user()?.user.id;
        if req.is_write() && !app.user_writes.try_take(user).await {
            return Err(Error::RateLimited("too many writes from this account; slow down".into()));
        }
    }
    let closes_itself = matches!(req, Request::AccountDelete(_));
    let me = conn.auth.as_ref().map(|a| a.user.id);
    let result = run(app, conn, req).await;
    // A close that came while the request ran: if it is because the account
    // was deleted, whatever the request wrote went with the account (or
    // was refused), so it is not acknowledged.
    if let (Some(me), Some(_), false) = (me, conn.control.requested(), closes_itself) {
        if result.is_ok() && app.store.user_by_id(me).await?.is_none() {
            return Err(crate::error::StoreError::UserGone.into());
        }
    }
    result
}

async fn run(app: &App, conn: &mut ConnState, req: Request) -> Result<Reply> {
    match req {
        Request::AuthRegister(r) => auth_register::handle(app, conn, r).await,
        Request::AuthLogin(r) => auth_login::handle(app, conn, r).await,
        Request::AuthToken(r) => auth_token::handle(app, conn, r).await,
        Request::AuthRefresh(r) => auth_refresh::handle(app, conn, r).await,
        Request::AuthLogout {} => auth_logout::handle(app, conn).await,
        Request::MessageSend(r) => message_send::handle(app, conn, r).await,
        Request::MessageHistory(r) => message_history::handle(app, conn, r).await,
        Request::MessageSync(r) => message_sync::handle(app, conn, r).await,
        Request::ConversationList(r) => conversation_list::handle(app, conn, r).await,
        Request::ProfileGet(r) => profile_get::handle(app, conn, r).await,
        Request::ProfileUpdate(r) => profile_update::handle(app, conn, r).await,
        Request::UserSearch(r) => user_search::handle(app, conn, r).await,
        Request::FollowAdd(r) => follow_add::handle(app, conn, r).await,
        Request::FollowRemove(r) => follow_remove::handle(app, conn, r).await,
        Request::FollowFollowers(r) => follow_followers::handle(app, conn, r).await,
        Request::FollowFollowing(r) => follow_following::handle(app, conn, r).await,
        Request::AccountPassword(r) => account_password::handle(app, conn, r).await,
        Request::AccountDelete(r) => account_delete::handle(app, conn, r).await,
        Request::PostCreate(r) => post_create::handle(app, conn, r).await,
        Request::PostGet(r) => post_get::handle(app, conn, r).await,
        Request::PostDelete(r) => post_delete::handle(app, conn, r).await,
        Request::PostLike(r) => post_like::handle(app, conn, r).await,
        Request::PostUnlike(r) => post_unlike::handle(app, conn, r).await,
        Request::PostRepost(r) => post_repost::handle(app, conn, r).await,
        Request::PostUnrepost(r) => post_unrepost::handle(app, conn, r).await,
        Request::TimelineHome(r) => timeline_home::handle(app, conn, r).await,
        Request::TimelineUser(r) => timeline_user::handle(app, conn, r).await,
        Request::PresenceQuery(r) => presence::query(app, conn, r).await,
        Request::PresenceWatch(r) => presence::watch(app, conn, r).await,
        Request::PresenceUnwatch(r) => presence::unwatch(app, conn, r).await,
        Request::GroupCreate(r) => group_create::handle(app, conn, r).await,
        Request::GroupGet(r) => group_get::handle(app, conn, r).await,
        Request::GroupUpdate(r) => group_update::handle(app, conn, r).await,
        Request::GroupMembers(r) => group_members::handle(app, conn, r).await,
        Request::GroupAdd(r) => group_add::handle(app, conn, r).await,
        Request::GroupRemove(r) => group_remove::remove(app, conn, r).await,
        Request::GroupLeave(r) => group_remove::leave(app, conn, r).await,
        Request::GroupRole(r) => group_role::handle(app, conn, r).await,
        Request::ConversationRead(r) => conversation_read::handle(app, conn, r).await,
        Request::ChangeSync(r) => change_sync::handle(app, conn, r).await,
        Request::SettingsGet {} => settings::get(app, conn).await,
        Request::SettingsUpdate(r) => settings::update(app, conn, r).await,
        Request::TypingStart(r) => typing::start(app, conn, r).await,
        Request::TypingStop(r) => typing::stop(app, conn, r).await,
        Request::UserBlock(r) => user_block::block(app, conn, r).await,
        Request::UserUnblock(r) => user_block::unblock(app, conn, r).await,
        Request::UserBlocks(r) => user_block::list(app, conn, r).await,
        Request::ConversationMute(r) => conversation_mute::mute(app, conn, r).await,
        Request::ConversationUnmute(r) => conversation_mute::unmute(app, conn, r).await,
        Request::ReportCreate(r) => report_create::handle(app, conn, r).await,
        Request::MessageReact(r) => message_react::react(app, conn, r).await,
        Request::MessageUnreact(r) => message_react::unreact(app, conn, r).await,
        Request::MessageEdit(r) => message_edit::handle(app, conn, r).await,
        Request::MessageDelete(r) => message_delete::handle(app, conn, r).await,
        Request::DeviceRegister(r) => device_register::handle(app, conn, r).await,
        Request::DeviceList {} => device_list::handle(app, conn).await,
        Request::DeviceRemove(r) => device_remove::handle(app, conn, r).await,
        Request::PushConfig {} => push_config::handle(app, conn).await,
        Request::Ping {} => reply(&serde_json::json!({})),
    }
}

/// The wire form of an inbox position.
pub fn pos_view(p: Position) -> Pos {
    Pos { epoch: p.epoch, offset: p.offset }
}

/// Serializes reply data.
pub fn reply<T: Serialize>(data: &T) -> Result<Reply> {
    serde_json::value::to_raw_value(data).map_err(|e| Error::Internal(e.to_string()))
}

/// Serializes an event frame once, ready to be sent to many sockets.
pub fn event_frame<T: Serialize>(event: &str, data: &T) -> Result<Utf8Bytes> {
    let frame = EventFrame { kind: "event", event, data };
    serde_json::to_string(&frame).map(Utf8Bytes::from).map_err(|e| Error::Internal(e.to_string()))
}

/// Attaches the socket to a freshly issued session and builds the reply.
/// If the socket cannot be attached (too many sockets), a session created
/// for this request is revoked again: its tokens never reach the client.
async fn issued_reply(app: &App, conn: &mut ConnState, issued: Issued, fresh_session: bool) -> Result<Reply> {
    let attached = match conn.become_user(app, issued.user.clone(), issued.session.clone(), None).await {
        Ok(a) => a,
        Err(e) => {
            if fresh_session {
                if let Err(revoke) = app.auth.logout(&issued.session).await {
                    tracing::warn!(error = %revoke, "could not revoke an undelivered session");
                }
            }
            return Err(e);
        }
    };
    reply(&AuthReply {
        user: user_view(&issued.user),
        access_token: issued.access_token,
        refresh_token: issued.refresh_token,
        expires_in: issued.expires_in,
        pos: attached.position.map(pos_view),
        ping_interval: app.config.edge.ping_interval,
    })
}
