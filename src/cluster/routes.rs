//! `Routes`: the route cache, uid → the live nodes holding sessions of the
//! user, so that a message to a known user costs no Redis round trip of
//! its own (it joins its node's frame, `publisher/tick.rs`).
//!
//! An entry is the list the `route` script found (this node included when
//! it holds sessions of the user); an empty list is a *negative* entry:
//! the user is on no live node. Entries are filled from the script's
//! answers on the publisher thread and removed by presence events: every
//! `claim`, `release` and `set` script publishes the uid on
//! `{prefix}:presence`, atomically with its change, and every node's
//! subscriber then calls [`Routes::forget`].
//!
//! # A fill computed before an invalidation is refused
//!
//! The publisher reads the shard's generation ([`Routes::generation`])
//! *before* it sends the script, and [`Routes::fill`] stores the answer only
//! if the generation is unchanged. A presence event that arrives between
//! the two bumps it, so the answer (which may predate the change) is
//! dropped; an event that arrives after the fill removes the entry. Either
//! way no entry outlives the event of a change it does not reflect. (The
//! same scheme as the group cache, `src/service/group_cache.rs`.)
//!
//! # When events may have been missed
//!
//! After a (re)subscribe, the loss of the subscription, a catch-up report
//! and the loss of the publisher's link, [`Routes::clear`] forgets
//! everything; while the subscriber is not subscribed the publisher does
//! not use the cache at all (the other nodes' claims do not wait for a
//! node that does not hear their events). A `PUBLISH` to
//! node X that reaches nobody (X dead or restarting) makes the publisher
//! forget every entry naming X ([`Routes::forget_node`]).
//!
//! The cache is bounded: a shard holding its share of `max_entries` is
//! cleared before the next fill (a miss costs only what every message
//! cost before the cache).

use std::sync::Arc;

use crate::runtime::ShardedMap;

const SHARDS: usize = 16;

/// The live nodes holding a user's sessions (empty: none).
pub(crate) type Nodes = Arc<[String]>;

/// The cache. See the [module docs](self). Any thread; each call holds
/// one shard's lock for a lookup or a small update.
pub(crate) struct Routes {
    /// uid → nodes; each shard's `meta` is its generation.
    map: ShardedMap<i64, Nodes, u64>,
    /// Entries per shard before the shard is cleared.
    per_shard: usize,
}

impl Routes {
    /// An empty cache of at most about `max_entries` entries (0: no cache,
    /// every message goes through the script).
    pub(crate) fn new(max_entries: usize) -> Routes {
        Routes {
            map: ShardedMap::new(SHARDS),
            per_shard: max_entries.div_ceil(SHARDS),
        }
    }

    /// The nodes of `uid`, if cached.
    pub(crate) fn get(&self, uid: i64) -> Option<Nodes> {
        self.map.lock(&uid).get(&uid).cloned()
    }

    /// The generation to pass to [`fill`](Self::fill); read it before
    /// sending the script whose answer fills.
    pub(crate) fn generation(&self, uid: i64) -> u64 {
        self.map.lock(&uid).meta
    }

    /// Stores `nodes` for `uid` unless the shard changed since
    /// `generation`. Returns whether it was stored.
    pub(crate) fn fill(&self, uid: i64, generation: u64, nodes: Nodes) -> bool {
        if self.per_shard == 0 {
            return false;
        }
        let mut shard = self.map.lock(&uid);
        if shard.meta != generation {
            return false;
        }
        if shard.len() >= self.per_shard && !shard.contains_key(&uid) {
            shard.clear();
        }
        shard.insert(uid, nodes);
        true
    }

    /// `uid`'s presence changed (a presence event, or this node's own
    /// claim or release going out): forgotten, and a fill under way for
    /// any uid of its shard refused.
    pub(crate) fn forget(&self, uid: i64) {
        let mut shard = self.map.lock(&uid);
        shard.meta += 1;
        shard.remove(&uid);
    }

    /// `node` did not receive a publish: every entry naming it goes.
    pub(crate) fn forget_node(&self, node: &str) {
        self.map.each_shard(|shard| {
            let before = shard.len();
            shard.retain(|_, nodes| !nodes.iter().any(|n| n == node));
            if shard.len() != before {
                shard.meta += 1;
            }
        });
    }

    /// Events may have been missed: everything goes, every fill under way
    /// is refused.
    pub(crate) fn clear(&self) {
        self.map.each_shard(|shard| {
            shard.meta += 1;
            shard.clear();
        });
    }

    /// The number of entries (tests, metrics).
    #[cfg(test)]
    fn len(&self) -> usize {
        let mut n = 0;
        self.map.each_shard(|s| n += s.len());
        n
    }
}

/// `names` as a [`Nodes`] list.
pub(crate) fn nodes<S: AsRef<str>>(names: &[S]) -> Nodes {
    names.iter().map(|n| n.as_ref().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::{nodes, Routes};

    #[test]
    fn a_fill_after_an_invalidation_is_refused() {
        let r = Routes::new(1000);
        let g = r.generation(7);
        r.forget(7); // a presence event between the read and the fill
        assert!(!r.fill(7, g, nodes(&["b"])));
        assert_eq!(r.get(7), None);
        let g = r.generation(7);
        assert!(r.fill(7, g, nodes(&["b"])));
        assert_eq!(r.get(7).as_deref(), Some(&["b".to_owned()][..]));
        r.forget(7);
        assert_eq!(r.get(7), None, "an event after the fill removes it");
    }

    #[test]
    fn negative_entries_node_loss_and_clear() {
        let r = Routes::new(1000);
        assert!(r.fill(1, r.generation(1), nodes::<&str>(&[])));
        assert_eq!(r.get(1).map(|n| n.len()), Some(0), "negative entry");
        assert!(r.fill(2, r.generation(2), nodes(&["x", "y"])));
        assert!(r.fill(3, r.generation(3), nodes(&["y"])));
        let g = r.generation(2);
        r.forget_node("x");
        assert_eq!(r.get(2), None);
        assert!(r.get(3).is_some() && r.get(1).is_some());
        assert!(!r.fill(2, g, nodes(&["x"])), "generation moved");
        r.clear();
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn bounded() {
        let r = Routes::new(32); // 2 per shard
        for uid in 0..10_000 {
            r.fill(uid, r.generation(uid), nodes(&["a"]));
        }
        assert!(r.len() <= 32, "{} entries", r.len());
        let off = Routes::new(0);
        assert!(!off.fill(1, off.generation(1), nodes(&["a"])));
    }
}
