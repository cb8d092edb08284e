//! What the `group.*` handlers and the conversation-aware message handlers
//! share: who may touch a group (a non-member gets the same `not_found`
//! for a group that exists and one that does not), the group views,
//! validation of titles, topics and member lists, and publishing one event
//! to every member's inbox in one batch.

use serde::Serialize;

use super::{ConnState, event_frame, user_view};
use crate::app::App;
use crate::error::{Error, Result, bad_request};
use crate::hub::ConnId;
use crate::model::{
    ConversationId, ConversationRef, Group, GroupId, GroupMember, Message, Role, User, UserId, rfc3339,
};
use crate::protocol::{GroupMemberRemoved, GroupView, MemberView, MessageView, events};
use crate::validate;

/// The one answer to "not a member", "no such group" and "not a group id".
pub fn no_such_group() -> Error {
    Error::NotFound("no such group".into())
}

/// Parses a group's conversation id (`not_found` for anything else).
pub fn group_id(conversation: &str) -> Result<GroupId> {
    match ConversationId::parse(conversation) {
        Some(ConversationRef::Group(g)) => Ok(g),
        _ => Err(no_such_group()),
    }
}

/// The acting user and their membership of the group `conversation`
/// names; `not_found` unless they are a member now.
pub async fn membership(app: &App, conn: &ConnState, conversation: &str) -> Result<(User, GroupId, GroupMember)> {
    let me = conn.user()?.user.clone();
    let id = group_id(conversation)?;
    let m = app.store.member(id, me.id).await?.ok_or_else(no_such_group)?;
    Ok((me, id, m))
}

/// [`membership`] of an owner or admin: `forbidden` for a plain member.
pub async fn manager(app: &App, conn: &ConnState, conversation: &str) -> Result<(User, GroupId, GroupMember)> {
    let (me, id, m) = membership(app, conn, conversation).await?;
    if !m.role.manages() {
        return Err(Error::Forbidden("only the group's owner and admins may do this".into()));
    }
    Ok((me, id, m))
}

/// The group as it is now (`not_found` if it ended meanwhile).
pub async fn current(app: &App, id: GroupId) -> Result<Group> {
    app.store.group(id).await?.ok_or_else(no_such_group)
}

/// A group as the wire shows one.
pub fn group_view(g: &Group) -> GroupView {
    GroupView {
        conversation_id: g.conversation_id().to_string(),
        title: g.title.clone(),
        topic: g.topic.clone(),
        owner_id: g.owner.to_string(),
        member_count: g.member_count,
    }
}

/// A member as the wire shows one.
pub fn member_view(m: &GroupMember) -> MemberView {
    MemberView { user: user_view(&m.user), role: m.role.as_str().into(), joined_at: rfc3339(m.joined_ms) }
}

/// A title: trimmed, 1 to `--max-group-title-chars` characters, no control
/// or invisible characters.
pub fn title(app: &App, t: &str) -> Result<String> {
    let t = t.trim();
    if t.is_empty() {
        return Err(bad_request("title must not be empty"));
    }
    text_field(app.config.max_group_title_chars, "title", t)
}

/// A topic: trimmed, up to `--max-group-topic-chars` characters (empty
/// clears it), no control or invisible characters.
pub fn topic(app: &App, t: &str) -> Result<String> {
    text_field(app.config.max_group_topic_chars, "topic", t.trim())
}

fn text_field(max: usize, what: &str, t: &str) -> Result<String> {
    if t.chars().count() > max {
        return Err(Error::TooLarge(format!("{what} must be at most {max} characters")));
    }
    if t.chars().any(|c| c.is_control() || validate::is_invisible(c)) {
        return Err(bad_request(format!("{what} must not contain control or invisible characters")));
    }
    Ok(t.to_owned())
}

/// The users a list of usernames names, each once; names that are not
/// valid usernames or name nobody are left out. The list is bounded by
/// the member limit (`too_large` past it).
pub async fn resolve(app: &App, names: &[String]) -> Result<Vec<User>> {
    let max = app.config.max_group_members;
    if names.len() > max {
        return Err(Error::TooLarge(format!("at most {max} usernames per request")));
    }
    let mut out: Vec<User> = Vec::new();
    for n in names {
        if validate::username(n).is_err() {
            continue;
        }
        if let Some(c) = app.store.user_by_username(n).await? {
            if !out.iter().any(|u| u.id == c.user.id) {
                out.push(c.user);
            }
        }
    }
    Ok(out)
}

