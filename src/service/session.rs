//! `Session`: what the server knows about one connection.
//!
//! Stored as the connection's context (`conn.set_context(Arc<Session>)`),
//! so any thread holding the connection can reach it. The logged-in account
//! is the connection's *identity*: a `uid`/`from` in a request that names
//! anyone else is refused.
//!
//! # The login state machine
//!
//! ```text
//!  Anonymous ──login──► Verifying ──ok──► Claimed ──phase 2 done──► Active
//!      ▲                   │ wrong password      (map: LoggingIn)   (map: Online)
//!      └───────────────────┘                                          │
//!      ▲                                                    logout    │
//!      └──────────────────────────────────────────────────────────────┘
//! ```
//!
//! While a login is under way (`Verifying`, `Claimed`) further requests of
//! the connection are *held* and replayed, in order, when it ends: a client
//! may send `login` and its first chat message in one write.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use serde_json::{Map, Value};

/// Requests held during a login, at most.
pub const MAX_HELD: usize = 256;

/// The account side of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Not logged in.
    Anonymous,
    /// A login request is on a worker (the password is being checked).
    Verifying,
    /// The password was right and the online map holds `LoggingIn` for
    /// `uid`; offline messages are being fetched.
    Claimed {
        /// The account.
        uid: i64,
        /// Its name.
        name: String,
    },
    /// Logged in.
    Active {
        /// The account.
        uid: i64,
        /// Its name.
        name: String,
    },
}

/// The mutable part of a session, behind one mutex.
#[derive(Debug)]
pub struct SessionState {
    /// The login state.
    pub login: Login,
    /// The connection went down; no login may claim the account any more.
    pub closed: bool,
    /// Requests that arrived while a login was under way.
    pub held: VecDeque<Map<String, Value>>,
}

/// Per-connection state. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    conn_id: u64,
    state: Mutex<SessionState>,
    /// Milliseconds since [`epoch`] of the last bytes received.
    last_active_ms: AtomicU64,
    /// Set after a fatal decode error: the connection is closing and the
    /// rest of its input is ignored.
    discarding: AtomicBool,
    /// Chat messages of this session in the slow lane (a group post waiting
    /// for its member list to load). While non-zero, the session's later
    /// chat messages take the lane too, to keep their order. Touched only
    /// on the connection's I/O thread.
    slow_lane: AtomicU32,
}

/// The instant session clocks count from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Session {
    /// A fresh, anonymous session for connection `conn_id`.
    pub fn new(conn_id: u64) -> Session {
        Session {
            conn_id,
            state: Mutex::new(SessionState {
                login: Login::Anonymous,
                closed: false,
                held: VecDeque::new(),
            }),
            last_active_ms: AtomicU64::new(now_ms()),
            discarding: AtomicBool::new(false),
            slow_lane: AtomicU32::new(0),
        }
    }

    /// The connection's id (the worker shard key before login).
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }

    /// Locks the mutable state. Lock order: session, then an online-map shard.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock()
    }

    /// The logged-in account, `(uid, name)`, when [`Login::Active`].
    pub fn user(&self) -> Option<(i64, String)> {
        match &self.state.lock().login {
            Login::Active { uid, name } => Some((*uid, name.clone())),
            _ => None,
        }
    }

    /// Records activity now (any bytes received).
    pub fn touch(&self) {
        self.last_active_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long the connection has been silent.
    pub fn idle_for(&self) -> Duration {
        let last = self.last_active_ms.load(Ordering::Relaxed);
        Duration::from_millis(now_ms().saturating_sub(last))
    }

    /// Marks the connection as closing after a fatal input error.
    pub fn start_discarding(&self) {
        self.discarding.store(true, Ordering::Release);
    }

    /// `true` once [`Session::start_discarding`] was called.
    pub fn discarding(&self) -> bool {
        self.discarding.load(Ordering::Acquire)
    }

    /// Chat messages waiting in the slow lane.
    pub fn slow_lane(&self) -> u32 {
        self.slow_lane.load(Ordering::Acquire)
    }

    /// One more message enters the slow lane.
    pub fn enter_slow_lane(&self) {
        self.slow_lane.fetch_add(1, Ordering::AcqRel);
    }

    /// A message leaves the slow lane.
    pub fn leave_slow_lane(&self) {
        self.slow_lane.fetch_sub(1, Ordering::AcqRel);
    }
}
