//! Posts, likes, reposts, timelines and fan-out state on CQL.
//!
//! Likes and reposts are sets written with lightweight transactions, so a
//! toggle knows whether it changed anything, and only a toggle that changed
//! the set moves the post's counter (`post_counts`, see [`super::counts`]):
//! one single-row read per post shown. Deleting a post or repost walks the
//! index tables (`items_by_post`, `home_by_item`) and deletes row by row:
//! O(items + home copies).

use super::ScyllaStore;
use super::binds;
use super::exec::Lwt;
use super::keys::{bucket_of, cql_limit, merge_newest_first, newest_bucket_below, upper_bound};
use super::rows::{ItemRow, PostRow, fanout_code};
use super::statements::Q;
use crate::error::StoreError;
use crate::model::{FanoutState, ItemId, ItemKind, Post, PostId, TimelineItem, Toggle, UserId, ViewerMarks};

/// The one partition of `pending_items` and `home_bucket_list`.
const SHARD: i32 = 0;

/// Which bucketed timeline a page reads.
#[derive(Clone, Copy)]
pub(super) enum Timeline {
    User,
    Home,
}

impl ScyllaStore {
    async fn post_row(&self, id: PostId) -> Result<Option<PostRow>, StoreError> {
        self.db.one(Q::PostGet, (id.0,)).await
    }

    /// Writes an item to every table that lists it.
    async fn insert_item(&self, it: &TimelineItem, fanout: FanoutState) -> Result<(), StoreError> {
        let (id, actor, post) = (it.id.0, it.actor.0, it.post_id.0);
        let b = bucket_of(id);
        self.db.write(Q::ItemInsert, binds::item_insert(it, fanout)).await?;
        self.db.write(Q::UserItemBucketInsert, (actor, b)).await?;
        self.db.write(Q::UserItemInsert, binds::user_item_insert(it)).await?;
        self.db.write(Q::ItemByPostInsert, (post, id)).await?;
        self.index_fanout(it, fanout).await
    }

    /// Puts an item in (or takes it out of) the unfanned and pending lists.
    async fn index_fanout(&self, it: &TimelineItem, fanout: FanoutState) -> Result<(), StoreError> {
        let (id, actor) = (it.id.0, it.actor.0);
        if fanout == FanoutState::Done {
            self.db.write(Q::UnfannedDelete, (actor, id)).await?;
        } else {
            self.db.write(Q::UnfannedInsert, binds::unfanned_insert(it)).await?;
        }
        if fanout == FanoutState::Pending {
            self.db.write(Q::PendingInsert, binds::pending_insert(SHARD, it)).await
        } else {
            self.db.write(Q::PendingDelete, (SHARD, id)).await
        }
    }

    /// Deletes an item from every table, home copies included.
    async fn delete_item(&self, item: ItemId) -> Result<(), StoreError> {
        let homes: Vec<(i64,)> = self.db.rows(Q::HomeByItem, (item.0,)).await?;
        let b = bucket_of(item.0);
        for (user,) in homes {
            self.db.write(Q::HomeDelete, (user, b, item.0)).await?;
            self.db.write(Q::HomeByBucketDelete, (b, item.0, user)).await?;
            self.db.write(Q::HomeByItemDelete, (item.0, user)).await?;
        }
        if let Some(row) = self.db.one::<ItemRow>(Q::ItemGet, (item.0,)).await? {
            self.db.write(Q::UserItemDelete, (row.actor_id, b, item.0)).await?;
            self.db.write(Q::UnfannedDelete, (row.actor_id, item.0)).await?;
            self.db.write(Q::ItemByPostDelete, (row.post_id, item.0)).await?;
        }
        self.db.write(Q::PendingDelete, (SHARD, item.0)).await?;
        self.db.write(Q::ItemDelete, (item.0,)).await
    }

    pub(super) async fn create_post_cql(
        &self,
        id: PostId,
        author: UserId,
        text: &str,
        fanout: FanoutState,
    ) -> Result<bool, StoreError> {
        if self.user_row(author).await?.is_none() {
            return Ok(false);
        }
        self.db.write(Q::PostInsert, (id.0, author.0, text)).await?;
        let item =
            TimelineItem { id: ItemId(id.0), kind: ItemKind::Post, actor: author, post_id: id, post_author: author };
        self.insert_item(&item, fanout).await?;
        Ok(true)
    }

