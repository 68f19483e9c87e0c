//! [`Context`]: what the server keeps on each connection (net's
//! per-connection context, muduo's `boost::any`).
//!
//! It pairs the connection's [`Peer`](crate::service::Peer) and its
//! service [`Session`], which every message callback hands to
//! [`Service::handle`](crate::service::Service::handle), with the things
//! only the server cares about: when bytes last arrived (for the idle
//! sweep, src/server/idle.rs, and the service's login takeover, via
//! `Peer::idle_for`), the codec's [`Decoder`] (how far a split message has
//! been scanned), whether the rest of the input is to be ignored after a
//! fatal decode error, the connection's state before login ([`PreLogin`],
//! src/server/prelogin.rs) and whether a sweep is to close it.
//!
//! The context holds the peer, and the peer holds the connection: a cycle
//! that the connection callback breaks when the connection goes down
//! (`clear_context`), after [`Service::disconnected`](crate::service::Service::disconnected).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::prelogin::{PreLogin, Slot};
use crate::protocol::Decoder;
use crate::service::{PeerRef, Session};

/// The server's per-connection state. See the [module docs](self).
pub struct Context {
    /// The connection, as the service sees it.
    pub peer: PeerRef,
    /// The service's state for it.
    pub session: Arc<Session>,
    /// Milliseconds since [`epoch`] of the last bytes received.
    last_active_ms: AtomicU64,
    /// The connection's decoder, so that a message split across reads is
    /// scanned once, not once per read. Only the connection's I/O thread
    /// locks it (uncontended), in the message callback.
    pub decoder: Mutex<Decoder>,
    /// Set after a fatal decode error: the connection is closing and the
    /// rest of its input is ignored.
    discarding: AtomicBool,
    /// Its address slot and login clock; only its loop's thread locks it.
    pub prelogin: Mutex<PreLogin>,
    /// Its place in its address's connections
    /// (`--max-connections-per-address`), for its whole life; `None` when
    /// refused (or no limit).
    _connection_slot: Option<Slot>,
    /// Told why and shut down (refused, or not logged in in time): 1 when
    /// marked, 2 once a sweep has seen it; the sweep after that closes it,
    /// whether or not the peer closed first.
    closing: AtomicU8,
}

/// The instant the activity clocks count from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Context {
    /// A context for `peer` from `ip`, with a fresh anonymous session,
    /// active now, holding its address's anonymous `slot` (`None`: refused,
    /// see [`Context::close_by_sweep`]) and `connection_slot`; any thread.
    pub fn new(
        peer: PeerRef,
        ip: IpAddr,
        slot: Option<Slot>,
        connection_slot: Option<Slot>,
    ) -> Context {
        let session = Arc::new(Session::with_address(peer.id(), Some(ip)));
        Context {
            peer,
            session,
            last_active_ms: AtomicU64::new(now_ms()),
            decoder: Mutex::new(Decoder::new()),
            discarding: AtomicBool::new(false),
            prelogin: Mutex::new(PreLogin::new(slot)),
            _connection_slot: connection_slot,
            closing: AtomicU8::new(0),
        }
    }

    /// Records activity now (any bytes received); any thread.
    pub fn touch(&self) {
        self.last_active_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long the connection has been silent; any thread.
    pub fn idle_for(&self) -> Duration {
        let last = self.last_active_ms.load(Ordering::Relaxed);
        Duration::from_millis(now_ms().saturating_sub(last))
    }

    /// Marks the connection as closing after a fatal input error; any
    /// thread.
    pub fn start_discarding(&self) {
        self.discarding.store(true, Ordering::Release);
    }

    /// `true` once [`Context::start_discarding`] was called; any thread.
    pub fn discarding(&self) -> bool {
        self.discarding.load(Ordering::Acquire)
    }

    /// Ignores the rest of the input and marks the connection for the
    /// sweep to close, one sweep interval at least from now, so that the
    /// reply already sent has time to leave before the close; any thread.
    pub fn close_by_sweep(&self) {
        self.start_discarding();
        let _ = self
            .closing
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Asked by each sweep: `true` when the connection, marked by
    /// [`Context::close_by_sweep`] before the previous sweep, is to be
    /// closed now; the first sweep after the mark only notes it. The
    /// connection's loop thread (the sweep).
    pub fn due_for_close(&self) -> bool {
        match self.closing.load(Ordering::Acquire) {
            0 => false,
            1 => {
                self.closing.store(2, Ordering::Release);
                false
            }
            _ => true,
        }
    }
}
