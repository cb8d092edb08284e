//! `login_flood`: a real user's login latency while other sockets flood the
//! server with registrations (each one a bcrypt hash at the server's cost).
//!
//! 1. Registers `<prefix>_victim` from 127.0.0.200 and times `--baseline`
//!    logins with nothing else running.
//! 2. Opens `--flood-sockets` sockets from 127.0.0.2 .. 127.0.0.(1 +
//!    `--flood-sources`); each sends `auth.register` with a fresh name,
//!    waits for the reply, and sends the next (after a refusal it pauses
//!    `--refused-pause-ms`, so the load generator does not spin).
//! 3. After `--warmup` seconds, the victim logs in on a fresh socket every
//!    `--interval-ms` until `--seconds` have passed; each login's time is
//!    from sending `auth.login` to its reply.
//!
//! Every wait has a timeout (`--timeout`), and loopback targets only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(name = "login_flood", about = "Login latency under a registration flood")]
struct Args {
    /// The server (loopback only).
    #[arg(long, default_value = "127.0.0.1:9100")]
    target: SocketAddr,
    /// Prefix of the usernames; use a fresh one per run.
    #[arg(long, default_value = "lf")]
    prefix: String,
    /// Flooding sockets.
    #[arg(long, default_value_t = 60)]
    flood_sockets: usize,
    /// Source addresses the flood comes from (127.0.0.2 onwards).
    #[arg(long, default_value_t = 1)]
    flood_sources: u8,
    /// Seconds of flooding.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Seconds of flooding before the victim starts logging in.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Milliseconds between the victim's logins (each waits for the last).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Logins timed before the flood.
    #[arg(long, default_value_t = 5)]
    baseline: usize,
    /// Pause of a flooding socket after a refused registration, in ms.
    #[arg(long, default_value_t = 10)]
    refused_pause_ms: u64,
    /// Timeout of every connect and request, in seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

type Ws = WebSocketStream<TcpStream>;
const PASSWORD: &str = "flood-password";
const VICTIM_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 200);

async fn connect(target: SocketAddr, from: Ipv4Addr, limit: Duration) -> Result<Ws, String> {
    let work = async {
        let sock = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        sock.bind(SocketAddr::new(IpAddr::V4(from), 0)).map_err(|e| e.to_string())?;
        let tcp = sock.connect(target).await.map_err(|e| e.to_string())?;
        let (ws, _) =
            tokio_tungstenite::client_async(format!("ws://{target}/ws"), tcp).await.map_err(|e| e.to_string())?;
        Ok(ws)
    };
    tokio::time::timeout(limit, work).await.map_err(|_| "connect timeout".to_string())?
}

/// Sends one request and returns its reply frame.
async fn request(ws: &mut Ws, frame: Value, limit: Duration) -> Result<Value, String> {
    ws.send(Message::text(frame.to_string())).await.map_err(|e| e.to_string())?;
    let work = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                    if v["type"] != "event" {
                        return Ok(v);
                    }
                }
                Some(Ok(Message::Close(f))) => return Err(format!("closed {f:?}")),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed".into()),
            }
        }
    };
    tokio::time::timeout(limit, work).await.map_err(|_| "request timeout".to_string())?
}

/// One victim login on a fresh socket: (milliseconds, reply type or code).
async fn victim_login(a: &Args) -> Result<(f64, String), String> {
    let limit = Duration::from_secs(a.timeout);
    let mut ws = connect(a.target, VICTIM_IP, limit).await?;
    let name = format!("{}_victim", a.prefix);
    let started = Instant::now();
    let r =
        request(&mut ws, json!({"type": "auth.login", "id": 1, "username": name, "password": PASSWORD}), limit).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let outcome = if r["type"] == "ok" { "ok".to_owned() } else { r["code"].as_str().unwrap_or("?").to_owned() };
    Ok((ms, outcome))
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

/// One flooding socket: registers until `until`, reconnecting whenever the
/// server closes the socket (an unauthenticated socket is closed after the
/// auth deadline, an abusive one with 4003).
async fn flood_socket(a: Arc<Args>, i: usize, until: Instant, counts: Arc<Counts>) {
    let limit = Duration::from_secs(a.timeout);
    let from = Ipv4Addr::new(127, 0, 0, 2 + (i % a.flood_sources.max(1) as usize) as u8);
    let mut n = 0u64;
    while Instant::now() < until {
        let Ok(mut ws) = connect(a.target, from, limit).await else {
            counts.other.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while Instant::now() < until {
            n += 1;
            let name = format!("{}_{i}_{n}", a.prefix);
            let frame = json!({"type": "auth.register", "id": n, "username": name, "password": PASSWORD});
            match request(&mut ws, frame, limit).await {
                Ok(r) if r["type"] == "ok" => {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                    // The socket is now that user's; log out so the next register is fresh.
                    let _ = request(&mut ws, json!({"type": "auth.logout", "id": 0}), limit).await;
                }
                Ok(r) if r["code"] == "rate_limited" => {
                    counts.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(a.refused_pause_ms)).await;
                }
                _ => {
                    counts.other.fetch_add(1, Ordering::Relaxed);
                    break; // reconnect
                }
            }
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn summary(label: &str, samples: &mut [f64], outcomes: &[String]) {
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples.get(((samples.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    let ok = outcomes.iter().filter(|o| *o == "ok").count();
    println!(
        "{label}: logins {} (ok {ok}, refused {}), ms p50 {:.0} p90 {:.0} max {:.0}",
        samples.len(),
        samples.len() - ok,
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let a = Arc::new(Args::parse());
    if !a.target.ip().is_loopback() {
        return Err("loopback targets only".into());
    }
    let limit = Duration::from_secs(a.timeout);
    let mut ws = connect(a.target, VICTIM_IP, limit).await?;
    let name = format!("{}_victim", a.prefix);
    let r = request(&mut ws, json!({"type": "auth.register", "id": 1, "username": name, "password": PASSWORD}), limit)
        .await?;
    if r["type"] != "ok" {
        return Err(format!("victim registration failed: {r}"));
    }
    drop(ws);
    println!("load average before: {}", loadavg());
    let (mut base, mut base_out) = (Vec::new(), Vec::new());
    for _ in 0..a.baseline {
        let (ms, o) = victim_login(&a).await?;
        base.push(ms);
        base_out.push(o);
    }
    summary("idle", &mut base, &base_out);

    let until = Instant::now() + Duration::from_secs(a.seconds);
    let counts = Arc::new(Counts::default());
    let flood: Vec<_> =
        (0..a.flood_sockets).map(|i| tokio::spawn(flood_socket(a.clone(), i, until, counts.clone()))).collect();
    tokio::time::sleep(Duration::from_secs(a.warmup)).await;
    let (mut under, mut under_out) = (Vec::new(), Vec::new());
    while Instant::now() < until {
        let (ms, o) = victim_login(&a).await?;
        under.push(ms);
        under_out.push(o);
        tokio::time::sleep(Duration::from_millis(a.interval_ms)).await;
    }
    println!("load average during: {}", loadavg());
    summary("under flood", &mut under, &under_out);
    for t in flood {
        let _ = tokio::time::timeout(limit, t).await;
    }
    let c = |x: &AtomicU64| x.load(Ordering::Relaxed);
    println!(
        "flood: {} sockets from {} address(es), {} s: registered {}, refused (rate_limited) {}, reconnects (socket closed or failed) {}",
        a.flood_sockets,
        a.flood_sources,
        a.seconds,
        c(&counts.ok),
        c(&counts.refused),
        c(&counts.other)
    );
    Ok(())
}
