//! Home-timeline rules: which items a reader sees, and the merge of the two
//! places items come from: copies made by fan-out on write (authors with few
//! followers) and items read straight from the timelines of the people the
//! reader follows (popular authors, and items whose copies are not made yet).
//!
//! Whichever path an item took, the reader sees the same timeline:
//! - items by the reader, and items by people the reader follows that were
//!   made after the follow began (so unfollowing hides someone at once, and
//!   both paths agree on what a new follower sees);
//! - a repost only when the original post is not already visible to the
//!   reader (a post shows once, even if the reader follows the author and a
//!   reposter);
//! - nothing older than the home-timeline horizon (`home_timeline_days`).

use std::collections::HashMap;

use crate::error::StoreError;
use crate::model::{FollowId, ItemId, ItemKind, TimelineItem, UserId};
use crate::store::Store;

/// Most store round trips one page may take before it returns what it has.
const MAX_ROUNDS: usize = 8;

/// What one reader may see.
pub struct Visibility {
    me: UserId,
    following: HashMap<UserId, FollowId>,
    floor: ItemId,
}

impl Visibility {
    /// The rules for `me`, who follows `following` (with each follow's id),
    /// showing nothing older than `floor`.
    pub fn new(me: UserId, following: impl IntoIterator<Item = (UserId, FollowId)>, floor: ItemId) -> Self {
        Visibility { me, following: following.into_iter().collect(), floor }
    }

    fn sees(&self, actor: UserId, at: i64) -> bool {
        at >= self.floor.0 && (actor == self.me || self.following.get(&actor).is_some_and(|f| f.0 < at))
    }

    /// True if `item` belongs on the reader's home timeline.
    pub fn shows(&self, item: &TimelineItem) -> bool {
        if !self.sees(item.actor, item.id.0) {
            return false;
        }
        match item.kind {
            ItemKind::Post => true,
            ItemKind::Repost => !self.sees(item.post_author, item.post_id.0),
        }
    }
}

/// One page of a timeline.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<TimelineItem>,
    /// The cursor for the next page; `None` at the end.
    pub next_before: Option<ItemId>,
}

/// Merges two newest-first batches fetched below the same cursor, each at
/// most `batch` long. Returns the items whose place is certain (every item
/// at or above the returned boundary has been seen in both sources),
/// newest first without duplicates, and the boundary to continue below
/// (`None` when both sources are exhausted).
pub fn merge_step(a: Vec<TimelineItem>, b: Vec<TimelineItem>, batch: usize) -> (Vec<TimelineItem>, Option<ItemId>) {
    let last_if_full = |v: &[TimelineItem]| if v.len() >= batch { v.last().map(|i| i.id) } else { None };
    let boundary = last_if_full(&a).max(last_if_full(&b));
    let mut all: Vec<TimelineItem> = a.into_iter().chain(b).filter(|i| boundary.is_none_or(|bd| i.id >= bd)).collect();
    all.sort_by_key(|i| std::cmp::Reverse(i.id));
    all.dedup_by_key(|i| i.id);
    (all, boundary)
}

