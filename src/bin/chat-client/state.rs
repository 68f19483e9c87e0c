//! `ClientState`: what the two threads of a client share: who is logged
//! in, which reply the input thread is waiting for, and whether the
//! connection is open. (The server's per-connection login state is its
//! own `Session`; this is the client's side and a different thing.)
//!
//! The reader thread calls [`ClientState::on_message`] for every message
//! and [`ClientState::on_closed`] once; the input thread asks and waits. A
//! `Mutex` and a `Condvar` are all it takes: there is one waiter.
//!
//! With the message log it also keeps the chats sent with a cid that await
//! their SEND_ACK ([`MAX_PENDING`] at most), the [`LogBook`] that drops
//! messages shown already, and what the last CONVS and SYNC replies said,
//! for the catch-up the input thread runs after a login.

use parking_lot::{Condvar, Mutex};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::book::LogBook;
use super::command::Command;
use super::incoming::{Incoming, Offline, Reply, Sent, SyncPage, SyncPurpose};
use super::names::Directory;
use super::request::User;
use chat::protocol::{errno, msg_id};

/// Chats awaiting their SEND_ACK that are remembered; an older one is
/// forgotten (its ack is then shown without the text).
pub const MAX_PENDING: usize = 1024;

/// What the input thread waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaiting {
    /// The ack of the request with this msgId.
    Reply(i64),
    /// The SEND_ACK of the chat sent with this cid (or an error 27 about a
    /// request with this msgId).
    Cid(String, i64),
}

/// What the last SYNC reply said, for the catch-up loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEnd {
    /// The conversation.
    pub conv: String,
    /// The highest seq in the page, if it had any message.
    pub last: Option<u64>,
    /// Whether more messages follow.
    pub more: bool,
    /// How many of its messages were shown.
    pub shown: usize,
}

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
    /// The names of its friends, fellow group members and groups, from the
    /// same ack.
    names: Directory,
    /// The reply the input thread waits for.
    awaiting: Option<Awaiting>,
    /// Requests the server refused or did not answer in time (scripted
    /// mode's exit status).
    failures: u32,
    /// Chats sent with a cid, by cid (what was sent, and the request to
    /// send again after a reconnect), and their order (oldest first).
    pending: HashMap<String, (Sent, Value)>,
    pending_order: VecDeque<String>,
    /// Messages shown per conversation.
    book: LogBook,
    /// How the reply to the SYNC in flight is to be shown.
    sync_purpose: SyncPurpose,
    /// The last SYNC reply's end, taken by the catch-up.
    page_end: Option<PageEnd>,
    /// The server answered CONVS with "unknown msgId": it keeps no message
    /// log, so chats go without a cid.
    no_log: bool,
    /// The CONVS in flight is the catch-up's: its reply is not shown.
    quiet_convs: bool,
    /// The errno of the last login that failed (since the last success).
    login_errno: Option<i64>,
    /// The resume token of the last login (or password change) ack.
    token: Option<String>,
    /// The connection is closed (by either side).
    closed: bool,
    /// We are closing it on purpose, so its end is no error.
    leaving: bool,
}

impl Inner {
    /// The bookkeeping of [`ClientState::on_message`].
    fn absorb(&mut self, message: &mut Incoming) -> bool {
        let show = self.absorb_any(message);
        if message.answers() == Some(msg_id::CONVS_MSG) && std::mem::take(&mut self.quiet_convs) {
            // The catch-up's own CONVS: only an error is shown.
            let ok = matches!(message, Incoming::Ack { outcome: Ok(_), .. });
            return show && !ok;
        }
        show
    }

    fn absorb_any(&mut self, message: &mut Incoming) -> bool {
        match message {
            Incoming::Ack {
                outcome: Ok(reply), ..
            } => self.absorb_reply(reply),
            Incoming::Chat(m) => m
                .pos
                .as_ref()
                .is_none_or(|p| self.book.note(&p.conv, p.seq)),
            Incoming::GroupChat(m) => m
                .pos
                .as_ref()
                .is_none_or(|p| self.book.note(&p.conv, p.seq)),
            Incoming::SendAck { cid, outcome, sent } => {
                *sent = self.pending.remove(cid.as_str()).map(|(s, _)| s);
                if sent.is_some() {
                    self.pending_order.retain(|c| c != cid);
                }
                if let Ok(pos) = outcome {
                    // Our own message is held: a catch-up need not fetch it.
                    self.book.note(&pos.conv, pos.seq);
                }
                true
            }
            Incoming::Ack {
                request: msg_id::CONVS_MSG,
                outcome: Err(f),
            }
            | Incoming::Error(f)
                if f.errno == errno::UNKNOWN_MSG && f.request == Some(msg_id::CONVS_MSG) =>
            {
                // A server from before the log: say nothing, fall back.
                self.no_log = true;
                false
            }
            Incoming::Ack {
                request: msg_id::LOGIN_MSG,
                outcome: Err(f),
            } => {
                self.login_errno = Some(f.errno);
                true
            }
            Incoming::Ack { .. }
            | Incoming::Error(_)
            | Incoming::Receipt { .. }
            | Incoming::Typing { .. }
            | Incoming::Unknown(_) => true,
        }
    }

