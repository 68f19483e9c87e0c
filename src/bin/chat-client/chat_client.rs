//! [`ChatClient`]: runs commands over a [`Connection`], whichever mode typed
//! them, and shows what the server says.
//!
//! Like muduo's `examples/asio/chat/client.cc`, it pairs a connection with
//! a message callback; here the callback runs on the reader thread and the
//! commands on the input thread:
//!
//! ```text
//!  input thread:  Command ─▶ request::build ─▶ Connection::send ─▶ wait for the ack
//!  reader thread: object ─▶ incoming::parse ─▶ ClientState::on_message ─▶ render ─▶ Output
//! ```
//!
//! Waiting for each ack (bounded by the reply timeout) keeps the output in
//! the order the commands were given and lets the next command use the
//! account the login just named. Chat messages have no ack, so they are not
//! waited for; a refusal arrives later as an error line.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::command::Command;
use super::connection::{Closed, Connection};
use super::help;
use super::incoming;
use super::output::Output;
use super::render::render;
use super::request;
use super::state::{ClientState, Wait};
use super::style::Style;
use chat::protocol::reply;

/// What the caller should do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// The user asked to quit.
    Quit,
    /// The connection is gone; exit with an error.
    Lost,
}

/// A connected client. See the module docs.
///
/// Thread rule: [`ChatClient::run`] and [`ChatClient::leave`] are called
/// from one thread only, the input thread (one reply is awaited at a time);
/// the reader thread is internal. The accessors are safe from any thread.
pub struct ChatClient {
    conn: Arc<Connection>,
    state: Arc<ClientState>,
    out: Arc<dyn Output>,
    style: Style,
    /// How long to wait for an ack before giving up on it.
    reply_timeout: Duration,
}

impl ChatClient {
    /// Starts the reader thread on `conn`. Replies and incoming messages go
    /// to `out`; when the server closes the connection unexpectedly,
    /// `on_lost` runs on the reader thread with the reason (it is expected
    /// to end the process: the input thread may be blocked reading a line).
    ///
    /// # Errors
    ///
    /// When the reader thread cannot be started.
    pub fn start(
        conn: Connection,
        out: Arc<dyn Output>,
        style: Style,
        reply_timeout: Duration,
        on_lost: impl FnOnce(Closed) + Send + 'static,
    ) -> io::Result<ChatClient> {
        let conn = Arc::new(conn);
        let state = Arc::new(ClientState::new());
        let (reader_state, reader_out) = (state.clone(), out.clone());
        let closing_state = state.clone();
        conn.spawn_reader(
            move |object| {
                let message = incoming::parse(object);
                reader_state.on_message(&message);
                reader_out.lines(&render(&message, &style));
            },
            move |closed| {
                if closing_state.on_closed() {
                    on_lost(closed);
                }
            },
        )?;
        Ok(ChatClient {
            conn,
            state,
            out,
            style,
            reply_timeout,
        })
    }

    /// The shared state: who is logged in, whether the connection is open.
    pub fn state(&self) -> &ClientState {
        &self.state
    }

    /// The output replies go to.
    pub fn output(&self) -> &dyn Output {
        &*self.out
    }

    /// The colours in use.
    pub fn style(&self) -> &Style {
        &self.style
    }

    /// Runs one command: sends its request and waits for the ack, if any.
    /// `help` and `quit` are answered here; everything else goes to the
    /// server, which has the last word.
    pub fn run(&self, command: &Command) -> Flow {
        let user = self.state.user();
        match (command, &user) {
            (Command::Quit, _) => return Flow::Quit,
            (Command::Help, _) => {
                self.out.lines(&help::help(user.is_some(), &self.style));
                return Flow::Continue;
            }
            (Command::Login { .. } | Command::Register { .. }, Some(u)) => {
                self.note(&format!(
                    "you are logged in as {} ({}); logout first",
                    u.name, u.uid
                ));
                return Flow::Continue;
            }
            (c, None) if c.needs_login() => {
                self.note("log in first: login:id:password (or register:name:password)");
                return Flow::Continue;
            }
            _ => {}
        }
        let Some(message) = request::build(command, user.as_ref()) else {
            self.note("the password is missing (usage: login:id:password, register:name:password)");
            return Flow::Continue;
        };
        self.request(&message)
    }

    /// Sends `message` and, when its msgId has an ack, waits for it.
    fn request(&self, message: &serde_json::Value) -> Flow {
        let id = message["msgId"].as_i64().unwrap_or_default();
        let acked = reply::ack_id(id).is_some();
        if acked {
            self.state.expect(id);
        }
        if let Err(e) = self.conn.send(message) {
            self.note(&format!("error: cannot send to the server: {e}"));
            return Flow::Lost;
        }
        if !acked {
            return Flow::Continue;
        }
        match self.state.wait_reply(self.reply_timeout) {
            Wait::Answered => Flow::Continue,
            Wait::Closed => Flow::Lost,
            Wait::TimedOut => {
                self.note(&format!(
                    "warning: no reply to {} within {} ms",
                    request::command_name(id),
                    self.reply_timeout.as_millis()
                ));
                Flow::Continue
            }
        }
    }

    /// Leaves: waits up to `linger` for late messages, logs out when logged
    /// in (so the server has marked us offline before we exit), and closes
    /// the connection. Returns [`Flow::Lost`] when the server went away
    /// meanwhile.
    pub fn leave(&self, linger: Duration) -> Flow {
        if !linger.is_zero() && self.state.wait_closed(linger) {
            return Flow::Lost;
        }
        let user = self.state.user();
        if let Some(logout) = user.and_then(|u| request::build(&Command::Logout, Some(&u))) {
            if self.request(&logout) == Flow::Lost {
                return Flow::Lost;
            }
        }
        self.state.leave();
        self.conn.close();
        Flow::Quit
    }

    fn note(&self, text: &str) {
        self.out.note(&self.style.error(text));
    }
}
