//! The SQLite engine: one writer thread that group-commits batches of write
//! jobs, a syncer thread that makes them durable, a checkpointer thread, and
//! a small pool of reader connections used through `spawn_blocking`. No
//! SQLite call ever runs on an async worker.
//!
//! Commits and their fsyncs overlap. The writer commits with
//! `synchronous=NORMAL` (the WAL reaches the OS; SQLite itself syncs it only
//! at checkpoints, which keeps the database consistent) and hands the
//! batch's replies to the syncer, then goes on to the next batch at once.
//! Under `--sync full` (the default) the syncer fdatasyncs the WAL file and
//! only then answers every write committed before that fsync began: one
//! fsync may cover several group commits, and a slow fsync (a disk stall of
//! hundreds of ms) no longer stops the writer, so the writes that arrive
//! during it are committed meanwhile and made durable by the next fsync
//! instead of queueing behind the stall batch after batch. Nothing is
//! answered before its fsync: an acknowledged write survives a power loss,
//! as with SQLite's own `synchronous=FULL`. What differs is what *readers*
//! can see: a committed write is visible to other connections (history,
//! sync) from its COMMIT, up to one fsync before it is durable; only a power
//! loss or kernel crash inside that window (not a process crash) can take a
//! write somebody read, and then nobody was acknowledged for it. Under
//! `--sync normal` the syncer is not started and writes are answered at
//! COMMIT (config.rs says what that risks).
//!
//! WAL checkpoints run on their own thread and connection: SQLite's automatic
//! checkpoint would run inside the writer's COMMIT, copying pages and
//! fsyncing the database file while every waiting write (and its ack) waits
//! behind it. A profile at 4000 messages/s put 13% of the server's CPU and
//! the latency tail there.
//!
//! A checkpoint on another connection can never catch up with a writer that
//! never pauses, and SQLite restarts the WAL from its beginning only after a
//! *complete* checkpoint: so the writer also runs a PASSIVE checkpoint every
//! [`WRITER_CHECKPOINT_COMMITS`] commits, after answering its callers. The
//! checkpointer has already copied nearly everything, so that one is short,
//! completes, and keeps the WAL file from growing without bound.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::schema;
use crate::config::SyncMode;
use crate::error::StoreError;
use crate::metrics;

/// Most write jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Write jobs queued before callers wait (backpressure).
const WRITE_QUEUE: usize = 8192;
/// Reader connections used at once.
const READERS: usize = 4;
/// Compiled statements cached per connection (the store has ~160 distinct
/// statements; a connection uses a part of them).
const STATEMENT_CACHE: usize = 256;
/// How often the checkpointer copies committed WAL frames into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Commits between the writer's own (completing) checkpoints.
const WRITER_CHECKPOINT_COMMITS: u32 = 256;
/// Committed writes waiting for the syncer's fsync before the writer waits:
/// a 1 s disk stall at 10,000 writes/s fits, and a reply waiting is a few
/// hundred bytes.
const SYNC_WAITING_MAX: usize = 16_384;

/// Of the caller's timeout, the part kept for COMMIT itself: a job must
/// start committing this long before its caller gives up (at most 1 s, a
/// fifth of the timeout), so a write never commits after its caller was
/// told `unavailable` unless the COMMIT alone takes longer than this.
const COMMIT_GRACE_MAX: Duration = Duration::from_secs(1);

/// A job runs only if at least this long remains before its commit-by
/// time, so that only a stall (not an ordinary batch) can push a batch's
/// COMMIT past a deadline and roll the whole batch back.
const RUN_MARGIN_MS: i64 = 500;

type Completion = Box<dyn FnOnce(bool) + Send>;
/// Runs a job in the open transaction (`true`), or refuses it without
/// running it (`false`: too late to commit).
type WriteFn = Box<dyn FnOnce(&Connection, bool) -> Completion + Send>;

/// A write job and the wall-clock time (Unix ms) by which its transaction
/// must have started to COMMIT; later, the job is refused or rolled back.
struct WriteJob {
    run: WriteFn,
    commit_by_ms: i64,
}

enum Job {
    Write(WriteJob),
    Close(oneshot::Sender<()>),
}

