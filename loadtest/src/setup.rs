//! Shared setup: obtain access tokens for many users, and open many
//! token-authenticated sockets, with a cap on handshakes in flight and a
//! progress bar.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{self, Fail, Target, Ws};
use crate::stats::Failures;

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Tokens of users `0..n` named with `prefix` (registered, or logged in if
/// they exist). A user whose setup failed has `None`; failures are counted.
pub async fn tokens(
    target: &Arc<Target>,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> (Vec<Option<String>>, Failures) {
    let bar = progress(n as u64, "auth");
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let (target, slots, name) = (target.clone(), slots.clone(), client::username(prefix, i));
        set.spawn(async move {
            let _permit = slots.acquire_owned().await;
            (i, client::obtain_token(&target, &name).await)
        });
    }
    let mut out = vec![None; n];
    let mut failures = Failures::default();
    while let Some(joined) = set.join_next().await {
        bar.inc(1);
        match joined {
            Ok((i, Ok(token))) => out[i] = Some(token),
            Ok((_, Err(Fail(reason)))) => failures.add(format!("setup {reason}")),
            Err(_) => failures.add("setup task failed"),
        }
    }
    bar.finish_and_clear();
    (out, failures)
}

/// Opens one token-authenticated socket per token, `concurrency` handshakes
/// at a time, each confirmed with a `ping` round trip.
pub async fn sockets(
    target: &Arc<Target>,
    tokens: &[Option<String>],
    concurrency: usize,
) -> (Vec<Option<Ws>>, Failures) {
    let tokens: Arc<[Option<String>]> = tokens.into();
    open_many(tokens.len(), concurrency, "connect", |i| {
        let (target, tokens) = (target.clone(), tokens.clone());
        async move {
            let Some(token) = &tokens[i] else { return Err(Fail("no token (setup failed)".into())) };
            open_confirmed(&target, token).await
        }
    })
    .await
}

/// Opens sockets `0..n` with `open`, `concurrency` at a time, with a
/// progress bar titled `what`. A socket that failed is `None`; failures are
/// counted by reason.
pub async fn open_many<F, Fut>(n: usize, concurrency: usize, what: &str, open: F) -> (Vec<Option<Ws>>, Failures)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Ws, Fail>> + Send + 'static,
{
    let bar = progress(n as u64, what);
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for i in 0..n {
        let (slots, work) = (slots.clone(), open(i));
        set.spawn(async move {
            let _permit = slots.acquire_owned().await;
            (i, work.await)
        });
    }
    let mut out: Vec<Option<Ws>> = (0..n).map(|_| None).collect();
    let mut failures = Failures::default();
    while let Some(joined) = set.join_next().await {
        bar.inc(1);
        match joined {
            Ok((i, Ok(ws))) => out[i] = Some(ws),
            Ok((_, Err(Fail(reason)))) => failures.add(reason),
            Err(_) => failures.add("connect task failed"),
        }
    }
    bar.finish_and_clear();
    (out, failures)
}

/// Connects with `token` at upgrade and confirms the socket answers a `ping`.
pub async fn open_confirmed(target: &Target, token: &str) -> Result<Ws, Fail> {
    let mut ws = client::connect(target, Some(token)).await?;
    match client::request(&mut ws, 1, "ping", serde_json::json!({}), target.timeout).await? {
        Ok(_) => Ok(ws),
        Err(e) => Err(Fail(format!("ping: {}", e.code.as_str()))),
    }
}

/// Waits for every task of `set`, aborting those still running at `deadline`.
pub async fn drain<T: 'static>(set: &mut JoinSet<T>, deadline: Duration) -> Vec<T> {
    let mut out = Vec::with_capacity(set.len());
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match tokio::time::timeout_at(until, set.join_next()).await {
            Ok(Some(Ok(v))) => out.push(v),
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                break;
            }
        }
    }
    out
}
