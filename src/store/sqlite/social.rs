//! SQLite queries for profiles, user search and follows. Each function runs
//! on a connection the engine hands it (the writer's transaction or a reader).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::user_from_row;
use crate::model::{FollowCounts, FollowEntry, FollowId, Profile, ProfileUpdate, User, UserId};
use crate::store::search_terms;

/// Upper end of a prefix range: every string that starts with a prefix
/// sorts below `prefix || U+10FFFF` (the largest code point).
const PREFIX_END: char = '\u{10FFFF}';

fn profile_from_row(r: &Row<'_>) -> rusqlite::Result<Profile> {
    Ok(Profile { user: user_from_row(r, 0)?, bio: r.get(4)?, color: r.get(5)?, avatar_url: r.get(6)? })
}

/// A user's profile, defaults filled in; `None` for an unknown user.
pub(super) fn profile(conn: &Connection, id: UserId) -> rusqlite::Result<Option<Profile>> {
    conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.created_at, coalesce(p.bio, ''), p.color, p.avatar_url
         FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = ?1",
    )?
    .query_row([id.0], profile_from_row)
    .optional()
}

/// Replaces a user's search terms with those of `username` and `display_name`.
pub(super) fn index_user(conn: &Connection, id: UserId, username: &str, display_name: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM user_search WHERE user_id = ?1")?.execute([id.0])?;
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO user_search (term, user_id) VALUES (?1, ?2)")?;
    for term in search_terms(username, display_name) {
        insert.execute(params![term, id.0])?;
    }
    Ok(())
}

/// Applies a partial update (read, merge, write: atomic on the writer).
pub(super) fn update_profile(conn: &Connection, id: UserId, u: &ProfileUpdate) -> rusqlite::Result<Option<Profile>> {
    let Some(current) = profile(conn, id)? else { return Ok(None) };
    let display_name = u.display_name.clone().unwrap_or_else(|| current.user.display_name.clone());
    let next = Profile {
        user: User { display_name, ..current.user.clone() },
        bio: u.bio.clone().unwrap_or(current.bio),
        color: u.color.clone().unwrap_or(current.color),
        avatar_url: u.avatar_url.clone().unwrap_or(current.avatar_url),
    };
    if next.user.display_name != current.user.display_name {
        conn.prepare_cached("UPDATE users SET display_name = ?2 WHERE id = ?1")?
            .execute(params![id.0, next.user.display_name])?;
        index_user(conn, id, &next.user.username, &next.user.display_name)?;
    }
    conn.prepare_cached(
        "INSERT INTO profiles (user_id, bio, color, avatar_url) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id) DO UPDATE
         SET bio = excluded.bio, color = excluded.color, avatar_url = excluded.avatar_url",
    )?
    .execute(params![id.0, next.bio, next.color, next.avatar_url])?;
    Ok(Some(next))
}

/// Users with a search term in the prefix range; exact username first.
pub(super) fn search_users(conn: &Connection, prefix: &str, limit: usize) -> rusqlite::Result<Vec<User>> {
    let low = prefix.to_lowercase();
    let high = format!("{low}{PREFIX_END}");
    let mut s = conn.prepare_cached(
        "SELECT u.id, u.username, u.display_name, u.created_at FROM users u
         WHERE u.id IN (SELECT user_id FROM user_search WHERE term >= ?1 AND term < ?2)
         ORDER BY u.username_key <> ?1, u.username_key LIMIT ?3",
    )?;
    let rows = s.query_map(params![low, high, limit as i64], |r| user_from_row(r, 0))?;
    rows.collect()
}

/// Inserts a follow if both users exist and it is not there yet.
pub(super) fn add_follow(
    conn: &Connection,
    follower: UserId,
    followee: UserId,
    id: FollowId,
) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO follows (follower_id, followee_id, follow_id)
             SELECT ?1, ?2, ?3
             WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1) AND EXISTS (SELECT 1 FROM users WHERE id = ?2)",
        )?
        .execute(params![follower.0, followee.0, id.0])?;
    Ok(n > 0)
}

/// Deletes a follow; true if there was one.
pub(super) fn remove_follow(conn: &Connection, follower: UserId, followee: UserId) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM follows WHERE follower_id = ?1 AND followee_id = ?2")?
        .execute(params![follower.0, followee.0])?;
    Ok(n > 0)
}

/// Counts computed from the follows themselves, so they cannot drift.
pub(super) fn follow_counts(conn: &Connection, user: UserId) -> rusqlite::Result<FollowCounts> {
    let count = |sql: &str| -> rusqlite::Result<u64> {
        conn.prepare_cached(sql)?.query_row([user.0], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64)
    };
    Ok(FollowCounts {
        followers: count(
            "SELECT count(*) FROM follows f JOIN users u ON u.id = f.follower_id WHERE f.followee_id = ?1",
        )?,
        following: count(
            "SELECT count(*) FROM follows f JOIN users u ON u.id = f.followee_id WHERE f.follower_id = ?1",
        )?,
    })
}

/// Which side of the follows table a list reads.
#[derive(Clone, Copy)]
pub(super) enum Side {
    /// Users following the given user.
    Followers,
    /// Users the given user follows.
    Following,
}

/// One page of a follower or following list, newest follow first.
pub(super) fn follow_page(
    conn: &Connection,
    side: Side,
    user: UserId,
    after: Option<FollowId>,
    limit: usize,
) -> rusqlite::Result<Vec<FollowEntry>> {
    let sql = match side {
        Side::Followers => {
            "SELECT u.id, u.username, u.display_name, u.created_at, f.follow_id
             FROM follows f JOIN users u ON u.id = f.follower_id
             WHERE f.followee_id = ?1 AND f.follow_id < ?2 ORDER BY f.follow_id DESC LIMIT ?3"
        }
        Side::Following => {
            "SELECT u.id, u.username, u.display_name, u.created_at, f.follow_id
             FROM follows f JOIN users u ON u.id = f.followee_id
             WHERE f.follower_id = ?1 AND f.follow_id < ?2 ORDER BY f.follow_id DESC LIMIT ?3"
        }
    };
    let after = after.map_or(i64::MAX, |a| a.0);
    let mut s = conn.prepare_cached(sql)?;
    let rows = s.query_map(params![user.0, after, limit as i64], |r| {
        Ok(FollowEntry { user: user_from_row(r, 0)?, follow_id: FollowId(r.get(4)?) })
    })?;
    rows.collect()
}
