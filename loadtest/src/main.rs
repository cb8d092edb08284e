//! `hubbub-loadtest`: the load generator for hubbub.
//!
//! Scenarios: `connect` (many idle token-authenticated sockets: connect rate
//! and server memory per socket), `dm` (open-loop direct messages between
//! pairs: throughput and end-to-end latency), `ramp` (the highest DM rate
//! that keeps 100% delivery and a p99 bound) and `fanout` (one post to many
//! online followers: time to each follower's `post.new` and to the last)
//! and `group` (one message to a group of M online members, across two
//! nodes with `--target-b`: time to each member's `message.new` and to the last)
//! and `groups` (sustained messages into many small groups: messages/s and
//! member deliveries/s with every delivery accounted for) and `ephemeral`
//! (typing events between pairs, against hubbub or the bare relay
//! `hubbub-relay`: the highest delivery rate of each) and `instr` (a
//! fixed closed-loop workload for counting the server's instructions under
//! callgrind: loadtest/scripts/instructions.sh).
//!
//! Every run stops by itself: each phase has a duration and a drain
//! deadline, and every network wait has a timeout. Targets outside the
//! loopback range are refused unless `--allow-remote` is given.

mod client;
mod connect;
mod dm;
mod ephemeral;
mod fanout;
mod group;
mod groups;
mod instr;
mod ramp;
mod report;
mod setup;
mod stats;
mod sys;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::client::Target;
use crate::report::Report;