/// Handle to the writer thread and the reader pool.
pub struct Engine {
    path: PathBuf,
    writer: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_slots: Arc<Semaphore>,
    timeout: Duration,
    /// Dropping (or sending on) it stops the checkpointer.
    checkpointer: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

pub(super) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    // Before SQLite's first connection in the process (pcache.rs).
    super::pcache::install();
    let conn = Connection::open(path).map_err(map_err)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(map_err)?;
    // page_size (new databases only; it must come before WAL mode): a
    // message updates about nine index entries on random pages, and the WAL
    // stores whole pages, so 1 KiB pages write half the bytes of 4 KiB ones
    // per message (23 -> 11 KB, BENCHMARKS.md). temp_store=MEMORY keeps each
    // job's savepoint journal off the disk; the page cache (per connection)
    // avoids re-reading hot index pages.
    conn.execute_batch(
        "PRAGMA page_size=1024; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;
         PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;",
    )
    .map_err(map_err)?;
    // Compiled statements kept per connection. rusqlite's default keeps 16,
    // and the writer alone runs more than that for one message (the nonce,
    // recipient and block probes, the message's rows, the push intake), so
    // its LRU cache missed (-2.8% instructions per message with 256).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The query planner's stability guarantee: plans never depend on bound
    // values. Without it, SQLite 3.54 lets the planner peek at a bound
    // value in statements like `a = ?1 AND b > ?2` (and `max(b) ... WHERE
    // a = ?1`), and then clearing the bindings (which rusqlite does when a
    // statement goes back to its cache) expires the statement: the intake's
    // read and the conversation's `max(id)` were recompiled on every use,
    // ~2 compiles per message (BENCHMARKS.md, "Instructions per event").
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(map_err)?;
    Ok(conn)
}

/// Run `sql` (one statement without results, e.g. `SAVEPOINT job`) from the
/// connection's statement cache instead of compiling it again.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

