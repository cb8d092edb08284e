//! [`GroupStore`] on SQLite: `groups` (title, topic, activity) and
//! `group_members` (role, join time), read and written in the writer's
//! transaction, so every membership rule holds atomically. Group messages
//! are rows of `messages` under the group's conversation id; a member's
//! sync and conversation list reach them through `group_members`.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::engine::map_err;
use super::{MESSAGE_COLUMNS, SqliteStore, message_commit_by, message_from_row, require_users, stored_for_nonce};
use crate::error::StoreError;
use crate::model::{
    AddOutcome, Group, GroupId, GroupMember, GroupSummary, GroupUpdate, Message, MessageId, NewGroup, Removal, Role,
    UserId, now_ms,
};
use crate::store::{GroupStore, Inserted};

const MEMBER_COLUMNS: &str = "u.id, u.username, u.display_name, u.created_at, gm.role, gm.joined_at";

fn member_from_row(r: &Row<'_>) -> rusqlite::Result<GroupMember> {
    let role: String = r.get(4)?;
    Ok(GroupMember {
        user: super::user_from_row(r, 0)?,
        role: Role::parse(&role).unwrap_or(Role::Member),
        joined_ms: r.get(5)?,
    })
}

fn load_group(conn: &Connection, id: GroupId) -> rusqlite::Result<Option<Group>> {
    conn.prepare_cached(
        "SELECT g.title, g.topic,
                (SELECT user_id FROM group_members WHERE group_id = g.id AND role = 'owner'),
                (SELECT count(*) FROM group_members WHERE group_id = g.id)
         FROM groups g WHERE g.id = ?1",
    )?
    .query_row([id.0], |r| {
        Ok(Group {
            id,
            title: r.get(0)?,
            topic: r.get(1)?,
            owner: UserId(r.get::<_, Option<i64>>(2)?.unwrap_or(0)),
            member_count: r.get::<_, i64>(3)? as u64,
        })
    })
    .optional()
}

fn load_member(conn: &Connection, id: GroupId, user: UserId) -> rusqlite::Result<Option<GroupMember>> {
    conn.prepare_cached(&format!(
        "SELECT {MEMBER_COLUMNS} FROM group_members gm JOIN users u ON u.id = gm.user_id
         WHERE gm.group_id = ?1 AND gm.user_id = ?2"
    ))?
    .query_row(params![id.0, user.0], member_from_row)
    .optional()
}

fn insert_member(conn: &Connection, id: GroupId, user: UserId, role: Role, at: i64) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO group_members (group_id, user_id, role, joined_at)
             SELECT ?1, id, ?3, ?4 FROM users WHERE id = ?2",
        )?
        .execute(params![id.0, user.0, role.as_str(), at])?;
    Ok(n > 0)
}

fn create_group(conn: &Connection, g: &NewGroup) -> Result<Group, StoreError> {
    require_users(conn, &[g.owner])?;
    let at = now_ms();
    conn.prepare_cached("INSERT INTO groups (id, title, topic, last_message_id) VALUES (?1, ?2, ?3, ?1)")
        .and_then(|mut s| s.execute(params![g.id.0, g.title, g.topic]))
        .map_err(map_err)?;
    insert_member(conn, g.id, g.owner, Role::Owner, at).map_err(map_err)?;
    for m in g.members.iter().filter(|m| **m != g.owner) {
        insert_member(conn, g.id, *m, Role::Member, at).map_err(map_err)?;
    }
    load_group(conn, g.id).map_err(map_err)?.ok_or_else(|| StoreError::Backend("group vanished".into()))
}

