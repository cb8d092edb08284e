//! The SQLite page cache wrapper (`src/store/sqlite/pcache.rs`) keeps the
//! database exactly what a model of it says through many B-tree splits,
//! deletions and reopenings, and the splits' page swaps really went through
//! its renamed key. Its own test binary: the wrapper must be installed
//! before SQLite's first connection in the process.

use std::collections::BTreeMap;

use hubbub::store::sqlite_page_cache;
use rusqlite::{Connection, params};

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn open(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).expect("open");
    // As the store opens its connections: 1 KiB pages, WAL, a small cache
    // so that pages are also evicted and read back.
    conn.execute_batch(
        "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=200;
         CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS r (id INTEGER PRIMARY KEY, k TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS r_by_k ON r(k, id);",
    )
    .expect("schema");
    conn
}

/// What the database holds, read back in key order.
fn contents(conn: &Connection) -> (Vec<(String, Vec<u8>)>, i64) {
    let rows = conn
        .prepare("SELECT k, v FROM t ORDER BY k")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    let n: i64 =
        conn.query_row("SELECT count(*) FROM r INDEXED BY r_by_k WHERE k >= ''", [], |r| r.get(0)).expect("count");
    (rows, n)
}

fn check(conn: &Connection, model: &BTreeMap<String, Vec<u8>>, r_rows: i64) {
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(ok, "ok");
    let (rows, n) = contents(conn);
    assert_eq!(rows.len(), model.len());
    assert!(rows.iter().zip(model).all(|((k, v), (mk, mv))| k == mk && v == mv), "rows differ from the model");
    assert_eq!(n, r_rows);
}

#[test]
fn splits_deletes_and_reopens_keep_exactly_what_was_written() {
    assert!(sqlite_page_cache::install(), "installed before SQLite's first connection");
    let renamed_before = sqlite_page_cache::renamed();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let mut model = BTreeMap::new();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut r_rows = 0i64;
    for round in 0..4 {
        let mut conn = open(&path);
        check(&conn, &model, r_rows);
        for _ in 0..40 {
            let tx = conn.transaction().expect("begin");
            // The model after this transaction, if it commits.
            let (mut next, mut next_r) = (model.clone(), r_rows);
            for _ in 0..100 {
                let key = format!("{:016x}", rng.next() % 50_000);
                let roll = rng.next() % 10;
                if roll < 3 {
                    // Delete the first key at or after a random one.
                    let victim = next.range(key..).next().map(|(k, _)| k.clone());
                    if let Some(k) = victim {
                        tx.execute("DELETE FROM t WHERE k = ?1", [&k]).expect("delete");
                        next.remove(&k);
                    }
                } else {
                    let len = 20 + (rng.next() % 300) as usize;
                    let value: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    tx.execute("INSERT OR REPLACE INTO t (k, v) VALUES (?1, ?2)", params![key, value]).expect("upsert");
                    tx.execute("INSERT INTO r (k) VALUES (?1)", [&key]).expect("insert r");
                    next_r += 1;
                    next.insert(key, value);
                }
            }
            // Every few transactions, one rolled back: nothing of it stays.
            if rng.next() % 7 == 0 {
                tx.rollback().expect("rollback");
            } else {
                tx.commit().expect("commit");
                (model, r_rows) = (next, next_r);
            }
        }
        check(&conn, &model, r_rows);
        if round % 2 == 1 {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").expect("checkpoint");
        }
        drop(conn);
    }
    let conn = open(&path);
    check(&conn, &model, r_rows);
    assert!(
        sqlite_page_cache::renamed() > renamed_before,
        "the splits swapped pages through the renamed key (else this test checked nothing of the wrapper)"
    );
}
