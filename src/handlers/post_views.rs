//! Posts and timeline items in wire form, for one viewer: fetches the
//! posts, the viewer's likes/reposts and the reposters in batches.

use std::collections::HashMap;

use super::user_view;
use crate::app::App;
use crate::error::{Error, Result};
use crate::model::{ItemKind, Post, PostId, TimelineItem, UserId, ViewerMarks, rfc3339};
use crate::protocol::{PostView, TimelineItemView, UserView};

/// A post in wire form with the viewer's marks.
pub fn post_view(post: &Post, marks: ViewerMarks) -> PostView {
    PostView {
        id: post.id.to_string(),
        author: user_view(&post.author),
        text: post.text.clone(),
        created_at: rfc3339(post.id.unix_ms()),
        likes: post.likes,
        reposts: post.reposts,
        liked_by_me: marks.liked,
        reposted_by_me: marks.reposted,
    }
}

/// One post for `viewer`, or `not_found`.
pub async fn load_post(app: &App, viewer: UserId, id: PostId) -> Result<PostView> {
    Ok(load_post_with_author(app, viewer, id).await?.1)
}

/// One post for `viewer` together with its author's id, or `not_found`.
pub async fn load_post_with_author(app: &App, viewer: UserId, id: PostId) -> Result<(UserId, PostView)> {
    let post = app.store.posts(&[id]).await?.pop().ok_or_else(|| Error::NotFound("no such post".into()))?;
    let marks = app.store.viewer_marks(viewer, &[id]).await?.pop().map(|(_, m)| m).unwrap_or_default();
    Ok((post.author.id, post_view(&post, marks)))
}

/// The wire form of an item whose post is known.
pub fn item_view(item: &TimelineItem, post: PostView, reposted_by: Option<UserView>) -> TimelineItemView {
    TimelineItemView {
        id: item.id.to_string(),
        kind: match item.kind {
            ItemKind::Post => "post".into(),
            ItemKind::Repost => "repost".into(),
        },
        post,
        reposted_by,
        at: rfc3339(item.id.unix_ms()),
    }
}

/// Items in wire form for `viewer`, in the given order. Items whose post
/// or reposter no longer exists are left out.
pub async fn item_views(app: &App, viewer: UserId, items: &[TimelineItem]) -> Result<Vec<TimelineItemView>> {
    let mut ids: Vec<PostId> = items.iter().map(|i| i.post_id).collect();
    ids.sort();
    ids.dedup();
    let posts: HashMap<PostId, Post> = app.store.posts(&ids).await?.into_iter().map(|p| (p.id, p)).collect();
    let marks: HashMap<PostId, ViewerMarks> = app.store.viewer_marks(viewer, &ids).await?.into_iter().collect();
    let mut reposters: HashMap<UserId, Option<UserView>> = HashMap::new();
    for item in items.iter().filter(|i| i.kind == ItemKind::Repost) {
        if let std::collections::hash_map::Entry::Vacant(slot) = reposters.entry(item.actor) {
            let user = app.store.user_by_id(item.actor).await?;
            slot.insert(user.as_ref().map(user_view));
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(post) = posts.get(&item.post_id) else { continue };
        let view = post_view(post, marks.get(&item.post_id).copied().unwrap_or_default());
        let by = match item.kind {
            ItemKind::Post => None,
            ItemKind::Repost => match reposters.get(&item.actor).cloned().flatten() {
                Some(u) => Some(u),
                None => continue,
            },
        };
        out.push(item_view(item, view, by));
    }
    Ok(out)
}
