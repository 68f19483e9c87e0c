//! `TlsSession`: one connection's rustls state, and the moves between it,
//! the socket and the connection's buffers.
//!
//! # Threads
//! A session lives in a mutex of its [`TcpConnection`](crate::TcpConnection),
//! always locked after the connection's output lock; whoever holds both
//! (a sender, or the loop reading or flushing) drives it. Nothing here
//! blocks: the socket is non-blocking, and the work is rustls's
//! per-record symmetric crypto (plus the handshake's, once).

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{Connection, ServerConfig, ServerConnection};

use crate::buffer::Buffer;

/// What one [`TlsSession::read_from`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadStep {
    /// Plaintext bytes appended to the input buffer.
    pub(crate) plaintext: usize,
    /// The socket had nothing more (`WouldBlock`).
    pub(crate) drained: bool,
    /// The peer closed: TCP end of stream, or its `close_notify`.
    pub(crate) peer_closed: bool,
}

/// One connection's TLS state. See the [module documentation](self).
pub struct TlsSession {
    conn: Connection,
    /// Our `close_notify` is queued (it is sent once).
    close_notify_sent: bool,
}

impl TlsSession {
    /// A server-side session with `config`.
    ///
    /// # Errors
    /// rustls refusing the configuration.
    pub fn server(config: Arc<ServerConfig>) -> io::Result<TlsSession> {
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        // The connection's output buffer (ciphertext) is where data waits
        // and where the high-water mark looks; rustls keeps plaintext only
        // until the handshake is done.
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn: conn.into(),
            close_notify_sent: false,
        })
    }

    /// `true` until the handshake is complete.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Hands `data` to rustls: encrypted at once after the handshake, kept
    /// as plaintext until it is done. Ciphertext leaves with [`flush`](Self::flush).
    pub(crate) fn write_plaintext(&mut self, data: &[u8]) -> io::Result<()> {
        // No buffer limit: rustls takes everything.
        self.conn.writer().write_all(data)
    }

    /// Queues our `close_notify` (once). `false` when it was queued before.
    pub(crate) fn queue_close_notify(&mut self) -> bool {
        if self.close_notify_sent {
            return false;
        }
        self.close_notify_sent = true;
        self.conn.send_close_notify();
        true
    }

    /// Moves every ciphertext byte rustls has out: to the socket while
    /// `output` is empty and the kernel takes them, the rest appended to
    /// `output` for the loop's writable edge. Returns (bytes written to
    /// the kernel, bytes appended to `output`).
    ///
    /// # Errors
    /// A socket error other than `WouldBlock` (the peer is gone).
    pub(crate) fn flush(
        &mut self,
        stream: &TcpStream,
        output: &mut Buffer,
    ) -> io::Result<(usize, usize)> {
        let mut written = 0;
        while output.is_empty() && self.conn.wants_write() {
            let mut sock = stream;
            match self.conn.write_tls(&mut sock) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let before = output.readable_bytes();
        while self.conn.wants_write() {
            // Writing into a Buffer cannot fail.
            self.conn.write_tls(&mut BufferWriter(output))?;
        }
        Ok((written, output.readable_bytes() - before))
    }

    /// One read of ciphertext from `stream`, processed, its plaintext
    /// appended to `input`.
    ///
    /// # Errors
    /// A socket error, or a TLS error (a peer that speaks no TLS, a bad
    /// record, a failed handshake); rustls has then queued an alert, which
    /// a [`flush`](Self::flush) sends.
    pub(crate) fn read_from(
        &mut self,
        stream: &TcpStream,
        input: &mut Buffer,
    ) -> io::Result<ReadStep> {
        let mut step = ReadStep::default();
        let mut sock = stream;
        match self.conn.read_tls(&mut sock) {
            Ok(0) => step.peer_closed = true,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => step.drained = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(step),
            Err(e) => return Err(e),
        }
        let state = self
            .conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut left = state.plaintext_bytes_to_read();
        step.peer_closed |= state.peer_has_closed();
        while left > 0 {
            input.ensure_writable(left);
            let n = match self.conn.reader().read(input.begin_write()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            input.has_written(n);
            step.plaintext += n;
            left = left.saturating_sub(n);
        }
        Ok(step)
    }
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("close_notify_sent", &self.close_notify_sent)
            .finish()
    }
}

/// `Write` into a [`Buffer`], for rustls's `write_tls`.
struct BufferWriter<'a>(&'a mut Buffer);

impl Write for BufferWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.append(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
