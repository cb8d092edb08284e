//! `fanout`: one author with F online followers posts; how long until each
//! follower, and the last one, has the `post.new` event.
//!
//! Setup: users `1..=F` follow user 0 (the author), each on its own open
//! socket, and stay connected. The author's socket is opened only after the
//! follows: every new follow pushes `follow.new` to the author's sockets, and
//! an author socket nobody reads would overflow its outbound queue (256
//! frames) and be closed with 4001 long before 10k follows.
//!
//! Then the author posts `posts` times, `interval` apart; each post's text
//! names its number. Latency is measured from the moment `post.create` was
//! written to the moment a follower's socket yields the `post.new` event.
//! The scenario probes first and refuses clearly when the server answers
//! `unknown_type` (no posts).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt, stream};
use hubbub::protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Fail, Target, Ws};
use crate::setup;
use crate::stats::{Failures, Latency, LatencySummary};

/// What one measured write is and how a reader recognizes its event: the
/// post of `fanout`, or the group message of `group`.
pub struct Shape {
    /// The request kind the author sends (`post.create`, `message.send`).
    pub kind: &'static str,
    /// The request's fields for write number `k`.
    pub fields: Box<dyn Fn(usize) -> serde_json::Value + Send + Sync>,
    /// The write number of an event frame of this run, or `None`.
    pub parse: fn(&str) -> Option<usize>,
}

impl Shape {
    /// `post.create` and `post.new`.
    pub fn posts() -> Shape {
        Shape { kind: "post.create", fields: Box::new(|k| json!({"text": post_text(k)})), parse: post_new_number }
    }
}

/// The refusal printed when the server has no posts.
pub const NO_POSTS: &str = "posts are not available on this server";

/// Why the scenario did not measure.
#[derive(Debug)]
pub enum Refused {
    /// The server answered `post.create` with `unknown_type`.
    NoPosts,
    /// Something else went wrong before measuring.
    Failed(String),
}

/// What to run.
pub struct FanoutArgs {
    /// Online followers.
    pub followers: usize,
    /// Posts to make.
    pub posts: usize,
    /// Time between posts.
    pub interval: Duration,
    /// How long to wait after the last post for the last deliveries.
    pub drain: Duration,
    /// Handshakes and follow requests in flight.
    pub concurrency: usize,
}

/// What a fanout run measured.
#[derive(Debug, Default, Serialize)]
pub struct FanoutReport {
    /// Followers requested.
    pub followers_requested: usize,
    /// Followers whose socket opened and whose follow succeeded.
    pub followers_online: usize,
    /// Seconds spent on users, sockets and follows.
    pub setup_seconds: f64,
    /// Failures during setup, by reason.
    pub setup_failures: Failures,
    /// Posts made (`post.create` answered `ok`).
    pub posts: usize,
    /// `post.new` events expected: posts × online followers.
    pub expected: u64,
    /// `post.new` events of those posts received by the followers.
    pub delivered: u64,
    /// `post.create` written to its `ok` reply.
    pub ack: LatencySummary,
    /// `post.create` written to the `post.new` at each follower (all posts).
    pub delivery: LatencySummary,
    /// Per post: `post.create` written to the `post.new` at the *last*
    /// follower, in milliseconds (`None` when some follower never got it).
    pub last_follower_ms: Vec<Option<f64>>,
    /// Median and largest of `last_follower_ms` over the complete posts.
    pub last_follower_p50_ms: f64,
    /// Largest of `last_follower_ms`.
    pub last_follower_max_ms: f64,
    /// Errors during the measured part (replies, lost sockets), by reason.
    pub errors: Failures,
}

