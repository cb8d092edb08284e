//! `connect`: open N token-authenticated sockets (the reconnect path) as fast
//! as the handshake cap allows, hold them idle, and measure the server's
//! resident memory per socket. With `--read-timeline N`, each socket first
//! reads one large reply (a page of N posts), so the figure includes what a
//! socket keeps after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Fail, Target};
use crate::setup;
use crate::stats::{Failures, Latency, LatencySummary};
use crate::sys;

/// Settings of one `connect` run.
#[derive(Clone, Debug)]
pub struct ConnectArgs {
    pub sockets: usize,
    pub seconds: u64,
    pub sockets_per_user: usize,
    pub concurrency: usize,
    pub server_pid: Option<u32>,
    /// Longest the connect phase may take before the rest are abandoned.
    pub connect_deadline: Duration,
    /// Posts of the first user that every socket reads once (0: none).
    pub read_timeline: usize,
}

/// What a `connect` run measured.
#[derive(Debug, Default, Serialize)]
pub struct ConnectReport {
    /// Sockets asked for.
    pub requested: usize,
    /// Users behind them (registered or logged in once, with a password).
    pub users: usize,
    /// Time to obtain every user's access token (not part of the measure).
    pub setup_seconds: f64,
    /// Users whose token could not be obtained, by reason.
    pub setup_failures: Failures,
    /// Sockets opened with a token and confirmed by a `ping` reply.
    pub connected: u64,
    /// Sockets that did not open, by reason.
    pub failures: Failures,
    /// From the first handshake to the last successful one.
    pub connect_seconds: f64,
    /// `connected / connect_seconds`.
    pub connections_per_sec: f64,
    /// TCP connect + upgrade with token + `ping` round trip, per socket.
    pub handshake: LatencySummary,
    /// Bytes of the `timeline.user` reply each socket read (`--read-timeline`).
    pub timeline_reply_bytes: Option<usize>,
    /// Sockets still open at the end of the hold.
    pub held: u64,
    /// Sockets the server closed during the hold, by reason.
    pub lost_during_hold: Failures,
    /// Server RSS in bytes once the setup sockets had closed.
    pub rss_before: Option<u64>,
    /// Server RSS in bytes at the end of the hold.
    pub rss_after: Option<u64>,
    /// `(rss_after - rss_before) / connected`, in bytes.
    pub rss_per_socket: Option<f64>,
}

/// Runs the scenario.
pub async fn run(target: Arc<Target>, prefix: &str, a: &ConnectArgs) -> ConnectReport {
    let users = a.sockets.div_ceil(a.sockets_per_user.max(1));
    let mut r = ConnectReport { requested: a.sockets, users, ..Default::default() };
    let t0 = Instant::now();
    let (tokens, setup_failures) = setup::tokens(&target, prefix, users, a.concurrency).await;
    r.setup_seconds = t0.elapsed().as_secs_f64();
    r.setup_failures = setup_failures;
    let mut timeline_of = None;
    if a.read_timeline > 0 {
        let author = client::username(prefix, 0);
        match publish_posts(&target, tokens.first().cloned().flatten(), &author, a.read_timeline).await {
            Ok(bytes) => {
                r.timeline_reply_bytes = Some(bytes);
                timeline_of = Some(Arc::<str>::from(author));
            }
            Err(Fail(reason)) => r.setup_failures.add(format!("posts: {reason}")),
        }
    }
    // Let the setup sockets close on the server before the baseline.
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.rss_before = a.server_pid.and_then(sys::rss_bytes);

    let (release_tx, release_rx) = watch::channel(false);
    let (report_tx, mut report_rx) = mpsc::channel::<Result<Duration, Fail>>(1024);
    let lost = Arc::new(std::sync::Mutex::new(Failures::default()));
    let alive = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(a.concurrency.max(1)));
    let mut set = JoinSet::new();
    let tokens: Vec<Option<Arc<str>>> = tokens.into_iter().map(|t| t.map(Arc::from)).collect();
    let start = Instant::now();
    for i in 0..a.sockets {
        let token = tokens.get(i / a.sockets_per_user.max(1)).cloned().flatten();
        let hold = Hold {
            target: target.clone(),
            slots: slots.clone(),
            report: report_tx.clone(),
            release: release_rx.clone(),
            lost: lost.clone(),
            alive: alive.clone(),
            timeline_of: timeline_of.clone(),
        };
        set.spawn(hold.run(token));
    }
    drop(report_tx);

    let bar = setup::progress(a.sockets as u64, "connect");
    let mut lat = Latency::new();
    let deadline = start + a.connect_deadline;
    let mut last = start;
    while let Ok(Some(outcome)) = tokio::time::timeout_at(deadline, report_rx.recv()).await {
        bar.inc(1);
        match outcome {
            Ok(d) => {
                r.connected += 1;
                lat.record(d);
                last = Instant::now();
            }
            Err(Fail(reason)) => r.failures.add(reason),
        }
        if r.connected + r.failures.total() == a.sockets as u64 {
            break;
        }
    }
    bar.finish_and_clear();
    let missing = (a.sockets as u64).saturating_sub(r.connected + r.failures.total());
    r.failures.add_n("not connected before the connect deadline", missing);
    r.connect_seconds = last.saturating_duration_since(start).as_secs_f64();
    r.connections_per_sec = if r.connect_seconds > 0.0 { r.connected as f64 / r.connect_seconds } else { 0.0 };
    r.handshake = lat.summary();

    hold_phase(a, &mut r).await;
    r.held = alive.load(Ordering::Relaxed);
    if let Ok(l) = lost.lock() {
        r.lost_during_hold = l.clone();
    }
    let _ = release_tx.send(true);
    setup::drain(&mut set, Duration::from_secs(15)).await;
    r
}

