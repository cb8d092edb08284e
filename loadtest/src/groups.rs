//! `groups`: sustained messages into many small groups. G groups of M
//! members each (disjoint users); every member is online on its own socket
//! (the authors on `--target`, the other members on `--target-b` when
//! given, so every delivery crosses nodes). Each group's author sends on
//! the open-loop schedule of `dm` (the total rate spread over the groups),
//! and every member's `message.new` is timed from the message's scheduled
//! send time: messages/s, member deliveries/s and their latency, with 100%
//! of the due deliveries (acknowledged messages times M - 1) expected.
//!
//! Setup (not measured): users `<prefix>_0 .. <prefix>_{G*M-1}`; user `g*M`
//! creates group g with the next M - 1 users (`group.create`, then
//! `group.add` for more than 500), on the socket it then sends on. The
//! server must allow M members and one group per author per run
//! (`--groups-per-hour`, per author).

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{self, Fail, Target, Ws};
use crate::dm::Pair;
use crate::setup;
use crate::stats::Failures;

/// Names per `group.create` / `group.add` request.
const CHUNK: usize = 500;

/// Creates group `g` on its author's socket; returns its conversation id.
async fn create(ws: &mut Ws, target: &Target, prefix: &str, g: usize, members: usize) -> Result<String, Fail> {
    let names: Vec<String> = (g * members + 1..(g + 1) * members).map(|i| client::username(prefix, i)).collect();
    let mut chunks = names.chunks(CHUNK);
    let first = chunks.next().unwrap_or_default();
    let created =
        client::request(ws, 10, "group.create", json!({"title": format!("lt {g}"), "members": first}), target.timeout)
            .await?
            .map_err(|e| Fail(format!("group.create: {}", e.code.as_str())))?;
    let Some(conv) = created["group"]["conversation_id"].as_str().map(str::to_owned) else {
        return Err(Fail("group.create: no conversation_id in the reply".into()));
    };
    for (n, chunk) in chunks.enumerate() {
        client::request(
            ws,
            11 + n as u64,
            "group.add",
            json!({"conversation": conv, "members": chunk}),
            target.timeout,
        )
        .await?
        .map_err(|e| Fail(format!("group.add: {}", e.code.as_str())))?;
    }
    Ok(conv)
}

/// Registers the users, creates the groups and opens every member's
/// socket. Returns one [`Pair`] per group that could be set up (its author
/// and its members' sockets), and the failures.
pub async fn setup(
    target: &Arc<Target>,
    target_b: Option<&Arc<Target>>,
    prefix: &str,
    groups: usize,
    members: usize,
    concurrency: usize,
) -> (Vec<Pair>, Failures) {
    let (tokens, mut failures) = setup::tokens(target, prefix, groups * members, concurrency).await;
    // The authors: open their sockets and create the groups, a bounded number at once.
    let slots = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    for g in 0..groups {
        let (target, slots, prefix, token) =
            (target.clone(), slots.clone(), prefix.to_owned(), tokens[g * members].clone());
        set.spawn(async move {
            let _permit = slots.acquire_owned().await;
            let Some(token) = token else { return (g, Err(Fail("no token (setup failed)".into()))) };
            let made = async {
                let mut ws = setup::open_confirmed(&target, &token).await?;
                let conv = create(&mut ws, &target, &prefix, g, members).await?;
                Ok((ws, conv))
            };
            (g, made.await)
        });
    }
    let mut authors: Vec<Option<(Ws, String)>> = (0..groups).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((g, Ok(made))) => authors[g] = Some(made),
            Ok((_, Err(Fail(reason)))) => failures.add(format!("setup {reason}")),
            Err(_) => failures.add("setup task failed"),
        }
    }
    // The members connect after the groups exist: no `group.member_added` backlog.
    let member_tokens: Vec<Option<String>> =
        tokens.iter().enumerate().filter(|(i, _)| i % members != 0).map(|(_, t)| t.clone()).collect();
    let (mut socks, f) = setup::sockets(target_b.unwrap_or(target), &member_tokens, concurrency).await;
    failures.merge(&f);
    let mut out = Vec::with_capacity(groups);
    let mut rest = socks.drain(..);
    for author in authors {
        let receivers: Vec<Ws> = rest.by_ref().take(members - 1).flatten().collect();
        if let Some((ws, conv)) = author {
            if !receivers.is_empty() {
                out.push(Pair::new(ws, receivers, format!(r#""conversation":"{conv}""#), Some(conv)));
            }
        }
    }
    (out, failures)
}
