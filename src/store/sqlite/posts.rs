//! SQLite queries for posts, likes, reposts and timelines. Each function
//! runs on a connection the engine hands it (the writer's transaction or a
//! reader). Counts live on the post row and change in the same transaction
//! as the like/repost set, so they never drift.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::user_from_row;
use crate::model::{FanoutState, FollowId, ItemId, ItemKind, Post, PostId, TimelineItem, Toggle, UserId, ViewerMarks};

const ITEM_COLUMNS: &str = "i.item_id, i.kind, i.actor_id, i.post_id, i.post_author";

fn kind_code(k: ItemKind) -> i64 {
    match k {
        ItemKind::Post => 0,
        ItemKind::Repost => 1,
    }
}

fn fanout_code(f: FanoutState) -> i64 {
    match f {
        FanoutState::OnRead => 0,
        FanoutState::Pending => 1,
        FanoutState::Done => 2,
    }
}

fn item_from_row(r: &Row<'_>) -> rusqlite::Result<TimelineItem> {
    let kind: i64 = r.get(1)?;
    Ok(TimelineItem {
        id: ItemId(r.get(0)?),
        kind: if kind == 0 { ItemKind::Post } else { ItemKind::Repost },
        actor: UserId(r.get(2)?),
        post_id: PostId(r.get(3)?),
        post_author: UserId(r.get(4)?),
    })
}

fn post_exists(conn: &Connection, id: PostId) -> rusqlite::Result<Option<UserId>> {
    conn.prepare_cached("SELECT author_id FROM posts WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0).map(UserId))
        .optional()
}

fn insert_item(conn: &Connection, item: &TimelineItem, fanout: FanoutState) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO user_items (item_id, kind, actor_id, post_id, post_author, fanout)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        item.id.0,
        kind_code(item.kind),
        item.actor.0,
        item.post_id.0,
        item.post_author.0,
        fanout_code(fanout)
    ])?;
    Ok(())
}

/// Inserts a post and its author-timeline item; false for an unknown author.
pub(super) fn create_post(
    conn: &Connection,
    id: PostId,
    author: UserId,
    text: &str,
    fanout: FanoutState,
) -> rusqlite::Result<bool> {
    let exists = conn.prepare_cached("SELECT 1 FROM users WHERE id = ?1")?.exists([author.0])?;
    if !exists {
        return Ok(false);
    }
    conn.prepare_cached("INSERT INTO posts (id, author_id, text) VALUES (?1, ?2, ?3)")?
        .execute(params![id.0, author.0, text])?;
    let item = TimelineItem { id: ItemId(id.0), kind: ItemKind::Post, actor: author, post_id: id, post_author: author };
    insert_item(conn, &item, fanout)?;
    Ok(true)
}

