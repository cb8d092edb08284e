//! `fanout`: one author with F online followers posts. Posts do not exist on
//! the server yet; the scenario asks first (`post.create`) and refuses
//! clearly when the server answers `unknown_type`, instead of measuring
//! something else under this name.

use std::sync::Arc;

use hubbub::protocol::ErrorCode;
use serde_json::json;

use crate::client::{self, Fail, Target};
use crate::setup;
use crate::stats::Failures;

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

/// Probes for posts, then sets up `followers` online followers of the author.
pub async fn run(target: Arc<Target>, prefix: &str, followers: usize, concurrency: usize) -> Result<(), Refused> {
    let author = client::username(prefix, 0);
    let mut ws = client::connect(&target, None).await.map_err(|Fail(r)| Refused::Failed(r))?;
    client::register_or_login(&mut ws, &author, target.timeout).await.map_err(|Fail(r)| Refused::Failed(r))?;
    let probe = json!({"text": "loadtest probe"});
    match client::request(&mut ws, 10, "post.create", probe, target.timeout).await {
        Ok(Err(e)) if e.code == ErrorCode::UnknownType => return Err(Refused::NoPosts),
        Ok(Err(e)) => return Err(Refused::Failed(format!("post.create: {}", e.code.as_str()))),
        Err(Fail(r)) => return Err(Refused::Failed(r)),
        Ok(Ok(_)) => {}
    }
    let failures = follow_setup(&target, prefix, &author, followers, concurrency).await;
    if failures.total() > 0 {
        return Err(Refused::Failed(format!("follower setup failed: {:?}", failures.0)));
    }
    // The post event and its fields are not specified in protocol.md yet:
    // measuring delivery waits until they are, rather than guessing them.
    Err(Refused::Failed("posts answered, but protocol.md defines no post event to measure yet".into()))
}

/// Users `1..=followers` follow the author; their sockets stay open.
async fn follow_setup(
    target: &Arc<Target>,
    prefix: &str,
    author: &str,
    followers: usize,
    concurrency: usize,
) -> Failures {
    let (tokens, mut failures) = setup::tokens(target, prefix, followers + 1, concurrency).await;
    let (socks, f) = setup::sockets(target, &tokens[1..], concurrency).await;
    failures.merge(&f);
    for ws in socks.into_iter().flatten() {
        let mut ws = ws;
        match client::request(&mut ws, 2, "follow.add", json!({"username": author}), target.timeout).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => failures.add(format!("follow.add: {}", e.code.as_str())),
            Err(Fail(r)) => failures.add(r),
        }
    }
    failures
}