    fn absorb_reply(&mut self, reply: &mut Reply) -> bool {
        match reply {
            Reply::LoggedIn(view) => {
                self.login_errno = None;
                self.book.logged_in(view.user.uid);
                self.user = Some(view.user.clone());
                self.names = Directory::from_view(view);
                self.token = view.token.clone();
                let book = &mut self.book;
                view.offline.retain(|m| fresh(book, m));
            }
            Reply::Refreshed(view) => {
                self.user = Some(view.user.clone());
                self.names = Directory::from_view(view);
            }
            Reply::PasswordChanged { token } => self.token = token.clone(),
            Reply::LoggedOut => {
                self.user = None;
                self.names = Directory::default();
                self.token = None;
                self.pending.clear();
                self.pending_order.clear();
            }
            Reply::Convs(convs) => {
                self.book
                    .convs(convs.iter().map(|c| (c.conv.as_str(), c.last_seq)));
            }
            Reply::Synced(page) => self.absorb_page(page),
            Reply::GroupCreated { gid, name } => self.names.learn_group(*gid, name),
            Reply::Members { members, .. } => {
                let me = self.user.as_ref().map(|u| u.uid);
                self.names.learn_members(me, members);
            }
            Reply::GroupQuit { gid: Some(gid) } | Reply::GroupDismissed { gid: Some(gid) } => {
                self.names.forget_group(*gid)
            }
            _ => {}
        }
        true
    }

    /// A SYNC page: how to show it, and for a catch-up only what is new.
    fn absorb_page(&mut self, page: &mut SyncPage) {
        page.purpose = self.sync_purpose;
        self.page_end = Some(PageEnd {
            conv: page.conv.clone(),
            last: page
                .msgs
                .iter()
                .filter_map(|m| m.pos().map(|p| p.seq))
                .max(),
            more: page.more,
            shown: 0,
        });
        let book = &mut self.book;
        if page.purpose == SyncPurpose::CatchUp {
            page.msgs.retain(|m| fresh(book, m));
        } else {
            // History shows everything; what it showed is not shown again
            // when it also arrives live.
            for m in &page.msgs {
                fresh(book, m);
            }
        }
        if let Some(end) = self.page_end.as_mut() {
            end.shown = page.msgs.len();
        }
    }
}

