//! `ConnectionChannel`: the loop-side half of a [`TcpConnection`](super::TcpConnection), the
//! handler its loop dispatches the socket's events to.
//!
//! It owns the connection's *input* buffer, which only the loop touches,
//! and an `Arc` of the connection, which keeps the connection alive while
//! it is registered (muduo's `Channel::tie`).

use std::io;
use std::os::unix::io::AsRawFd;
use std::time::Instant;

use mio::Token;

use super::{TcpConnectionPtr, READS_PER_EVENT};
use crate::buffer::Buffer;
use crate::channel::{ChannelHandler, Ready};
use crate::event_loop::EventLoop;

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
    fn read(&mut self, lp: &mut EventLoop, token: Token, at: Instant, peer_closed: bool) {
        let conn = &self.conn;
        for _ in 0..READS_PER_EVENT {
            if conn.disconnected() {
                return; // a callback closed it
            }
            // One `readv` into the buffer's free space plus a 64 KiB stack
            // array: `offered` is the most it can take.
            let offered = self.input.read_fd_capacity();
            match self.input.read_fd(conn.stream.as_raw_fd()) {
                // End of stream: the peer closed its side.
                Ok(0) => return conn.handle_close(lp),
                Ok(n) => {
                    // The user takes whole messages and leaves the rest.
                    (conn.callbacks.message)(conn, &mut self.input, at);
                    if n < offered && !peer_closed {
                        return; // drained: the next arrival raises a new edge
                    }
                    // A full read: more may wait. After a hang-up: read on
                    // until EOF, which no later event would report.
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset, say: nothing more will come either way.
                Err(e) => {
                    log::debug!("TcpConnection {} read: {}", conn.name, e);
                    return conn.handle_close(lp);
                }
            }
        }
        // Budget spent and the socket not drained: come back next iteration
        // (with the hang-up, if there was one, so the drain goes on).
        let again = if peer_closed {
            Ready::READABLE | Ready::READ_CLOSED
        } else {
            Ready::READABLE
        };
        lp.defer_event(token, again);
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
