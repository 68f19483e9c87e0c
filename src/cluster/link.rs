//! Redis connections that cannot hang, a back-off, and a health flag that
//! logs each change of state once.
//!
//! Every thread of the cluster owns its own connection: the sync
//! `redis::Connection` is not shareable, and one thread blocked on a slow
//! Redis must not stall another. Each connection has read and write
//! timeouts, so a Redis that stops answering (a network partition, a
//! `SIGSTOP`, a `DEBUG SLEEP`) turns into an error within `io_timeout`,
//! never a hang — the connection's own setup included: the crate would
//! send its setup commands (`AUTH`, `SELECT`) before any timeout can be
//! set and wait for their replies without one, and a hung Redis accepts
//! TCP connections (the kernel completes the handshake) while answering
//! nothing. So [`connect`] opens a bare connection and sends those itself,
//! with the timeouts on. (`CLIENT SETINFO`, which the crate would add, is
//! turned off in Cargo.toml.)

use std::fmt::Display;
use std::time::{Duration, Instant};

use redis::{Client, Connection, RedisConnectionInfo, RedisResult, Value};

/// Opens a connection to `client`'s server with `io_timeout` for
/// connecting, writing and its setup, and `read_timeout` for reading
/// afterwards (`None`: `io_timeout`).
///
/// # Errors
/// The connection, its setup (`AUTH`, `SELECT`) or the timeout setting
/// failed — within about `io_timeout` per step.
pub(crate) fn connect(
    client: &Client,
    io_timeout: Duration,
    read_timeout: Option<Duration>,
) -> RedisResult<Connection> {
    let info = client.get_connection_info();
    let mut bare = info.clone();
    bare.redis = RedisConnectionInfo::default(); // nothing to set up
    let mut con = Client::open(bare)?.get_connection_with_timeout(io_timeout)?;
    con.set_write_timeout(Some(io_timeout))?;
    con.set_read_timeout(Some(io_timeout))?;
    let setup = &info.redis;
    if let Some(password) = &setup.password {
        let mut auth = redis::cmd("AUTH");
        if let Some(user) = &setup.username {
            auth.arg(user);
        }
        auth.arg(password).query::<()>(&mut con)?;
    }
    if setup.db != 0 {
        redis::cmd("SELECT").arg(setup.db).query::<()>(&mut con)?;
    }
    con.set_read_timeout(Some(read_timeout.unwrap_or(io_timeout)))?;
    Ok(con)
}

/// Sends the packed commands `packed` (`count` of them) in one write and
/// reads their replies into `out`, in order.
///
/// A command's own failure (a `ServerError` value) is a reply like any
/// other. The first I/O error ends the read: the replies after it are
/// unknown, and the connection must be dropped. (The crate's own
/// `Pipeline::query` reads on after an error, waiting a full read timeout
/// per missing reply.)
///
/// # Errors
/// The first I/O or protocol error; `out` then holds the replies read before it.
pub(crate) fn exec(
    con: &mut Connection,
    packed: &[u8],
    count: usize,
    out: &mut Vec<Value>,
) -> RedisResult<()> {
    con.send_packed_command(packed)?;
    for _ in 0..count {
        out.push(con.recv_response()?);
    }
    Ok(())
}

/// The delay before the next reconnection attempt: `min`, doubling after
/// each failure, never above `max`.
#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`.
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay to wait now; the following one is twice as long.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// After a success: start again from `min`.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Whether one thread's connection works, so that an outage is logged once
/// when it starts and once when it ends, not once per message.
#[derive(Debug)]
pub(crate) struct Health {
    /// Which node and thread, for the log.
    who: String,
    /// `Some(when)` while down.
    down_since: Option<Instant>,
    /// Successful connections so far (the first one is not a *re*connection).
    connections: u64,
}

impl Health {
    /// Starts as "up", so that a Redis down at start is logged.
    pub(crate) fn new(node_id: &str, thread: &str) -> Health {
        Health {
            who: format!("node {node_id} {thread}"),
            down_since: None,
            connections: 0,
        }
    }

    /// Records a failure; logs it when the connection was up until now.
    pub(crate) fn down(&mut self, err: &dyn Display) {
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            log::warn!(
                "cluster: {}: Redis unavailable ({err}); retrying with back-off",
                self.who
            );
        }
    }

    /// Records a success; logs it when the connection was down. Returns
    /// `true` when this is a reconnection (not the first connection).
    pub(crate) fn up(&mut self) -> bool {
        self.connections += 1;
        if let Some(since) = self.down_since.take() {
            log::info!(
                "cluster: {}: Redis is back after {:.1} s",
                self.who,
                since.elapsed().as_secs_f64()
            );
        }
        self.connections > 1
    }
}

#[cfg(test)]
mod tests {
    use super::{connect, Backoff};
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A server that accepts connections (the kernel does, from the listen
    /// backlog) and never answers, as a hung Redis: connecting with a
    /// password and a database fails within the timeouts, it does not
    /// wait for the setup's replies forever.
    #[test]
    fn connect_to_a_silent_server_times_out() {
        let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://:secret@127.0.0.1:{port}/3"));
            let t = Instant::now();
            let result = client.and_then(|c| connect(&c, Duration::from_millis(200), None));
            let _ = tx.send((result.is_err(), t.elapsed()));
        });
        let (failed, took) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("connect returns instead of hanging");
        assert!(failed);
        assert!(took < Duration::from_secs(2), "{took:?}");
        drop(silent);
    }

    #[test]
    fn backoff_doubles_up_to_max_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let got: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
    }
}