impl Engine {
    /// Opens (creating if needed) the database, applies the schema and starts
    /// the writer thread.
    pub async fn open(path: &Path, timeout: Duration, sync: SyncMode) -> Result<Engine, StoreError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        }
        let p = path.clone();
        let (conn, checkpoint_conn) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            // Nodes starting together on one file race to switch it to WAL
            // and migrate it; SQLite answers some of those races with "locked"
            // at once instead of waiting on busy_timeout, so retry a while.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let conn = loop {
                let opened = open_connection(&p).and_then(|mut conn| {
                    schema::migrate(&mut conn).map_err(map_err)?;
                    Ok(conn)
                });
                match opened {
                    Err(StoreError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(25));
                    }
                    other => break other?,
                }
            };
            // Checkpoints are the checkpointer's job (see the module docs).
            // The writer's cache is the others' 16 MiB, which holds a batch's
            // dirty pages. (A B-tree split used to make the next COMMIT scan
            // the whole cache, 12% of the writer at 64 MiB; pcache.rs.)
            conn.execute_batch("PRAGMA wal_autocheckpoint=0;").map_err(map_err)?;
            // Only the writer commits, at NORMAL in both modes: its COMMIT
            // does not fsync; the syncer does (`--sync full`, module docs).
            // Its own checkpoints still sync the WAL before copying it, and
            // the checkpointer keeps FULL.
            conn.pragma_update(None, "synchronous", "NORMAL").map_err(map_err)?;
            Ok((conn, open_connection(&p)?))
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;

        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("hubbub-sqlite-ckpt".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, stop_rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let syncer = match sync {
            SyncMode::Full => Some(Syncer::start(wal_path(&path))?),
            SyncMode::Normal => None,
        };
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("hubbub-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, syncer))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Engine {
            path,
            writer: tx,
            readers: Arc::new(Mutex::new(Vec::new())),
            reader_slots: Arc::new(Semaphore::new(READERS)),
            timeout,
            checkpointer: Mutex::new(Some(stop_tx)),
        })
    }

    /// Runs `f` inside the writer's current transaction (its own savepoint).
    /// Resolves once the transaction has committed durably; an `Err` from `f`
    /// rolls back only `f`'s changes. See [`Engine::write_by`].
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_by(None, f).await
    }

    /// [`Engine::write`] with a deadline: the write commits only if its
    /// transaction starts to COMMIT before the caller's timeout minus a
    /// grace for the COMMIT itself, and before `commit_by_ms` (Unix ms) if
    /// given. Otherwise `f` does not run (it also does not run within
    /// [`RUN_MARGIN_MS`] of that time), or its batch is rolled back, and
    /// the caller gets `Unavailable`: a write its caller was told failed
    /// does not commit behind its back.
    pub async fn write_by<T, F>(&self, commit_by_ms: Option<i64>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let run: WriteFn = Box::new(move |conn: &Connection, in_time: bool| {
            // Too late, or the caller timed out and was told `unavailable`:
            // do not write behind its back (a retry with the same
            // idempotency key would otherwise find a write nobody was told
            // about).
            if !in_time || tx.is_closed() {
                let _ = tx.send(Err(StoreError::Unavailable("write timed out".into())));
                return Box::new(|_| {}) as Completion;
            }
            let result = run_in_savepoint(conn, f);
            Box::new(move |committed: bool| {
                let out = match (committed, result) {
                    (true, r) => r,
                    (false, _) => Err(StoreError::Unavailable("commit failed".into())),
                };
                let _ = tx.send(out);
            }) as Completion
        });
        let started = std::time::Instant::now();
        let grace = (self.timeout / 5).min(COMMIT_GRACE_MAX);
        let own = crate::model::now_ms() + self.timeout.saturating_sub(grace).as_millis() as i64;
        let job = WriteJob { run, commit_by_ms: commit_by_ms.map_or(own, |b| b.min(own)) };
        let work = async {
            self.writer.send(Job::Write(job)).await.map_err(|_| StoreError::Unavailable("store is closed".into()))?;
            rx.await.map_err(|_| StoreError::Unavailable("store is closed".into()))?
        };
        let out = tokio::time::timeout(self.timeout, work).await;
        metrics::global().store_write_seconds.observe(metrics::since(started));
        out.map_err(|_| StoreError::Unavailable("write timed out".into()))?
    }

    /// Runs `f` on a reader connection on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let work = async {
            let _slot =
                self.reader_slots.acquire().await.map_err(|_| StoreError::Unavailable("store is closed".into()))?;
            let readers = self.readers.clone();
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().ok().and_then(|mut v| v.pop());
                let conn = match pooled {
                    Some(c) => c,
                    None => open_connection(&path)?,
                };
                let out = f(&conn);
                if let Ok(mut v) = readers.lock() {
                    v.push(conn);
                }
                out
            })
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
        };
        let out = tokio::time::timeout(self.timeout, work).await;
        metrics::global().store_read_seconds.observe(metrics::since(started));
        out.map_err(|_| StoreError::Unavailable("read timed out".into()))?
    }

    /// Waits until every queued write has committed, then stops the writer.
    pub async fn close(&self) {
        // Stop the checkpointer first: the writer's final TRUNCATE checkpoint
        // must not find it busy.
        if let Some(stop) = self.checkpointer.lock().ok().and_then(|mut c| c.take()) {
            let _ = stop.send(());
        }
        let (tx, rx) = oneshot::channel();
        if self.writer.send(Job::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        self.reader_slots.close();
        if let Ok(mut v) = self.readers.lock() {
            v.clear();
        }
    }
}

fn run_in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    exec_cached(conn, "SAVEPOINT job").map_err(map_err)?;
    match f(conn) {
        Ok(v) => {
            exec_cached(conn, "RELEASE job").map_err(map_err)?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            Err(e)
        }
    }
}

fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<Job>, syncer: Option<Syncer>) {
    let mut closing: Option<oneshot::Sender<()>> = None;
    let mut commits: u32 = 0;
    while closing.is_none() {
        let Some(first) = rx.blocking_recv() else { break };
        let mut batch = Vec::with_capacity(16);
        match first {
            Job::Write(w) => batch.push(w),
            Job::Close(done) => closing = Some(done),
        }
        while closing.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Job::Write(w)) => batch.push(w),
                Ok(Job::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let (committed, completions) = commit_batch(&conn, batch);
            match (&syncer, committed) {
                (Some(s), true) => s.after_fsync(completions),
                _ => completions.into_iter().for_each(|done| done(committed)),
            }
            commits += 1;
            if commits >= WRITER_CHECKPOINT_COMMITS {
                commits = 0;
                passive_checkpoint(&conn);
            }
        }
    }
    rx.close();
    // Anything still queued after Close is refused: dropping a job drops its
    // reply channel, so the caller sees `Unavailable`.
    while rx.try_recv().is_ok() {}
    // Every committed write is answered (after its fsync) before Close is.
    if let Some(s) = syncer {
        s.finish();
    }
    let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// The syncer thread: fdatasyncs the WAL, then answers the writes committed