/// Whether a stored message is new to `book` (and notes it if so).
fn fresh(book: &mut LogBook, m: &Offline) -> bool {
    m.pos().is_none_or(|p| book.note(&p.conv, p.seq))
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
        self.state.lock().awaiting = Some(Awaiting::Reply(msg_id));
    }

    /// Notes that the chat `sent` goes out with `cid` as `body` and that its
    /// SEND_ACK is awaited. Call before sending.
    pub fn expect_cid(&self, cid: &str, sent: Sent, body: Value) {
        let mut state = self.state.lock();
        state.awaiting = Some(Awaiting::Cid(cid.to_owned(), sent.request));
        if state.pending.len() >= MAX_PENDING {
            if let Some(oldest) = state.pending_order.pop_front() {
                state.pending.remove(&oldest);
            }
        }
        if state.pending.insert(cid.to_owned(), (sent, body)).is_none() {
            state.pending_order.push_back(cid.to_owned());
        }
    }

    /// The chats still awaiting their SEND_ACK, oldest first, forgotten
    /// here (a resend expects them again).
    pub fn take_unacked(&self) -> Vec<(String, Sent, Value)> {
        let mut state = self.state.lock();
        let order = std::mem::take(&mut state.pending_order);
        let mut pending = std::mem::take(&mut state.pending);
        order
            .into_iter()
            .filter_map(|cid| {
                let (sent, body) = pending.remove(&cid)?;
                Some((cid, sent, body))
            })
            .collect()
    }

    /// Waits until the connection is open (at once when it is): a command
    /// typed during a reconnect waits for it.
    pub fn wait_open(&self) {
        let mut state = self.state.lock();
        while state.closed && !state.leaving {
            self.changed.wait(&mut state);
        }
    }

    /// A new connection replaces the lost one: open, nobody logged in yet,
    /// nothing awaited. The log's books and the unacked chats stay.
    pub fn reopen(&self) {
        let mut state = self.state.lock();
        state.closed = false;
        state.user = None;
        state.awaiting = None;
        state.page_end = None;
        self.changed.notify_all();
    }

    /// The errno of the last failed login, `None` after a success.
    pub fn token(&self) -> Option<String> {
        self.state.lock().token.clone()
    }

    /// The errno of the last login that failed (since the last success).
    pub fn last_errno(&self) -> Option<i64> {
        self.state.lock().login_errno
    }

    /// Whether the server turned out to have no message log.
    pub fn no_log(&self) -> bool {
        self.state.lock().no_log
    }

    /// Chats sent whose SEND_ACK has not come yet.
    pub fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Notes that the SYNC about to be sent is for `purpose`.
    pub fn expect_sync(&self, purpose: SyncPurpose) {
        let mut state = self.state.lock();
        state.sync_purpose = purpose;
        state.page_end = None;
    }

    /// Notes that the reply to the CONVS about to be sent is for the
    /// catch-up only, and not to be shown.
    pub fn expect_quiet_convs(&self) {
        self.state.lock().quiet_convs = true;
    }

    /// The end of the last SYNC page, once (the catch-up reads it).
    pub fn take_page_end(&self) -> Option<PageEnd> {
        self.state.lock().page_end.take()
    }

    /// The conversations with messages not shown yet, and the seq to sync
    /// after (see [`LogBook::behind`]).
    pub fn behind(&self) -> Vec<(String, u64)> {
        self.state.lock().book.behind()
    }

    /// A catch-up of `conv` is complete up to `up_to`.
    pub fn caught_up(&self, conv: &str, up_to: u64) {
        self.state.lock().book.caught_up(conv, up_to);
    }

    /// `command` with each user or group it names by name replaced by the
    /// id the last login or refresh ack listed ([`crate::names`]).
    ///
    /// # Errors
    /// A name that is unknown or ambiguous, in words for the user.
    pub fn resolve(&self, command: &Command) -> Result<Command, String> {
        crate::names::resolve(command, &self.state.lock().names)
    }

    /// Counts a request the client itself refused (a name it could not
    /// resolve), as a refusal of the server's counts.
    pub fn note_failure(&self) {
        let mut state = self.state.lock();
        state.failures = state.failures.saturating_add(1);
    }

    /// Counts a request that got no reply in time.
    pub fn note_unanswered(&self) {
        let mut state = self.state.lock();
        state.failures = state.failures.saturating_add(1);
    }

    /// Requests refused by the server or unanswered so far.
    pub fn failures(&self) -> u32 {
        self.state.lock().failures
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

    /// Reader thread: records what `message` changes (login, logout, the
    /// log's bookkeeping), drops from it what was shown already, calls
    /// `show` with it unless nothing of it is to be shown (a duplicate chat
    /// message), and then, when it is the awaited reply, wakes the input
    /// thread. Showing first keeps the output in order: what the input
    /// thread prints after its reply comes after the reply's lines.
    /// Returns whether the message was shown.
    pub fn on_message_then(&self, message: &mut Incoming, show: impl FnOnce(&Incoming)) -> bool {
        let (visible, answered) = {
            let mut state = self.state.lock();
            let visible = state.absorb(message);
            let answered = match (&state.awaiting, &*message) {
                (Some(Awaiting::Cid(cid, _)), Incoming::SendAck { cid: got, .. }) => cid == got,
                (Some(Awaiting::Cid(_, request)), m) => m.answers() == Some(*request),
                (Some(Awaiting::Reply(request)), m) => m.answers() == Some(*request),
                (None, _) => false,
            };
            (visible, answered.then(|| state.awaiting.clone()).flatten())
        };
        if visible {
            show(message);
        }
        if let Some(awaited) = answered {
            let mut state = self.state.lock();
            if message.refused() {
                state.failures = state.failures.saturating_add(1);
            }
            // Unless the input thread gave up on it meanwhile.
            if state.awaiting.as_ref() == Some(&awaited) {
                state.awaiting = None;
                self.changed.notify_all();
            }
        }
        visible
    }

    /// [`ClientState::on_message_then`] without showing anything.
    #[cfg(test)]
    pub fn on_message(&self, message: &mut Incoming) -> bool {
        self.on_message_then(message, |_| {})
    }

    /// Marks that we are about to close the connection ourselves.
    pub fn leave(&self) {
        self.state.lock().leaving = true;
    }

    /// Whether we are closing the connection ourselves.
    pub fn is_leaving(&self) -> bool {
        self.state.lock().leaving
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

#[cfg(test)]
mod tests;
