//! `ConnectionChannel`: the loop-side half of a [`TcpConnection`](super::TcpConnection), the
//! handler its loop dispatches the socket's events to.
//!
//! It owns the connection's *input* buffer, which only the loop touches,
//! and an `Arc` of the connection, which keeps the connection alive while
//! it is registered (muduo's `Channel::tie`).
//!
//! The input buffer grows to hold the largest message (or burst) the peer
//! sent, and a `Vec` never gives memory back by itself: after a 1 MiB
//! message, an idle connection would keep its megabyte. So once a read
//! event has drained the socket and the codec has taken what it could,
//! a buffer grown past [`SHRINK_INPUT_ABOVE`] that holds less than
//! [`INITIAL_SIZE`] bytes is shrunk back to [`INITIAL_SIZE`] (muduo's
//! `Buffer::shrink`, which muduo leaves to the user).

use std::io;
use std::os::unix::io::AsRawFd;
use std::time::Instant;

use mio::Token;

use super::{TcpConnectionPtr, READS_PER_EVENT};
use crate::buffer::{Buffer, INITIAL_SIZE};
use crate::channel::{ChannelHandler, Ready};
use crate::event_loop::EventLoop;

/// An input buffer whose vector is larger than this is shrunk back to
/// [`INITIAL_SIZE`] when a read event leaves it (almost) empty. One full
/// read from a new buffer already goes past it (1 KiB plus the 64 KiB
/// stack array), so a peer that keeps sending 64 KiB bursts pays one small
/// allocation per read event; an idle connection keeps about 1 KiB.
const SHRINK_INPUT_ABOVE: usize = 64 * 1024;

/// A TLS connection's reads per event: rustls takes a few KiB per read, so
/// this is about as many bytes per event as a plain connection's budget.
const TLS_READS_PER_EVENT: usize = 64;

/// The loop-side half of a connection: its channel handler and input buffer.
pub(super) struct ConnectionChannel {
    pub(super) conn: TcpConnectionPtr,
    pub(super) input: Buffer,
}

impl ConnectionChannel {
    /// Reads until the socket is drained, handing each chunk to the message
    /// callback; 0 bytes means the peer closed. A peer that keeps the socket
    /// full gets [`READS_PER_EVENT`] reads, then the loop serves the others
    /// and comes back (fairness: one flooding client cannot starve its loop).
    ///
    /// `peer_closed` says the event carried the peer's FIN (`EPOLLRDHUP`):
    /// then a short read does not end the work, because no further edge
    /// will come for the bytes or the EOF still waiting behind it.
    ///
    /// Afterwards a large, spent input buffer is shrunk (see the module docs).
    fn read(&mut self, lp: &mut EventLoop, token: Token, at: Instant, peer_closed: bool) {
        // Drained, the codec having taken its whole messages: what is left
        // is a partial message at most, so a large message's memory can go
        // back. (A closed connection drops its buffer; a deferred one comes
        // back for more reads first.)
        if self.drain(lp, token, at, peer_closed) {
            shrink_if_spent(&mut self.input);
        }
    }

