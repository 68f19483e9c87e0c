//! `Channel`: one registered event source of a loop, as muduo's `Channel`.
//!
//! In muduo a `Channel` is a file descriptor's interest bits, the events the
//! poller returned for it (`revents`), and four callbacks (read, write,
//! close, error); `handleEvent` dispatches `revents` to them. The Channel
//! owns nothing: the fd belongs to a `Socket`, the callbacks to whoever
//! bound them.
//!
//! Here the four callbacks are the methods of a [`ChannelHandler`], the
//! object that owns the source (an `Acceptor`, a connection, a `Connector`).
//! A `Channel` couples that handler with its token and interest, and lives in
//! the loop's `Poller`. Each callback receives `&mut EventLoop`, so a handler
//! can add timers, register other sources or remove itself without holding
//! a pointer to its loop (muduo's `Channel::loop_`).
//!
//! Thread affinity: channels are created, dispatched and removed on their
//! loop's thread only.

use std::time::Instant;

use mio::{event::Event, Interest, Token};

use crate::event_loop::EventLoop;

/// The events the poller reported for a channel (muduo's `revents_`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready(u8);

impl Ready {
    /// Data (or a connection, for a listener) can be read.
    pub const READABLE: Ready = Ready(1);
    /// The socket can take more bytes.
    pub const WRITABLE: Ready = Ready(2);
    /// The peer closed its writing half (`EPOLLRDHUP`) or the socket hung up.
    pub const READ_CLOSED: Ready = Ready(4);
    /// The writing half is closed (`EPOLLHUP`).
    pub const WRITE_CLOSED: Ready = Ready(8);
    /// The socket has a pending error (`EPOLLERR`).
    pub const ERROR: Ready = Ready(16);

    /// Translates a mio event.
    pub fn from_event(event: &Event) -> Ready {
        let mut r = 0;
        if event.is_readable() {
            r |= Self::READABLE.0;
        }
        if event.is_writable() {
            r |= Self::WRITABLE.0;
        }
        if event.is_read_closed() {
            r |= Self::READ_CLOSED.0;
        }
        if event.is_write_closed() {
            r |= Self::WRITE_CLOSED.0;
        }
        if event.is_error() {
            r |= Self::ERROR.0;
        }
        Ready(r)
    }

    /// `true` when every bit of `other` is set.
    pub fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, rhs: Ready) -> Ready {
        Ready(self.0 | rhs.0)
    }
}

/// The callbacks of a channel (muduo's `setReadCallback` and friends).
///
/// Each is called on the loop thread with the loop and the channel's token.
/// Only `handle_read` is required; the others do nothing by default.
pub trait ChannelHandler: 'static {
    /// The source is readable. `receive_time` is when the poll returned.
    fn handle_read(&mut self, lp: &mut EventLoop, token: Token, receive_time: Instant);

    /// The source is readable and the peer has closed its writing half
    /// (`EPOLLRDHUP`): data and the EOF behind it may both be waiting, and
    /// an edge-triggered poller reports them no more, so a handler that
    /// stops reading at a short read must read on to the EOF here. By
    /// default the same as [`handle_read`](Self::handle_read).
    fn handle_read_closed(&mut self, lp: &mut EventLoop, token: Token, receive_time: Instant) {
        self.handle_read(lp, token, receive_time);
    }

    /// The source is writable.
    fn handle_write(&mut self, _lp: &mut EventLoop, _token: Token) {}

    /// The peer hung up and there is nothing left to read.
    fn handle_close(&mut self, _lp: &mut EventLoop, _token: Token) {}

    /// The source reported an error.
    fn handle_error(&mut self, _lp: &mut EventLoop, _token: Token) {}
}

/// A registered source: its token, its interest and its handler.
pub struct Channel {
    token: Token,
    interest: Interest,
    handler: Box<dyn ChannelHandler>,
}

impl Channel {
    /// A channel for a source registered under `token` with `interest`.
    pub fn new(token: Token, interest: Interest, handler: Box<dyn ChannelHandler>) -> Self {
        Channel {
            token,
            interest,
            handler,
        }
    }

    /// The token the source is registered under.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The events the source is registered for.
    pub fn interest(&self) -> Interest {
        self.interest
    }

    pub(crate) fn set_interest(&mut self, interest: Interest) {
        self.interest = interest;
    }

    /// Dispatches `revents` to the handler in muduo's order: a hang-up with
    /// nothing to read closes; an error is reported; then read (told apart
    /// when the peer has closed its side, see
    /// [`ChannelHandler::handle_read_closed`]), then write.
    ///
    /// A handler may remove its own channel from inside a callback; the
    /// loop then drops the channel after this returns, and later callbacks
    /// of the same dispatch find the connection already closed.
    pub fn handle_event(&mut self, lp: &mut EventLoop, revents: Ready, receive_time: Instant) {
        let readable = revents.contains(Ready::READABLE);
        if revents.contains(Ready::WRITE_CLOSED)
            && revents.contains(Ready::READ_CLOSED)
            && !readable
        {
            self.handler.handle_close(lp, self.token);
            return;
        }
        if revents.contains(Ready::ERROR) {
            self.handler.handle_error(lp, self.token);
        }
        if revents.contains(Ready::READ_CLOSED) {
            self.handler
                .handle_read_closed(lp, self.token, receive_time);
        } else if readable {
            self.handler.handle_read(lp, self.token, receive_time);
        }
        if revents.contains(Ready::WRITABLE) {
            self.handler.handle_write(lp, self.token);
        }
    }
}