    /// Every post of `ids` at once (the callers pass one page of ids, so
    /// at most a page of posts is in flight), in the order of `ids`.
    pub(super) async fn posts_cql(&self, ids: &[PostId]) -> Result<Vec<Post>, StoreError> {
        let posts = futures_util::future::try_join_all(ids.iter().map(|id| self.post_cql(*id))).await?;
        Ok(posts.into_iter().flatten().collect())
    }

    /// One post: its row and its counts read together, then its author.
    async fn post_cql(&self, id: PostId) -> Result<Option<Post>, StoreError> {
        let (row, (likes, reposts)) = tokio::try_join!(self.post_row(id), self.post_counts(id))?;
        let Some(row) = row else { return Ok(None) };
        let Some(author) = self.user_by_id_cql(UserId(row.author_id)).await? else { return Ok(None) };
        Ok(Some(Post { id: PostId(row.post_id), author, text: row.body, likes, reposts }))
    }

    /// Runs fully even when the post row is already gone (finishes an
    /// interrupted delete); the post row goes last, just after its counts
    /// (so the likes and reposts released here move no counter).
    pub(super) async fn delete_post_cql(&self, id: PostId) -> Result<bool, StoreError> {
        let existed = self.post_row(id).await?.is_some();
        let items: Vec<(i64,)> = self.db.rows(Q::ItemsOfPost, (id.0,)).await?;
        for (item,) in items {
            self.delete_item(ItemId(item)).await?;
        }
        let likes: Vec<(i64,)> = self.db.rows(Q::LikesOfPost, (id.0,)).await?;
        for (user,) in likes {
            self.db.lwt(Q::LikeRelease, (id.0, user)).await?;
            self.db.write(Q::LikeByUserDelete, (user, id.0)).await?;
        }
        let reposts: Vec<(i64, i64)> = self.db.rows(Q::RepostsOfPost, (id.0,)).await?;
        for (user, item) in reposts {
            self.db.lwt(Q::RepostRelease, (id.0, user, item)).await?;
            self.db.write(Q::RepostByUserDelete, (user, id.0)).await?;
        }
        self.db.write(Q::PostCountsDelete, (id.0,)).await?;
        self.db.write(Q::PostDelete, (id.0,)).await?;
        Ok(existed)
    }

    /// A timed-out toggle is read back: `changed` then says whether the
    /// set is now as asked (it cannot tell whether this call did it). A
    /// change moves the like count once.
    pub(super) async fn set_like_cql(
        &self,
        post: PostId,
        user: UserId,
        like: bool,
    ) -> Result<Option<Toggle>, StoreError> {
        if self.post_row(post).await?.is_none() {
            return Ok(None);
        }
        let q = if like { Q::LikeClaim } else { Q::LikeRelease };
        let changed = match self.db.lwt(q, (post.0, user.0)).await? {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Unknown => self.db.one_serial::<(i64,)>(Q::LikeGet, (post.0, user.0)).await?.is_some() == like,
        };
        if like {
            self.db.write(Q::LikeByUserInsert, (user.0, post.0)).await?;
        } else {
            self.db.write(Q::LikeByUserDelete, (user.0, post.0)).await?;
        }
        if changed {
            self.bump(Q::LikesAdd, post.0, if like { 1 } else { -1 }).await;
        }
        Ok(Some(Toggle { changed, count: self.post_counts(post).await?.0 }))
    }

    pub(super) async fn add_repost_cql(
        &self,
        post: PostId,
        user: UserId,
        item: ItemId,
        fanout: FanoutState,
    ) -> Result<Option<Toggle>, StoreError> {
        let Some(row) = self.post_row(post).await? else { return Ok(None) };
        let changed = match self.db.lwt(Q::RepostClaim, (post.0, user.0, item.0)).await? {
            Lwt::Applied => true,
            Lwt::NotApplied => false,
            Lwt::Unknown => {
                let now: Option<(i64,)> = self.db.one_serial(Q::RepostGet, (post.0, user.0)).await?;
                now.is_some_and(|(i,)| i == item.0)
            }
        };
        if changed {
            self.db.write(Q::RepostByUserInsert, (user.0, post.0)).await?;
            let it = TimelineItem {
                id: item,
                kind: ItemKind::Repost,
                actor: user,
                post_id: post,
                post_author: UserId(row.author_id),
            };
            self.insert_item(&it, fanout).await?;
            self.bump(Q::RepostsAdd, post.0, 1).await;
        }
        Ok(Some(Toggle { changed, count: self.post_counts(post).await?.1 }))
    }

