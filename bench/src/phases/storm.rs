//! The `storm` scenario's measured phase: every storm user drops its
//! connection and reconnects at once, then logs in again (by resume token
//! or by password), while the chatters chat.
//!
//! ```text
//! storm user:  close ─▶ connect ─▶ login (token or password) ─▶ ack: done
//! chatter:     every 100 ms a chat with a cid to its partner ─▶ SEND_ACK
//!              (latency), one in flight, until every storm user is done
//! ```
//!
//! Per worker; the worker's storm users and chatters are its own. The
//! phase ends when every storm user of the worker is logged in again, or
//! failed, and every chatter's message in flight is acked (each chatter
//! sends at least one, at the drop), or the deadline passed. `Outcome::ok`/`failed`/`latency` are the
//! logins (reconnect to ack), `last_arrival` the last login ack;
//! `acked`/`ack_failed`/`ack_latency` the chatters'.

use super::{Outcome, Phase, ALREADY_ONLINE, LOGIN_MAX_TRIES, LOGIN_RETRY_AFTER};
use crate::proto;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How often a chatter sends (when its last message is acked).
const CHAT_EVERY: Duration = Duration::from_millis(100);

/// One storm user: where to reconnect, and the login to send.
pub(crate) struct StormUser {
    pub user: usize,
    pub addr: SocketAddr,
    pub source: Option<IpAddr>,
    /// The login request, as JSON text (token or password).
    pub login: String,
}

/// One chatter: its uid and quoted name, and the partner's uid.
pub(crate) struct Chatter {
    pub user: usize,
    pub uid: i64,
    pub name_json: String,
    pub to: i64,
}

/// A chatter on its slot: when its chat in flight went out.
struct Chatting {
    chatter: Chatter,
    sent_at: Option<Instant>,
    next_at: Instant,
    count: u64,
}

/// The storm phase of one worker.
pub(crate) struct StormPhase {
    todo: Vec<StormUser>,
    /// Slot → (login text, when the reconnect began, logins sent); until
    /// its ack.
    storming: HashMap<usize, (String, Instant, u32)>,
    /// Logins to send again: (when, slot).
    retries: Vec<(Instant, usize)>,
    chatters: Vec<Chatter>,
    chatting: HashMap<usize, Chatting>,
    deadline: Instant,
    outcome: Outcome,
}

impl StormPhase {
    /// `users` reconnect and log in again while `chatters` chat; nothing
    /// is waited for past `deadline`.
    pub fn new(users: Vec<StormUser>, chatters: Vec<Chatter>, deadline: Instant) -> Self {
        StormPhase {
            todo: users,
            storming: HashMap::new(),
            retries: Vec::new(),
            chatters,
            chatting: HashMap::new(),
            deadline,
            outcome: Outcome::default(),
        }
    }

    fn fail(&mut self, io: &Io, why: String) {
        self.outcome.failed += 1;
        Counters::add(&io.counters.failed, 1);
        self.outcome.error(why);
    }

    /// Sends (again) the login of the storm user on `slot`.
    fn send_login(&mut self, io: &mut Io, slot: usize) {
        if let Some((login, _, tries)) = self.storming.get_mut(&slot) {
            *tries += 1;
            io.send(slot, login);
        }
    }

    /// Sends the next chat of every idle chatter whose time has come.
    fn chat(&mut self, io: &mut Io) -> Option<Instant> {
        let mut next = None::<Instant>;
        let storm_over = self.storming.is_empty();
        for (&slot, c) in &mut self.chatting {
            if storm_over && c.count > 0 {
                continue;
            }
            if c.sent_at.is_none() && c.next_at <= io.now {
                c.count += 1;
                let cid = format!("storm-{}-{}", c.chatter.user, c.count);
                let text = proto::one_chat(
                    c.chatter.uid,
                    &c.chatter.name_json,
                    c.chatter.to,
                    "storm",
                    "",
                    Some(&cid),
                );
                io.send(slot, &text);
                c.sent_at = Some(io.now);
                c.next_at = io.now + CHAT_EVERY;
            }
            if c.sent_at.is_none() {
                next = Some(next.map_or(c.next_at, |n| n.min(c.next_at)));
            }
        }
        next
    }
}