/// Removes a member; the owner's succession and the end of the group as
/// [`GroupStore::remove_group_member`] promises.
pub(super) fn remove_member(conn: &Connection, id: GroupId, user: UserId) -> rusqlite::Result<Option<Removal>> {
    let role: Option<String> = conn
        .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2 RETURNING role")?
        .query_row(params![id.0, user.0], |r| r.get(0))
        .optional()?;
    let Some(role) = role else { return Ok(None) };
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT user_id FROM group_members WHERE group_id = ?1
             ORDER BY role = 'admin' DESC, joined_at, user_id LIMIT 1",
        )?
        .query_row([id.0], |r| r.get(0))
        .optional()?;
    let Some(next) = next else {
        for sql in [
            "DELETE FROM groups WHERE id = ?1",
            "DELETE FROM messages WHERE conversation_id = CAST(?1 AS TEXT)",
            "DELETE FROM message_state WHERE conversation_id = CAST(?1 AS TEXT)",
        ] {
            conn.prepare_cached(sql)?.execute([id.0])?;
        }
        return Ok(Some(Removal { new_owner: None, ended: true }));
    };
    if role != Role::Owner.as_str() {
        return Ok(Some(Removal { new_owner: None, ended: false }));
    }
    conn.prepare_cached("UPDATE group_members SET role = 'owner' WHERE group_id = ?1 AND user_id = ?2")?
        .execute(params![id.0, next])?;
    Ok(Some(Removal { new_owner: Some(UserId(next)), ended: false }))
}

/// Takes `user` out of every group (account deletion).
pub(super) fn leave_all(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    let groups: Vec<i64> = conn
        .prepare_cached("SELECT group_id FROM group_members WHERE user_id = ?1")?
        .query_map([user.0], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for g in groups {
        remove_member(conn, GroupId(g), user)?;
    }
    Ok(())
}

fn add_members(conn: &Connection, id: GroupId, users: &[UserId], max: usize) -> rusqlite::Result<AddOutcome> {
    let Some(group) = load_group(conn, id)? else { return Ok(AddOutcome::NoGroup) };
    let at = now_ms();
    let mut added = Vec::new();
    for u in users {
        if !added.contains(u) && insert_member(conn, id, *u, Role::Member, at)? {
            added.push(*u);
        }
    }
    let member_count = group.member_count + added.len() as u64;
    if member_count > max as u64 {
        for u in &added {
            conn.prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")?
                .execute(params![id.0, u.0])?;
        }
        return Ok(AddOutcome::Full);
    }
    Ok(AddOutcome::Added { added, member_count })
}

fn send_group(conn: &Connection, m: &Message) -> Result<Option<Inserted>, StoreError> {
    require_users(conn, &[m.from_id])?;
    let Some(group) = m.conversation_id.group_id() else { return Ok(None) };
    if load_member(conn, group, m.from_id).map_err(map_err)?.is_none() {
        return Ok(None);
    }
    if let Some(original) = stored_for_nonce(conn, m.from_id, m.nonce.as_deref())? {
        return Ok(Some(Inserted::repeat(original)));
    }
    conn.prepare_cached(
        "INSERT INTO messages (id, conversation_id, from_id, from_name, to_id, to_name, text, nonce)
         VALUES (?1, ?2, ?3, ?4, 0, '', ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![m.id.0, m.conversation_id.0, m.from_id.0, m.from, m.text, m.nonce]))
    .map_err(map_err)?;
    conn.prepare_cached("UPDATE groups SET last_message_id = max(last_message_id, ?2) WHERE id = ?1")
        .and_then(|mut s| s.execute(params![group.0, m.id.0]))
        .map_err(map_err)?;
    let push_intake = super::push_intake::record(conn, m.id, None).map_err(map_err)?;
    Ok(Some(Inserted::written(m.clone(), push_intake)))
}

fn messages_since(conn: &Connection, user: UserId, after: MessageId, limit: usize) -> rusqlite::Result<Vec<Message>> {
    let mut s = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM group_members gm JOIN groups g ON g.id = gm.group_id
         JOIN messages m ON m.id IN (SELECT id FROM messages WHERE conversation_id = CAST(g.id AS TEXT)
                                     AND id > ?2 ORDER BY id LIMIT ?3)
         WHERE gm.user_id = ?1 AND g.last_message_id > ?2
         ORDER BY m.id ASC LIMIT ?3"
    ))?;
    let rows = s.query_map(params![user.0, after.0, limit as i64], |r| message_from_row(r, 0))?;
    rows.collect()
}