    pub(super) async fn remove_repost_cql(&self, post: PostId, user: UserId) -> Result<Option<Toggle>, StoreError> {
        if self.post_row(post).await?.is_none() {
            return Ok(None);
        }
        let current: Option<(i64,)> = self.db.one_serial(Q::RepostGet, (post.0, user.0)).await?;
        let mut changed = false;
        if let Some((item,)) = current {
            changed = match self.db.lwt(Q::RepostRelease, (post.0, user.0, item)).await? {
                Lwt::Applied => true,
                Lwt::NotApplied => false,
                Lwt::Unknown => self.db.one_serial::<(i64,)>(Q::RepostGet, (post.0, user.0)).await?.is_none(),
            };
            self.db.write(Q::RepostByUserDelete, (user.0, post.0)).await?;
            self.delete_item(ItemId(item)).await?;
            if changed {
                self.bump(Q::RepostsAdd, post.0, -1).await;
            }
        }
        Ok(Some(Toggle { changed, count: self.post_counts(post).await?.1 }))
    }

    /// Two point reads per post.
    pub(super) async fn viewer_marks_cql(
        &self,
        viewer: UserId,
        posts: &[PostId],
    ) -> Result<Vec<(PostId, ViewerMarks)>, StoreError> {
        let mut out = Vec::with_capacity(posts.len());
        for p in posts {
            let liked = self.db.one::<(i64,)>(Q::LikeGet, (p.0, viewer.0)).await?.is_some();
            let reposted = self.db.one::<(i64,)>(Q::RepostGet, (p.0, viewer.0)).await?.is_some();
            out.push((*p, ViewerMarks { liked, reposted }));
        }
        Ok(out)
    }

    /// Walks the timeline's non-empty buckets newest first below the cursor.
    pub(super) async fn timeline_cql(
        &self,
        which: Timeline,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        let (buckets_q, page_q) = match which {
            Timeline::User => (Q::UserItemBuckets, Q::UserItemPage),
            Timeline::Home => (Q::HomeBuckets, Q::HomePage),
        };
        let before = before.map(|b| b.0);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut buckets = self.db.stream::<(i32,)>(buckets_q, (user.0, newest_bucket_below(before))).await?;
        while out.len() < limit {
            let Some((bucket,)) = buckets.next_row().await? else { break };
            let page = binds::bucket_page(user.0, bucket, upper_bound(before), cql_limit(limit - out.len()));
            let rows: Vec<ItemRow> = self.db.rows(page_q, page).await?;
            out.extend(rows.into_iter().map(TimelineItem::from));
        }
        out.truncate(limit);
        Ok(out)
    }