/// Probes for posts, sets up `followers` online followers of the author,
/// then measures `posts` posts.
pub async fn run(target: Arc<Target>, prefix: &str, args: &FanoutArgs) -> Result<FanoutReport, Refused> {
    let setup_start = Instant::now();
    let (tokens, mut setup_failures) = setup::tokens(&target, prefix, args.followers + 1, args.concurrency).await;
    let Some(author_token) = tokens[0].clone() else {
        return Err(Refused::Failed(format!("the author could not sign in: {:?}", setup_failures.0)));
    };
    // Probe with a short-lived socket, before anyone follows (no one gets it).
    {
        let mut ws = setup::open_confirmed(&target, &author_token).await.map_err(|Fail(r)| Refused::Failed(r))?;
        let probe = json!({"text": "loadtest probe"});
        match client::request(&mut ws, 10, "post.create", probe, target.timeout).await {
            Ok(Err(e)) if e.code == ErrorCode::UnknownType => return Err(Refused::NoPosts),
            Ok(Err(e)) => return Err(Refused::Failed(format!("post.create: {}", e.code.as_str()))),
            Err(Fail(r)) => return Err(Refused::Failed(r)),
            Ok(Ok(_)) => {}
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    }
    let author = client::username(prefix, 0);
    let (socks, f) = setup::sockets(&target, &tokens[1..], args.concurrency).await;
    setup_failures.merge(&f);
    let (followers, f) = follow_all(&target, socks, &author, args.concurrency).await;
    setup_failures.merge(&f);
    if followers.is_empty() {
        return Err(Refused::Failed(format!("no follower could be set up: {:?}", setup_failures.0)));
    }
    // Opened after the follows: it has no `follow.new` backlog.
    let author_ws = setup::open_confirmed(&target, &author_token).await.map_err(|Fail(r)| Refused::Failed(r))?;
    let setup_seconds = setup_start.elapsed().as_secs_f64();
    eprintln!("fanout: {} followers online after {setup_seconds:.1} s; posting", followers.len());
    let mut report = measure(&target, author_ws, followers, args, &Shape::posts()).await;
    report.followers_requested = args.followers;
    report.setup_seconds = setup_seconds;
    report.setup_failures = setup_failures;
    Ok(report)
}

/// Each open socket follows `author`, `concurrency` requests at a time.
/// Returns the sockets whose follow succeeded.
pub(crate) async fn follow_all(
    target: &Target,
    socks: Vec<Option<Ws>>,
    author: &str,
    concurrency: usize,
) -> (Vec<Ws>, Failures) {
    let bar = setup::progress(socks.len() as u64, "follow");
    let limit = target.timeout;
    let results: Vec<Result<Ws, String>> = stream::iter(socks.into_iter().flatten())
        .map(|mut ws| {
            let bar = bar.clone();
            async move {
                let r = client::request(&mut ws, 2, "follow.add", json!({"username": author}), limit).await;
                bar.inc(1);
                match r {
                    Ok(Ok(_)) => Ok(ws),
                    Ok(Err(e)) => Err(format!("follow.add: {}", e.code.as_str())),
                    Err(Fail(r)) => Err(r),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    let mut failures = Failures::default();
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(ws) => out.push(ws),
            Err(reason) => failures.add(reason),
        }
    }
    (out, failures)
}

/// The text of post `k` of a run.
pub fn post_text(k: usize) -> String {
    format!("lt-fanout {k}")
}

/// The post number in a post's text, if it is one of ours.
pub fn parse_post_text(text: &str) -> Option<usize> {
    text.strip_prefix("lt-fanout ")?.parse().ok()
}

/// The fields of a `post.new` event a follower needs.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<EventData<'a>>,
}

#[derive(Deserialize)]
struct EventData<'a> {
    #[serde(borrow)]
    item: Option<EventItem<'a>>,
}

#[derive(Deserialize)]
struct EventItem<'a> {
    #[serde(borrow)]
    post: Option<EventPost<'a>>,
}

#[derive(Deserialize)]
struct EventPost<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The post number of a `post.new` frame of this scenario, or `None`.
fn post_new_number(frame: &str) -> Option<usize> {
    let v: EventHead = serde_json::from_str(frame).ok()?;
    if v.event.as_deref() != Some("post.new") {
        return None;
    }
    parse_post_text(&v.data?.item?.post?.text)
}

struct FollowerOut {
    /// (post number, arrival).
    got: Vec<(usize, Instant)>,
    errors: Failures,
    /// The socket, still open: closing it as soon as this follower has every
    /// post would load the server with 10k closes while it still delivers
    /// the last post to the others (it did: the last post took 3x longer).
    /// Sockets are dropped together once every follower is done.
    _ws: Option<Ws>,
}

