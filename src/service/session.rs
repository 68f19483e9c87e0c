//! `Session`: the service's state for one peer, its login above all.
//!
//! The server creates one per connection ([`Session::with_address`] with
//! the peer's id and source address), keeps it beside the peer and passes both to every
//! [`Service::handle`](super::Service::handle) and to
//! [`Service::disconnected`](super::Service::disconnected). The logged-in
//! account is the peer's *identity*: a `uid`/`from` in a request that names
//! anyone else is refused. (What only the server cares about, the idle
//! clock and the "discard the rest of the input" flag, is the server's;
//! see src/server/context.rs.)
//!
//! # The login state machine
//!
//! ```text
//!  Anonymous ─login─► Verifying ─password right, not online─► Claimed ─phase 3─► Active
//!      ▲                 │            (map: LoggingIn)          │          (map: Online)
//!      │                 │ wrong password,                      │ phase 2's       │
//!      ├─────────────────┘ errno 2, store failed                │ store failed    │
//!      ├────────────────────────────────────────────────────────┘                 │
//!      └────────────────────────────── logout ────────────────────────────────────┘
//! ```
//!
//! A disconnect, in any state, sets [`SessionState::closed`] and goes back
//! to `Anonymous`, removing the online-map entry of a `Claimed` or `Active`
//! login (see `account::disconnected`); a login step that finds the session
//! closed stops without answering.
//!
//! While a login is under way (`Verifying`, `Claimed`) the peer's further
//! requests are *held* here ([`Held`]) and replayed in order on the peer's
//! own thread when the login ends, after its ack: a client may send `login`
//! and its first chat message in one write. What is held is bounded by
//! bytes, per session and across the process ([`HoldBudget`]), and by a
//! count ([`MAX_HELD`]); a request beyond a bound is refused with
//! `BAD_REQUEST` (see `Service::handle`).
//!
//! # Limits that live here
//!
//! Besides the login, a session counts what its connection has asked for
//! and not yet been answered, and how fast it asks:
//!
//! - hashing jobs ([`PendingHash`], `--max-pending-hashes`);
//! - worker jobs of its requests ([`PendingRequest`],
//!   `--max-pending-requests`);
//! - two token buckets ([`bucket`]): one for chat messages (9, 13;
//!   `--chat-rate`, `--chat-burst`) and one for every other request after
//!   the parse (`--request-rate`, `--request-burst`).
//!
//! # Lock order
//!
//! The session's mutex first, then an online-map shard; never the other
//! way round.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, MutexGuard};

pub mod bucket;
mod held;

use super::login_limits::AddressCount;
use super::sessions::TypingGate;
use crate::model::Conv;

pub use bucket::{Rate, TokenBucket};
pub use held::{footprint, Held, HoldBudget, MAX_HELD};

/// The account side of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Not logged in.
    Anonymous,
    /// A login request is being checked: on the hashing pool (the
    /// password), then on the user's worker (the claim).
    Verifying,
    /// The password was right and the online map holds `LoggingIn` for
    /// `uid`; the login ack is being built (phase 2) or waits for the
    /// peer's own thread (phase 3).
    Claimed {
        /// The account.
        uid: i64,
        /// Its name.
        name: String,
    },
    /// Logged in: the online map holds `Online` with this peer.
    Active {
        /// The account.
        uid: i64,
        /// Its name, shared: every request's [`Me`](super::Me) holds it
        /// without a copy.
        name: Arc<str>,
    },
}

/// The mutable part of a session, behind one mutex.
#[derive(Debug)]
pub struct SessionState {
    /// The login state.
    pub login: Login,
    /// The peer went down; no login may claim the account any more.
    pub closed: bool,
    /// Requests that arrived while a login was under way, oldest first,
    /// with the bytes they are charged against the [`HoldBudget`].
    pub held: Held,
}

/// The service's state for one peer. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    /// The peer's id: the worker shard key before login.
    peer_id: u64,
    /// Its source address, for the limits per address
    /// (src/service/login_limits.rs); `None`: none apply.
    address: Option<IpAddr>,
    state: Mutex<SessionState>,
    /// Hashing jobs (register, login phase 1) of this session queued or
    /// running: one [`PendingHash`] each.
    hashing: AtomicU32,
    /// Worker jobs of this session's requests queued or running: one
    /// [`PendingRequest`] each.
    requests: AtomicU32,
    /// The rate limits' buckets. Only the peer's own thread takes this
    /// lock, so it is never contended (it is a lock only because the
    /// session is shared with the workers).
    buckets: Mutex<Buckets>,
    /// When typing notices were last relayed ([`super::sessions`]); the
    /// peer's own thread only, like `buckets`.
    typing: Mutex<TypingGate>,
}

