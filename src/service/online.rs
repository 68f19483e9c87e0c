//! `OnlineMap`: who is logged in on this node, and which peer they are on.
//!
//! The map is read on every chat message, by every I/O thread, so it is a
//! [`ShardedMap`] of [`SHARDS`] independent `parking_lot` mutexes by user
//! id: two messages for different users almost never meet on a lock, and
//! a shard is held for a lookup or an update, the send itself happening
//! after unlocking. The one exception is deliberate: a login's last step
//! sends the ack and the buffered messages before it unlocks, so that
//! nothing sent to the user afterwards can overtake them.
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

use parking_lot::MutexGuard;

use crate::runtime::{self, ShardedMap};

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

/// One shard: user id → presence (a [`runtime::Shard`], used as a
/// `HashMap`).
pub type Shard = runtime::Shard<i64, Presence>;

/// The sharded map. See the [module docs](self). Every method may be
/// called from any thread; none holds a lock when it returns, except
/// [`lock`](Self::lock)'s guard.
pub struct OnlineMap {
    shards: ShardedMap<i64, Presence>,
}

impl Default for OnlineMap {
    fn default() -> Self {
        OnlineMap {
            shards: ShardedMap::new(SHARDS),
        }
    }
}

impl OnlineMap {
    /// Locks the shard that holds `uid`. Keep the guard briefly, and lock
    /// no other shard while holding it (see the lock rule above).
    pub fn lock(&self, uid: i64) -> MutexGuard<'_, Shard> {
        self.shards.lock(&uid)
    }

    /// `true` when `uid` is logged in (or logging in) on this node.
    pub fn contains(&self, uid: i64) -> bool {
        self.shards.contains_key(&uid)
    }

    /// Every user id in the map (a snapshot, shard by shard).
    pub fn uids(&self) -> Vec<i64> {
        self.shards.keys()
    }
}
