//! The suite's harness: everything a test needs to start the real programs,
//! talk to them and clean up after itself.
//!
//! | module | what |
//! |---|---|
//! | [`trial`] | [`Test`]: a named test, what it needs, whether it runs alone; the `tests!` and `both_stores!` macros |
//! | [`require`] | [`Need`]: MariaDB, Redis, `redis-server`, nginx, tmux, Chromium; probed once, missing ones reported |
//! | [`db`] | [`TestDb`]: a private SQLite file or MySQL database per test, removed on drop |
//! | [`server`] | [`Server`]: a `chat-server` process on `127.0.0.1:0`, found by its announce line |
//! | [`client`] | [`Client`]: a blocking protocol client where every read has a deadline |
//! | [`log`] | the message log's requests: chats with a `cid` and their acks, SYNC pages, CONVS, READ |
//! | [`cli`] | [`CliClient`]: a `chat-client` process driven through its standard streams |
//! | [`redis`] | a Redis connection, a key prefix of the test's own, a private `redis-server` |
//! | [`nginx`] | nginx (its stream module) in front of some servers |
//! | [`cluster`] | [`Env`] and [`Cluster`]: nodes on one MySQL database and one Redis, nginx in front |
//! | [`tls`] | a test CA, certificates (valid, expired) and their PEM files, a rustls client config |
//! | [`webdriver`] | [`webdriver::Driver`]: chromedriver and headless Chromium sessions over W3C WebDriver |
//!
//! Every wait is bounded, so a broken program fails a test instead of
//! hanging the suite.

// First: its `tests!` and `both_stores!` macros are used by the modules below
// and by every area of the suite.
#[macro_use]
pub mod trial;

pub mod cli;
pub mod client;
pub mod cluster;
pub mod db;
pub mod log;
pub mod nginx;
pub mod redis;
pub mod require;
pub mod server;
pub mod tls;
pub mod webdriver;
pub mod ws;

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use cli::CliClient;
pub use client::Client;
pub use cluster::{Cluster, Env};
pub use db::TestDb;
pub use require::Need;
pub use server::Server;
pub use trial::Test;

/// Upper bound of every [`wait_until`].
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A name no other test (in this or another process) uses: `prefix`, this
/// process's id, a counter and the clock's nanoseconds.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port nobody listens on right now (the caller binds it soon
/// after, or relies on nothing listening there).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `cond` holds, at most [`PATIENCE`]; fails the test otherwise.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Raises this process's open-file soft limit to its hard limit (children
/// inherit it) and returns the new limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
