//! `ShardedMap`: a hash map cut into N independently locked shards.
//!
//! The server's shared maps are read by every I/O thread on every message:
//! who is online (`OnlineMap`), which users exist (`KnownUsers`), who is in
//! which group (`GroupCache`). One mutex around one map would make every
//! thread queue on it. Here the keys are spread over N `parking_lot`
//! mutexes, each guarding its own `HashMap`, so two threads meet on a lock
//! only when their keys land in the same shard:
//!
//! ```text
//!   lock(&7)  ─► 7 % N = 3 ─► shards[3]: Mutex<Shard { entries: {7: …, 19: …}, meta }>
//!   lock(&8)  ─► 8 % N = 4 ─► shards[4]: another lock, no waiting
//! ```
//!
//! [`lock`](ShardedMap::lock) hands out the whole shard, not one entry, for
//! the callers whose correctness rests on "everything about this key
//! happens under its shard lock" (the online map's lock rule). Each shard
//! can also carry a small value of its own, `meta` (the group cache keeps
//! a generation counter there); most maps leave it `()`.
//!
//! # Rules for callers
//!
//! * Hold a shard only for a lookup or an update: never across a database
//!   call, a hash or a send that may block.
//! * Never hold two shards of one map at once: there is no order between
//!   them, so two threads doing so could deadlock.
//! * Snapshots ([`keys`](ShardedMap::keys)) lock one shard after another:
//!   they see each shard at a different instant.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard};

use super::WordHash;

/// A key that picks its shard cheaply: [`spread`](ShardKey::spread) maps it
/// to a number whose remainder by the shard count is the shard.
///
/// The ids of this server (user and group ids, sequential from 1) spread
/// evenly as they are, so a modulo is all the hashing they need.
pub trait ShardKey: Eq + Hash {
    /// A number for choosing the shard; equal keys give equal numbers.
    fn spread(&self) -> u64;
}

impl ShardKey for i64 {
    fn spread(&self) -> u64 {
        self.unsigned_abs()
    }
}

impl ShardKey for u64 {
    fn spread(&self) -> u64 {
        *self
    }
}

/// One shard: its entries (reached through `Deref` as a plain `HashMap`,
/// keyed by [`WordHash`]: the online map is looked up several times per
/// delivery, and SipHash was a tenth of a group delivery's instructions)
/// and its `meta` value.
#[derive(Debug)]
pub struct Shard<K, V, M = ()> {
    entries: HashMap<K, V, WordHash>,
    /// The shard's own value, guarded by the same lock as its entries.
    pub meta: M,
}

impl<K, V, M> Deref for Shard<K, V, M> {
    type Target = HashMap<K, V, WordHash>;

    fn deref(&self) -> &HashMap<K, V, WordHash> {
        &self.entries
    }
}

impl<K, V, M> DerefMut for Shard<K, V, M> {
    fn deref_mut(&mut self) -> &mut HashMap<K, V, WordHash> {
        &mut self.entries
    }
}

/// A map from `K` to `V` in independently locked shards, each with a
/// `meta` value. See the [module docs](self). Every method may be called
/// from any thread; each locks one shard at a time.
pub struct ShardedMap<K, V, M = ()> {
    shards: Box<[Mutex<Shard<K, V, M>>]>,
}

impl<K: ShardKey, V, M: Default> ShardedMap<K, V, M> {
    /// An empty map of `shards` shards (at least one). More shards mean
    /// fewer collisions between threads and a slower [`keys`](Self::keys).
    pub fn new(shards: usize) -> Self {
        let shards = (0..shards.max(1))
            .map(|_| {
                Mutex::new(Shard {
                    entries: HashMap::default(),
                    meta: M::default(),
                })
            })
            .collect();
        ShardedMap { shards }
    }
}

impl<K: ShardKey, V, M> ShardedMap<K, V, M> {
    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Locks and returns the shard that holds `key` (whether or not the
    /// key is in it). Keep the guard briefly, and never lock a second
    /// shard of this map while holding it.
    pub fn lock(&self, key: &K) -> MutexGuard<'_, Shard<K, V, M>> {
        // In bounds: the remainder is below the length, which is at least 1.
        let index = (key.spread() % self.shards.len() as u64) as usize;
        self.shards[index].lock()
    }

    /// `true` when `key` has an entry.
    pub fn contains_key(&self, key: &K) -> bool {
        self.lock(key).contains_key(key)
    }

    /// Every key, shard by shard (each shard locked in turn, not all at
    /// once: see the [module docs](self)).
    pub fn keys(&self) -> Vec<K>
    where
        K: Clone,
    {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.lock().keys().cloned());
        }
        out
    }

    /// Runs `f` on every shard in turn, each under its lock (never two at
    /// once).
    pub fn each_shard(&self, mut f: impl FnMut(&mut Shard<K, V, M>)) {
        for shard in self.shards.iter() {
            f(&mut shard.lock());
        }
    }

    /// `f` of every entry, shard by shard (each shard locked in turn, as
    /// [`keys`](Self::keys) does).
    pub fn entries<T>(&self, mut f: impl FnMut(&K, &V) -> T) -> Vec<T> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            out.extend(shard.lock().iter().map(|(k, v)| f(k, v)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keys_land_in_their_shard_and_stay_there() {
        let map: ShardedMap<i64, &str> = ShardedMap::new(4);
        assert_eq!(map.shard_count(), 4);
        map.lock(&7).insert(7, "seven");
        map.lock(&-7).insert(-7, "minus seven");
        map.lock(&8).insert(8, "eight");
        assert!(map.contains_key(&7) && map.contains_key(&-7) && map.contains_key(&8));
        assert!(!map.contains_key(&11), "same shard as 7, not in it");
        // 7, -7 and 11 share a shard; 8 has its own.
        assert_eq!(map.lock(&11).len(), 2);
        assert_eq!(map.lock(&8).len(), 1);
        assert_eq!(map.lock(&7).get(&-7), Some(&"minus seven"));
        let mut keys = map.keys();
        keys.sort_unstable();
        assert_eq!(keys, [-7, 7, 8]);
        map.lock(&8).remove(&8);
        assert_eq!(map.keys().len(), 2);
    }

    #[test]
    fn meta_lives_under_the_shard_lock() {
        let map: ShardedMap<u64, (), u64> = ShardedMap::new(2);
        map.lock(&1).meta += 1;
        map.lock(&3).meta += 1; // the same shard as 1
        assert_eq!(map.lock(&5).meta, 2);
        assert_eq!(map.lock(&2).meta, 0, "the other shard's own value");
        assert!(map.keys().is_empty());
    }

    #[test]
    fn zero_shards_means_one() {
        let map: ShardedMap<i64, i64> = ShardedMap::new(0);
        assert_eq!(map.shard_count(), 1);
        map.lock(&i64::MIN).insert(i64::MIN, 1);
        assert!(map.contains_key(&i64::MIN));
    }

    #[test]
    fn threads_updating_different_keys_lose_nothing() {
        let map: Arc<ShardedMap<u64, u64>> = Arc::new(ShardedMap::new(8));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let map = map.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        *map.lock(&(i % 16)).entry(i % 16).or_insert(0) += 1;
                        let own = 1000 + t * 1000 + i;
                        map.lock(&own).insert(own, t);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let counted: u64 = (0..16).map(|k| map.lock(&k)[&k]).sum();
        assert_eq!(counted, 4000);
        assert_eq!(map.keys().len(), 16 + 4000);
    }
}
