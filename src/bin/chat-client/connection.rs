//! The connection to the server: a blocking `TcpStream`, written by the input
//! thread and read by one reader thread.
//!
//! ```text
//!   input thread ── Connection::send ──▶ socket ──▶ server
//!                                                     │
//!   on_message ◀── codec::decode ◀── reader thread ◀──┘
//! ```
//!
//! The reader treats the byte stream as concatenated JSON objects (the
//! server sends one per line, but a read may end anywhere), using the same
//! decoder as the server, and calls back once per object. A blocking socket
//! and a thread are the simplest correct design for one connection; the
//! reactor in `net` is for the server's thousands. With `--tls` the same
//! two threads share the connection's TLS state (see [`super::tls`]).

use serde_json::{Map, Value};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use chat::protocol::codec;

use super::tls::{self, TlsChannel};

/// The largest single message the client accepts. Far above the server's
/// request limit: a login ack carries every offline message at once.
pub const MAX_INCOMING: usize = 64 * 1024 * 1024;

/// How long a write may block before the server is taken to be stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// An open connection. `send` and `close` may be called from any thread.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// The TLS state, with `--tls`.
    tls: Option<Arc<TlsChannel>>,
}

/// Why the reader stopped.
#[derive(Debug)]
pub enum Closed {
    /// The server (or our own [`Connection::close`]) ended the stream.
    Eof,
    /// The socket failed, e.g. "connection reset by peer".
    Error(io::Error),
    /// The server sent bytes that are not a JSON object; there is no way to
    /// find the next message, so the reader gives up.
    Garbage(String),
}

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Closed::Eof => f.write_str("the server closed the connection"),
            Closed::Error(e) => write!(f, "{e}"),
            Closed::Garbage(why) => write!(f, "the server sent something unreadable: {why}"),
        }
    }
}

impl Connection {
    /// Connects to `addr` (`HOST:PORT`), trying each address it resolves to
    /// for at most `timeout`; with `--tls` ([`tls::install`]), also runs
    /// the handshake, for at most `timeout` too.
    ///
    /// # Errors
    ///
    /// The resolver's error, the last address's connect error, or the
    /// handshake's (a certificate the client refuses: `InvalidData`).
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Connection> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
        for sa in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&sa, timeout) {
                Ok(mut stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
                    let tls = match tls::current() {
                        Some(client) => {
                            stream.set_read_timeout(Some(timeout))?;
                            let channel = client.handshake(&mut stream)?;
                            stream.set_read_timeout(None)?;
                            Some(channel)
                        }
                        None => None,
                    };
                    return Ok(Connection { stream, tls });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends one message as a line of compact JSON.
    ///
    /// # Errors
    ///
    /// The socket's write error (the server is gone, or stuck for longer
    /// than the write timeout).
    pub fn send(&self, message: &Value) -> io::Result<()> {
        match &self.tls {
            Some(tls) => tls.send(&self.stream, &codec::encode(message)),
            None => (&self.stream).write_all(&codec::encode(message)),
        }
    }

    /// Closes both directions; the reader then sees [`Closed::Eof`].
    pub fn close(&self) {
        if let Some(tls) = &self.tls {
            tls.close(&self.stream);
        }
        // Already closed by the peer is fine: there is nothing left to do.
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Starts the reader thread. It calls `on_message` for each object the
    /// server sends, in order, and `on_close` once when the stream ends.
    ///
    /// # Errors
    ///
    /// When the socket cannot be cloned or the thread cannot be started.
    pub fn spawn_reader<M, C>(&self, on_message: M, on_close: C) -> io::Result<JoinHandle<()>>
    where
        M: FnMut(Map<String, Value>) + Send + 'static,
        C: FnOnce(Closed) + Send + 'static,
    {
        let stream = self.stream.try_clone()?;
        let tls = self.tls.clone();
        thread::Builder::new()
            .name("chat-client-reader".into())
            .spawn(move || on_close(read_loop(stream, tls, on_message)))
    }
}

/// Appends the next bytes from the server to `pending`; 0 at the end.
fn read_some(
    mut stream: &TcpStream,
    tls: Option<&TlsChannel>,
    chunk: &mut [u8],
    pending: &mut Vec<u8>,
) -> io::Result<usize> {
    if let Some(tls) = tls {
        return tls.read_some(stream, pending);
    }
    let n = stream.read(chunk)?;
    pending.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Reads until the stream ends, decoding as it goes.
fn read_loop(
    stream: TcpStream,
    tls: Option<Arc<TlsChannel>>,
    mut on_message: impl FnMut(Map<String, Value>),
) -> Closed {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match read_some(&stream, tls.as_deref(), &mut chunk, &mut pending) {
            Ok(0) => return Closed::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Closed::Error(e),
        }
        let mut used = 0;
        loop {
            match codec::decode(&pending[used..], MAX_INCOMING) {
                Ok(Some((object, n))) => {
                    used += n;
                    on_message(object);
                }
                Ok(None) => break,
                Err(e) => return Closed::Garbage(e.to_string()),
            }
        }
        pending.drain(..used);
    }
}
