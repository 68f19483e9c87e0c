//! Pausing a connection's reads: muduo's `TcpConnection::stopRead` and
//! `startRead`.
//!
//! A server that cannot keep up with one peer (its replies pile up in the
//! output buffer, say, which the high-water mark callback reports) can
//! stop reading from it instead of closing it: the peer's bytes then wait
//! in the kernel, its receive window fills, and TCP slows the peer down.
//! Nothing is lost; reading resumes where it stopped.
//!
//! muduo stops by taking the read interest off the channel. Here the
//! socket stays registered (mio's edge-triggered registration carries
//! both directions) and the loop simply does not read while the flag is
//! off: an edge that comes meanwhile is dropped, so [`start_read`]
//! queues a read of its own, which drains whatever arrived, and notices
//! the peer's close if it came while reading was stopped.
//!
//! [`start_read`]: TcpConnection::start_read

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mio::Token;

use super::{TcpConnection, NO_TOKEN};
use crate::channel::Ready;

impl TcpConnection {
    /// Stops reading from the socket; any thread. Once the loop sees it, no
    /// message callback starts for this connection (one running on the
    /// loop finishes; called from the message callback, it is the last of
    /// that read) until [`start_read`](Self::start_read). Writing, the
    /// timers and closing by this side go on as usual. The peer's close
    /// is noticed when reading starts again.
    pub fn stop_read(&self) {
        self.reading.store(false, Ordering::Release);
    }

    /// Reads again after [`stop_read`](Self::stop_read); any thread. The
    /// loop reads what arrived meanwhile at its next iteration, without
    /// waiting for new bytes. Does nothing when reading was not stopped.
    pub fn start_read(self: &Arc<Self>) {
        if self.reading.swap(true, Ordering::AcqRel) {
            return;
        }
        let conn = self.clone();
        self.owner.queue_in_loop(move |lp| {
            // The channel's token is the loop's to read; none once closed.
            let token = conn.token.load(Ordering::Relaxed);
            if token != NO_TOKEN && !conn.disconnected() {
                // As a hang-up would: read until the socket says it is
                // drained, so neither bytes nor an EOF are left behind.
                lp.defer_event(Token(token), Ready::READABLE | Ready::READ_CLOSED);
            }
        });
    }

    /// Whether the loop reads this connection (muduo's `isReading`); any
    /// thread.
    pub fn is_reading(&self) -> bool {
        self.reading.load(Ordering::Acquire)
    }
}