#[derive(Debug, Parser)]
#[command(name = "hubbub-loadtest", version, about = "Load generator for hubbub")]
struct Cli {
    /// The server to load (host:port).
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    target: SocketAddr,
    /// A second server (another node of the same cluster) for `dm` and
    /// `ramp`: senders connect to --target, receivers to --target-b.
    #[arg(long, global = true)]
    target_b: Option<SocketAddr>,
    /// Allow a target outside the loopback range.
    #[arg(long, global = true)]
    allow_remote: bool,
    /// Print results as JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Fetch the server's /metrics before and after, and print what changed.
    /// hubbub serves /metrics on its own address (`--metrics-listen`):
    /// `--metrics-at`, else the target's port + 1000 (as loadtest/scripts/server.sh sets it).
    #[arg(long, global = true)]
    metrics: bool,
    /// The /metrics address of --target (default: its port + 1000).
    #[arg(long, global = true)]
    metrics_at: Option<SocketAddr>,
    /// The /metrics address of --target-b (default: its port + 1000).
    #[arg(long, global = true)]
    metrics_at_b: Option<SocketAddr>,
    /// Prefix of the load-test usernames (`<prefix>_<n>`); use a fresh one
    /// per run against a long-lived server.
    #[arg(long, global = true, default_value = "lt")]
    user_prefix: String,
    /// Handshakes (and setup logins) in flight at once.
    #[arg(long, global = true, default_value_t = 256)]
    concurrency: usize,
    /// Source addresses 127.0.0.1..=127.0.0.N to spread sockets over
    /// (each gives about 28k ephemeral ports).
    #[arg(long, global = true, default_value_t = 16)]
    source_ips: u8,
    /// Timeout of each connect and each request, in seconds.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    /// Hard limit on the whole run, setup included, in seconds: past it the
    /// run stops with an error, whatever the server does.
    #[arg(long, global = true, default_value_t = 1800)]
    max_seconds: u64,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Open N token-authenticated sockets and hold them idle.
    Connect {
        /// Sockets to open.
        #[arg(long, default_value_t = 1000)]
        sockets: usize,
        /// Seconds to hold them once open.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Sockets per user (at most the server's --max-sockets-per-user).
        #[arg(long, default_value_t = 1)]
        sockets_per_user: usize,
        /// The server's process id, to read its RSS before and after.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Longest the connect phase may take, in seconds.
        #[arg(long, default_value_t = 300)]
        connect_deadline: u64,
        /// Before the hold, the first user publishes this many 280-character
        /// posts, and every socket reads one `timeline.user` page of them
        /// (up to 100) once it is open: the memory a socket keeps after one
        /// large reply (0: sockets stay idle from their first `ping`).
        #[arg(long, default_value_t = 0)]
        read_timeline: usize,
    },
    /// P sender/receiver pairs, each sender at R messages/s (open loop).
    Dm {
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Messages per second per sender.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Seconds to wait for outstanding replies and deliveries after sending.
        #[arg(long, default_value_t = 10)]
        drain: u64,
        /// `typing.start` requests per second per sender, beside the
        /// messages, on the same socket and conversation (0: none).
        #[arg(long, default_value_t = 0.0)]
        typing_per_sec: f64,
        /// Offline recipients with push: each receiver registers a Web Push
        /// device with this endpoint (the server needs --push-allow-http
        /// for an http:// sink) and closes its socket before sending
        /// starts, so every message queues a notification. Only acks are
        /// measured then (nothing is delivered to a socket).
        #[arg(long)]
        offline_push: Option<String>,
    },
    /// Raise the total DM rate step by step until delivery drops below 100%
    /// or p99 exceeds the bound; report the highest passing rate.
    Ramp {
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 200)]
        pairs: usize,
        /// First total rate, messages/s.
        #[arg(long, default_value_t = 2000.0)]
        start: f64,
        /// Added to the total rate at each step, messages/s.
        #[arg(long, default_value_t = 2000.0)]
        step: f64,
        /// Highest total rate tried, messages/s.
        #[arg(long, default_value_t = 40000.0)]
        max: f64,
        /// Seconds per step.
        #[arg(long, default_value_t = 10.0)]
        step_seconds: f64,
        /// p99 end-to-end latency bound, milliseconds.
        #[arg(long, default_value_t = 50.0)]
        p99_ms: f64,
        /// Seconds to drain each step.
        #[arg(long, default_value_t = 5)]
        drain: u64,
    },
    /// One author with F online followers posts; time to each follower's
    /// `post.new` and to the last one's.
    Fanout {
        /// Online followers.
        #[arg(long, default_value_t = 1000)]
        followers: usize,
        /// Posts to make, one at a time.
        #[arg(long, default_value_t = 5)]
        posts: usize,
        /// Seconds between posts.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Seconds to wait for deliveries after the last post.
        #[arg(long, default_value_t = 10)]
        drain: u64,
    },
    /// One group of M online members (split over --target and --target-b);
    /// one member sends; time to each member's `message.new` and the last's.
    Group {
        /// Members, the sender included (at most the server's --max-group-members).
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// Messages to send, one at a time.
        #[arg(long, default_value_t = 5)]
        messages: usize,
        /// Seconds between messages.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Seconds to wait for deliveries after the last message.
        #[arg(long, default_value_t = 10)]
        drain: u64,
        /// Measure `message.react` on one message (`message.reactions`
        /// to every member) instead of `message.send`; --messages <= 20.
        #[arg(long)]
        react: bool,
    },
    /// G groups of M online members; each group's author sends (open loop,
    /// the total rate spread over the groups); time to every member's
    /// `message.new`, with 100% of the deliveries due expected.
    Groups {
        /// Groups (each with its own author and members).
        #[arg(long, default_value_t = 100)]
        groups: usize,
        /// Members per group, the author included.
        #[arg(long, default_value_t = 50)]
        members: usize,
        /// Total messages per second over all groups.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Seconds to wait for outstanding replies and deliveries after sending.
        #[arg(long, default_value_t = 10)]
        drain: u64,
    },
    /// P sender/receiver pairs exchanging typing events (`typing.start` and
    /// `typing.stop` in turn), against hubbub or, with --relay, against
    /// `hubbub-relay`: at a fixed rate per sender, or (--ramp) the highest
    /// total rate with 100% delivered and p99 within a bound.
    Ephemeral {
        /// Load `hubbub-relay` (--target is its address) instead of hubbub.
        #[arg(long)]
        relay: bool,
        /// Sender/receiver pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Events per second per sender (fixed-rate run).
        #[arg(long, default_value_t = 10.0, conflicts_with = "ramp")]
        rate: f64,
        /// Seconds of sending (fixed-rate run).
        #[arg(long, default_value_t = 10.0, conflicts_with = "ramp")]
        seconds: f64,
        /// Ramp the total rate instead (--start, --step, --max, --step-seconds, --p99-ms).
        #[arg(long)]
        ramp: bool,
        /// First total rate of the ramp, events/s.
        #[arg(long, default_value_t = 5000.0, requires = "ramp")]
        start: f64,
        /// Added to the total rate at each step, events/s.
        #[arg(long, default_value_t = 5000.0, requires = "ramp")]
        step: f64,
        /// Highest total rate tried, events/s.
        #[arg(long, default_value_t = 1_000_000.0, requires = "ramp")]
        max: f64,
        /// Seconds per ramp step.
        #[arg(long, default_value_t = 5.0, requires = "ramp")]
        step_seconds: f64,
        /// p99 end-to-end latency bound of a ramp step, milliseconds.
        #[arg(long, default_value_t = 50.0, requires = "ramp")]
        p99_ms: f64,
        /// Seconds to wait for outstanding replies and deliveries after
        /// sending (after each step of a ramp).
        #[arg(long, default_value_t = 5)]
        drain: u64,
    },
    /// A fixed closed-loop workload (DMs, typing, one post to F followers)
    /// for counting the server's instructions under callgrind; see
    /// loadtest/scripts/instructions.sh.
    Instr {
        /// DM pairs.
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// DMs sent, one at a time, round-robin over the pairs.
        #[arg(long, default_value_t = 10_000)]
        messages: usize,
        /// Typing requests (start/stop in turn), one at a time.
        #[arg(long, default_value_t = 2_000)]
        typing: usize,
        /// Online followers of the one post (0: no fanout phase).
        #[arg(long, default_value_t = 1_000)]
        followers: usize,
        /// The server's pid, to bracket each phase with callgrind_control.
        #[arg(long)]
        callgrind_pid: Option<u32>,
    },
}

