//! One client connection: a non-blocking socket, a JSON reader and an
//! output buffer.
//!
//! mio is edge-triggered: an event says "something changed", once. So a read
//! handler reads until the socket says `WouldBlock` (or until a read comes
//! back shorter than the space offered, which means the socket was drained
//! and the next arrival will raise a fresh edge), and a write handler writes
//! until the buffer is empty or the socket is full; then the next writable
//! edge resumes it.
//!
//! Writable interest is registered only while it is needed (see
//! [`Conn::interest_change`]).
//!
//! Requests are queued with [`Conn::queue`] and written by [`Conn::flush`],
//! which the worker calls once per loop iteration, so several requests queued
//! in one iteration leave in one `write`. (In `--legacy` mode the scenarios
//! never queue a second request before the first is answered.)
//!
//! With `--tls` (see [`crate::tls`]) a connection carries a rustls client
//! session: [`Conn::queue`] hands the plaintext to it, [`Conn::flush`]
//! moves its ciphertext into the output buffer first, and [`Conn::read`]
//! decrypts before the JSON reader sees the bytes.

use crate::json_stream::JsonReader;
use crate::tls::Tls;
use mio::net::TcpStream;
use mio::Interest;
use rustls::ClientConnection;
use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};

/// Largest single value accepted from a server (a login ack can carry many
/// offline messages).
const MAX_VALUE: usize = 64 << 20;

/// A client connection driven by a worker's `mio::Poll`.
pub(crate) struct Conn {
    stream: TcpStream,
    reader: JsonReader,
    /// Bytes queued and not yet written; `written` of them already went out.
    out: Vec<u8>,
    written: usize,
    /// False until the non-blocking connect has completed.
    connected: bool,
    /// The interest the socket is registered with.
    registered: Interest,
    /// A slow reader: while set, readable events are left unread, so the
    /// kernel's buffers fill and the server's output queue grows.
    paused: bool,
    /// The TLS session, with `--tls`; `out` then holds ciphertext.
    tls: Option<Box<ClientConnection>>,
}

