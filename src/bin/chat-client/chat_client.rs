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
//! account the login just named.
//!
//! With the message log (the default; `--no-log` talks as the original
//! client) every chat and group chat carries a fresh cid and is waited for
//! like any request: its 28 SEND_ACK says it is stored (`sent … #seq`) or
//! why not. After every login the client catches up: CONVS, then for each
//! conversation with messages it has not shown, SYNC after the last one it
//! holds, page by page until `more` is false; the reader shows only what is
//! new ([`LogBook`](super::book::LogBook)). Without the log, chat messages
//! have no ack and are not waited for; a refusal arrives later as an error
//! line.

use parking_lot::Mutex;
use serde_json::{json, Value};
use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::command::Command;
use super::connection::{Closed, Connection};
use super::help;
use super::incoming::{self, Sent, SyncPurpose};
use super::output::Output;
use super::render::render;
use super::request::{self, CidGen};
use super::state::{ClientState, Wait};
use super::style::Style;
use chat::protocol::{msg_id, reply};

/// Most pages one conversation's catch-up fetches (500 messages each): a
/// bound, so a server that keeps saying `more` cannot hold the client.
const MAX_CATCH_UP_PAGES: usize = 200;

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

/// What the client does when the server goes away unexpectedly.
pub enum OnLost {
    /// Run this (it is expected to end the process).
    Exit(Box<dyn FnOnce(Closed) + Send>),
    /// Reconnect to `addr` with backoff (see [`reconnect`](super::reconnect)),
    /// and run the function when giving up.
    Reconnect {
        addr: String,
        connect_timeout: Duration,
        give_up: Box<dyn FnOnce(Closed) + Send>,
    },
}

/// A connected client. See the module docs.
///
/// Thread rule: [`ChatClient::run`] and [`ChatClient::leave`] are called
/// from one thread only, the input thread; a reconnect runs on a thread of
/// its own. Requests take turns (`turn`), so one reply is awaited at a
/// time. The reader thread is internal. The accessors are safe from any
/// thread.
pub struct ChatClient {
    /// The connection; replaced by a reconnect.
    pub(super) conn: Mutex<Arc<Connection>>,
    pub(super) state: Arc<ClientState>,
    pub(super) out: Arc<dyn Output>,
    pub(super) style: Style,
    /// How long to wait for an ack before giving up on it.
    reply_timeout: Duration,
    /// Cids for chats, or `None` without the message log (`--no-log`).
    cids: Option<CidGen>,
    /// Held while a request waits for its reply (and for a whole reconnect).
    pub(super) turn: Mutex<()>,
    /// How to log in again after a reconnect: a token login with the
    /// resume token of the last login ack, or (from a server without
    /// tokens) the last successful login request, password included, in
    /// memory only; cleared by logout.
    pub(super) login: Mutex<Option<Value>>,
    /// What to do when the connection is lost; taken when it happens.
    pub(super) on_lost: Mutex<Option<OnLost>>,
    /// Whether a lost connection is reconnected (then a request whose
    /// reply was cut off is no reason to stop).
    pub(super) reconnects: bool,
}

impl ChatClient {
    /// Starts the reader thread on `conn`. Replies and incoming messages go
    /// to `out`; when the server closes the connection unexpectedly,
    /// `on_lost` says what happens: the process ends, or the client
    /// reconnects. `log` turns the message log's features on: cids, acks,
    /// catch-up.
    ///
    /// # Errors
    ///
    /// When the reader thread cannot be started.
    pub fn start(
        conn: Connection,
        out: Arc<dyn Output>,
        style: Style,
        (reply_timeout, log): (Duration, bool),
        on_lost: OnLost,
    ) -> io::Result<Arc<ChatClient>> {
        let conn = Arc::new(conn);
        let client = Arc::new(ChatClient {
            conn: Mutex::new(conn.clone()),
            state: Arc::new(ClientState::new()),
            out,
            style,
            reply_timeout,
            cids: log.then(CidGen::new),
            turn: Mutex::new(()),
            login: Mutex::new(None),
            reconnects: matches!(on_lost, OnLost::Reconnect { .. }),
            on_lost: Mutex::new(Some(on_lost)),
        });
        client.spawn_reader(&conn)?;
        Ok(client)
    }

