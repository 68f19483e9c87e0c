//! `Shared`: what the cluster's three threads and its handle all read.
//!
//! This module sits below the threads' modules: the publisher, subscriber
//! and heartbeat all import it, it imports none of them. What two threads
//! both need (the beat command, which the heartbeat sends on its timer and
//! the publisher on each connect) lives here, so that no thread's module
//! imports another's except for the queue they talk through (the heartbeat
//! sends the publisher's `Op`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Cmd;

use super::barrier::Barriers;
use super::keys::Keys;
use super::protocol;
use super::routes::Routes;
use super::scripts::BEAT;
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
    /// This node's group changes waiting for the other nodes.
    pub(crate) barriers: Barriers,
    /// uid → the live nodes holding the user, kept by presence events.
    pub(crate) routes: Routes,
    /// Publishes in the publisher's queue (bounded by
    /// `cfg.max_queued_publishes`).
    pub(crate) queued_publishes: AtomicUsize,
    /// A publish was refused at the full queue since the publisher last
    /// looked: it reports missed routes (the catch-up channel).
    pub(crate) overflowed: AtomicBool,
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

    /// Counts one more publish in the publisher's queue, unless it is
    /// full: then counts the overflow and flags it for the publisher, which
    /// tells the other nodes to catch their users up (the refused message
    /// is in the log; only its live delivery is missed).
    pub(crate) fn take_publish_room(&self) -> bool {
        if self.queued_publishes.fetch_add(1, Ordering::AcqRel) < self.cfg.max_queued_publishes {
            return true;
        }
        self.queued_publishes.fetch_sub(1, Ordering::AcqRel);
        Counters::bump(&self.counters.publish_overflows);
        self.overflowed.store(true, Ordering::Release);
        false
    }

    /// Stores a message the sender side could not publish.
    pub(crate) fn store_by_sender(&self, uid: i64, payload: Vec<u8>) {
        Counters::bump(&self.counters.stored_by_sender);
        self.node.store_offline(uid, payload);
    }

    /// Stores a message no node took: by the sender, or (`forwarded`) by
    /// the node that received it for a user not there and found nobody
    /// else holding them.
    pub(crate) fn store_unrouted(&self, uid: i64, payload: Vec<u8>, forwarded: bool) {
        if forwarded {
            Counters::bump(&self.counters.stored_by_receiver);
            self.node.store_offline(uid, payload);
        } else {
            self.store_by_sender(uid, payload);
        }
    }

    /// The beat: sets this node's alive key to its token with a TTL of
    /// `liveness`, and answers 1 (refreshed), 0 (the key had vanished) or
    /// 2 (it held another token). The heartbeat thread sends it every beat;
    /// the publisher sends it too when it connects, so that a node is alive
    /// again as soon as it can publish (not one beat interval later).
    pub(crate) fn beat_command(&self) -> Cmd {
        let mut c = redis::cmd("EVAL");
        c.arg(BEAT)
            .arg(1)
            .arg(self.keys.alive())
            .arg(&self.token)
            .arg(millis(self.cfg.liveness));
        c
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A value no other `Cluster` writes: pid and start time, and the
/// inter-node protocol (`-p1`, see `protocol.rs`). It becomes
/// [`Shared::token`].
pub(crate) fn process_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    protocol::mark(&format!("{}-{nanos}", std::process::id()))
}

/// Event counters behind [`ClusterStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) stored_by_sender: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) stored_by_receiver: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) publish_overflows: AtomicU64,
    pub(crate) route_hits: AtomicU64,
    pub(crate) route_misses: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) batch_publishes: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
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
            publish_overflows: get(&self.publish_overflows),
            route_hits: get(&self.route_hits),
            route_misses: get(&self.route_misses),
            forwarded: get(&self.forwarded),
            batch_publishes: get(&self.batch_publishes),
        }
    }
}
