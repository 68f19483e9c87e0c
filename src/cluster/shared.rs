//! `Shared`: what the cluster's three threads and its handle all read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::keys::Keys;
use super::{ClusterConfig, ClusterStats, LocalNode};

/// State shared by the handle and the publisher, subscriber and heartbeat
/// threads. Everything here is either immutable or atomic.
pub(crate) struct Shared {
    pub(crate) cfg: ClusterConfig,
    pub(crate) keys: Keys,
    /// Opens connections; holds only the parsed URL.
    pub(crate) client: redis::Client,
    /// The server, for deliveries, offline storage and the list of users.
    pub(crate) node: Arc<dyn LocalNode>,
    /// The value of this node's alive key: unique to this `Cluster`, so
    /// that the heartbeat can tell its own key from a previous process's.
    pub(crate) token: String,
    /// Asks the subscriber to leave at its next read timeout.
    pub(crate) stop: AtomicBool,
    /// A simulated crash: every thread leaves at once, cleaning nothing up.
    pub(crate) abort: AtomicBool,
    /// The publisher's connection is up (scripts loaded, presence synced).
    pub(crate) connected: AtomicBool,
    /// The subscriber is subscribed to this node's channel.
    pub(crate) subscribed: AtomicBool,
    pub(crate) counters: Counters,
}

impl Shared {
    /// `true` once `abort` was called.
    pub(crate) fn aborted(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }

    /// `true` once the subscriber should leave.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire) || self.aborted()
    }

    /// Stores a message the sender side could not publish.
    pub(crate) fn store_by_sender(&self, uid: i64, payload: Vec<u8>) {
        Counters::bump(&self.counters.stored_by_sender);
        self.node.store_offline(uid, payload);
    }
}

/// Event counters behind [`ClusterStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) stored_by_sender: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) stored_by_receiver: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> ClusterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClusterStats {
            published: get(&self.published),
            stored_by_sender: get(&self.stored_by_sender),
            delivered: get(&self.delivered),
            stored_by_receiver: get(&self.stored_by_receiver),
            reconnects: get(&self.reconnects),
        }
    }
}
