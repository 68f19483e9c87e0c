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
//! With [`Framing::WebSocket`] (`--transport ws`) the connection speaks
//! the chat protocol over the server's `/ws` (src/ws.rs): the upgrade
//! request goes first, each request is a masked text frame, and the
//! server's frames are turned back into the JSON stream the reader takes.

/// How requests are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One request per line (our server over TCP).
    Lines,
    /// Requests back to back with no newline (`--legacy`).
    Bare,
    /// One request per WebSocket text frame (`--transport ws`).
    WebSocket,
}

use crate::json_stream::JsonReader;
use crate::ws;
use mio::net::TcpStream;
use mio::Interest;
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
    framing: Framing,
    /// The WebSocket reader, with `Framing::WebSocket`.
    ws: Option<Box<ws::Reader>>,
    /// The next frame's mask (a simple sequence: the server only unmasks).
    mask: u32,
}

impl Conn {
    /// Starts a non-blocking connect to `addr`, from `source` when given
    /// (port chosen by the kernel). `TCP_NODELAY` is set so that each
    /// request leaves at once, as the original's client sends it.
    ///
    /// # Errors
    /// Socket creation, bind or an immediate connect failure.
    pub fn connect(addr: SocketAddr, source: Option<IpAddr>, framing: Framing) -> io::Result<Conn> {
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
        let websocket = framing == Framing::WebSocket;
        Ok(Conn {
            stream: TcpStream::from_std(socket.into()),
            reader: JsonReader::new(MAX_VALUE),
            out: if websocket {
                ws::upgrade_request(&addr.to_string())
            } else {
                Vec::new()
            },
            written: 0,
            connected: false,
            registered: Conn::INITIAL_INTEREST,
            paused: false,
            framing,
            ws: websocket.then(Box::default),
            mask: 0x9e37_79b9,
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
    pub fn queue(&mut self, text: &str) {
        match self.framing {
            Framing::WebSocket => self.queue_frame(0x1, text.as_bytes()),
            Framing::Lines => {
                self.out.extend_from_slice(text.as_bytes());
                self.out.push(b'\n');
            }
            Framing::Bare => self.out.extend_from_slice(text.as_bytes()),
        }
    }

    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.mask = self
            .mask
            .wrapping_mul(0x0101_0101)
            .wrapping_add(0x6b43_a9b5);
        ws::encode_masked(&mut self.out, opcode, payload, self.mask.to_be_bytes());
    }

    /// Hands read bytes to the JSON reader (through the WebSocket reader
    /// first, with that framing); `Ok(false)` once the server sent a close.
    fn take(&mut self, bytes: &[u8], values: &mut Vec<Value>) -> Result<bool, String> {
        let Some(reader) = self.ws.as_mut() else {
            self.reader.feed(bytes, values).map_err(|e| e.to_string())?;
            return Ok(true);
        };
        let mut decoded = ws::Decoded::default();
        reader.feed(bytes, MAX_VALUE, &mut decoded)?;
        self.reader
            .feed(&decoded.text, values)
            .map_err(|e| e.to_string())?;
        for ping in decoded.pings {
            self.queue_frame(0xA, &ping);
        }
        Ok(!decoded.closed)
    }

    /// Whether queued bytes are waiting to be written.
    pub fn has_output(&self) -> bool {
        self.written < self.out.len()
    }

    /// Writes queued bytes until done or until the socket is full.
    ///
    /// # Errors
    /// The peer is gone or the socket failed.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.connected {
            return Ok(());
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
                    if !self.take(&scratch[..n], values)? {
                        return Ok(false);
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
