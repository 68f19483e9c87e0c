//! `OnlineMap`: who is logged in on this node, and which peer they are on.
//!
//! The map is read on every chat message, by every I/O thread, so it is cut
//! into [`SHARDS`] independent `parking_lot` mutexes by user id: two messages
//! for different users almost never meet on a lock, and no lock is held for
//! more than a hash lookup (the send itself happens after unlocking).
//!
//! An entry is either [`Presence::Online`] with the user's peer, or
//! [`Presence::LoggingIn`] from a login's claim until its last step:
//! messages for the user are then *buffered* in the entry, and the login
//! flushes them right after the offline messages, so nothing overtakes.
//!
//! # Lock rule
//!
//! Whoever finds a user absent and decides to store a message offline for
//! them submits that job to the user's worker shard **while still holding
//! the user's shard lock**. A login inserts `LoggingIn` under the same lock
//! and submits its phase 2 to the same worker shard before unlocking. So
//! every offline write that saw "absent" is queued before the phase 2 that
//! reads the offline table. Lock order: a session's mutex, then a shard
//! here; never two shards at once.

use std::collections::HashMap;

use parking_lot::{Mutex, MutexGuard};

use super::peer::PeerRef;

/// Number of independent locks.
pub const SHARDS: usize = 64;

/// Where a logged-in (or logging-in) user is.
pub enum Presence {
    /// Logged in: deliver to this peer.
    Online(PeerRef),
    /// A login of the peer `peer_id` is between its claim and its last
    /// step. Messages that arrive meanwhile wait in `buffered` (encoded,
    /// ready to send) and go out right after the login ack.
    LoggingIn {
        /// The peer logging in.
        peer_id: u64,
        /// Messages for the user, in arrival order.
        buffered: Vec<Vec<u8>>,
    },
}

impl Presence {
    /// The id of the peer this entry belongs to; any thread.
    pub fn peer_id(&self) -> u64 {
        match self {
            Presence::Online(peer) => peer.id(),
            Presence::LoggingIn { peer_id, .. } => *peer_id,
        }
    }
}

/// One shard: user id → presence.
pub type Shard = HashMap<i64, Presence>;

/// The sharded map. See the [module docs](self).
pub struct OnlineMap {
    shards: Vec<Mutex<Shard>>,
}

impl Default for OnlineMap {
    fn default() -> Self {
        OnlineMap {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl OnlineMap {
    /// Locks the shard that holds `uid`. Keep the guard briefly.
    pub fn lock(&self, uid: i64) -> MutexGuard<'_, Shard> {
        self.shards[(uid.unsigned_abs() % SHARDS as u64) as usize].lock()
    }

    /// `true` when `uid` is logged in (or logging in) on this node.
    pub fn contains(&self, uid: i64) -> bool {
        self.lock(uid).contains_key(&uid)
    }

    /// Every user id in the map (a snapshot, shard by shard).
    pub fn uids(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for s in &self.shards {
            out.extend(s.lock().keys().copied());
        }
        out
    }

    /// Number of entries (a snapshot).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// `true` when nobody is online.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