/// Holds the sockets idle for the configured time, sampling RSS at the end.
async fn hold_phase(a: &ConnectArgs, r: &mut ConnectReport) {
    let bar = setup::progress(a.seconds, "hold (s)");
    for _ in 0..a.seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        bar.inc(1);
    }
    bar.finish_and_clear();
    r.rss_after = a.server_pid.and_then(sys::rss_bytes);
    if let (Some(b), Some(after)) = (r.rss_before, r.rss_after) {
        if r.connected > 0 {
            r.rss_per_socket = Some((after as f64 - b as f64) / r.connected as f64);
        }
    }
}

/// One socket's life in the scenario.
struct Hold {
    target: Arc<Target>,
    slots: Arc<Semaphore>,
    report: mpsc::Sender<Result<Duration, Fail>>,
    release: watch::Receiver<bool>,
    lost: Arc<std::sync::Mutex<Failures>>,
    alive: Arc<AtomicU64>,
    /// Whose timeline to read once open (`--read-timeline`).
    timeline_of: Option<Arc<str>>,
}

impl Hold {
    async fn run(mut self, token: Option<Arc<str>>) {
        let opened = {
            let Ok(_permit) = self.slots.acquire().await else { return };
            let t0 = Instant::now();
            match token {
                None => Err(Fail("no token (setup failed)".into())),
                Some(t) => {
                    let opened = setup::open_confirmed(&self.target, &t).await;
                    let took = t0.elapsed();
                    match (opened, &self.timeline_of) {
                        (Ok(mut ws), Some(user)) => {
                            read_timeline(&mut ws, user, self.target.timeout).await.map(|_| (ws, took))
                        }
                        (opened, _) => opened.map(|ws| (ws, took)),
                    }
                }
            }
        };
        let mut ws = match opened {
            Ok((ws, took)) => {
                let _ = self.report.send(Ok(took)).await;
                ws
            }
            Err(e) => {
                let _ = self.report.send(Err(e)).await;
                return;
            }
        };
        self.alive.fetch_add(1, Ordering::Relaxed);
        let reason = loop {
            tokio::select! {
                frame = ws.next() => match frame {
                    Some(Ok(Message::Close(f))) => break Some(format!("closed {}", f.map_or(1005, |f| u16::from(f.code)))),
                    Some(Ok(_)) => {}
                    None | Some(Err(_)) => break Some("socket lost".to_string()),
                },
                _ = self.release.changed() => break None,
            }
        };
        if let Some(reason) = reason {
            self.alive.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut l) = self.lost.lock() {
                l.add(reason);
            }
        }
        // Dropping the socket closes the TCP connection; the server sees the
        // end of the stream (no close handshake for 100k sockets at once).
    }
}

/// The first user (`author`) publishes `n` posts of 280 characters;
/// returns the size in bytes of one `timeline.user` page of them.
async fn publish_posts(target: &Target, token: Option<String>, author: &str, n: usize) -> Result<usize, Fail> {
    let token = token.ok_or_else(|| Fail("no token for the first user".into()))?;
    let mut ws = setup::open_confirmed(target, &token).await?;
    for i in 0..n {
        let text = format!("{i:05} {}", "x".repeat(274));
        client::request_ok(
            &mut ws,
            1000 + i as u64,
            "post.create",
            serde_json::json!({ "text": text }),
            target.timeout,
        )
        .await?;
    }
    read_timeline(&mut ws, author, target.timeout).await
}

/// Reads one `timeline.user` page (up to 100 items) of `user`; returns the
/// size of its `data` in bytes.
async fn read_timeline(ws: &mut client::Ws, user: &str, limit: Duration) -> Result<usize, Fail> {
    let fields = serde_json::json!({ "username": user, "limit": 100 });
    Ok(client::request_ok(ws, 2, "timeline.user", fields, limit).await?.to_string().len())
}
