//! `cql_latency`: per-operation and per-statement latency of the CQL store,
//! from the driver's side, against a live node (e.g. the test Cassandra of
//! `tools/cassandra/cassandra.sh`). Loopback nodes only.
//!
//! In a fresh keyspace (migrated first, dropped at the end) it times, each
//! `--n` times after `--warmup` untimed calls, with `--concurrency` calls in
//! flight:
//! - `send_direct`: the whole [`Store::send_direct`] (what `message.send`
//!   runs: name lookup, user checks, every row write);
//! - `insert_message`: the whole [`Store::insert_message`];
//! - `insert_statement`: the single `INSERT INTO messages` the store
//!   prepares (same text as `MessageInsert` in `src/store/cql/statements.rs`,
//!   same consistency), prepared once here;
//! - `history`: the whole [`Store::history`] page of `--page` messages;
//! - `page_statement`: the single `SELECT ... FROM messages ... LIMIT ?`
//!   (`MessagePage`) for one page.
//!
//! Each time is from just before the call to its result, on a
//! `tokio::time::Instant`. Prints one JSON object (milliseconds).

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hubbub::model::{ConversationId, DirectSend, Message, MessageId, User, UserCredentials, UserId};
use hubbub::snowflake::Generator;
use hubbub::store::{ScyllaOptions, ScyllaStore, Store};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::Consistency;
use scylla::statement::prepared::PreparedStatement;
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Debug, Parser)]
#[command(name = "cql_latency", about = "Driver-side latency of the CQL store's message insert and history read")]
struct Args {
    /// A CQL node (host:port, loopback).
    #[arg(long)]
    scylla: String,
    /// Timed calls per operation.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// Untimed calls per operation first (JIT warm-up on Cassandra).
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Messages per history page.
    #[arg(long, default_value_t = 50)]
    page: i32,
    /// Timeout of each request, in seconds.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

const INSERT: &str = "INSERT INTO messages (conversation_id, bucket, message_id, from_id, from_name, to_id, \
                      to_name, body, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
const PAGE: &str = "SELECT message_id, conversation_id, from_id, from_name, to_id, to_name, body, nonce \
                    FROM messages WHERE conversation_id = ? AND bucket = ? AND message_id < ? LIMIT ?";

/// The store's bucket of a snowflake id (10-day windows since the epoch).
fn bucket_of(id: i64) -> i32 {
    let ms = hubbub::snowflake::unix_ms(id) - hubbub::snowflake::EPOCH_MS;
    (ms.max(0) / (10 * 24 * 3600 * 1000)) as i32
}

/// p50/p90/p99/p999/max of `ms`, sorted in place.
fn summary(ms: &mut [f64]) -> Value {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms.get(((ms.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    let r = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({"n": ms.len(), "p50": r(at(0.5)), "p90": r(at(0.9)), "p99": r(at(0.99)), "p999": r(at(0.999)),
           "max": r(ms.last().copied().unwrap_or(0.0))})
}

/// Runs `op(i)` for i in 0..warmup untimed, then for warmup..warmup+n
/// timed, `concurrency` at a time; returns the times in ms.
async fn timed<F, Fut>(args: &Args, op: F) -> Result<Vec<f64>, String>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut out = Vec::with_capacity(args.n);
    for (range, keep) in [(0..args.warmup, false), (args.warmup..args.warmup + args.n, true)] {
        let mut next = range.clone();
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < args.concurrency.max(1) {
                let Some(i) = next.next() else { break };
                let fut = op(i);
                running.push(async move {
                    let started = Instant::now();
                    fut.await.map(|()| started.elapsed().as_secs_f64() * 1000.0)
                });
            }
            let Some(done) = running.next().await else { break };
            let ms = done?;
            if keep {
                out.push(ms);
            }
        }
    }
    Ok(out)
}

struct Probe {
    store: Arc<ScyllaStore>,
    session: Session,
    insert: PreparedStatement,
    page: PreparedStatement,
    ids: Generator,
    a: User,
    b: User,
}

impl Probe {
    fn message(&self, i: usize) -> Message {
        let (from, to) = if i % 2 == 0 { (&self.a, &self.b) } else { (&self.b, &self.a) };
        Message {
            id: MessageId(self.ids.next_id()),
            conversation_id: ConversationId::direct(from.id, to.id),
            from_id: from.id,
            from: from.username.clone(),
            to_id: to.id,
            to: to.username.clone(),
            text: format!("probe message {i}"),
            nonce: None,
        }
    }
}

async fn run(args: &Args, p: &Probe) -> Result<Value, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let conv = ConversationId::direct(p.a.id, p.b.id);
    let mut send = timed(args, |i| async move {
        let s = DirectSend {
            id: MessageId(p.ids.next_id()),
            from: if i % 2 == 0 { p.a.clone() } else { p.b.clone() },
            to_username: if i % 2 == 0 { p.b.username.clone() } else { p.a.username.clone() },
            text: format!("probe send {i}"),
            nonce: None,
        };
        p.store.send_direct(&s).await.map_err(|e| err(&e))?.ok_or("recipient not found")?;
        Ok(())
    })
    .await?;
    let mut insert =
        timed(args, |i| async move { p.store.insert_message(&p.message(i)).await.map(|_| ()).map_err(|e| err(&e)) })
            .await?;
    let mut statement = timed(args, |i| async move {
        let m = p.message(i);
        let values = (
            format!("probe-{}", m.conversation_id.0),
            bucket_of(m.id.0),
            m.id.0,
            m.from_id.0,
            &m.from,
            m.to_id.0,
            &m.to,
            &m.text,
            None::<&str>,
        );
        p.session.execute_unpaged(&p.insert, values).await.map(|_| ()).map_err(|e| err(&e))
    })
    .await?;
    let conv = &conv;
    let mut history = timed(args, |_| async move {
        let page = p.store.history(conv, None, args.page as usize).await.map_err(|e| err(&e))?;
        if page.len() < args.page as usize { Err(format!("short page: {}", page.len())) } else { Ok(()) }
    })
    .await?;
    let newest = MessageId(p.ids.next_id());
    let mut page = timed(args, |_| async move {
        let values = (&conv.0, bucket_of(newest.0), newest.0, args.page);
        let r = p.session.execute_unpaged(&p.page, values).await.map_err(|e| err(&e))?;
        let rows = r.into_rows_result().map_err(|e| err(&e))?.rows_num();
        if rows < args.page as usize { Err(format!("short page: {rows}")) } else { Ok(()) }
    })
    .await?;
    Ok(json!({
        "concurrency": args.concurrency,
        "page_rows": args.page,
        "send_direct_ms": summary(&mut send),
        "insert_message_ms": summary(&mut insert),
        "insert_statement_ms": summary(&mut statement),
        "history_ms": summary(&mut history),
        "page_statement_ms": summary(&mut page),
    }))
}

async fn setup(args: &Args, keyspace: &str) -> Result<Probe, String> {
    let nodes: Vec<String> = args.scylla.split(',').map(str::to_string).collect();
    for n in &nodes {
        let addr: std::net::SocketAddr = n.parse().map_err(|e| format!("{n}: {e}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("{n} is not a loopback address"));
        }
    }
    let mut o = ScyllaOptions::new(nodes.clone(), keyspace);
    o.request_timeout = Duration::from_secs(args.timeout);
    ScyllaStore::migrate(&o).await.map_err(|e| e.to_string())?;
    let store = Arc::new(ScyllaStore::open(&o).await.map_err(|e| e.to_string())?);
    let session = tokio::time::timeout(
        o.request_timeout * 2,
        SessionBuilder::new().known_nodes(&nodes).use_keyspace(keyspace, false).build(),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())?;
    let prepare = |cql: &'static str| {
        let session = &session;
        async move {
            let mut p = session.prepare(cql).await.map_err(|e| e.to_string())?;
            p.set_consistency(Consistency::LocalQuorum);
            p.set_request_timeout(Some(o.request_timeout));
            Ok::<_, String>(p)
        }
    };
    let (insert, page) = (prepare(INSERT).await?, prepare(PAGE).await?);
    let ids = Generator::new(1000);
    let mut users = Vec::new();
    for name in ["probe_a", "probe_b"] {
        let user =
            User { id: UserId(ids.next_id()), username: name.into(), display_name: name.into(), created_at_ms: 0 };
        let c = UserCredentials { user: user.clone(), password_hash: "x".into() };
        store.create_user(&c).await.map_err(|e| e.to_string())?;
        users.push(user);
    }
    let b = users.pop().ok_or("no user")?;
    let a = users.pop().ok_or("no user")?;
    Ok(Probe { store, session, insert, page, ids, a, b })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.n == 0 || args.page <= 0 {
        eprintln!("--n and --page must be at least 1");
        return std::process::ExitCode::FAILURE;
    }
    let keyspace = format!("hubbub_probe_{}", std::process::id());
    let probe = match setup(&args, &keyspace).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("setup: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // The whole run is bounded: every request has its own timeout too.
    let limit = Duration::from_secs(args.timeout) * (6 * (args.n + args.warmup) as u32 + 10);
    let outcome = tokio::time::timeout(limit, run(&args, &probe)).await;
    if let Err(e) = probe.store.drop_keyspace().await {
        eprintln!("dropping {keyspace}: {e}");
    }
    match outcome {
        Ok(Ok(v)) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("run: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("run: timed out");
            std::process::ExitCode::FAILURE
        }
    }
}
