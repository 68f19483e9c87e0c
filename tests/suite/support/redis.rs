//! Redis for the cluster tests: a connection with timeouts, a key prefix of
//! the test's own ([`KeyPrefix`], its keys deleted on drop), and a
//! `redis-server` of the test's own that it can kill, or hang
//! ([`PrivateRedis`]: `SIGSTOP`/`SIGCONT`, or `DEBUG SLEEP`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, unique};

/// A Redis connection with timeouts that answered PING, or why not.
pub fn connect(url: &str) -> Result<redis::Connection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    con.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query::<String>(&mut con)
        .map_err(|e| e.to_string())?;
    Ok(con)
}

/// A Redis connection with timeouts that answers PING, or `None`.
pub fn redis_con(url: &str) -> Option<redis::Connection> {
    connect(url).ok()
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

/// A key prefix no other test uses on the Redis at `url`; its keys are
/// deleted at the end (also when the test fails).
pub struct KeyPrefix {
    /// The Redis URL.
    pub url: String,
    /// The prefix, e.g. `chat-test:claim-4242-0-123456`.
    pub name: String,
}

impl KeyPrefix {
    /// A new prefix for `test` on the Redis at `url`.
    pub fn new(url: &str, test: &str) -> KeyPrefix {
        KeyPrefix {
            url: url.to_owned(),
            name: unique(&format!("chat-test:{test}")).replace('_', "-"),
        }
    }

    /// The node holding `uid`'s claim (`HKEYS {prefix}:user:{uid}`); with
    /// sessions on several nodes, their ids joined by `,` in order.
    pub fn holder(&self, uid: i64) -> Option<String> {
        let nodes: Vec<String> = self.holders(uid).into_iter().map(|(n, _)| n).collect();
        (!nodes.is_empty()).then(|| nodes.join(","))
    }

    /// Each node with a count of `uid`'s sessions (`HGETALL
    /// {prefix}:user:{uid}`), by node id.
    pub fn holders(&self, uid: i64) -> Vec<(String, i64)> {
        let Some(mut con) = redis_con(&self.url) else {
            return Vec::new();
        };
        let mut v: Vec<(String, i64)> = redis::cmd("HGETALL")
            .arg(format!("{}:user:{uid}", self.name))
            .query(&mut con)
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Subscribers of `node`'s channel (0 when Redis cannot be asked).
    pub fn subscribers(&self, node: &str) -> i64 {
        let Some(mut con) = redis_con(&self.url) else {
            return 0;
        };
        let channel = format!("{}:node:{node}", self.name);
        let reply: Result<(String, i64), _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(&mut con);
        reply.map_or(0, |(_, n)| n)
    }
}

impl Drop for KeyPrefix {
    fn drop(&mut self) {
        delete_prefix(&self.url, &self.name);
    }
}

/// A `redis-server` of the test's own, on a free port, that it can kill.
/// Tests that use it [need](super::Need::RedisServer) the program.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
    /// Started with `DEBUG` enabled ([`with_debug`](Self::with_debug)).
    debug: bool,
}

impl PrivateRedis {
    /// Starts one; fails the test if it does not answer within 10 s.
    pub fn start() -> PrivateRedis {
        PrivateRedis::launch(false)
    }

    /// Starts one that accepts `DEBUG` commands from local clients (Redis 7
    /// refuses them by default), for [`debug_sleep`](Self::debug_sleep).
    /// Needs Redis 7 or later (older servers refuse the option).
    pub fn with_debug() -> PrivateRedis {
        PrivateRedis::launch(true)
    }

    fn launch(debug: bool) -> PrivateRedis {
        let mut r = PrivateRedis {
            port: free_port(),
            child: None,
            debug,
        };
        assert!(r.restart(), "a private redis-server starts on {}", r.url());
        r
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
            .args(if self.debug {
                &["--enable-debug-command", "local"][..]
            } else {
                &[]
            })
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

    /// Hangs the server with `SIGSTOP`: its sockets stay open and accept
    /// connections (the kernel completes the handshake), but nothing is
    /// answered until [`resume`](Self::resume). A *hung* Redis, not a dead one.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Ends a [`pause`](Self::pause) with `SIGCONT`.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// Hangs the server for `d` from the inside: `DEBUG SLEEP` blocks its
    /// one command thread, so every client waits. Returns when the command
    /// has started (the sleep runs on: a `PING` from another connection
    /// goes unanswered); `false` when it could not be sent or did not
    /// start. Needs a server started [`with_debug`](Self::with_debug).
    pub fn debug_sleep(&self, d: Duration) -> bool {
        let Some(mut con) = redis_con(&self.url()) else {
            return false;
        };
        let cmd = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(format!("{:.3}", d.as_secs_f64()))
            .get_packed_command();
        if con.send_packed_command(&cmd).is_err() {
            return false;
        }
        // A refused DEBUG answers at once with an error; a sleeping server
        // answers nothing, to this connection or any other.
        let _ = con.set_read_timeout(Some(Duration::from_millis(200)));
        matches!(con.recv_response(), Err(e) if e.is_timeout())
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own, not yet reaped child's pid.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        self.resume(); // a stopped process dies only once continued
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