    /// Starts a reader thread on `conn`: it shows what arrives, and on an
    /// unexpected end of the stream runs the [`OnLost`].
    pub(super) fn spawn_reader(self: &Arc<Self>, conn: &Connection) -> io::Result<()> {
        let (state, out, style) = (self.state.clone(), self.out.clone(), self.style);
        let client: Weak<ChatClient> = Arc::downgrade(self);
        conn.spawn_reader(
            move |object| {
                let mut message = incoming::parse(object);
                state.on_message_then(&mut message, |m| out.lines(&render(m, &style)));
            },
            move |closed| match client.upgrade() {
                Some(client) if !client.state.is_leaving() => client.lost(closed),
                Some(client) => {
                    client.state.on_closed();
                }
                None => {}
            },
        )?;
        Ok(())
    }

    /// The connection in use now.
    pub(super) fn conn(&self) -> Arc<Connection> {
        self.conn.lock().clone()
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
    /// server, which has the last word. While a reconnect is under way the
    /// command waits for it.
    pub fn run(&self, command: &Command) -> Flow {
        if self.reconnects {
            self.state.wait_open();
        }
        let _turn = self.turn.lock();
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
        let resolved = match self.state.resolve(command) {
            Ok(resolved) => resolved,
            Err(why) => {
                // A local refusal counts as the server's would (--strict).
                self.note(&why);
                self.state.note_failure();
                return Flow::Continue;
            }
        };
        let command = &resolved;
        if self.cids.is_none() && matches!(command, Command::History { .. } | Command::Convs) {
            self.note("history and convs need the message log (started with --no-log)");
            return Flow::Continue;
        }
        let cids = self.cids.as_ref().filter(|_| !self.state.no_log());
        let cid = cids.and_then(|g| chat_of(command).map(|_| g.next()));
        let Some(message) = request::build(command, user.as_ref(), cid.as_deref()) else {
            self.note("the password is missing (usage: login:id:password, register:name:password)");
            return Flow::Continue;
        };
        match (command, cid) {
            (_, Some(cid)) => self.chat(&message, &cid, command),
            (Command::History { .. }, _) => self.history(&message),
            (Command::Login { .. }, _) => self.log_in(&message),
            (Command::ChangePassword { .. }, _) => {
                let flow = self.request(&message);
                if self.login.lock().is_some() {
                    // The old token is revoked: keep the ack's.
                    self.remember_login(&Value::Null);
                }
                flow
            }
            (Command::Logout, _) => {
                let flow = self.request(&message);
                if self.state.user().is_none() {
                    *self.login.lock() = None;
                }
                flow
            }
            _ => self.request(&message),
        }
    }

    /// Logs in with `login` and, once logged in, remembers it (for a
    /// reconnect) and catches up.
    pub(super) fn log_in(&self, login: &Value) -> Flow {
        let flow = self.request(login);
        if flow != Flow::Continue || self.state.user().is_none() {
            return flow;
        }
        self.remember_login(login);
        if self.cids.is_some() && !self.state.no_log() {
            return self.catch_up();
        }
        Flow::Continue
    }

    /// Keeps how to log in again: the latest resume token when the server
    /// handed one out, else `login` itself (unless it is `null`).
    fn remember_login(&self, login: &Value) {
        let again = match self.state.token() {
            Some(token) => json!({ "msgId": msg_id::LOGIN_MSG, "token": token }),
            None if login.is_null() => return,
            None => login.clone(),
        };
        *self.login.lock() = Some(again);
    }

    /// Sends a chat with `cid` and waits for its SEND_ACK.
    fn chat(&self, message: &Value, cid: &str, command: &Command) -> Flow {
        if let Some(sent) = chat_of(command) {
            self.state.expect_cid(cid, sent, message.clone());
        }
        self.send_and_wait(message, "chat")
    }

    /// After a reconnect: sends again, with their cids, the chats whose
    /// SEND_ACK never came (the server stores a cid once, so a message that
    /// did arrive is only acked again).
    pub(super) fn resend_unacked(&self) -> Flow {
        for (cid, sent, body) in self.state.take_unacked() {
            self.state.expect_cid(&cid, sent, body.clone());
            let flow = self.send_and_wait(&body, "chat");
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// `history`: one SYNC page, shown whole; then READ up to its last
    /// message, so a viewed conversation counts as read.
    fn history(&self, message: &Value) -> Flow {
        self.state.expect_sync(SyncPurpose::History);
        let flow = self.request(message);
        if flow != Flow::Continue {
            return flow;
        }
        match self.state.take_page_end() {
            Some(end) => match end.last {
                Some(last) => self.request(&request::read(&end.conv, last)),
                None => Flow::Continue,
            },
            None => Flow::Continue,
        }
    }

    /// The catch-up after a login: CONVS, then SYNC after the held seq of
    /// every conversation that is ahead, until `more` is false. Ends with
    /// `caught up: …` when any conversation was behind.
    pub(super) fn catch_up(&self) -> Flow {
        self.state.expect_quiet_convs();
        let flow = self.request(&request::convs());
        if flow != Flow::Continue || self.state.no_log() {
            return flow;
        }
        let behind = self.state.behind();
        let mut shown = 0;
        for (conv, after) in &behind {
            match self.catch_up_conv(conv, *after) {
                Ok(n) => shown += n,
                Err(flow) => return flow,
            }
        }
        if !behind.is_empty() {
            self.out.line(&self.style.dim(&format!(
                "caught up: {shown} new message{} in {} conversation{}",
                plural(shown),
                behind.len(),
                plural(behind.len())
            )));
        }
        Flow::Continue
    }

    /// Pages through `conv` after seq `after`; returns the messages shown.
    fn catch_up_conv(&self, conv: &str, mut after: u64) -> Result<usize, Flow> {
        let mut shown = 0;
        for _ in 0..MAX_CATCH_UP_PAGES {
            self.state.expect_sync(SyncPurpose::CatchUp);
            match self.request(&request::sync_after(conv, after)) {
                Flow::Continue => {}
                flow => return Err(flow),
            }
            // No page: an error (shown already) or a timeout; stop here.
            let Some(end) = self.state.take_page_end().filter(|e| e.conv == conv) else {
                break;
            };
            shown += end.shown;
            match end.last {
                Some(last) if end.more && last > after => after = last,
                last => {
                    if !end.more {
                        self.state.caught_up(conv, last.unwrap_or(after));
                    }
                    break;
                }
            }
        }
        Ok(shown)
    }

    /// Sends `message` and, when its msgId has an ack, waits for it.
    pub(super) fn request(&self, message: &Value) -> Flow {
        let id = message["msgId"].as_i64().unwrap_or_default();
        let acked = reply::ack_id(id).is_some();
        if !acked {
            return match self.conn().send(message) {
                Ok(()) => Flow::Continue,
                Err(e) => self.cannot_send(&e),
            };
        }
        self.state.expect(id);
        self.send_and_wait(message, request::command_name(id))
    }

    /// Sends `message`, whose reply [`ClientState`] expects already, and
    /// waits for it; `what` names it in the timeout warning.
    fn send_and_wait(&self, message: &Value, what: &str) -> Flow {
        if let Err(e) = self.conn().send(message) {
            return self.cannot_send(&e);
        }
        match self.state.wait_reply(self.reply_timeout) {
            Wait::Answered => Flow::Continue,
            // The reconnect sends unacked chats again; other requests are
            // for the user to repeat.
            Wait::Closed if self.reconnects => Flow::Continue,
            Wait::Closed => Flow::Lost,
            Wait::TimedOut => {
                self.state.note_unanswered();
                self.note(&format!(
                    "warning: no reply to {what} within {} ms",
                    self.reply_timeout.as_millis()
                ));
                Flow::Continue
            }
        }
    }

    fn cannot_send(&self, e: &io::Error) -> Flow {
        self.note(&format!("error: cannot send to the server: {e}"));
        if self.reconnects {
            Flow::Continue
        } else {
            Flow::Lost
        }
    }

    /// Leaves: waits up to `linger` for late messages, logs out when logged
    /// in (so the server has marked us offline before we exit), and closes
    /// the connection. Returns [`Flow::Lost`] when the server went away
    /// meanwhile.
    pub fn leave(&self, linger: Duration) -> Flow {
        if !linger.is_zero() && self.state.wait_closed(linger) && !self.reconnects {
            return Flow::Lost;
        }
        let _turn = self.turn.lock();
        let user = self.state.user();
        if let Some(logout) = user.and_then(|u| request::build(&Command::Logout, Some(&u), None)) {
            if self.request(&logout) == Flow::Lost {
                return Flow::Lost;
            }
        }
        self.state.leave();
        self.conn().close();
        Flow::Quit
    }

    pub(super) fn note(&self, text: &str) {
        self.out.note(&self.style.error(text));
    }
}

/// What a chat or group chat command sends, for its SEND_ACK; `None` for
/// every other command.
fn chat_of(command: &Command) -> Option<Sent> {
    match command {
        Command::Chat { to, text } => Some(Sent {
            request: msg_id::ONE_CHAT_MSG,
            to: to.id()?,
            text: text.clone(),
        }),
        Command::GroupChat { gid, text } => Some(Sent {
            request: msg_id::GROUP_CHAT_MSG,
            to: gid.id()?,
            text: text.clone(),
        }),
        _ => None,
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
