//! The SQLite schema, as an ordered list of migrations tracked in
//! `PRAGMA user_version`. It mirrors the queries, like the CQL schema does.

use rusqlite::Connection;

/// Migrations, applied in order; index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    // 1: users, sessions, direct messages
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL,
        username_key  TEXT NOT NULL UNIQUE,
        display_name  TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        id           TEXT PRIMARY KEY,
        user_id      INTEGER NOT NULL,
        refresh_hash BLOB NOT NULL,
        expires_at   INTEGER NOT NULL,
        revoked      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_user ON sessions(user_id);
    CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        from_id         INTEGER NOT NULL,
        from_name       TEXT NOT NULL,
        to_id           INTEGER NOT NULL,
        to_name         TEXT NOT NULL,
        text            TEXT NOT NULL,
        nonce           TEXT
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE UNIQUE INDEX messages_by_nonce ON messages(from_id, nonce) WHERE nonce IS NOT NULL;
    CREATE TABLE inbox (
        user_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, message_id)
    ) WITHOUT ROWID;
    CREATE TABLE conversations (
        user_id         INTEGER NOT NULL,
        peer_id         INTEGER NOT NULL,
        conversation_id TEXT NOT NULL,
        last_message_id INTEGER NOT NULL,
        PRIMARY KEY (user_id, peer_id)
    ) WITHOUT ROWID;
    CREATE INDEX conversations_by_recent ON conversations(user_id, last_message_id);
    "#,
    // 2: profiles, user search, follows; messages by sender (account deletion)
    r#"
    CREATE TABLE profiles (
        user_id    INTEGER PRIMARY KEY,
        bio        TEXT NOT NULL DEFAULT '',
        color      TEXT,
        avatar_url TEXT
    );
    -- One row per lowercase search term (username, display-name words);
    -- searched by range: term >= prefix AND term < prefix || U+10FFFF.
    CREATE TABLE user_search (
        term    TEXT NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (term, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX user_search_by_user ON user_search(user_id);
    CREATE TABLE follows (
        follower_id INTEGER NOT NULL,
        followee_id INTEGER NOT NULL,
        follow_id   INTEGER NOT NULL,
        PRIMARY KEY (follower_id, followee_id)
    ) WITHOUT ROWID;
    CREATE INDEX followers_by_time ON follows(followee_id, follow_id);
    CREATE INDEX following_by_time ON follows(follower_id, follow_id);
    CREATE INDEX messages_by_sender ON messages(from_id);
    -- Index the users created before this version: usernames, and
    -- display-name words split on spaces (ASCII lowercase only here).
    INSERT OR IGNORE INTO user_search (term, user_id) SELECT username_key, id FROM users;
    WITH RECURSIVE words(user_id, word, rest) AS (
        SELECT id, '', lower(display_name) || ' ' FROM users
        UNION ALL
        SELECT user_id, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
        FROM words WHERE rest <> ''
    )
    INSERT OR IGNORE INTO user_search (term, user_id) SELECT word, user_id FROM words WHERE word <> '';
    "#,
    // 3: refresh secrets a session has replaced (reuse detection)
    r#"
    CREATE TABLE refresh_used (
        hash       BLOB PRIMARY KEY,
        session_id TEXT NOT NULL,
        used_at    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX refresh_used_by_session ON refresh_used(session_id);
    "#,
    // 4: posts, likes, reposts, user and home timelines
    r#"
    CREATE TABLE posts (
        id        INTEGER PRIMARY KEY,
        author_id INTEGER NOT NULL,
        text      TEXT NOT NULL,
        likes     INTEGER NOT NULL DEFAULT 0,
        reposts   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX posts_by_author ON posts(author_id);
    CREATE TABLE likes (
        post_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (post_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX likes_by_user ON likes(user_id);
    CREATE TABLE reposts (
        post_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        item_id INTEGER NOT NULL,
        PRIMARY KEY (post_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX reposts_by_user ON reposts(user_id);
    -- Every user's own timeline (posts and reposts). fanout: 0 merged on
    -- read, 1 pending copy into home timelines, 2 copied.
    CREATE TABLE user_items (
        item_id     INTEGER PRIMARY KEY,
        kind        INTEGER NOT NULL,
        actor_id    INTEGER NOT NULL,
        post_id     INTEGER NOT NULL,
        post_author INTEGER NOT NULL,
        fanout      INTEGER NOT NULL
    );
    CREATE INDEX user_items_by_actor ON user_items(actor_id, item_id);
    CREATE INDEX user_items_by_post ON user_items(post_id);
    CREATE INDEX user_items_unfanned ON user_items(actor_id, item_id) WHERE fanout <> 2;
    CREATE INDEX user_items_pending ON user_items(item_id) WHERE fanout = 1;
    -- Home timelines filled by fan-out on write.
    CREATE TABLE home_items (
        user_id     INTEGER NOT NULL,
        item_id     INTEGER NOT NULL,
        kind        INTEGER NOT NULL,
        actor_id    INTEGER NOT NULL,
        post_id     INTEGER NOT NULL,
        post_author INTEGER NOT NULL,
        PRIMARY KEY (user_id, item_id)
    ) WITHOUT ROWID;
    CREATE INDEX home_items_by_post ON home_items(post_id);
    CREATE INDEX home_items_by_item ON home_items(item_id);
    "#,
    // 5: fewer index entries per message. A message used to update about
    // nine B-tree entries on random pages (its conversation and sender
    // indexes, two sync-feed rows, two conversation rows and two recency
    // entries); the WAL stores whole pages, so that was 16-18 KB written per
    // message, checkpoints included (BENCHMARKS.md). Now: its conversation index entry and one
    // row per participant in `user_conversations`, keyed by recency, which
    // serves the conversation list *and* sync (a user's messages since X
    // are those of the conversations active since X). Account deletion
    // finds the user's messages through their conversations.
    r#"
    CREATE TABLE user_conversations (
        user_id         INTEGER NOT NULL,
        last_message_id INTEGER NOT NULL,
        peer_id         INTEGER NOT NULL,
        conversation_id TEXT NOT NULL,
        PRIMARY KEY (user_id, last_message_id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO user_conversations (user_id, last_message_id, peer_id, conversation_id)
        SELECT user_id, last_message_id, peer_id, conversation_id FROM conversations;
    DROP TABLE conversations;
    DROP TABLE inbox;
    DROP INDEX messages_by_sender;
    "#,
    // 6: account deletion used to keep the messages others sent to the
    // deleted user (naming a username anyone may register next) and the
    // peers' conversation rows, which could then point at a deleted
    // message; a write that raced the deletion then gave the peer a second
    // row for the same conversation, and sync read it twice. Apply today's
    // rule to what earlier versions left: conversations with a deleted
    // user go, and each user keeps one row per conversation (the newest).
    r#"
    DELETE FROM messages
    WHERE from_id NOT IN (SELECT id FROM users) OR to_id NOT IN (SELECT id FROM users);
    DELETE FROM user_conversations
    WHERE user_id NOT IN (SELECT id FROM users) OR peer_id NOT IN (SELECT id FROM users);
    DELETE FROM user_conversations
    WHERE EXISTS (SELECT 1 FROM user_conversations o
                  WHERE o.user_id = user_conversations.user_id
                  AND o.conversation_id = user_conversations.conversation_id
                  AND o.last_message_id > user_conversations.last_message_id);
    "#,
    // 7: group conversations. A group's messages are rows of `messages`
    // under its conversation id (the group id as text, to_id 0); members
    // find them through `group_members` (sync, conversation list), so a
    // message costs one row whatever the group's size. `last_message_id`
    // is the group's activity: its id until the first message.
    r#"
    CREATE TABLE groups (
        id              INTEGER PRIMARY KEY,
        title           TEXT NOT NULL,
        topic           TEXT NOT NULL DEFAULT '',
        last_message_id INTEGER NOT NULL
    );
    CREATE TABLE group_members (
        group_id  INTEGER NOT NULL,
        user_id   INTEGER NOT NULL,
        role      TEXT NOT NULL,
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (group_id, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX group_members_by_user ON group_members(user_id, group_id);
    "#,
    // 8: chat state (issue 15): read pointers, each user's change feed
    // (read pointers now; edits, deletes and reactions later, as new kinds),
    // and the read-receipt setting. Self-contained: touches no older table.
    r#"
    CREATE TABLE IF NOT EXISTS read_pointers (
        user_id         INTEGER NOT NULL,
        conversation_id TEXT NOT NULL,
        message_id      INTEGER NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS user_changes (
        user_id         INTEGER NOT NULL,
        change_id       INTEGER NOT NULL,
        kind            INTEGER NOT NULL,
        conversation_id TEXT NOT NULL,
        by_id           INTEGER NOT NULL,
        message_id      INTEGER NOT NULL,
        PRIMARY KEY (user_id, change_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS chat_settings (
        user_id       INTEGER PRIMARY KEY,
        read_receipts INTEGER NOT NULL
    );
    "#,
    // 9: safety (issue 16): blocks (both directions indexed: "who blocks
    // me" is asked on every direct message), per-user conversation mutes,
    // reports with snapshots of what was reported, account bans.
    r#"
    CREATE TABLE IF NOT EXISTS blocks (
        blocker_id INTEGER NOT NULL,
        blocked_id INTEGER NOT NULL,
        block_id   INTEGER NOT NULL,
        PRIMARY KEY (blocker_id, blocked_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS blocks_by_id ON blocks(blocker_id, block_id);
    CREATE INDEX IF NOT EXISTS blocks_by_blocked ON blocks(blocked_id, blocker_id);
    CREATE TABLE IF NOT EXISTS mutes (
        user_id         INTEGER NOT NULL,
        conversation_id TEXT NOT NULL,
        until_ms        INTEGER NOT NULL,
        PRIMARY KEY (user_id, conversation_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS reports (
        id            INTEGER PRIMARY KEY,
        reporter_id   INTEGER NOT NULL,
        reporter_name TEXT NOT NULL,
        kind          TEXT NOT NULL,
        target_id     INTEGER NOT NULL,
        target_name   TEXT NOT NULL,
        message_id    INTEGER,
        conversation_id TEXT,
        message_text  TEXT,
        reason        TEXT NOT NULL,
        details       TEXT NOT NULL,
        created_ms    INTEGER NOT NULL,
        resolved_ms   INTEGER,
        resolution    TEXT
    );
    CREATE TABLE IF NOT EXISTS bans (
        user_id INTEGER PRIMARY KEY,
        reason  TEXT NOT NULL,
        at_ms   INTEGER NOT NULL
    );
    "#,
    // 10: reactions (issue 15): one row per (message, emoji, user); the
    // change id of the reaction is kept for tie-breaking and debugging.
    // Counts are GROUP BY emoji over the message's rows.
    r#"
    CREATE TABLE IF NOT EXISTS reactions (
        message_id INTEGER NOT NULL,
        emoji      TEXT NOT NULL,
        user_id    INTEGER NOT NULL,
        change_id  INTEGER NOT NULL,
        PRIMARY KEY (message_id, emoji, user_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS reactions_by_user ON reactions(user_id, message_id);
    "#,
    // 11: message lifecycle (issue 15): what became of a message after it
    // was sent (its reply target, edited text and time, deletion). Deleting
    // clears `messages.text` too; the row stays (paging, unread counts).
    r#"
    CREATE TABLE IF NOT EXISTS message_state (
        conversation_id TEXT NOT NULL,
        message_id      INTEGER NOT NULL,
        reply_to        INTEGER,
        edited_at       INTEGER,
        edit_change     INTEGER,
        text            TEXT,
        deleted         INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conversation_id, message_id)
    ) WITHOUT ROWID;
    "#,
    // 12: push (issue 16): devices, the payload setting, and the durable
    // notification queue (one row per device and collapse key).
    r#"
    CREATE TABLE IF NOT EXISTS push_devices (
        user_id    INTEGER NOT NULL,
        device_id  INTEGER NOT NULL,
        session_id TEXT NOT NULL,
        platform   TEXT NOT NULL,
        address    TEXT NOT NULL,
        p256dh     TEXT NOT NULL,
        auth       TEXT NOT NULL,
        app_id     TEXT NOT NULL,
        data       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, device_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS push_settings (
        user_id INTEGER PRIMARY KEY,
        preview TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS push_jobs (
        device_id       INTEGER NOT NULL,
        collapse_key    TEXT NOT NULL,
        user_id         INTEGER NOT NULL,
        conversation_id TEXT NOT NULL,
        message_id      INTEGER NOT NULL,
        sender          TEXT NOT NULL,
        body            TEXT NOT NULL,
        merged          INTEGER NOT NULL,
        version         INTEGER NOT NULL,
        first_ms        INTEGER NOT NULL,
        due_ms          INTEGER NOT NULL,
        attempts        INTEGER NOT NULL,
        lease_owner     TEXT NOT NULL,
        lease_until     INTEGER NOT NULL,
        PRIMARY KEY (device_id, collapse_key)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs(due_ms);
    "#,
    // 13: the push intake (issue 16): one row per message that may need
    // notifications, written in the message's transaction, deleted when
    // the minting node's intake turned it into jobs.
    r#"
    CREATE TABLE IF NOT EXISTS push_intake (
        node       INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        PRIMARY KEY (node, message_id)
    ) WITHOUT ROWID;
    "#,
    // 14: the push intake's stored cursor (issue 16): per node, the id at
    // or below which every entry was turned into jobs; only ever grows.
    r#"
    CREATE TABLE IF NOT EXISTS push_intake_cursor (
        node   INTEGER PRIMARY KEY,
        cursor INTEGER NOT NULL
    );
    "#,
];

/// Brings the database to the newest schema version, each step in its own
/// transaction. Safe to call on every start and from several processes.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(sql) = MIGRATIONS.get(version as usize) else {
            return tx.commit();
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_2_indexes_users_created_before_it() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute("INSERT INTO users VALUES (7, 'Old_Timer', 'old_timer', 'Grace  Hopper', 'h', 1)", []).unwrap();
        migrate(&mut conn).unwrap();
        let mut s = conn.prepare("SELECT term FROM user_search WHERE user_id = 7 ORDER BY term").unwrap();
        let terms: Vec<String> = s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(terms, ["grace", "hopper", "old_timer"]);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }

    #[test]
    fn version_6_removes_conversations_of_deleted_users_and_duplicate_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS[..5].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1).unwrap();
        }
        // 1 and 2 exist; 3 was deleted by an earlier version, leaving 2's
        // row at 31 (deleted) and, after a raced write, a second one at 33.
        conn.execute_batch(
            "INSERT INTO users VALUES (1, 'a', 'a', 'a', 'h', 1), (2, 'b', 'b', 'b', 'h', 1);
             INSERT INTO messages VALUES (10, '1-2', 1, 'a', 2, 'b', 'x', NULL), (30, '2-3', 2, 'b', 3, 'c', 'y', NULL),
                                         (33, '2-3', 3, 'c', 2, 'b', 'z', NULL);
             INSERT INTO user_conversations VALUES (1, 10, 2, '1-2'), (2, 10, 1, '1-2'), (2, 31, 3, '2-3'),
                                                   (2, 33, 3, '2-3'), (1, 5, 2, '1-2');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM messages")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ids, [10]);
        let mut s = conn.prepare("SELECT user_id, last_message_id FROM user_conversations ORDER BY 1, 2").unwrap();
        let rows: Vec<(i64, i64)> =
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(rows, [(1, 10), (2, 10)]);
    }

    #[test]
    fn version_5_keeps_every_conversation_list() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS[..4].iter().enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO users VALUES (1, 'a', 'a', 'a', 'h', 1), (2, 'b', 'b', 'b', 'h', 1), (3, 'c', 'c', 'c', 'h', 1);
             INSERT INTO conversations VALUES (1, 2, '1-2', 10), (2, 1, '1-2', 10), (1, 3, '1-3', 12), (3, 1, '1-3', 12);
             INSERT INTO inbox VALUES (1, 10), (2, 10), (1, 12), (3, 12);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut s = conn
            .prepare("SELECT user_id, last_message_id, peer_id, conversation_id FROM user_conversations ORDER BY 1, 2")
            .unwrap();
        let rows: Vec<(i64, i64, i64, String)> = s
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let want = [(1, 10, 2, "1-2"), (1, 12, 3, "1-3"), (2, 10, 1, "1-2"), (3, 12, 1, "1-3")];
        assert_eq!(rows, want.map(|(u, l, p, c)| (u, l, p, c.to_string())));
        for gone in ["conversations", "inbox"] {
            let n: i64 =
                conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = ?1", [gone], |r| r.get(0)).unwrap();
            assert_eq!(n, 0, "{gone} dropped");
        }
    }
}
