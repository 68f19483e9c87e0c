//! The sweep: one timer per I/O loop that closes idle connections, looks
//! after connections before login (src/server/prelogin.rs) and closes the
//! ones marked for closing.
//!
//! Each loop keeps the connections it serves in a thread-local table (a
//! connection's callbacks always run on its own loop, so no lock is needed).
//! A timer on the loop walks the table every interval and, for each
//! connection:
//!
//! 1. closes it if it was marked before the previous sweep (refused at
//!    accept, or told it did not log in in time: the reply has had one
//!    interval at least to leave);
//! 2. closes it if its [`Context`] has been silent longer than the idle
//!    timeout (any bytes received reset the clock; a client with nothing to
//!    say sends `{"msgId":25}`, ping);
//! 3. gives back or takes its address slot as its login changed, and, when
//!    it has been anonymous longer than the login timeout with no login
//!    under way, sends it an ERROR_MSG (errno 3), shuts it down and marks
//!    it to be closed.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::{EventLoop, TcpConnectionPtr};

use super::context::Context;
use super::prelogin::{AddressSlots, Verdict};
use crate::protocol::{encode, errno, reply};
use crate::service::Login;

/// A tracked connection, and its context when it is not in the
/// connection's own slot (a WebSocket's, whose slot is the HTTP server's).
type Tracked = (TcpConnectionPtr, Option<Arc<Context>>);

thread_local! {
    /// The connections of this thread's loop, by id.
    static CONNECTIONS: RefCell<HashMap<u64, Tracked>> = RefCell::new(HashMap::new());
}

/// What the sweep enforces; one, shared by every loop.
#[derive(Debug)]
pub struct Rules {
    /// Close connections silent this long (`--idle-timeout`; `None`: never).
    pub idle_timeout: Option<Duration>,
    /// Close connections anonymous this long (`--login-timeout`; `None`:
    /// never).
    pub login_timeout: Option<Duration>,
    /// The anonymous connections of each address.
    pub slots: Arc<AddressSlots>,
}

/// Starts tracking a new connection. Its loop thread only.
pub fn track(conn: &TcpConnectionPtr) {
    CONNECTIONS.with(|c| c.borrow_mut().insert(conn.id(), (conn.clone(), None)));
}

/// Starts tracking a connection whose [`Context`] is `cx` (a WebSocket on
/// the web listener); [`untrack`] drops it. Its loop thread only.
pub fn track_with(conn: &TcpConnectionPtr, cx: Arc<Context>) {
    CONNECTIONS.with(|c| c.borrow_mut().insert(conn.id(), (conn.clone(), Some(cx))));
}

/// Stops tracking a closed connection. Its loop thread only.
pub fn untrack(conn: &TcpConnectionPtr) {
    CONNECTIONS.with(|c| c.borrow_mut().remove(&conn.id()));
}

/// How often a loop sweeps for a given timeout: a quarter of it, between
/// 100 ms and 1 s, so a connection is closed at most ~25% late.
pub fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Installs the sweep timer on `lp` (from the server's thread-init
/// callback), at the interval of the shorter timeout (1 s with none).
pub fn install(lp: &mut EventLoop, rules: Arc<Rules>) {
    let shortest = [rules.idle_timeout, rules.login_timeout]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Duration::from_secs(4));
    lp.run_every(sweep_interval(shortest), move |_| sweep(&rules));
}

fn sweep(rules: &Rules) {
    // A copy of the table: closing a connection untracks it.
    let conns: Vec<Tracked> = CONNECTIONS.with(|c| c.borrow().values().cloned().collect());
    let now = Instant::now();
    for (conn, own) in conns {
        let Some(cx) = own.or_else(|| conn.context::<Context>()) else {
            continue;
        };
        if cx.due_for_close() {
            conn.force_close();
            continue;
        }
        if let Some(timeout) = rules.idle_timeout.filter(|t| cx.idle_for() > *t) {
            log::info!("{}: idle for more than {timeout:?}, closing", conn.name());
            conn.force_close();
            continue;
        }
        check_login(rules, &conn, &cx, now);
    }
}

/// Step 3 of the sweep for one connection.
fn check_login(rules: &Rules, conn: &TcpConnectionPtr, cx: &Context, now: Instant) {
    // Under the session's lock for a moment, cloning nothing. A login under
    // way (queued behind other hashes in a storm, say) is not closed: the
    // timeout is for connections that never try.
    let login = match cx.session.state().login {
        Login::Active { .. } => Some(true),
        Login::Verifying | Login::Claimed { .. } => None,
        Login::Anonymous => Some(false),
    };
    let Some(logged_in) = login else {
        return;
    };
    let ip = conn.peer_addr().ip();
    let verdict = cx
        .prelogin
        .lock()
        .check(logged_in, now, rules.login_timeout, &rules.slots, ip);
    if verdict == Verdict::Expired {
        let timeout = rules.login_timeout.unwrap_or_default();
        log::info!("{}: not logged in within {timeout:?}, closing", conn.name());
        let why = format!("not logged in within {timeout:?}; closing");
        // Through the peer: a WebSocket frames it.
        cx.peer
            .send(encode(&reply::failure(None, errno::NOT_LOGGED_IN, &why)));
        cx.close_by_sweep();
        conn.shutdown();
    }
}
