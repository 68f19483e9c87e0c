//! `GroupCache`: group id → member ids, for group-chat fan-out without a
//! database call.
//!
//! Values are `Arc<Vec<uid>>`, sorted: a fan-out clones the `Arc` under a
//! short lock and walks the list unlocked; a change copies the list
//! (copy-on-write with `Arc::make_mut`, muduo's `connections_.unique()`
//! trick), so readers never see a half-updated list.
//!
//! # Staying correct
//!
//! Join, quit and dismiss update the cache right after their database commit
//! (and before their ack). A *load* (after a miss) reads the database without
//! a lock, so it could race with such a change and store a stale list. Each
//! shard of the cache's [`ShardedMap`] therefore carries a generation
//! number (the shard's `meta`) that every change bumps; a load remembers
//! the generation before its query and stores its result only if the
//! generation is unchanged. A refused load is simply loaded again on the
//! next miss.
//!
//! In cluster mode the other nodes' changes arrive over Redis
//! ([`GroupCache::forget`]; [`GroupCache::forget_all`] when changes may
//! have been missed), and a join, quit or dismissal is acked only once
//! its notice has been handed to every node (see "Group membership cache"
//! in ARCHITECTURE.md).

use std::sync::Arc;

use crate::runtime::ShardedMap;

const SHARDS: usize = 16;

/// Sorted member ids of one group.
pub type Members = Arc<Vec<i64>>;

/// The cache. See the [module docs](self). Every method may be called from
/// any thread and holds one shard's lock for a lookup or a small update.
pub struct GroupCache {
    /// gid → members; each shard's `meta` is its generation.
    groups: ShardedMap<i64, Members, u64>,
}

impl Default for GroupCache {
    fn default() -> Self {
        GroupCache {
            groups: ShardedMap::new(SHARDS),
        }
    }
}

impl GroupCache {
    /// The members of `gid`, if cached.
    pub fn get(&self, gid: i64) -> Option<Members> {
        self.groups.lock(&gid).get(&gid).cloned()
    }

    /// The generation to pass to [`GroupCache::insert_loaded`]; read it
    /// *before* querying the database.
    pub fn generation(&self, gid: i64) -> u64 {
        self.groups.lock(&gid).meta
    }

    /// Stores a list read from the database, unless a change happened since
    /// `generation` was read. Returns whether it was stored.
    pub fn insert_loaded(&self, gid: i64, generation: u64, mut members: Vec<i64>) -> bool {
        members.sort_unstable();
        members.dedup();
        let mut shard = self.groups.lock(&gid);
        if shard.meta != generation {
            return false;
        }
        shard.insert(gid, Arc::new(members));
        true
    }

    /// A new group with its creator (after the create commit).
    pub fn created(&self, gid: i64, creator: i64) {
        let mut shard = self.groups.lock(&gid);
        shard.meta += 1;
        shard.insert(gid, Arc::new(vec![creator]));
    }

    /// `uid` joined `gid` (after the commit).
    pub fn joined(&self, gid: i64, uid: i64) {
        self.change(gid, |m| {
            if let Err(pos) = m.binary_search(&uid) {
                m.insert(pos, uid);
            }
        });
    }

    /// `uid` left `gid` (after the commit).
    pub fn left(&self, gid: i64, uid: i64) {
        self.change(gid, |m| {
            if let Ok(pos) = m.binary_search(&uid) {
                m.remove(pos);
            }
        });
    }

    /// `gid` was dismissed (after the commit).
    pub fn dismissed(&self, gid: i64) {
        let mut shard = self.groups.lock(&gid);
        shard.meta += 1;
        shard.remove(&gid);
    }

    /// `gid` changed on another node of a cluster (a join, a quit, a
    /// dismissal there): forgotten, so the next post reads it again; a
    /// load already under way is refused (the generation moves).
    pub fn forget(&self, gid: i64) {
        self.dismissed(gid);
    }

    /// Any group may have changed elsewhere unseen (this node's link to
    /// the cluster was down): every list is forgotten, every load under
    /// way refused.
    pub fn forget_all(&self) {
        self.groups.each_shard(|shard| {
            shard.meta += 1;
            shard.clear();
        });
    }

    /// Bumps the generation of `gid`'s shard and edits its list in place
    /// (a copy when a reader still holds the old one), if it is cached.
    fn change(&self, gid: i64, f: impl FnOnce(&mut Vec<i64>)) {
        let mut shard = self.groups.lock(&gid);
        shard.meta += 1;
        if let Some(members) = shard.get_mut(&gid) {
            f(Arc::make_mut(members));
        }
    }
}

/// `true` when the sorted `members` contain `uid`.
pub fn is_member(members: &[i64], uid: i64) -> bool {
    members.binary_search(&uid).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_with_a_change_is_refused() {
        let cache = GroupCache::default();
        let gen = cache.generation(5);
        cache.joined(5, 9); // a join commits while the load's query runs
        assert!(!cache.insert_loaded(5, gen, vec![1, 2]));
        assert!(cache.get(5).is_none());
        let gen = cache.generation(5);
        assert!(cache.insert_loaded(5, gen, vec![9, 2, 1]));
        assert_eq!(*cache.get(5).unwrap(), vec![1, 2, 9]);
    }

    #[test]
    fn changes_copy_on_write() {
        let cache = GroupCache::default();
        cache.created(1, 10);
        let before = cache.get(1).unwrap();
        cache.joined(1, 3);
        cache.joined(1, 3);
        assert_eq!(*before, vec![10], "a reader's snapshot is untouched");
        assert_eq!(*cache.get(1).unwrap(), vec![3, 10]);
        cache.left(1, 10);
        assert_eq!(*cache.get(1).unwrap(), vec![3]);
        cache.dismissed(1);
        assert!(cache.get(1).is_none());
    }
}
