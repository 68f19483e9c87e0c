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
//! A user's entry is the list of their *sessions* on this node (one per
//! connection; at most `--sessions-per-user`, 1 by default: see
//! [`super::sessions`]), never empty. A session is either
//! [`Presence::Online`] with its peer and its [`Cursors`], or
//! [`Presence::LoggingIn`] from a login's claim until its last step:
//! messages for the user are then *buffered* in the session, and the login
//! replays them right after the ack, so nothing overtakes.
//!
//! Every message of the log reaches a user through [`super::delivery`],
//! which keeps the cursors: per conversation, the last seq this connection
//! was handed (or sent itself).
//!
//! # Lock rule
//!
//! A message of the log is committed before anyone looks the recipient up
//! here; one that finds the user absent needs nothing more (the log holds
//! it, and the next login's phase 2 reads it). A login inserts `LoggingIn`
//! under the user's shard lock, and whatever finds that entry buffers the
//! message in it. Jobs that must run before the user's next login (writing
//! a closed connection's cursors) are submitted to the user's worker while
//! the lock is held, as the login's phase 2 is. Lock order: a session's
//! mutex, then a shard here, then a peer's output lock; never two shards
//! at once.

use parking_lot::MutexGuard;

use crate::runtime::{self, ShardedMap};

use super::cursors::{Cursors, Delivery};
use super::peer::PeerRef;

/// Number of independent locks.
pub const SHARDS: usize = 64;

/// Where a logged-in (or logging-in) user is.
pub enum Presence {
    /// Logged in: deliver to this peer.
    Online {
        /// The peer.
        peer: PeerRef,
        /// What it has been handed, per conversation.
        cursors: Cursors,
    },
    /// A login of the peer `peer_id` is between its claim and its last
    /// step. Messages that arrive meanwhile wait in `buffered` and go out
    /// right after the login ack (those the ack carried already are
    /// skipped then).
    LoggingIn {
        /// The peer logging in.
        peer_id: u64,
        /// Messages for the user, in arrival order; at most
        /// [`MAX_BUFFERED`] (a message beyond it is dropped here and
        /// fetched from the log after the login, as a gap).
        buffered: Vec<Delivery>,
    },
}

/// The most messages a [`Presence::LoggingIn`] entry buffers.
pub const MAX_BUFFERED: usize = 4096;

impl Presence {
    /// A logged-in entry for `peer` with these cursors.
    pub fn online(peer: PeerRef, cursors: Cursors) -> Presence {
        Presence::Online { peer, cursors }
    }

    /// The id of the peer this entry belongs to; any thread.
    pub fn peer_id(&self) -> u64 {
        match self {
            Presence::Online { peer, .. } => peer.id(),
            Presence::LoggingIn { peer_id, .. } => *peer_id,
        }
    }
}

/// One shard: user id → their sessions here, never empty (a
/// [`runtime::Shard`], used as a `HashMap`).
pub type Shard = runtime::Shard<i64, Vec<Presence>>;

/// The session of the peer `peer_id` among `uid`'s, if there is one.
pub fn session_mut(shard: &mut Shard, uid: i64, peer_id: u64) -> Option<&mut Presence> {
    shard
        .get_mut(&uid)?
        .iter_mut()
        .find(|p| p.peer_id() == peer_id)
}

/// The sharded map. See the [module docs](self). Every method may be
/// called from any thread; none holds a lock when it returns, except
/// [`lock`](Self::lock)'s guard.
pub struct OnlineMap {
    shards: ShardedMap<i64, Vec<Presence>>,
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

    /// The peers of `uid`'s logged-in sessions here that are still
    /// connected (a snapshot).
    pub fn peers(&self, uid: i64) -> Vec<PeerRef> {
        match self.lock(uid).get(&uid) {
            Some(sessions) => sessions
                .iter()
                .filter_map(|p| match p {
                    Presence::Online { peer, .. } if peer.connected() => Some(peer.clone()),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// The ids of `uid`'s sessions here (logged in or logging in).
    pub fn session_ids(&self, uid: i64) -> Vec<u64> {
        self.lock(uid)
            .get(&uid)
            .map_or_else(Vec::new, |s| s.iter().map(Presence::peer_id).collect())
    }

    /// How many sessions `uid` has here (logged in or logging in).
    pub fn session_count(&self, uid: i64) -> usize {
        self.lock(uid).get(&uid).map_or(0, Vec::len)
    }

    /// Every user id in the map (a snapshot, shard by shard).
    pub fn uids(&self) -> Vec<i64> {
        self.shards.keys()
    }

    /// Every user in the map with their number of sessions here, logged
    /// in or logging in (a snapshot, shard by shard).
    pub fn session_counts(&self) -> Vec<(i64, usize)> {
        self.shards.entries(|uid, sessions| (*uid, sessions.len()))
    }
}