/// Which of a session's buckets a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// Chat and group chat (9, 13).
    Chat,
    /// Every other request.
    Request,
}

/// A session's two token buckets.
#[derive(Debug, Default)]
struct Buckets {
    chat: TokenBucket,
    request: TokenBucket,
}

/// One worker job of a session's request, queued or running: counted by
/// [`Session::pending_requests`] from [`PendingRequest::new`] until it is
/// dropped. Any thread.
pub struct PendingRequest(Arc<Session>);

impl PendingRequest {
    /// Counts one more worker job of `session`; any thread (the service
    /// does it on the peer's own thread, right after checking the limit).
    pub fn new(session: &Arc<Session>) -> PendingRequest {
        session.requests.fetch_add(1, Ordering::AcqRel);
        PendingRequest(session.clone())
    }
}

impl Drop for PendingRequest {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One hashing job of a session, queued or running: counted by
/// [`Session::pending_hashes`] (and in its address's count, if one is
/// kept) from [`PendingHash::new`] until it is dropped (when the job ends,
/// is dropped unrun, or never runs because the pool stopped). Any thread;
/// the drop takes no lock.
pub struct PendingHash {
    session: Arc<Session>,
    address: Option<AddressCount>,
}

impl PendingHash {
    /// Counts one more hashing job of `session`, whose address's count
    /// (taken already) is `address`; any thread (the service does it on
    /// the peer's own thread, right after checking the limits).
    pub fn new(session: &Arc<Session>, address: Option<AddressCount>) -> PendingHash {
        session.hashing.fetch_add(1, Ordering::AcqRel);
        PendingHash {
            session: session.clone(),
            address,
        }
    }
}

impl Drop for PendingHash {
    fn drop(&mut self) {
        self.session.hashing.fetch_sub(1, Ordering::AcqRel);
        if let Some(n) = &self.address {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Session {
    /// A fresh, anonymous session for the peer `peer_id`, of no known
    /// address; any thread.
    pub fn new(peer_id: u64) -> Session {
        Session::with_address(peer_id, None)
    }

    /// A fresh, anonymous session for the peer `peer_id` from `address`
    /// (an IPv4-mapped IPv6 address counts as the IPv4 one); any thread.
    pub fn with_address(peer_id: u64, address: Option<IpAddr>) -> Session {
        Session {
            peer_id,
            address: address.map(|ip| ip.to_canonical()),
            state: Mutex::new(SessionState {
                login: Login::Anonymous,
                closed: false,
                held: Held::default(),
            }),
            hashing: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            buckets: Mutex::new(Buckets::default()),
            typing: Mutex::new(TypingGate::default()),
        }
    }

    /// The peer's id (the worker shard key before login); any thread.
    pub fn peer_id(&self) -> u64 {
        self.peer_id
    }

    /// The peer's source address, if known; any thread.
    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }

    /// Locks the mutable state; any thread, briefly. Lock order: the
    /// session, then an online-map shard.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    /// The logged-in account, `(uid, name)`, when [`Login::Active`]; any
    /// thread.
    pub fn user(&self) -> Option<(i64, Arc<str>)> {
        match &self.state.lock().login {
            Login::Active { uid, name } => Some((*uid, name.clone())),
            _ => None,
        }
    }

    /// Whether a typing notice in `conv` at `now` may be relayed (at most
    /// one per [`TYPING_INTERVAL`](super::sessions::TYPING_INTERVAL) and
    /// conversation); the peer's own thread.
    pub fn typing_admits(&self, conv: Conv, now: Instant) -> bool {
        self.typing.lock().admit(conv, now)
    }

    /// The session's hashing jobs queued or running ([`PendingHash`]); any
    /// thread. `--max-pending-hashes` bounds it.
    pub fn pending_hashes(&self) -> u32 {
        self.hashing.load(Ordering::Acquire)
    }

    /// The session's worker jobs queued or running ([`PendingRequest`]);
    /// any thread. `--max-pending-requests` bounds it.
    pub fn pending_requests(&self) -> u32 {
        self.requests.load(Ordering::Acquire)
    }

    /// Takes a token from `which` bucket under `rate` at `now`, or says
    /// how long until one is there (see [`TokenBucket::take`]). The peer's
    /// own thread; O(1).
    ///
    /// # Errors
    /// The wait until the next token, when that bucket is empty.
    pub fn take_token(
        &self,
        which: Bucket,
        rate: Rate,
        now: std::time::Instant,
    ) -> Result<(), std::time::Duration> {
        let mut buckets = self.buckets.lock();
        match which {
            Bucket::Chat => buckets.chat.take(rate, now),
            Bucket::Request => buckets.request.take(rate, now),
        }
    }
}
