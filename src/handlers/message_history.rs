//! `message.history`: a page of one conversation, newest first: my direct
//! conversation with a user (`with`), or a conversation by id
//! (`conversation`: direct with me, or a group I am a member of now; a
//! removed or departed member reads nothing of the group any more).

use super::group_access::{self as access, message_views};
use super::{ConnState, Reply, page_bytes, reply};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::model::{ConversationId, ConversationRef};
use crate::protocol::{HistoryReply, MessageHistory};
use crate::validate;

/// Default and largest page.
pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub async fn handle(app: &App, conn: &mut ConnState, r: MessageHistory) -> Result<Reply> {
    let me = conn.user()?.user.id;
    let limit = validate::limit(r.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let conversation = match (r.with, r.conversation) {
        (Some(with), None) => {
            let not_found = || Error::NotFound(format!("no user named `{with}`"));
            validate::username(&with).map_err(|_| not_found())?;
            let peer = app.store.user_by_username(&with).await?.ok_or_else(not_found)?.user;
            ConversationId::direct(me, peer.id)
        }
        (None, Some(c)) => match ConversationId::parse(&c) {
            Some(ConversationRef::Group(_)) => {
                let (_, g, _) = access::membership(app, conn, &c).await?;
                ConversationId::group(g)
            }
            Some(ConversationRef::Direct(a, b)) if a == me || b == me => ConversationId::direct(a, b),
            _ => return Err(Error::NotFound("no such conversation".into())),
        },
        _ => return Err(bad_request("give exactly one of `with` and `conversation`")),
    };
    let page = app.store.history(&conversation, r.before, limit).await?;
    let mut messages = message_views(app, &page).await?;
    super::reaction_views::attach(app, me, &page, &mut messages).await?;
    let cut = page_bytes::fit(&mut messages, app.config.max_reply_bytes);
    let next_before = if cut || page.len() == limit { messages.last().map(|m| m.id.clone()) } else { None };
    reply(&HistoryReply { messages, next_before })
}