impl Phase for StormPhase {
    fn start(&mut self, io: &mut Io) {
        for c in std::mem::take(&mut self.chatters) {
            match io.slot_of(c.user).filter(|&s| io.is_open(s)) {
                Some(slot) => {
                    let chatting = Chatting {
                        chatter: c,
                        sent_at: None,
                        next_at: io.now,
                        count: 0,
                    };
                    self.chatting.insert(slot, chatting);
                }
                None => self.outcome.error("chatter: not connected"),
            }
        }
        // All at once: every storm user drops, then reconnects.
        let users = std::mem::take(&mut self.todo);
        for u in &users {
            if let Some(slot) = io.slot_of(u.user) {
                io.close(slot);
            }
        }
        for u in users {
            match io.connect(u.user, u.addr, u.source) {
                Ok(slot) => {
                    self.storming.insert(slot, (u.login, io.now, 0));
                }
                Err(e) => self.fail(io, format!("reconnect: {e}")),
            }
        }
        self.chat(io);
    }

    fn on_connected(&mut self, io: &mut Io, slot: usize) {
        self.send_login(io, slot);
    }

    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value) {
        let id = proto::msg_id(&msg);
        if let Some(c) = self.chatting.get_mut(&slot) {
            if id == Some(proto::SEND_ACK) {
                if let Some(at) = c.sent_at.take() {
                    let micros = io.now.saturating_duration_since(at).as_micros();
                    self.outcome.ack_latency.record(micros as u64);
                }
                if proto::errno(&msg) == 0 {
                    self.outcome.acked += 1;
                } else {
                    self.outcome.ack_failed += 1;
                }
            }
            return;
        }
        if id != Some(proto::LOGIN_MSG_ACK) && id != Some(proto::ERROR_MSG) {
            return;
        }
        if id == Some(proto::LOGIN_MSG_ACK) && proto::errno(&msg) == ALREADY_ONLINE {
            if let Some(&(_, _, tries)) = self.storming.get(&slot) {
                if tries < LOGIN_MAX_TRIES {
                    self.retries.push((io.now + LOGIN_RETRY_AFTER, slot));
                    return;
                }
            }
        }
        let Some((_, began, _)) = self.storming.remove(&slot) else {
            return;
        };
        if id == Some(proto::LOGIN_MSG_ACK) && proto::errno(&msg) == 0 {
            self.outcome.ok += 1;
            Counters::add(&io.counters.ok, 1);
            let micros = io.now.saturating_duration_since(began).as_micros();
            self.outcome.latency.record(micros as u64);
            self.outcome.last_arrival = Some(io.now);
        } else {
            let why = format!(
                "login: errno {} ({})",
                proto::errno(&msg),
                proto::errmsg(&msg)
            );
            self.fail(io, why);
        }
    }

    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String) {
        self.outcome.closed += 1;
        if self.storming.remove(&slot).is_some() {
            self.fail(io, format!("login: {reason}"));
        } else if self.chatting.remove(&slot).is_some() {
            self.outcome.error(format!("chatter: {reason}"));
        }
    }

    fn tick(&mut self, io: &mut Io) -> Option<Instant> {
        let (due, later): (Vec<_>, Vec<_>) =
            self.retries.drain(..).partition(|&(at, _)| at <= io.now);
        self.retries = later;
        for (_, slot) in due {
            self.send_login(io, slot);
        }
        let mut next = self.chat(io).unwrap_or(self.deadline);
        if let Some(&(at, _)) = self.retries.iter().min() {
            next = next.min(at);
        }
        Some(next.min(self.deadline))
    }

    fn is_done(&self, io: &Io) -> bool {
        let quiet = self.chatting.values().all(|c| c.sent_at.is_none());
        (self.storming.is_empty() && quiet) || io.now >= self.deadline
    }

    fn finish(mut self: Box<Self>, _io: &mut Io) -> Outcome {
        for _ in 0..self.storming.len() {
            self.outcome.failed += 1;
            self.outcome.error("login: no reply before the deadline");
        }
        self.outcome
    }
}