fn conversations(
    conn: &Connection,
    user: UserId,
    before: Option<MessageId>,
    limit: usize,
) -> rusqlite::Result<Vec<GroupSummary>> {
    let before = before.map_or(i64::MAX, |b| b.0);
    let ids: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT g.id, g.last_message_id FROM group_members gm JOIN groups g ON g.id = gm.group_id
             WHERE gm.user_id = ?1 AND g.last_message_id < ?2 ORDER BY g.last_message_id DESC LIMIT ?3",
        )?
        .query_map(params![user.0, before, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, last) in ids {
        let Some(group) = load_group(conn, GroupId(id))? else { continue };
        let last_message = conn
            .prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?1"))?
            .query_row([last], |r| message_from_row(r, 0))
            .optional()?;
        out.push(GroupSummary { group, last_message });
    }
    Ok(out)
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, g: &NewGroup) -> Result<Group, StoreError> {
        let g = g.clone();
        self.engine.write(move |c| create_group(c, &g)).await
    }

    async fn group(&self, id: GroupId) -> Result<Option<Group>, StoreError> {
        self.engine.read(move |c| load_group(c, id).map_err(map_err)).await
    }

    async fn update_group(&self, id: GroupId, update: &GroupUpdate) -> Result<Option<Group>, StoreError> {
        let u = update.clone();
        self.engine
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE groups SET title = coalesce(?2, title), topic = coalesce(?3, topic) WHERE id = ?1",
                )
                .and_then(|mut s| s.execute(params![id.0, u.title, u.topic]))
                .and_then(|_| load_group(c, id))
                .map_err(map_err)
            })
            .await
    }

    async fn member(&self, id: GroupId, user: UserId) -> Result<Option<GroupMember>, StoreError> {
        self.engine.read(move |c| load_member(c, id, user).map_err(map_err)).await
    }

    async fn group_members(
        &self,
        id: GroupId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<GroupMember>, StoreError> {
        let after = after.map_or(-1, |a| a.0);
        self.engine
            .read(move |c| {
                let mut s = c
                    .prepare_cached(&format!(
                        "SELECT {MEMBER_COLUMNS} FROM group_members gm JOIN users u ON u.id = gm.user_id
                         WHERE gm.group_id = ?1 AND gm.user_id > ?2 ORDER BY gm.user_id LIMIT ?3"
                    ))
                    .map_err(map_err)?;
                let rows = s.query_map(params![id.0, after, limit as i64], member_from_row).map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn group_member_ids(&self, id: GroupId) -> Result<Vec<UserId>, StoreError> {
        self.engine
            .read(move |c| {
                let mut s =
                    c.prepare_cached("SELECT user_id FROM group_members WHERE group_id = ?1").map_err(map_err)?;
                let rows = s.query_map([id.0], |r| r.get(0).map(UserId)).map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn add_group_members(&self, id: GroupId, users: &[UserId], max: usize) -> Result<AddOutcome, StoreError> {
        let users = users.to_vec();
        self.engine.write(move |c| add_members(c, id, &users, max).map_err(map_err)).await
    }

    async fn remove_group_member(&self, id: GroupId, user: UserId) -> Result<Option<Removal>, StoreError> {
        self.engine.write(move |c| remove_member(c, id, user).map_err(map_err)).await
    }

    async fn set_group_role(&self, id: GroupId, user: UserId, role: Role) -> Result<bool, StoreError> {
        if role == Role::Owner {
            return Ok(false);
        }
        self.engine
            .write(move |c| {
                c.prepare_cached(
                    "UPDATE group_members SET role = ?3 WHERE group_id = ?1 AND user_id = ?2 AND role <> 'owner'",
                )
                .and_then(|mut s| s.execute(params![id.0, user.0, role.as_str()]))
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }

    async fn send_group(&self, m: &Message) -> Result<Option<Inserted>, StoreError> {
        let m = m.clone();
        self.engine.write_by(Some(message_commit_by(m.id)), move |c| send_group(c, &m)).await
    }

    async fn group_messages_since(
        &self,
        user: UserId,
        after: MessageId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.engine.read(move |c| messages_since(c, user, after, limit).map_err(map_err)).await
    }

    async fn group_conversations(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<GroupSummary>, StoreError> {
        self.engine.read(move |c| conversations(c, user, before, limit).map_err(map_err)).await
    }
}