/// before that fsync began (module docs).
struct Syncer {
    shared: Arc<SyncShared>,
    thread: std::thread::JoinHandle<()>,
}

/// Committed writes waiting for an fsync, handed from the writer to the
/// syncer; `changed` wakes either side.
struct SyncShared {
    state: Mutex<SyncState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct SyncState {
    waiting: Vec<Completion>,
    closed: bool,
}

impl Syncer {
    fn start(wal: PathBuf) -> Result<Syncer, StoreError> {
        let shared = Arc::new(SyncShared { state: Mutex::new(SyncState::default()), changed: Default::default() });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hubbub-sqlite-sync".into())
            .spawn(move || sync_loop(wal, &s))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Syncer { shared, thread })
    }

    /// Answers `completions` (committed) once an fsync that began after
    /// their COMMIT has returned. Waits while [`SYNC_WAITING_MAX`] writes
    /// are already waiting (backpressure to the writer during a long stall).
    fn after_fsync(&self, completions: Vec<Completion>) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        while st.waiting.len() >= SYNC_WAITING_MAX {
            st = self.shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        // The syncer waits only while nothing is waiting: wake it then, not
        // on every batch committed during its fsync.
        let wake = st.waiting.is_empty();
        st.waiting.extend(completions);
        if wake {
            self.shared.changed.notify_all();
        }
    }

    /// Waits until every write handed over has been answered.
    fn finish(self) {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.shared.changed.notify_all();
        let _ = self.thread.join();
    }
}

fn sync_loop(wal: PathBuf, shared: &SyncShared) {
    // Opened once and kept: the WAL file of a database in use is never
    // replaced (a checkpoint truncates or rewrites it in place). Only the
    // database and -shm files carry SQLite's POSIX locks, which closing any
    // descriptor of that file would drop; this is the -wal file.
    let mut file: Option<std::fs::File> = None;
    loop {
        let waiting = {
            let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while st.waiting.is_empty() && !st.closed {
                st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.waiting.is_empty() {
                return;
            }
            std::mem::take(&mut st.waiting)
        };
        // The writer waits only at the bound: wake it then.
        if waiting.len() >= SYNC_WAITING_MAX {
            shared.changed.notify_all();
        }
        let started = std::time::Instant::now();
        let synced = sync_wal(&wal, &mut file);
        let m = metrics::global();
        m.store_sync_seconds.observe(metrics::since(started));
        m.store_sync_jobs.observe(waiting.len() as f64);
        if let Err(e) = &synced {
            // The writes are committed but maybe not on disk: their callers
            // are told `unavailable` (a retry with the same nonce finds the
            // write if it survived). The next fsync is tried afresh.
            tracing::error!(error = %e, path = %wal.display(), "sqlite: WAL fsync failed");
            file = None;
        }
        let ok = synced.is_ok();
        for done in waiting {
            done(ok);
        }
    }
}

fn sync_wal(wal: &Path, file: &mut Option<std::fs::File>) -> std::io::Result<()> {
    let f = match file {
        Some(f) => f,
        None => file.insert(std::fs::File::open(wal)?),
    };
    f.sync_data()
}

/// Every [`CHECKPOINT_EVERY`], copies committed WAL frames into the database
/// without blocking the writer (PASSIVE), until told to stop.
fn checkpoint_loop(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        passive_checkpoint(&conn);
    }
}

/// Copies committed WAL frames into the database without waiting for anyone.
fn passive_checkpoint(conn: &Connection) {
    let started = std::time::Instant::now();
    let res = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    metrics::global().store_checkpoint_seconds.observe(metrics::since(started));
    match res {
        Ok((busy, log, done)) => tracing::trace!(busy, log, done, "sqlite: checkpoint"),
        Err(e) => tracing::debug!(error = %e, "sqlite: checkpoint did not run"),
    }
}