/// Parses a role a client may set: `admin` or `member`.
pub fn settable_role(s: &str) -> Result<Role> {
    match Role::parse(s) {
        Some(r @ (Role::Admin | Role::Member)) => Ok(r),
        _ => Err(bad_request("role must be `admin` or `member`")),
    }
}

/// Publishes one event to the inboxes of `users` (every member, and a
/// removed one) in one batch, except the socket `except`. Stored already:
/// a broker failure delays delivery (the outbox retries; clients resume
/// or sync), so it is logged, never returned.
pub async fn publish<T: Serialize>(app: &App, users: &[UserId], event: &str, data: &T, except: Option<ConnId>) {
    let frame = match event_frame(event, data) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, event, "group event not serialized");
            return;
        }
    };
    let failed = app.hub.send_to_users(users, &frame, except).await;
    if failed > 0 {
        tracing::warn!(failed, event, "group event stored but not published to every member yet");
    }
}

/// Most groups whose departures a deleted account announces; a user in
/// more is still removed from all of them by the store, but only these
/// groups' members are told (logged).
pub const MAX_ANNOUNCED_GROUPS: usize = 10_000;

/// The groups `user` is in (with their owner now), to announce a departure
/// that the store makes (account deletion) after it happened. Read in pages
/// of 500, at most [`MAX_ANNOUNCED_GROUPS`].
pub async fn groups_of(app: &App, user: UserId) -> Result<Vec<(GroupId, UserId)>> {
    const PAGE: usize = 500;
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = app.store.group_conversations(user, before, PAGE).await?;
        let full = page.len() == PAGE;
        before = page.last().map(|g| g.activity());
        out.extend(page.iter().map(|g| (g.group.id, g.group.owner)));
        if !full || out.len() >= MAX_ANNOUNCED_GROUPS {
            if full {
                tracing::warn!(user = %user, "account in more groups than announced on deletion");
            }
            return Ok(out);
        }
    }
}

/// Tells the remaining members of each of `groups` (from [`groups_of`],
/// read before) that `user` left them, as `group.member_removed` with `by`
/// the user themselves, the new owner when the owner changed, and `ended`
/// when nobody is left. For account deletion, which removes the user from
/// every group in the store; a node that stops between the two leaves the
/// members to see the departure in `group.members` instead.
pub async fn announce_departure(app: &App, user: &User, groups: &[(GroupId, UserId)]) {
    for &(id, owner_before) in groups {
        let group = match app.store.group(id).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, group = %id, "departure not announced");
                continue;
            }
        };
        let Some(group) = group else { continue }; // ended: nobody to tell
        let to = match app.store.group_member_ids(id).await {
            Ok(to) => to,
            Err(e) => {
                tracing::warn!(error = %e, group = %id, "departure not announced");
                continue;
            }
        };
        let event = GroupMemberRemoved {
            conversation_id: id.to_string(),
            user: user_view(user),
            by: user_view(user),
            new_owner_id: (group.owner != owner_before).then(|| group.owner.to_string()),
            ended: false,
            group: Some(group_view(&group)),
        };
        publish(app, &to, events::GROUP_MEMBER_REMOVED, &event, None).await;
    }
}

/// Message views, with the sender of each group message whose account was
/// deleted shown as `from: ""`, `from_deleted: true` (never the old
/// username, which anyone may register next). One user lookup per
/// distinct group sender of the page (a page is at most 200 messages).
/// Each view shows the message as it reads now (`lifecycle::overlay`).
pub async fn message_views(app: &App, messages: &[Message]) -> Result<Vec<MessageView>> {
    let mut gone: Vec<UserId> = Vec::new();
    let mut alive: Vec<UserId> = Vec::new();
    for m in messages.iter().filter(|m| m.conversation_id.kind() == crate::model::ConversationKind::Group) {
        if gone.contains(&m.from_id) || alive.contains(&m.from_id) {
            continue;
        }
        match app.store.user_by_id(m.from_id).await? {
            Some(_) => alive.push(m.from_id),
            None => gone.push(m.from_id),
        }
    }
    let mut views: Vec<MessageView> = messages
        .iter()
        .map(|m| {
            let mut v = super::message_view(m);
            if gone.contains(&m.from_id) {
                v.from = String::new();
                v.from_deleted = true;
            }
            v
        })
        .collect();
    super::lifecycle::overlay(app, messages, &mut views).await?;
    Ok(views)
}