    /// The reads of [`read`](Self::read): until the socket is drained, the
    /// peer's EOF, an error, or the per-event budget. `true` when the socket
    /// is drained and the connection open, so the next arrival raises a new
    /// edge; `false` when it closed or the rest was deferred.
    fn drain(&mut self, lp: &mut EventLoop, token: Token, at: Instant, peer_closed: bool) -> bool {
        if self.conn.is_tls() {
            return self.drain_tls(lp, token, at, peer_closed);
        }
        let conn = &self.conn;
        for _ in 0..READS_PER_EVENT {
            if conn.disconnected() {
                return false; // a callback closed it
            }
            if !conn.is_reading() {
                return false; // stopped: `start_read` comes back for the rest
            }
            // One `readv` into the buffer's free space plus a 64 KiB stack
            // array: `offered` is the most it can take.
            let offered = self.input.read_fd_capacity();
            match self.input.read_fd(conn.stream.as_raw_fd()) {
                // End of stream: the peer closed its side.
                Ok(0) => {
                    conn.handle_close(lp);
                    return false;
                }
                Ok(n) => {
                    // The user takes whole messages and leaves the rest.
                    (conn.callbacks.message)(conn, &mut self.input, at);
                    if n < offered && !peer_closed {
                        return true; // drained: the next arrival raises a new edge
                    }
                    // A full read: more may wait. After a hang-up: read on
                    // until EOF, which no later event would report.
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset, say: nothing more will come either way.
                Err(e) => {
                    log::debug!("TcpConnection {} read: {}", conn.name, e);
                    conn.handle_close(lp);
                    return false;
                }
            }
        }
        // Budget spent and the socket not drained: come back next iteration
        // (with the hang-up, if there was one, so the drain goes on).
        defer(lp, token, peer_closed);
        false
    }

    /// [`drain`](Self::drain) for a TLS connection: each read goes through
    /// rustls (which reads at most a few records' worth), so the budget is
    /// counted in [`TLS_READS_PER_EVENT`], and the message callback sees
    /// plaintext only. The peer's `close_notify` ends the stream as a FIN
    /// does; a TLS error (a peer speaking plain text, say) closes.
    fn drain_tls(
        &mut self,
        lp: &mut EventLoop,
        token: Token,
        at: Instant,
        peer_closed: bool,
    ) -> bool {
        let conn = &self.conn;
        for _ in 0..TLS_READS_PER_EVENT {
            if conn.disconnected() {
                return false; // a callback closed it
            }
            if !conn.is_reading() {
                return false; // stopped: `start_read` comes back for the rest
            }
            match conn.tls_read(&mut self.input) {
                Ok(step) => {
                    if step.plaintext > 0 {
                        (conn.callbacks.message)(conn, &mut self.input, at);
                    }
                    if step.peer_closed {
                        conn.handle_close(lp);
                        return false;
                    }
                    if step.drained {
                        return true;
                    }
                }
                Err(e) => {
                    log::debug!("TcpConnection {} TLS read: {}", conn.name, e);
                    conn.handle_close(lp);
                    return false;
                }
            }
        }
        defer(lp, token, peer_closed);
        false
    }
}

/// Asks the loop to come back to `token` next iteration, with the hang-up
/// when there was one.
fn defer(lp: &mut EventLoop, token: Token, peer_closed: bool) {
    let again = if peer_closed {
        Ready::READABLE | Ready::READ_CLOSED
    } else {
        Ready::READABLE
    };
    lp.defer_event(token, again);
}

/// Shrinks `input` back to [`INITIAL_SIZE`] writable bytes when it has grown
/// past [`SHRINK_INPUT_ABOVE`] and holds less than [`INITIAL_SIZE`] bytes
/// (which it keeps). A partial large message keeps its buffer.
fn shrink_if_spent(input: &mut Buffer) {
    if input.internal_capacity() > SHRINK_INPUT_ABOVE && input.readable_bytes() < INITIAL_SIZE {
        input.shrink(INITIAL_SIZE);
    }
}

impl ChannelHandler for ConnectionChannel {
    fn handle_read(&mut self, lp: &mut EventLoop, token: Token, receive_time: Instant) {
        self.read(lp, token, receive_time, false);
    }

    fn handle_read_closed(&mut self, lp: &mut EventLoop, token: Token, receive_time: Instant) {
        self.read(lp, token, receive_time, true);
    }

    fn handle_write(&mut self, _lp: &mut EventLoop, _token: Token) {
        self.conn.handle_write();
    }

    fn handle_close(&mut self, lp: &mut EventLoop, _token: Token) {
        self.conn.handle_close(lp);
    }

    fn handle_error(&mut self, _lp: &mut EventLoop, _token: Token) {
        let err = self.conn.stream.take_error();
        log::debug!("TcpConnection {} error: {:?}", self.conn.name, err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::CHEAP_PREPEND;

    /// A buffer that took one `len`-byte message, of which `left` bytes
    /// were not consumed.
    fn after_message(len: usize, left: usize) -> Buffer {
        let mut b = Buffer::new();
        b.append(&vec![b'x'; len]);
        b.retrieve(len - left);
        b
    }

    #[test]
    fn a_spent_large_buffer_goes_back_to_the_initial_size() {
        let mut b = after_message(1 << 20, 0);
        assert!(b.internal_capacity() >= 1 << 20);
        shrink_if_spent(&mut b);
        assert_eq!(b.internal_capacity(), CHEAP_PREPEND + INITIAL_SIZE);
        assert_eq!(b.writable_bytes(), INITIAL_SIZE);
        assert!(b.is_empty());
    }

    #[test]
    fn a_small_leftover_is_kept_across_the_shrink() {
        let mut b = after_message(1 << 20, 10);
        shrink_if_spent(&mut b);
        assert_eq!(b.peek(), &[b'x'; 10][..]);
        assert_eq!(b.internal_capacity(), CHEAP_PREPEND + 10 + INITIAL_SIZE);
    }

    #[test]
    fn a_partial_large_message_keeps_its_buffer() {
        let mut b = after_message(1 << 20, 100 * 1024);
        let before = b.internal_capacity();
        shrink_if_spent(&mut b);
        assert_eq!(b.internal_capacity(), before);
        assert_eq!(b.readable_bytes(), 100 * 1024);
    }

    #[test]
    fn a_buffer_under_the_threshold_is_left_alone() {
        let mut b = after_message(32 * 1024, 0);
        let before = b.internal_capacity();
        assert!(before <= SHRINK_INPUT_ABOVE);
        shrink_if_spent(&mut b);
        assert_eq!(b.internal_capacity(), before);
    }
}