    /// One read per followed actor (and the user), merged in Rust:
    /// O(following) reads per page, bounded by the follow limit.
    pub(super) async fn unfanned_items_cql(
        &self,
        user: UserId,
        before: Option<ItemId>,
        limit: usize,
    ) -> Result<Vec<TimelineItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut actors = vec![user];
        actors.extend(self.follow_ids_cql(user).await?.into_iter().map(|(u, _)| u));
        let mut lists = Vec::with_capacity(actors.len());
        for actor in actors {
            let rows: Vec<ItemRow> =
                self.db.rows(Q::UnfannedPage, (actor.0, upper_bound(before.map(|b| b.0)), cql_limit(limit))).await?;
            lists.push(rows.into_iter().map(TimelineItem::from).collect());
        }
        Ok(merge_newest_first(lists, |i: &TimelineItem| i.id.0, limit))
    }

    /// Copies only an item that still exists (a deleted post is not revived).
    pub(super) async fn fan_out_cql(&self, item: &TimelineItem, users: &[UserId]) -> Result<(), StoreError> {
        if self.db.one::<ItemRow>(Q::ItemGet, (item.id.0,)).await?.is_none() {
            return Ok(());
        }
        let id = item.id.0;
        let b = bucket_of(id);
        self.db.write(Q::HomeBucketListInsert, (SHARD, b)).await?;
        for u in users {
            self.db.write(Q::HomeBucketInsert, (u.0, b)).await?;
            self.db.write(Q::HomeInsert, binds::home_insert(*u, item)).await?;
            self.db.write(Q::HomeByItemInsert, (id, u.0)).await?;
            self.db.write(Q::HomeByBucketInsert, (b, id, u.0)).await?;
        }
        Ok(())
    }

    pub(super) async fn set_fanout_cql(&self, item: ItemId, state: FanoutState) -> Result<(), StoreError> {
        let Some(row) = self.db.one::<ItemRow>(Q::ItemGet, (item.0,)).await? else { return Ok(()) };
        self.db.write(Q::ItemSetFanout, (fanout_code(state), item.0)).await?;
        self.index_fanout(&TimelineItem::from(row), state).await
    }

    pub(super) async fn pending_fanout_cql(&self, limit: usize) -> Result<Vec<TimelineItem>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<ItemRow> = self.db.rows(Q::PendingPage, (SHARD, cql_limit(limit))).await?;
        Ok(rows.into_iter().map(TimelineItem::from).collect())
    }

    /// Walks the buckets that have home copies up to the horizon and
    /// deletes each copy below it: O(copies trimmed).
    pub(super) async fn trim_home_cql(&self, before: ItemId) -> Result<u64, StoreError> {
        let buckets: Vec<(i32,)> =
            self.db.rows(Q::HomeBucketList, (SHARD, newest_bucket_below(Some(before.0)))).await?;
        let mut n = 0;
        for (b,) in buckets {
            let copies: Vec<(i64, i64)> = self.db.rows(Q::HomeByBucketPage, (b, before.0)).await?;
            for (item, user) in copies {
                self.db.write(Q::HomeDelete, (user, b, item)).await?;
                self.db.write(Q::HomeByItemDelete, (item, user)).await?;
                self.db.write(Q::HomeByBucketDelete, (b, item, user)).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Account deletion, posts part: the user's likes and reposts (each
    /// release that applies moves its post's count back), their posts, and
    /// their home timeline.
    pub(super) async fn delete_user_posts(&self, user: UserId) -> Result<(), StoreError> {
        let liked: Vec<(i64,)> = self.db.rows(Q::LikesOfUser, (user.0,)).await?;
        for (post,) in liked {
            let released = match self.db.lwt(Q::LikeRelease, (post, user.0)).await? {
                Lwt::Applied => true,
                Lwt::NotApplied => false,
                Lwt::Unknown => self.db.one_serial::<(i64,)>(Q::LikeGet, (post, user.0)).await?.is_none(),
            };
            if released {
                self.bump(Q::LikesAdd, post, -1).await;
            }
            self.db.write(Q::LikeByUserDelete, (user.0, post)).await?;
        }
        let reposted: Vec<(i64,)> = self.db.rows(Q::RepostsOfUser, (user.0,)).await?;
        for (post,) in reposted {
            self.remove_repost_cql(PostId(post), user).await?;
            self.db.write(Q::RepostByUserDelete, (user.0, post)).await?;
        }
        let own = self.timeline_cql(Timeline::User, user, None, usize::MAX).await?;
        for item in own.iter().filter(|i| i.kind == ItemKind::Post) {
            self.delete_post_cql(item.post_id).await?;
        }
        self.db.write(Q::UserItemBucketsDelete, (user.0,)).await?;
        let buckets: Vec<(i32,)> = self.db.rows(Q::HomeBuckets, (user.0, i32::MAX)).await?;
        for (b,) in buckets {
            let copies: Vec<ItemRow> = self.db.rows(Q::HomePage, (user.0, b, i64::MAX, i32::MAX)).await?;
            for c in copies {
                self.db.write(Q::HomeByItemDelete, (c.item_id, user.0)).await?;
                self.db.write(Q::HomeByBucketDelete, (b, c.item_id, user.0)).await?;
            }
            self.db.write(Q::HomePartitionDelete, (user.0, b)).await?;
        }
        self.db.write(Q::HomeBucketsDelete, (user.0,)).await
    }
}
