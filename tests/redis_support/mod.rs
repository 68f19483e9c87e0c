//! Redis helpers shared by the cluster test binaries: a connection with
//! timeouts, the clean-up of a test's key prefix, and a `redis-server` of
//! a test's own ([`PrivateRedis`]).

#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis connection with timeouts that answers PING, or `None`.
pub fn redis_con(url: &str) -> Option<redis::Connection> {
    let client = redis::Client::open(url).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    redis::cmd("PING").query::<String>(&mut con).ok()?;
    Some(con)
}

/// Deletes every key under `prefix:`; best effort (used from `Drop`).
pub fn delete_prefix(url: &str, prefix: &str) {
    let Some(mut con) = redis_con(url) else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut con)
        .unwrap_or_default();
    if !keys.is_empty() {
        let _ = redis::cmd("DEL").arg(keys).query::<i64>(&mut con);
    }
}

/// A `redis-server` of the test's own, on a free port, that it can kill.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one; `None` if `redis-server` cannot run (the caller says
    /// whether that skips or fails the test).
    pub fn start() -> Option<PrivateRedis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut r = PrivateRedis { port, child: None };
        r.restart().then_some(r)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on the same port; `false` if it cannot.
    pub fn restart(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if redis_con(&self.url()).is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
