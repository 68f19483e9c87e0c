//! The TLS paths of a [`TcpConnection`]: sending through rustls, reading
//! through it, and the `close_notify` before the FIN.
//!
//! # Threads and locks
//! Every function here holds the output lock, then the session's lock
//! (never the other way round), so a TLS connection's bytes leave in the
//! order of the sends, as a plain one's do. [`TcpConnection::send_tls`]
//! runs on whichever thread sends (as `send_in_loop` does); the others on
//! the connection's loop. Callbacks are only queued, never run, under the
//! locks.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{State, TcpConnection};
use crate::buffer::Buffer;
use crate::tls::session::ReadStep;
use crate::tls::TlsSession;

impl TcpConnection {
    /// `send_in_loop` for a TLS connection; the caller holds the output
    /// lock (`output`). Returns the end of `data`'s ciphertext in the
    /// output stream, or `None` when it was dropped or, during the
    /// handshake, when rustls holds it as plaintext (its place in the
    /// stream is not known yet).
    pub(super) fn send_tls(
        self: &Arc<Self>,
        output: &mut Buffer,
        tls: &Mutex<TlsSession>,
        data: &[u8],
    ) -> Option<u64> {
        let old_len = output.readable_bytes();
        let mut session = tls.lock();
        let handshaking = session.is_handshaking();
        if let Err(e) = session.write_plaintext(data) {
            log::debug!("TcpConnection {} TLS write: {}", self.name, e);
            return None;
        }
        let flushed = session.flush(&self.stream, output);
        drop(session);
        let end = match flushed {
            Ok((written, buffered)) => self.count_ciphertext(written, buffered),
            Err(e) => {
                log::debug!("TcpConnection {} write: {}", self.name, e);
                return None;
            }
        };
        if handshaking {
            return None;
        }
        if output.is_empty() {
            self.queue_write_complete();
        } else {
            self.check_high_water_mark(old_len, output.readable_bytes());
        }
        Some(end)
    }

    /// Adds ciphertext to the stream counters: `written` bytes went to the
    /// kernel, `buffered` to the output buffer. Returns the new end of the
    /// accepted stream. Under the output lock.
    fn count_ciphertext(&self, written: usize, buffered: usize) -> u64 {
        self.written.fetch_add(written as u64, Ordering::AcqRel);
        let added = (written + buffered) as u64;
        self.accepted.fetch_add(added, Ordering::AcqRel) + added
    }

    /// Queues our `close_notify` and writes it; the caller holds the output
    /// lock. `true` when the FIN may follow now (the output is empty);
    /// `false` while the handshake is under way (the read path comes back
    /// when it ends) or the alert waits in the output buffer (the drain
    /// comes back).
    pub(super) fn tls_close_notify(&self, output: &mut Buffer, tls: &Mutex<TlsSession>) -> bool {
        let mut session = tls.lock();
        if session.is_handshaking() {
            return false;
        }
        session.queue_close_notify();
        match session.flush(&self.stream, output) {
            Ok((written, buffered)) => {
                self.count_ciphertext(written, buffered);
            }
            Err(e) => log::debug!("TcpConnection {} close_notify: {}", self.name, e),
        }
        output.is_empty()
    }

    /// One read of a TLS connection: ciphertext from the socket, plaintext
    /// into `input`, then whatever rustls has to say (handshake messages,
    /// an alert, data that waited for the handshake) written out. Loop
    /// thread only. A shutdown asked for during the handshake proceeds
    /// once it completes.
    ///
    /// # Errors
    /// A socket or TLS error: the connection is to be closed (an alert,
    /// if rustls made one, has been sent).
    pub(super) fn tls_read(self: &Arc<Self>, input: &mut Buffer) -> io::Result<ReadStep> {
        let Some(tls) = &self.tls else {
            return Err(io::Error::other("not a TLS connection"));
        };
        let mut output = self.output.lock();
        let old_len = output.readable_bytes();
        let mut session = tls.lock();
        let was_handshaking = session.is_handshaking();
        let step = session.read_from(&self.stream, input);
        let flushed = session.flush(&self.stream, &mut output);
        let handshake_done = was_handshaking && !session.is_handshaking();
        drop(session);
        match flushed {
            Ok((written, buffered)) => {
                self.count_ciphertext(written, buffered);
            }
            Err(e) => log::debug!("TcpConnection {} write: {}", self.name, e),
        }
        self.check_high_water_mark(old_len, output.readable_bytes());
        if handshake_done && self.state() == State::Disconnecting && output.is_empty() {
            self.shutdown_write(&mut output);
        }
        step
    }
}