/// Existing posts among `ids`, with their authors.
pub(super) fn posts(conn: &Connection, ids: &[PostId]) -> rusqlite::Result<Vec<Post>> {
    let mut s = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.created_at, p.id, p.text, p.likes, p.reposts
         FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let row = s
            .query_row([id.0], |r| {
                Ok(Post {
                    author: user_from_row(r, 0)?,
                    id: PostId(r.get(4)?),
                    text: r.get(5)?,
                    likes: r.get::<_, i64>(6)?.max(0) as u64,
                    reposts: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })
            .optional()?;
        out.extend(row);
    }
    Ok(out)
}

/// Deletes a post and everything that shows it.
pub(super) fn delete_post(conn: &Connection, id: PostId) -> rusqlite::Result<bool> {
    let existed = conn.prepare_cached("DELETE FROM posts WHERE id = ?1")?.execute([id.0])? > 0;
    for sql in [
        "DELETE FROM likes WHERE post_id = ?1",
        "DELETE FROM reposts WHERE post_id = ?1",
        "DELETE FROM user_items WHERE post_id = ?1",
        "DELETE FROM home_items WHERE post_id = ?1",
    ] {
        conn.prepare_cached(sql)?.execute([id.0])?;
    }
    Ok(existed)
}

fn count(conn: &Connection, column: &str, post: PostId) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(&format!("SELECT {column} FROM posts WHERE id = ?1"), [post.0], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Likes or unlikes; the count moves only when the set changes.
pub(super) fn set_like(conn: &Connection, post: PostId, user: UserId, like: bool) -> rusqlite::Result<Option<Toggle>> {
    if post_exists(conn, post)?.is_none() {
        return Ok(None);
    }
    let (sql, delta) = if like {
        ("INSERT OR IGNORE INTO likes (post_id, user_id) VALUES (?1, ?2)", 1)
    } else {
        ("DELETE FROM likes WHERE post_id = ?1 AND user_id = ?2", -1)
    };
    let changed = conn.prepare_cached(sql)?.execute(params![post.0, user.0])? > 0;
    if changed {
        conn.prepare_cached("UPDATE posts SET likes = likes + ?2 WHERE id = ?1")?.execute(params![post.0, delta])?;
    }
    Ok(Some(Toggle { changed, count: count(conn, "likes", post)? }))
}

/// Adds a repost and its item; idempotent per (post, user).
pub(super) fn add_repost(
    conn: &Connection,
    post: PostId,
    user: UserId,
    item: ItemId,
    fanout: FanoutState,
) -> rusqlite::Result<Option<Toggle>> {
    let Some(author) = post_exists(conn, post)? else { return Ok(None) };
    let changed = conn
        .prepare_cached("INSERT OR IGNORE INTO reposts (post_id, user_id, item_id) VALUES (?1, ?2, ?3)")?
        .execute(params![post.0, user.0, item.0])?
        > 0;
    if changed {
        conn.prepare_cached("UPDATE posts SET reposts = reposts + 1 WHERE id = ?1")?.execute([post.0])?;
        let it = TimelineItem { id: item, kind: ItemKind::Repost, actor: user, post_id: post, post_author: author };
        insert_item(conn, &it, fanout)?;
    }
    Ok(Some(Toggle { changed, count: count(conn, "reposts", post)? }))
}

/// Removes a repost and its items.
pub(super) fn remove_repost(conn: &Connection, post: PostId, user: UserId) -> rusqlite::Result<Option<Toggle>> {
    if post_exists(conn, post)?.is_none() {
        return Ok(None);
    }
    let item: Option<i64> = conn
        .prepare_cached("SELECT item_id FROM reposts WHERE post_id = ?1 AND user_id = ?2")?
        .query_row(params![post.0, user.0], |r| r.get(0))
        .optional()?;
    if let Some(item) = item {
        conn.prepare_cached("DELETE FROM reposts WHERE post_id = ?1 AND user_id = ?2")?
            .execute(params![post.0, user.0])?;
        conn.prepare_cached("UPDATE posts SET reposts = reposts - 1 WHERE id = ?1")?.execute([post.0])?;
        conn.prepare_cached("DELETE FROM user_items WHERE item_id = ?1")?.execute([item])?;
        conn.prepare_cached("DELETE FROM home_items WHERE item_id = ?1")?.execute([item])?;
    }
    Ok(Some(Toggle { changed: item.is_some(), count: count(conn, "reposts", post)? }))
}

/// Likes and reposts by `viewer` among `posts`.
pub(super) fn viewer_marks(
    conn: &Connection,
    viewer: UserId,
    posts: &[PostId],
) -> rusqlite::Result<Vec<(PostId, ViewerMarks)>> {
    let mut liked = conn.prepare_cached("SELECT 1 FROM likes WHERE post_id = ?1 AND user_id = ?2")?;
    let mut reposted = conn.prepare_cached("SELECT 1 FROM reposts WHERE post_id = ?1 AND user_id = ?2")?;
    let mut out = Vec::with_capacity(posts.len());
    for p in posts {
        let marks = ViewerMarks {
            liked: liked.exists(params![p.0, viewer.0])?,
            reposted: reposted.exists(params![p.0, viewer.0])?,
        };
        out.push((*p, marks));
    }
    Ok(out)
}

fn items(
    conn: &Connection,
    sql: &str,
    user: UserId,
    before: Option<ItemId>,
    limit: usize,
) -> rusqlite::Result<Vec<TimelineItem>> {
    let before = before.map_or(i64::MAX, |b| b.0);
    let mut s = conn.prepare_cached(sql)?;
    let rows = s.query_map(params![user.0, before, limit as i64], item_from_row)?;
    rows.collect()
}

/// The user's own timeline.
pub(super) fn user_items(
    conn: &Connection,
    user: UserId,
    before: Option<ItemId>,
    limit: usize,
) -> rusqlite::Result<Vec<TimelineItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM user_items i WHERE i.actor_id = ?1 AND i.item_id < ?2 ORDER BY i.item_id DESC LIMIT ?3"
    );
    items(conn, &sql, user, before, limit)
}

