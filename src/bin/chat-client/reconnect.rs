//! Reconnecting: when the server goes away, the client connects again with
//! backoff, logs in with the credentials it used, catches up, and sends
//! again the chats whose SEND_ACK never came.
//!
//! ```text
//!  reader thread: stream ends ─▶ ClientState::on_closed ─▶ ChatClient::lost
//!                                                            │ (OnLost::Reconnect)
//!  reconnect thread:  wait 0.5 s, 1 s, 2 s … 30 s ─▶ connect ─▶ new reader
//!                     ─▶ login (the last one that succeeded) ─▶ catch-up
//!                     ─▶ unacked chats again, with their cids
//! ```
//!
//! The reconnect holds the client's `turn` from the first attempt to the
//! end, so a command typed meanwhile waits ([`ClientState::wait_open`] and
//! then the turn) and runs on the new connection. The login again uses the
//! resume token of the last login ack (`{"msgId":1,"token":…}`), so the
//! password is not kept at all (only against a server without tokens is
//! the last login, password included, kept in memory); a logout forgets
//! it, and a client that was not logged in only reconnects. A resent chat is
//! not stored twice: the server answers a known cid with the message's
//! original place.
//!
//! [`ClientState::wait_open`]: super::state::ClientState::wait_open

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::chat_client::{ChatClient, Flow, OnLost};
use super::connection::{Closed, Connection};
use chat::protocol::errno;

/// The first pause before reconnecting; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(500);
/// The longest pause between two attempts.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// Connection attempts before giving up.
pub const MAX_ATTEMPTS: u32 = 30;
/// Logins refused with "already online" (the server has not noticed the old
/// connection's end yet) before giving up on logging in.
const MAX_LOGIN_TRIES: u32 = 10;

/// The pause before attempt `n` (from 0): 0.5 s, 1 s, 2 s, … 30 s.
pub fn backoff(attempt: u32) -> Duration {
    FIRST_DELAY
        .saturating_mul(1 << attempt.min(16))
        .min(MAX_DELAY)
}

impl ChatClient {
    /// The connection ended unexpectedly (reader thread): end the process,
    /// or start reconnecting on a thread of its own.
    ///
    /// The state learns that the connection is closed only after the exit
    /// handler has had its say (it prints why and ends the process): an
    /// input thread waiting for a reply would otherwise see the close first
    /// and end the process without a word.
    pub(super) fn lost(self: &Arc<Self>, closed: Closed) {
        let Some(on_lost) = self.on_lost.lock().take() else {
            self.state.on_closed();
            return;
        };
        match on_lost {
            OnLost::Exit(exit) => {
                exit(closed);
                self.state.on_closed();
            }
            OnLost::Reconnect {
                addr,
                connect_timeout,
                give_up,
            } => {
                self.state.on_closed();
                self.note(&format!("connection lost: {closed}; reconnecting"));
                let client = Arc::clone(self);
                let spawned = thread::Builder::new()
                    .name("chat-client-reconnect".into())
                    .spawn(move || client.reconnect(&addr, connect_timeout, give_up, closed));
                if let Err(e) = spawned {
                    self.note(&format!("cannot start reconnecting: {e}"));
                }
            }
        }
    }

    /// Reconnects with backoff; see the module docs.
    fn reconnect(
        self: Arc<Self>,
        addr: &str,
        connect_timeout: Duration,
        give_up: Box<dyn FnOnce(Closed) + Send>,
        closed: Closed,
    ) {
        let turn = self.turn.lock();
        let mut last = closed;
        for attempt in 0..MAX_ATTEMPTS {
            thread::sleep(backoff(attempt));
            match Connection::connect(addr, connect_timeout) {
                Ok(conn) => {
                    let conn = Arc::new(conn);
                    *self.conn.lock() = conn.clone();
                    self.state.reopen();
                    // Put back before the reader starts: a connection that
                    // dies at once is reconnected again (by a new thread,
                    // which waits for this one's turn).
                    *self.on_lost.lock() = Some(OnLost::Reconnect {
                        addr: addr.to_owned(),
                        connect_timeout,
                        give_up,
                    });
                    match self.spawn_reader(&conn) {
                        Ok(()) => {
                            let line = format!("reconnected to {addr}");
                            self.out.line(&self.style.dim(&line));
                            self.log_in_again();
                        }
                        Err(e) => {
                            self.state.on_closed();
                            self.lost(Closed::Error(e));
                        }
                    }
                    drop(turn);
                    return;
                }
                Err(e) => {
                    self.note(&format!(
                        "cannot reconnect to {addr}: {e}; next try in {} s",
                        backoff(attempt + 1).as_secs_f32()
                    ));
                    last = Closed::Error(e);
                }
            }
        }
        drop(turn);
        give_up(last);
    }

    /// Logs in with the last login, when there was one, retrying while the
    /// server still counts the old connection; then the unacked chats.
    fn log_in_again(&self) {
        let Some(login) = self.login.lock().clone() else {
            return;
        };
        for _ in 0..MAX_LOGIN_TRIES {
            if self.log_in(&login) != Flow::Continue {
                return;
            }
            if self.state.user().is_some() {
                self.resend_unacked();
                return;
            }
            if self.state.last_errno() != Some(errno::ALREADY_ONLINE) {
                return;
            }
            thread::sleep(FIRST_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(10), MAX_DELAY);
        assert_eq!(backoff(u32::MAX), MAX_DELAY);
    }
}