/// Reads a follower's socket until it has every post or the deadline passes.
async fn follower(mut ws: Ws, posts: usize, deadline: Instant, parse: fn(&str) -> Option<usize>) -> FollowerOut {
    let mut out = FollowerOut { got: Vec::with_capacity(posts), errors: Failures::default(), _ws: None };
    let mut seen = vec![false; posts];
    while out.got.len() < posts {
        let frame = match timeout_at(deadline, ws.next()).await {
            Err(_) => break,
            Ok(f) => f,
        };
        let now = Instant::now();
        match frame {
            Some(Ok(Message::Text(t))) => {
                if let Some(k) = parse(&t) {
                    match seen.get_mut(k) {
                        Some(s) if !*s => {
                            *s = true;
                            out.got.push((k, now));
                        }
                        Some(_) => out.errors.add("post.new twice"),
                        None => out.errors.add("post.new of an unknown post"),
                    }
                }
            }
            Some(Ok(Message::Close(f))) => {
                out.errors.add(format!("follower closed {}", f.map_or(1005, |f| u16::from(f.code))));
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => {
                out.errors.add("follower socket lost");
                break;
            }
        }
    }
    out._ws = Some(ws);
    out
}

/// What the author's side saw.
struct AuthorOut {
    /// When each post's `post.create` was written (`None`: not posted).
    sent: Vec<Option<Instant>>,
    ack: Latency,
    errors: Failures,
}

async fn author(
    target: &Target,
    mut ws: Ws,
    args_posts: usize,
    interval: Duration,
    start: Instant,
    shape: &Shape,
) -> AuthorOut {
    let mut out = AuthorOut { sent: vec![None; args_posts], ack: Latency::new(), errors: Failures::default() };
    for k in 0..args_posts {
        sleep_until(start + interval * k as u32).await;
        let id = 100 + k as u64;
        let mut req = (shape.fields)(k);
        req["type"] = json!(shape.kind);
        req["id"] = json!(id);
        let req = req.to_string();
        let t0 = Instant::now();
        if ws.send(Message::text(req)).await.is_err() {
            out.errors.add("author socket lost");
            break;
        }
        // Wait for this post's reply, skipping anything else.
        let reply = tokio::time::timeout(target.timeout, async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        if let Some(r) = client::parse_reply(&t, id) {
                            return Ok(r);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(()),
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        match reply {
            Ok(Ok(Ok(_))) => {
                out.ack.record(t0.elapsed());
                out.sent[k] = Some(t0);
            }
            Ok(Ok(Err(e))) => out.errors.add(format!("{}: {}", shape.kind, e.code.as_str())),
            Ok(Err(())) => {
                out.errors.add("author socket lost");
                break;
            }
            Err(_) => out.errors.add(format!("timeout: {}", shape.kind)),
        }
    }
    out
}

/// The figures of a run, from the send times and every follower's arrivals.
/// `followers` is how many followers took part.
fn summarize(sent: &[Option<Instant>], arrivals: &[Vec<(usize, Instant)>], followers: usize) -> FanoutReport {
    let posted = sent.iter().filter(|s| s.is_some()).count();
    let mut delivery = Latency::new();
    let mut count = vec![0usize; sent.len()];
    let mut last = vec![None::<Duration>; sent.len()];
    let mut delivered = 0;
    for got in arrivals {
        for &(k, at) in got {
            let Some(Some(t0)) = sent.get(k) else { continue };
            let d = at.saturating_duration_since(*t0);
            delivery.record(d);
            delivered += 1;
            count[k] += 1;
            last[k] = Some(last[k].map_or(d, |l: Duration| l.max(d)));
        }
    }
    let last_follower_ms: Vec<Option<f64>> = (0..sent.len())
        .filter(|&k| sent[k].is_some())
        .map(|k| (count[k] == followers).then(|| last[k].unwrap_or_default().as_secs_f64() * 1000.0))
        .collect();
    let mut complete: Vec<f64> = last_follower_ms.iter().flatten().copied().collect();
    complete.sort_by(f64::total_cmp);
    FanoutReport {
        followers_online: followers,
        posts: posted,
        expected: (posted * followers) as u64,
        delivered,
        delivery: delivery.summary(),
        last_follower_p50_ms: median(&complete),
        last_follower_max_ms: complete.last().copied().unwrap_or(0.0),
        last_follower_ms,
        ..Default::default()
    }
}

/// The median of sorted values (the lower middle for an even count); 0 if empty.
fn median(sorted: &[f64]) -> f64 {
    if sorted.is_empty() { 0.0 } else { sorted[(sorted.len() - 1) / 2] }
}

/// Runs the author's writes against the readers' sockets and summarizes.
pub async fn measure(
    target: &Target,
    author_ws: Ws,
    followers: Vec<Ws>,
    args: &FanoutArgs,
    shape: &Shape,
) -> FanoutReport {
    let n = followers.len();
    let start = Instant::now() + Duration::from_millis(500);
    let deadline = start + args.interval * args.posts as u32 + args.drain;
    let mut set = JoinSet::new();
    for ws in followers {
        let (posts, parse) = (args.posts, shape.parse);
        set.spawn(async move { follower(ws, posts, deadline, parse).await });
    }
    let a = author(target, author_ws, args.posts, args.interval, start, shape).await;
    let outs =
        setup::drain(&mut set, deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2)).await;
    let mut errors = a.errors;
    let mut arrivals = Vec::with_capacity(outs.len());
    for o in &outs {
        errors.merge(&o.errors);
        arrivals.push(o.got.clone());
    }
    drop(outs); // every follower socket, only now
    let mut r = summarize(&a.sent, &arrivals, n);
    r.ack = a.ack.summary();
    r.errors = errors;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_texts_round_trip_and_others_are_ignored() {
        assert_eq!(parse_post_text(&post_text(7)), Some(7));
        assert_eq!(parse_post_text("loadtest probe"), None);
        assert_eq!(parse_post_text("lt-fanout x"), None);
    }

    #[test]
    fn only_post_new_events_of_ours_count() {
        let ev = |event: &str, text: &str| {
            format!(
                r#"{{"type":"event","event":"{event}","pos":{{"epoch":"1","offset":3}},"data":{{"item":{{"id":"9","kind":"post","post":{{"id":"9","author":{{"id":"1","username":"lt_0","display_name":"lt_0"}},"text":"{text}","created_at":"x","likes":0,"reposts":0,"liked_by_me":false,"reposted_by_me":false}},"at":"x"}}}}}}"#
            )
        };
        assert_eq!(post_new_number(&ev("post.new", "lt-fanout 3")), Some(3));
        assert_eq!(post_new_number(&ev("post.new", "hello")), None);
        assert_eq!(post_new_number(&ev("message.new", "lt-fanout 3")), None);
        assert_eq!(post_new_number(r#"{"type":"event","event":"follow.new","data":{"follower":{}}}"#), None);
        assert_eq!(post_new_number("not json"), None);
    }

    #[test]
    fn summary_counts_the_last_follower_per_post() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Post 0 at t0, post 1 at +1000 ms, post 2 never posted.
        let sent = vec![Some(t0), Some(ms(1000)), None];
        let arrivals = vec![
            vec![(0, ms(10)), (1, ms(1005))],
            vec![(0, ms(30)), (1, ms(1050))],
            vec![(0, ms(20))], // missed post 1
        ];
        let r = summarize(&sent, &arrivals, 3);
        assert_eq!((r.posts, r.expected, r.delivered), (2, 6, 5));
        assert_eq!(r.last_follower_ms, vec![Some(30.0), None]);
        assert_eq!((r.last_follower_p50_ms, r.last_follower_max_ms), (30.0, 30.0));
        assert_eq!(r.delivery.count, 5);
        assert!((r.delivery.max_ms - 50.0).abs() < 0.1);
    }

    #[test]
    fn median_of_sorted_values() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 9.0]), 2.0);
    }
}