/// The copied part of a home timeline.
pub(super) fn home_items(
    conn: &Connection,
    user: UserId,
    before: Option<ItemId>,
    limit: usize,
) -> rusqlite::Result<Vec<TimelineItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM home_items i WHERE i.user_id = ?1 AND i.item_id < ?2 ORDER BY i.item_id DESC LIMIT ?3"
    );
    items(conn, &sql, user, before, limit)
}

/// Not-yet-copied items of the user and everyone they follow.
pub(super) fn unfanned_items(
    conn: &Connection,
    user: UserId,
    before: Option<ItemId>,
    limit: usize,
) -> rusqlite::Result<Vec<TimelineItem>> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM user_items i
         WHERE i.fanout <> 2 AND i.item_id < ?2
           AND (i.actor_id = ?1 OR i.actor_id IN (SELECT followee_id FROM follows WHERE follower_id = ?1))
         ORDER BY i.item_id DESC LIMIT ?3"
    );
    items(conn, &sql, user, before, limit)
}

/// Everyone the user follows, with follow ids.
pub(super) fn follow_ids(conn: &Connection, user: UserId) -> rusqlite::Result<Vec<(UserId, FollowId)>> {
    let mut s = conn.prepare_cached("SELECT followee_id, follow_id FROM follows WHERE follower_id = ?1")?;
    let rows = s.query_map([user.0], |r| Ok((UserId(r.get(0)?), FollowId(r.get(1)?))))?;
    rows.collect()
}

/// Copies an item into home timelines.
pub(super) fn fan_out(conn: &Connection, item: &TimelineItem, users: &[UserId]) -> rusqlite::Result<()> {
    let mut s = conn.prepare_cached(
        "INSERT OR IGNORE INTO home_items (user_id, item_id, kind, actor_id, post_id, post_author)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM user_items WHERE item_id = ?2)",
    )?;
    for u in users {
        s.execute(params![u.0, item.id.0, kind_code(item.kind), item.actor.0, item.post_id.0, item.post_author.0])?;
    }
    Ok(())
}

/// Sets an item's fan-out state.
pub(super) fn set_fanout(conn: &Connection, item: ItemId, state: FanoutState) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE user_items SET fanout = ?2 WHERE item_id = ?1")?
        .execute(params![item.0, fanout_code(state)])?;
    Ok(())
}

/// Pending items, oldest first.
pub(super) fn pending_fanout(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<TimelineItem>> {
    let mut s = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM user_items i WHERE i.fanout = 1 ORDER BY i.item_id ASC LIMIT ?1"
    ))?;
    let rows = s.query_map([limit as i64], item_from_row)?;
    rows.collect()
}

/// Deletes home copies older than `before`.
pub(super) fn trim_home(conn: &Connection, before: ItemId) -> rusqlite::Result<u64> {
    Ok(conn.prepare_cached("DELETE FROM home_items WHERE item_id < ?1")?.execute([before.0])? as u64)
}

/// Removes everything of `user` in the posts tables (account deletion):
/// their likes and reposts (with counts adjusted) and their posts.
pub(super) fn delete_user_posts(conn: &Connection, user: UserId) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE posts SET likes = likes - 1 WHERE id IN (SELECT post_id FROM likes WHERE user_id = ?1)",
    )?
    .execute([user.0])?;
    conn.prepare_cached("DELETE FROM likes WHERE user_id = ?1")?.execute([user.0])?;
    let reposted: Vec<i64> = {
        let mut s = conn.prepare_cached("SELECT post_id FROM reposts WHERE user_id = ?1")?;
        let rows = s.query_map([user.0], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for post in reposted {
        remove_repost(conn, PostId(post), user)?;
    }
    let own: Vec<i64> = {
        let mut s = conn.prepare_cached("SELECT id FROM posts WHERE author_id = ?1")?;
        let rows = s.query_map([user.0], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for post in own {
        delete_post(conn, PostId(post))?;
    }
    conn.prepare_cached("DELETE FROM home_items WHERE user_id = ?1")?.execute([user.0])?;
    Ok(())
}