/// Refuses non-loopback targets unless explicitly allowed.
fn check_target(target: SocketAddr, allow_remote: bool) -> Result<(), String> {
    if target.ip().is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(format!("{target} is not a loopback address; pass --allow-remote to load it anyway"))
    }
}

/// Checks the numbers make sense before anything connects.
fn validate(cli: &Cli) -> Result<(), String> {
    check_target(cli.target, cli.allow_remote)?;
    if let Some(b) = cli.target_b {
        check_target(b, cli.allow_remote)?;
        if !matches!(
            cli.scenario,
            Scenario::Dm { .. }
                | Scenario::Ramp { .. }
                | Scenario::Group { .. }
                | Scenario::Groups { .. }
                | Scenario::Ephemeral { relay: false, .. }
        ) {
            return Err("--target-b applies to dm, ramp, group, groups and ephemeral (not --relay) only".into());
        }
    }
    let prefix_ok = !cli.user_prefix.is_empty()
        && cli.user_prefix.len() <= 20
        && cli.user_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !prefix_ok {
        return Err("--user-prefix must be 1-20 characters of A-Za-z0-9_".into());
    }
    if cli.concurrency == 0 || cli.source_ips == 0 || cli.timeout == 0 || cli.max_seconds == 0 {
        return Err("--concurrency, --source-ips, --timeout and --max-seconds must be at least 1".into());
    }
    match &cli.scenario {
        Scenario::Connect { sockets, seconds, sockets_per_user, .. } => {
            if *sockets == 0 || *sockets > 1_000_000 {
                return Err("--sockets must be 1-1000000".into());
            }
            if *sockets_per_user == 0 || *sockets_per_user > 1000 {
                return Err("--sockets-per-user must be 1-1000".into());
            }
            if *seconds > 3600 {
                return Err("--seconds must be at most 3600".into());
            }
        }
        Scenario::Dm { pairs, rate, seconds, typing_per_sec, .. } => {
            positive_pairs(*pairs)?;
            if !(typing_per_sec.is_finite() && *typing_per_sec >= 0.0 && *typing_per_sec <= 1000.0) {
                return Err("--typing-per-sec must be in [0, 1000]".into());
            }
            rate_and_seconds(*rate, *seconds)?;
        }
        Scenario::Ramp { pairs, start, step, max, step_seconds, p99_ms, .. } => {
            positive_pairs(*pairs)?;
            ramp_bounds(*start, *step, *max, *step_seconds, *p99_ms)?;
        }
        Scenario::Ephemeral { pairs, rate, seconds, ramp, start, step, max, step_seconds, p99_ms, .. } => {
            positive_pairs(*pairs)?;
            if *ramp {
                ramp_bounds(*start, *step, *max, *step_seconds, *p99_ms)?;
            } else {
                rate_and_seconds(*rate, *seconds)?;
            }
        }
        Scenario::Fanout { followers, posts, interval, .. } => {
            if *followers == 0 || *followers > 1_000_000 {
                return Err("--followers must be 1-1000000".into());
            }
            if *posts == 0 || *posts > 1000 {
                return Err("--posts must be 1-1000".into());
            }
            if !(interval.is_finite() && *interval > 0.0 && *interval <= 600.0) {
                return Err("--interval must be in (0, 600] seconds".into());
            }
        }
        Scenario::Group { members, messages, interval, react, .. } => {
            if *members < 2 || *members > 100_000 {
                return Err("--members must be 2-100000".into());
            }
            if *react && *messages > 20 {
                return Err("--react measures at most 20 reactions (--messages)".into());
            }
            if *messages == 0 || *messages > 1000 {
                return Err("--messages must be 1-1000".into());
            }
            if !(interval.is_finite() && *interval > 0.0 && *interval <= 600.0) {
                return Err("--interval must be in (0, 600] seconds".into());
            }
        }
        Scenario::Instr { pairs, messages, typing, followers, .. } => {
            positive_pairs(*pairs)?;
            if *messages > 1_000_000 || *typing > 1_000_000 || *followers > 100_000 {
                return Err("--messages and --typing must be at most 1000000, --followers 100000".into());
            }
        }
        Scenario::Groups { groups, members, rate, seconds, .. } => {
            if *groups == 0 || *groups > 100_000 {
                return Err("--groups must be 1-100000".into());
            }
            if *members < 2 || *members > 100_000 || groups.saturating_mul(*members) > 1_000_000 {
                return Err("--members must be 2-100000, and groups x members at most 1000000".into());
            }
            if !(rate.is_finite() && *rate > 0.0 && *rate <= 1_000_000.0) {
                return Err("--rate must be in (0, 1000000] messages/s in all".into());
            }
            if !(seconds.is_finite() && *seconds > 0.0 && *seconds <= 3600.0) {
                return Err("--seconds must be in (0, 3600]".into());
            }
        }
    }
    Ok(())
}

