//! `KnownUsers`: user ids this node knows to exist, so that a log writer
//! need not ask the store whether a one-to-one recipient exists.
//!
//! A message to a user who does not exist is refused (errno 7) before it
//! is stored. Ids that registered or logged in here, or that a writer has
//! looked up once, are known; any other recipient costs the writer one
//! account read, after which the id is known.
//!
//! Accounts are never deleted, so an id, once known, stays valid: the set
//! only grows. It stops growing at [`MAX_KNOWN`] ids (tens of MiB); beyond
//! that, unknown recipients simply keep costing a read.

use crate::runtime::ShardedMap;

/// Number of independent locks.
const SHARDS: usize = 16;

/// Most ids remembered, in all shards together (approximately).
pub const MAX_KNOWN: usize = 4 << 20;

/// The set of ids: a [`ShardedMap`] whose values are empty. Every method
/// is safe on any thread and holds a lock only for a hash lookup.
pub struct KnownUsers {
    ids: ShardedMap<i64, ()>,
}

impl Default for KnownUsers {
    fn default() -> Self {
        KnownUsers {
            ids: ShardedMap::new(SHARDS),
        }
    }
}

impl KnownUsers {
    /// `true` when `uid` is known to exist.
    pub fn contains(&self, uid: i64) -> bool {
        self.ids.contains_key(&uid)
    }

    /// Remembers that `uid` exists (unless its shard is full).
    pub fn insert(&self, uid: i64) {
        let mut shard = self.ids.lock(&uid);
        if shard.len() < MAX_KNOWN / SHARDS {
            shard.insert(uid, ());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KnownUsers;

    #[test]
    fn remembers() {
        let k = KnownUsers::default();
        assert!(!k.contains(7));
        k.insert(7);
        k.insert(-3);
        assert!(k.contains(7) && k.contains(-3) && !k.contains(8));
    }
}
