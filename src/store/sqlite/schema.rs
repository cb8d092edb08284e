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