fn positive_pairs(pairs: usize) -> Result<(), String> {
    if pairs == 0 || pairs > 100_000 { Err("--pairs must be 1-100000".into()) } else { Ok(()) }
}

/// A per-sender rate and a duration of sending.
fn rate_and_seconds(rate: f64, seconds: f64) -> Result<(), String> {
    if !(rate.is_finite() && rate > 0.0 && rate <= 100_000.0) {
        return Err("--rate must be in (0, 100000] per sender per second".into());
    }
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 3600.0) {
        return Err("--seconds must be in (0, 3600]".into());
    }
    Ok(())
}

/// A ramp's rates, step length and p99 bound.
fn ramp_bounds(start: f64, step: f64, max: f64, step_seconds: f64, p99_ms: f64) -> Result<(), String> {
    if [start, step, max, step_seconds, p99_ms].iter().any(|x| !x.is_finite() || *x <= 0.0) {
        return Err("--start, --step, --max, --step-seconds and --p99-ms must be positive".into());
    }
    if start > max {
        return Err("--start must not exceed --max".into());
    }
    if (max - start) / step > ramp::MAX_STEPS as f64 {
        return Err(format!("more than {} ramp steps: raise --step", ramp::MAX_STEPS));
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<Report, String> {
    let fd_limit = sys::raise_fd_limit(1 << 20);
    let target = Arc::new(Target::new(cli.target, cli.source_ips, Duration::from_secs(cli.timeout)));
    let target_b = cli.target_b.map(|b| Arc::new(Target::new(b, cli.source_ips, Duration::from_secs(cli.timeout))));
    let metrics_a = cli.metrics_at.unwrap_or_else(|| sys::metrics_addr_of(cli.target));
    let metrics_b = cli.target_b.map(|b| cli.metrics_at_b.unwrap_or_else(|| sys::metrics_addr_of(b)));
    let before = if cli.metrics { Some(sys::fetch_metrics(metrics_a).await?) } else { None };
    let before_b = match metrics_b {
        Some(b) if cli.metrics => Some(sys::fetch_metrics(b).await?),
        _ => None,
    };
    let prefix = cli.user_prefix.as_str();
    let mut report = match cli.scenario {
        Scenario::Connect { sockets, seconds, sockets_per_user, server_pid, connect_deadline, read_timeline } => {
            if (sockets as u64) + 64 > fd_limit {
                return Err(format!("{sockets} sockets need more file descriptors than the limit of {fd_limit}"));
            }
            let args = connect::ConnectArgs {
                sockets,
                seconds,
                sockets_per_user,
                concurrency: cli.concurrency,
                server_pid,
                connect_deadline: Duration::from_secs(connect_deadline),
                read_timeline,
            };
            Report::Connect(connect::run(target, prefix, &args).await)
        }
        Scenario::Dm { pairs, rate, seconds, drain, typing_per_sec, offline_push } => {
            let (mut ready, setup_failures) =
                dm::setup(&target, target_b.as_ref(), prefix, pairs, cli.concurrency).await;
            if ready.is_empty() {
                return Err(format!("no pair could be set up: {:?}", setup_failures.0));
            }
            if let Some(endpoint) = offline_push {
                dm::go_offline_with_push(&mut ready, &endpoint, target.timeout).await?;
            }
            let (_, phase) = dm::phase(ready, 1, rate, typing_per_sec, seconds, Duration::from_secs(drain)).await;
            Report::Dm { setup_failures, phase }
        }
        Scenario::Ramp { pairs, start, step, max, step_seconds, p99_ms, drain } => {
            let (ready, setup_failures) = dm::setup(&target, target_b.as_ref(), prefix, pairs, cli.concurrency).await;
            let out = ramp::run(ready, ramp::rates(start, step, max), p99_ms, "msgs/s", |pairs, number, per_pair| {
                dm::phase(pairs, number, per_pair, 0.0, step_seconds, Duration::from_secs(drain))
            })
            .await;
            let (highest_passing_rate, steps) = (out.highest_passing_rate, out.steps);
            Report::Ramp { setup_failures, p99_bound_ms: p99_ms, highest_passing_rate, steps }
        }
        Scenario::Fanout { followers, posts, interval, drain } => {
            if (followers as u64) + 64 > fd_limit {
                return Err(format!("{followers} followers need more file descriptors than the limit of {fd_limit}"));
            }
            let args = fanout::FanoutArgs {
                followers,
                posts,
                interval: Duration::from_secs_f64(interval),
                drain: Duration::from_secs(drain),
                concurrency: cli.concurrency,
            };
            match fanout::run(target, prefix, &args).await {
                Ok(r) => Report::Fanout(r),
                Err(fanout::Refused::NoPosts) => return Err(fanout::NO_POSTS.into()),
                Err(fanout::Refused::Failed(why)) => return Err(why),
            }
        }
        Scenario::Group { members, messages, interval, drain, react } => {
            if (members as u64) + 64 > fd_limit {
                return Err(format!("{members} members need more file descriptors than the limit of {fd_limit}"));
            }
            let args = fanout::FanoutArgs {
                followers: members,
                posts: messages,
                interval: Duration::from_secs_f64(interval),
                drain: Duration::from_secs(drain),
                concurrency: cli.concurrency,
            };
            match group::run(target, target_b, prefix, &args, react).await {
                Ok(r) => Report::Fanout(r),
                Err(fanout::Refused::NoPosts) => return Err("groups are not available on this server".into()),
                Err(fanout::Refused::Failed(why)) => return Err(why),
            }
        }
        Scenario::Groups { groups, members, rate, seconds, drain } => {
            if (groups * members) as u64 + 64 > fd_limit {
                return Err(format!(
                    "{} members need more file descriptors than the limit of {fd_limit}",
                    groups * members
                ));
            }
            let (ready, setup_failures) =
                groups::setup(&target, target_b.as_ref(), prefix, groups, members, cli.concurrency).await;
            if ready.is_empty() {
                return Err(format!("no group could be set up: {:?}", setup_failures.0));
            }
            eprintln!("groups: {} of {groups} groups ready; sending", ready.len());
            let per_group = rate / ready.len() as f64;
            let (_, phase) = dm::phase(ready, 1, per_group, 0.0, seconds, Duration::from_secs(drain)).await;
            Report::Groups { groups, members, setup_failures, phase }
        }
        Scenario::Ephemeral { relay, pairs, rate, seconds, ramp, start, step, max, step_seconds, p99_ms, drain } => {
            if (4 * pairs) as u64 + 64 > fd_limit {
                return Err(format!("{pairs} pairs need more file descriptors than the limit of {fd_limit}"));
            }
            let mode = if ramp {
                ephemeral::Mode::Ramp { start, step, max, step_seconds, p99_ms }
            } else {
                ephemeral::Mode::Fixed { rate, seconds }
            };
            let drain = Duration::from_secs(drain);
            let args = ephemeral::EphemeralArgs { relay, pairs, mode, drain, concurrency: cli.concurrency };
            ephemeral::run(&target, target_b.as_ref(), prefix, &args).await?
        }
        Scenario::Instr { pairs, messages, typing, followers, callgrind_pid } => {
            let args =
                instr::InstrArgs { pairs, messages, typing, followers, callgrind_pid, concurrency: cli.concurrency };
            Report::Instr(instr::run(target, prefix, &args).await?)
        }
    };
    if let Some(before) = before {
        let after = sys::fetch_metrics(metrics_a).await?;
        let mut delta = sys::metrics_delta(&before, &after);
        if let (Some(b), Some(before_b)) = (metrics_b, before_b) {
            let after_b = sys::fetch_metrics(b).await?;
            delta.extend(sys::metrics_delta(&before_b, &after_b).into_iter().map(|(k, v)| (format!("node_b:{k}"), v)));
        }
        report.set_server_metrics(delta);
    }
    Ok(report)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = validate(&cli) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let json = cli.json;
    let limit = Duration::from_secs(cli.max_seconds);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        tokio::time::timeout(limit, run(cli))
            .await
            .unwrap_or_else(|_| Err(format!("the run exceeded --max-seconds {}", limit.as_secs())))
    });
    // Sockets still owned by aborted tasks are dropped here, without waiting.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let mut all = vec!["hubbub-loadtest"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn only_loopback_without_allow_remote() {
        assert!(check_target("127.0.0.1:8080".parse().unwrap(), false).is_ok());
        assert!(check_target("[::1]:8080".parse().unwrap(), false).is_ok());
        assert!(check_target("10.0.0.1:8080".parse().unwrap(), false).is_err());
        assert!(check_target("10.0.0.1:8080".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn flags_parse_with_defaults() {
        let cli = parse(&["dm", "--pairs", "5"]);
        assert!(matches!(cli.scenario, Scenario::Dm { pairs: 5, seconds: 30.0, .. }));
        assert!(validate(&cli).is_ok());
        assert!(validate(&parse(&["connect"])).is_ok());
        assert!(validate(&parse(&["ramp"])).is_ok());
        assert!(validate(&parse(&["fanout", "--followers", "10"])).is_ok());
        assert!(validate(&parse(&["--target-b", "127.0.0.1:9301", "dm"])).is_ok());
        assert!(validate(&parse(&["--target-b", "127.0.0.1:9301", "ramp"])).is_ok());
        let f = parse(&["fanout", "--followers", "10000", "--posts", "3", "--interval", "1.5"]);
        assert!(matches!(f.scenario, Scenario::Fanout { followers: 10000, posts: 3, drain: 10, .. }));
    }

    #[test]
    fn nonsense_is_refused_before_connecting() {
        assert!(validate(&parse(&["dm", "--pairs", "0"])).is_err());
        assert!(validate(&parse(&["dm", "--rate", "0"])).is_err());
        assert!(validate(&parse(&["dm", "--rate", "NaN"])).is_err());
        assert!(validate(&parse(&["dm", "--seconds=-1"])).is_err());
        assert!(validate(&parse(&["connect", "--sockets", "0"])).is_err());
        assert!(validate(&parse(&["connect", "--sockets-per-user", "0"])).is_err());
        assert!(validate(&parse(&["ramp", "--start", "10", "--max", "5"])).is_err());
        assert!(validate(&parse(&["ramp", "--step", "1", "--max", "100000"])).is_err());
        assert!(validate(&parse(&["--user-prefix", "bad-name", "connect"])).is_err());
        assert!(validate(&parse(&["--target", "192.168.1.1:80", "connect"])).is_err());
        assert!(validate(&parse(&["--concurrency", "0", "connect"])).is_err());
        assert!(validate(&parse(&["--max-seconds", "0", "connect"])).is_err());
        assert!(validate(&parse(&["--target-b", "10.0.0.1:80", "dm"])).is_err());
        assert!(validate(&parse(&["--target-b", "127.0.0.1:80", "fanout"])).is_err());
        assert!(validate(&parse(&["fanout", "--posts", "0"])).is_err());
        assert!(validate(&parse(&["fanout", "--interval", "0"])).is_err());
        assert!(validate(&parse(&["groups", "--members", "1"])).is_err());
        assert!(validate(&parse(&["groups", "--groups", "0"])).is_err());
        assert!(validate(&parse(&["groups", "--groups", "100000", "--members", "100"])).is_err());
        assert!(validate(&parse(&["--target-b", "127.0.0.1:9301", "groups"])).is_ok());
    }

    #[test]
    fn ephemeral_runs_at_a_fixed_rate_or_ramps() {
        let fixed = parse(&["ephemeral", "--relay", "--pairs", "10", "--rate", "100", "--seconds", "5"]);
        assert!(matches!(fixed.scenario, Scenario::Ephemeral { relay: true, pairs: 10, ramp: false, .. }));
        assert!(validate(&fixed).is_ok());
        let ramp = parse(&["ephemeral", "--ramp", "--start", "1000", "--step", "1000", "--max", "5000"]);
        assert!(matches!(ramp.scenario, Scenario::Ephemeral { ramp: true, drain: 5, .. }));
        assert!(validate(&ramp).is_ok());
        let mut all = vec!["hubbub-loadtest"];
        all.extend_from_slice(&["ephemeral", "--ramp", "--rate", "5"]);
        assert!(Cli::try_parse_from(&all).is_err(), "--rate is for a fixed-rate run");
        assert!(Cli::try_parse_from(["hubbub-loadtest", "ephemeral", "--start", "5"]).is_err(), "--start needs --ramp");
        assert!(validate(&parse(&["ephemeral", "--ramp", "--start", "10", "--max", "5"])).is_err());
        assert!(validate(&parse(&["ephemeral", "--rate", "0"])).is_err());
        assert!(validate(&parse(&["--target-b", "127.0.0.1:9301", "ephemeral"])).is_ok());
        assert!(validate(&parse(&["--target-b", "127.0.0.1:9301", "ephemeral", "--relay"])).is_err());
    }
}
