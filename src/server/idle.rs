//! Closing idle connections: one sweep timer per I/O loop.
//!
//! Each loop keeps the connections it serves in a thread-local table (a
//! connection's callbacks always run on its own loop, so no lock is needed).
//! A timer on the loop walks the table every `interval` and closes the
//! connections whose [`Context`] has been silent longer than the timeout. Any
//! bytes received reset the clock; a client with nothing to say sends
//! `{"msgId":25}` (ping).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use net::{EventLoop, TcpConnectionPtr};

use super::context::Context;

thread_local! {
    /// The connections of this thread's loop, by id.
    static CONNECTIONS: RefCell<HashMap<u64, TcpConnectionPtr>> = RefCell::new(HashMap::new());
}

/// Starts tracking a new connection. Its loop thread only.
pub fn track(conn: &TcpConnectionPtr) {
    CONNECTIONS.with(|c| c.borrow_mut().insert(conn.id(), conn.clone()));
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

/// Installs the sweep timer on `lp` (from the server's thread-init callback).
pub fn install(lp: &mut EventLoop, timeout: Duration) {
    lp.run_every(sweep_interval(timeout), move |_| sweep(timeout));
}

fn sweep(timeout: Duration) {
    let idle: Vec<TcpConnectionPtr> = CONNECTIONS.with(|c| {
        c.borrow()
            .values()
            .filter(|conn| {
                conn.context::<Context>()
                    .is_some_and(|cx| cx.idle_for() > timeout)
            })
            .cloned()
            .collect()
    });
    for conn in idle {
        log::info!("{}: idle for more than {timeout:?}, closing", conn.name());
        conn.force_close();
    }
}