impl Conn {
    /// Starts a non-blocking connect to `addr`, from `source` when given
    /// (port chosen by the kernel), speaking TLS with `tls`. `TCP_NODELAY`
    /// is set so that each request leaves at once, as the original's client
    /// sends it.
    ///
    /// # Errors
    /// Socket creation, bind or an immediate connect failure.
    pub fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        tls: Option<&Tls>,
    ) -> io::Result<Conn> {
        let tls = match tls {
            Some(t) => Some(Box::new(t.session()?)),
            None => None,
        };
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        if let Some(ip) = source {
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Conn {
            stream: TcpStream::from_std(socket.into()),
            reader: JsonReader::new(MAX_VALUE),
            out: Vec::new(),
            written: 0,
            connected: false,
            registered: Conn::INITIAL_INTEREST,
            paused: false,
            tls,
        })
    }

    /// Interest to register a new connection with: writable tells when the
    /// connect completes.
    pub const INITIAL_INTEREST: Interest = Interest::READABLE.add(Interest::WRITABLE);

    /// The interest this connection needs now, and whether it differs from
    /// the registered one. Writable interest is only wanted while connecting
    /// or while output waits for room; otherwise every write would raise a
    /// writable edge and wake the worker for nothing (muduo's
    /// `enableWriting` / `disableWriting`).
    pub fn interest_change(&self) -> Option<Interest> {
        let wanted = if !self.connected || self.has_output() {
            Conn::INITIAL_INTEREST
        } else {
            Interest::READABLE
        };
        (wanted != self.registered).then_some(wanted)
    }

    /// Records that the socket is now registered with `interest`.
    pub fn set_registered(&mut self, interest: Interest) {
        self.registered = interest;
    }

    /// The socket, for registering with a `mio::Registry`.
    pub fn source(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Makes the coming close abortive: `SO_LINGER` 0, so the kernel
    /// discards what is unread or unsent and sends a reset, as a client
    /// that crashes or loses its network would look to the server.
    pub fn abort_on_close(&mut self) {
        // Without it the close is an orderly FIN: still a drop.
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(std::time::Duration::ZERO));
    }

    /// Stops (`true`) or resumes reading. After a resume the caller must
    /// read once: the edge that announced the waiting bytes is spent.
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Whether reading is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Whether the connect has completed.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Checks a connect in progress after a writable (or error) event:
    /// `Ok(true)` once connected, `Ok(false)` while still connecting.
    ///
    /// # Errors
    /// The connect failed (refused, timed out, …).
    pub fn finish_connect(&mut self) -> io::Result<bool> {
        if self.connected {
            return Ok(true);
        }
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Appends a request to the output buffer (written by [`Conn::flush`]).
    pub fn queue(&mut self, text: &str, newline: bool) {
        if let Some(tls) = self.tls.as_mut() {
            // No buffer limit: rustls takes it all (encrypted, or kept
            // until the handshake is done).
            let mut w = tls.writer();
            let _ = w.write_all(text.as_bytes());
            if newline {
                let _ = w.write_all(b"\n");
            }
            return;
        }
        self.out.extend_from_slice(text.as_bytes());
        if newline {
            self.out.push(b'\n');
        }
    }

    /// Whether queued bytes are waiting to be written.
    pub fn has_output(&self) -> bool {
        self.written < self.out.len() || self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Writes queued bytes until done or until the socket is full.
    ///
    /// # Errors
    /// The peer is gone or the socket failed.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.connected {
            return Ok(());
        }
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                tls.write_tls(&mut self.out)?;
            }
        }
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.written == self.out.len() {
            self.written = 0;
            self.out.clear();
            if self.out.capacity() > 64 << 10 {
                self.out = Vec::new();
            }
        }
        Ok(())
    }

    /// Reads what the socket holds, appending each complete JSON value to
    /// `values`. `scratch` is the worker's shared read buffer. With
    /// `to_the_end` (the event reported the peer's half-close) it reads until
    /// end of stream rather than stopping at a short read.
    ///
    /// Returns `Ok(true)` while open, `Ok(false)` at end of stream.
    ///
    /// # Errors
    /// A socket error, or bytes that are not JSON, as a short description.
    pub fn read(
        &mut self,
        scratch: &mut [u8],
        values: &mut Vec<Value>,
        to_the_end: bool,
    ) -> Result<bool, String> {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    if let Some(tls) = self.tls.as_mut() {
                        if !feed_tls(tls, &scratch[..n], &mut self.reader, values)? {
                            return Ok(false); // the server's close_notify
                        }
                    } else {
                        self.reader
                            .feed(&scratch[..n], values)
                            .map_err(|e| e.to_string())?;
                    }
                    if n < scratch.len() && !to_the_end {
                        return Ok(true);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
}

/// Hands ciphertext to rustls and the plaintext it yields to `reader`.
/// `Ok(false)` once the server has sent `close_notify`.
fn feed_tls(
    tls: &mut ClientConnection,
    mut data: &[u8],
    reader: &mut JsonReader,
    values: &mut Vec<Value>,
) -> Result<bool, String> {
    let mut plain = [0u8; 16 * 1024];
    let mut open = true;
    while !data.is_empty() {
        tls.read_tls(&mut data).map_err(|e| format!("tls: {e}"))?;
        let state = tls.process_new_packets().map_err(|e| format!("tls: {e}"))?;
        let mut left = state.plaintext_bytes_to_read();
        while left > 0 {
            let n = match tls.reader().read(&mut plain) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                Err(e) => return Err(format!("tls: {e}")),
            };
            if n == 0 {
                break;
            }
            reader
                .feed(&plain[..n], values)
                .map_err(|e| e.to_string())?;
            left = left.saturating_sub(n);
        }
        open &= !state.peer_has_closed();
    }
    Ok(open)
}
