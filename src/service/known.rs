//! `KnownUsers`: user ids this node knows to exist, so that a cluster node
//! can route a one-to-one message on the I/O thread.
//!
//! On a single node a message for an absent user goes to that user's
//! worker, whose store job checks that the user exists (or tells the
//! sender NOT_FOUND). In cluster mode an absent user is usually on another
//! node, and the message is handed to
//! [`Cluster::send_to_user`](crate::cluster::Cluster::send_to_user) at once
//! — but only for a user known to exist. An unknown recipient costs one
//! trip through the sender's slow lane (a worker reads the account), after
//! which the id is known.
//!
//! Accounts are never deleted, so an id, once known, stays valid: the set
//! only grows. It stops growing at [`MAX_KNOWN`] ids (tens of MiB); beyond
//! that, unknown recipients simply keep taking the slow lane.

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