/// A page of `me`'s home timeline: up to `limit` visible items with ids
/// below `before`, newest first, none older than `floor`.
pub async fn home(
    store: &dyn Store,
    me: UserId,
    before: Option<ItemId>,
    limit: usize,
    floor: ItemId,
) -> Result<Page, StoreError> {
    let rules = Visibility::new(me, store.follow_ids(me).await?, floor);
    let batch = (limit * 2).max(20);
    let mut cursor = before;
    let mut items = Vec::with_capacity(limit);
    for _ in 0..MAX_ROUNDS {
        // Not-yet-copied items first, copies second: fan-out commits an
        // item's copies before it marks the item done, so an item missing
        // from the first read (done by then) is already in the second. The
        // other order missed an item that was copied and marked done
        // between the two reads (a follower's home timeline without a post
        // whose `post.create` was already acknowledged).
        let merged = store.unfanned_items(me, cursor, batch).await?;
        let copied = store.home_items(me, cursor, batch).await?;
        let (certain, boundary) = merge_step(copied, merged, batch);
        for item in certain {
            if item.id < floor {
                return Ok(Page { items, next_before: None });
            }
            if rules.shows(&item) {
                items.push(item);
                if items.len() == limit {
                    return Ok(Page { items, next_before: Some(item.id) });
                }
            }
        }
        match boundary {
            None => return Ok(Page { items, next_before: None }),
            Some(b) if b < floor => return Ok(Page { items, next_before: None }),
            Some(b) => cursor = Some(b),
        }
    }
    // Many hidden items in a row: return what we have; the cursor still advances.
    Ok(Page { items, next_before: cursor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PostId;

    fn post(id: i64, actor: i64) -> TimelineItem {
        TimelineItem {
            id: ItemId(id),
            kind: ItemKind::Post,
            actor: UserId(actor),
            post_id: PostId(id),
            post_author: UserId(actor),
        }
    }

    fn repost(id: i64, actor: i64, post: i64, author: i64) -> TimelineItem {
        TimelineItem {
            id: ItemId(id),
            kind: ItemKind::Repost,
            actor: UserId(actor),
            post_id: PostId(post),
            post_author: UserId(author),
        }
    }

    #[test]
    fn follows_count_from_when_they_began() {
        let v = Visibility::new(UserId(1), [(UserId(2), FollowId(100))], ItemId(0));
        assert!(v.shows(&post(50, 1)), "my own items");
        assert!(v.shows(&post(150, 2)));
        assert!(!v.shows(&post(50, 2)), "before I followed");
        assert!(!v.shows(&post(150, 3)), "someone I do not follow");
    }

    #[test]
    fn a_repost_hides_when_the_original_shows() {
        let v = Visibility::new(UserId(1), [(UserId(2), FollowId(10)), (UserId(3), FollowId(10))], ItemId(0));
        assert!(!v.shows(&repost(300, 3, 200, 2)), "I follow the author: the post itself shows");
        assert!(v.shows(&repost(300, 3, 200, 9)), "author not followed: the repost shows");
        assert!(v.shows(&repost(300, 3, 5, 2)), "post older than my follow of its author: the repost shows");
        assert!(!v.shows(&repost(300, 1, 200, 1)), "my repost of my own post");
        let aged = Visibility::new(UserId(1), [(UserId(2), FollowId(1)), (UserId(3), FollowId(1))], ItemId(250));
        assert!(aged.shows(&repost(300, 3, 200, 2)), "the original is past the horizon: the repost shows");
        assert!(!aged.shows(&post(200, 2)), "past the horizon");
    }

    #[test]
    fn merge_keeps_only_what_both_sources_have_covered() {
        let a = vec![post(90, 1), post(70, 1), post(50, 1)];
        let b = vec![post(80, 2), post(60, 2)];
        let (items, boundary) = merge_step(a, b, 3);
        assert_eq!(boundary, Some(ItemId(50)));
        assert_eq!(items.iter().map(|i| i.id.0).collect::<Vec<_>>(), vec![90, 80, 70, 60, 50]);

        let a = vec![post(90, 1), post(20, 1)];
        let b = vec![post(80, 2), post(70, 2)];
        let (items, boundary) = merge_step(a.clone(), b.clone(), 2);
        assert_eq!(boundary, Some(ItemId(70)), "a ran down to 20 but b may hold items between 70 and 20");
        assert_eq!(items.iter().map(|i| i.id.0).collect::<Vec<_>>(), vec![90, 80, 70]);

        let (items, boundary) = merge_step(vec![post(5, 1), post(5, 1)], vec![post(5, 1)], 10);
        assert_eq!((items.len(), boundary), (1, None), "duplicates collapse; both exhausted");
    }
}