/// Runs `batch` in one transaction and commits it (without an fsync: see
/// the module docs). Returns whether it committed and the jobs' replies,
/// to be called with that outcome once it is durable.
fn commit_batch(conn: &Connection, batch: Vec<WriteJob>) -> (bool, Vec<Completion>) {
    metrics::global().store_batch_jobs.observe(batch.len() as f64);
    if let Err(e) = exec_cached(conn, "BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "sqlite: cannot begin a write transaction");
        let refused = batch.into_iter().map(|job| (job.run)(conn, false)).collect();
        let _ = conn.execute_batch("ROLLBACK");
        return (false, refused);
    }
    // Jobs whose deadline passed (or nearly) while waiting, e.g. for another
    // process's write lock, are refused; the others run and must commit by
    // the earliest of their deadlines.
    let mut commit_by = i64::MAX;
    let completions: Vec<Completion> = batch
        .into_iter()
        .map(|job| {
            let in_time = crate::model::now_ms() + RUN_MARGIN_MS < job.commit_by_ms;
            if in_time {
                commit_by = commit_by.min(job.commit_by_ms);
            }
            (job.run)(conn, in_time)
        })
        .collect();
    let started = std::time::Instant::now();
    let outcome = if crate::model::now_ms() < commit_by {
        exec_cached(conn, "COMMIT").map_err(|e| e.to_string())
    } else {
        // The process stalled between running the jobs and committing them
        // (stopped, swapped out): their callers are being told `unavailable`.
        Err("a job's deadline passed before COMMIT".to_owned())
    };
    metrics::global().store_commit_seconds.observe(metrics::since(started));
    let committed = match outcome {
        Ok(()) => true,
        Err(e) => {
            tracing::error!(error = %e, "sqlite: commit failed or refused; rolling back the batch");
            let _ = conn.execute_batch("ROLLBACK");
            false
        }
    };
    (committed, completions)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count_after_writes(sync: SyncMode) -> (i64, u64) {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::open(&dir.path().join("t.db"), Duration::from_secs(10), sync).await.unwrap();
        e.write(|c| c.execute_batch("CREATE TABLE t(x INTEGER)").map_err(map_err)).await.unwrap();
        let before = metrics::global().store_sync_jobs.get_sample_count();
        let writes: Vec<_> = (0..50)
            .map(|i| e.write(move |c| c.execute("INSERT INTO t VALUES (?1)", [i]).map(|_| ()).map_err(map_err)))
            .collect();
        for w in futures_util::future::join_all(writes).await {
            w.unwrap();
        }
        let synced = metrics::global().store_sync_jobs.get_sample_count() - before;
        let n = e.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(map_err)).await.unwrap();
        e.close().await;
        (n, synced)
    }

    #[tokio::test]
    async fn full_answers_writes_after_an_fsync_and_normal_without() {
        let (n, synced) = count_after_writes(SyncMode::Full).await;
        assert_eq!(n, 50);
        assert!(synced >= 1, "every answered write under --sync full went through the syncer");
        let (n, _) = count_after_writes(SyncMode::Normal).await;
        assert_eq!(n, 50);
    }

    #[test]
    fn cached_range_statements_are_not_recompiled_on_every_use() {
        use rusqlite::{StatementStatus, params};
        let dir = tempfile::tempdir().unwrap();
        let mut c = open_connection(&dir.path().join("t.db")).unwrap();
        schema::migrate(&mut c).unwrap();
        for i in 0..50i64 {
            c.execute("INSERT INTO push_intake (node, message_id) VALUES (?1, ?2)", params![i % 3, 100 + i]).unwrap();
        }
        let sql = "SELECT message_id FROM push_intake WHERE node = ?1 AND message_id > ?2 AND message_id <= ?3
                   ORDER BY message_id LIMIT ?4";
        for i in 0..10i64 {
            let mut s = c.prepare_cached(sql).unwrap();
            let n = s.query_map(params![i % 3, 100 + i, 200, 10], |r| r.get::<_, i64>(0)).unwrap().count();
            assert!(n > 0);
        }
        assert_eq!(c.prepare_cached(sql).unwrap().get_status(StatementStatus::RePrepare), 0);
    }
}
