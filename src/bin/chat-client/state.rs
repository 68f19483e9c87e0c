//! `ClientState`: what the two threads of a client share: who is logged
//! in, which reply the input thread is waiting for, and whether the
//! connection is open. (The server's per-connection login state is its
//! own `Session`; this is the client's side and a different thing.)
//!
//! The reader thread calls [`ClientState::on_message`] for every message
//! and [`ClientState::on_closed`] once; the input thread asks and waits. A
//! `Mutex` and a `Condvar` are all it takes: there is one waiter.

use parking_lot::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::incoming::{Incoming, Reply};
use super::request::User;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The awaited reply arrived (or nothing was awaited).
    Answered,
    /// The time ran out first.
    TimedOut,
    /// The connection closed first.
    Closed,
}

/// Shared state; see the module docs. Safe to use from any thread.
#[derive(Debug, Default)]
pub struct ClientState {
    state: Mutex<Inner>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Inner {
    /// The logged-in account, from the last login or refresh ack.
    user: Option<User>,
    /// The msgId of the request whose reply the input thread waits for.
    awaiting: Option<i64>,
    /// The connection is closed (by either side).
    closed: bool,
    /// We are closing it on purpose, so its end is no error.
    leaving: bool,
}

impl ClientState {
    /// A state with nobody logged in and the connection open.
    pub fn new() -> ClientState {
        ClientState::default()
    }

    /// The logged-in account, if any.
    pub fn user(&self) -> Option<User> {
        self.state.lock().user.clone()
    }

    /// Notes that the reply to request `msg_id` is awaited. Call before
    /// sending, so a quick reply cannot slip past.
    pub fn expect(&self, msg_id: i64) {
        self.state.lock().awaiting = Some(msg_id);
    }

    /// Waits until the awaited reply arrives, the connection closes, or
    /// `timeout` passes. Forgets the awaited reply either way.
    pub fn wait_reply(&self, timeout: Duration) -> Wait {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        let result = loop {
            if state.awaiting.is_none() {
                break Wait::Answered;
            }
            if state.closed {
                break Wait::Closed;
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                break Wait::TimedOut;
            }
        };
        state.awaiting = None;
        result
    }

    /// Waits up to `timeout` for the connection to close; returns whether it
    /// did. Used to linger for late messages before leaving.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        while !state.closed {
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        state.closed
    }

    /// Reader thread: records what `message` changes (login, logout) and
    /// wakes the input thread when it is the awaited reply.
    pub fn on_message(&self, message: &Incoming) {
        let mut state = self.state.lock();
        if let Incoming::Ack {
            outcome: Ok(reply), ..
        } = message
        {
            match reply {
                Reply::LoggedIn(view) | Reply::Refreshed(view) => {
                    state.user = Some(view.user.clone())
                }
                Reply::LoggedOut => state.user = None,
                _ => {}
            }
        }
        if message.answers().is_some() && message.answers() == state.awaiting {
            state.awaiting = None;
            self.changed.notify_all();
        }
    }

    /// Marks that we are about to close the connection ourselves.
    pub fn leave(&self) {
        self.state.lock().leaving = true;
    }

    /// Reader thread: the connection has closed. Returns `true` when that was
    /// unexpected (the server went away), `false` when we were leaving.
    pub fn on_closed(&self) -> bool {
        let mut state = self.state.lock();
        state.closed = true;
        self.changed.notify_all();
        !state.leaving
    }
}
