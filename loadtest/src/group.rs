//! `group`: one group of M members, every member online on its own socket
//! (spread over `--target` and `--target-b` when given, so across two
//! nodes); one member writes `messages` group messages, `interval` apart.
//! Measured like `fanout` (the same reader and summary): time from the
//! `message.send` to each member's `message.new`, and to the last member's.
//!
//! With `react`, the author sends one message at setup, then the measured
//! writes are `message.react` on it (reaction `k` is emoji U+1F600 + k, so
//! at most 20, the server's distinct limit): time to each member's
//! `message.reactions` (one react fan-out).
//!
//! Setup: the author (user 0) creates the group with users `1..=M-1` in
//! `group.create` and `group.add` requests of at most 500 names; the server
//! must allow M members (`--max-group-members`) and the author's groups per
//! hour (`--groups-per-hour`) for repeated runs.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::client::{self, Fail, Target};
use crate::fanout::{self, FanoutArgs, FanoutReport, Refused, Shape};
use crate::setup;

/// Names per `group.create` / `group.add` request.
const CHUNK: usize = 500;

/// The text of group message `k` of a run.
pub fn message_text(k: usize) -> String {
    format!("lt-group {k}")
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<Data<'a>>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    message: Option<Msg<'a>>,
    #[serde(borrow)]
    emoji: Option<Cow<'a, str>>,
}

/// The emoji of measured reaction `k` (`k` < 20).
pub fn reaction_emoji(k: usize) -> String {
    char::from_u32(0x1F600 + k as u32).map(String::from).unwrap_or_default()
}

/// The reaction number of a `message.reactions` frame of this scenario.
fn reactions_number(frame: &str) -> Option<usize> {
    let v: Head = serde_json::from_str(frame).ok()?;
    if v.event.as_deref() != Some("message.reactions") {
        return None;
    }
    let mut cs = v.data?.emoji?.chars().collect::<Vec<_>>().into_iter();
    let (Some(c), None) = (cs.next(), cs.next()) else { return None };
    (c as u32).checked_sub(0x1F600).map(|k| k as usize).filter(|k| *k < 20)
}

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The message number of a `message.new` frame of this scenario, or `None`.
fn message_new_number(frame: &str) -> Option<usize> {
    let v: Head = serde_json::from_str(frame).ok()?;
    if v.event.as_deref() != Some("message.new") {
        return None;
    }
    v.data?.message?.text.strip_prefix("lt-group ")?.parse().ok()
}

/// Sets up the group with every member online, then measures.
pub async fn run(
    target: Arc<Target>,
    target_b: Option<Arc<Target>>,
    prefix: &str,
    args: &FanoutArgs,
    react: bool,
) -> Result<FanoutReport, Refused> {
    let start = tokio::time::Instant::now();
    let members = args.followers;
    let (tokens, mut failures) = setup::tokens(&target, prefix, members, args.concurrency).await;
    let Some(author_token) = tokens[0].clone() else {
        return Err(Refused::Failed(format!("the author could not sign in: {:?}", failures.0)));
    };
    let mut author = setup::open_confirmed(&target, &author_token).await.map_err(|Fail(r)| Refused::Failed(r))?;
    let names: Vec<String> = (1..members).map(|i| client::username(prefix, i)).collect();
    let first: Vec<&String> = names.iter().take(CHUNK).collect();
    let created =
        client::request(&mut author, 10, "group.create", json!({"title": "lt", "members": first}), target.timeout)
            .await
            .map_err(|Fail(r)| Refused::Failed(r))?
            .map_err(|e| Refused::Failed(format!("group.create: {}", e.code.as_str())))?;
    let conv = created["group"]["conversation_id"].as_str().unwrap_or_default().to_owned();
    for (n, chunk) in names.chunks(CHUNK).enumerate().skip(1) {
        let req = json!({"conversation": conv, "members": chunk});
        client::request(&mut author, 11 + n as u64, "group.add", req, target.timeout)
            .await
            .map_err(|Fail(r)| Refused::Failed(r))?
            .map_err(|e| Refused::Failed(format!("group.add: {}", e.code.as_str())))?;
    }
    // Members connect after the adds: no `group.member_added` backlog.
    let half = tokens.len() / 2;
    let (mut socks, f) = match &target_b {
        Some(b) => {
            let (mut a, fa) =
                setup::sockets(&target, &tokens[1..=half.max(1).min(tokens.len() - 1)], args.concurrency).await;
            let (bb, fb) = setup::sockets(b, &tokens[half.max(1) + 1..], args.concurrency).await;
            a.extend(bb);
            failures.merge(&fa);
            (a, fb)
        }
        None => setup::sockets(&target, &tokens[1..], args.concurrency).await,
    };
    failures.merge(&f);
    let readers: Vec<_> = socks.drain(..).flatten().collect();
    if readers.is_empty() {
        return Err(Refused::Failed(format!("no member could be set up: {:?}", failures.0)));
    }
    let setup_seconds = start.elapsed().as_secs_f64();
    eprintln!("group: {} members online after {setup_seconds:.1} s; sending", readers.len() + 1);
    let shape = if react {
        let sent = client::request(
            &mut author,
            9,
            "message.send",
            json!({"conversation": conv, "text": "react"}),
            target.timeout,
        )
        .await
        .map_err(|Fail(r)| Refused::Failed(r))?
        .map_err(|e| Refused::Failed(format!("message.send: {}", e.code.as_str())))?;
        let id = sent["message"]["id"].as_str().unwrap_or_default().to_owned();
        Shape {
            kind: "message.react",
            fields: Box::new(move |k| json!({"conversation": conv, "message_id": id, "emoji": reaction_emoji(k)})),
            parse: reactions_number,
        }
    } else {
        Shape {
            kind: "message.send",
            fields: Box::new(move |k| json!({"conversation": conv, "text": message_text(k)})),
            parse: message_new_number,
        }
    };
    let mut report = fanout::measure(&target, author, readers, args, &shape).await;
    report.followers_requested = members - 1;
    report.setup_seconds = setup_seconds;
    report.setup_failures = failures;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_message_new_events_of_ours_count() {
        let ev = |event: &str, text: &str| {
            format!(r#"{{"type":"event","event":"{event}","data":{{"message":{{"id":"1","text":"{text}"}}}}}}"#)
        };
        assert_eq!(message_new_number(&ev("message.new", &message_text(4))), Some(4));
        assert_eq!(message_new_number(&ev("message.new", "hello")), None);
        assert_eq!(message_new_number(&ev("post.new", "lt-group 4")), None);
        assert_eq!(message_new_number("junk"), None);
    }

    #[test]
    fn only_message_reactions_of_ours_count() {
        let ev =
            |event: &str, emoji: &str| format!(r#"{{"type":"event","event":"{event}","data":{{"emoji":"{emoji}"}}}}"#);
        assert_eq!(reactions_number(&ev("message.reactions", &reaction_emoji(7))), Some(7));
        assert_eq!(reactions_number(&ev("message.reactions", "\u{2764}\u{fe0f}")), None);
        assert_eq!(reactions_number(&ev("message.new", &reaction_emoji(7))), None);
    }
}
