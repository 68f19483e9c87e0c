//! A paced, realistic mix: mostly one-to-one chat, some group chat, now and
//! then a friend added or removed, or a logout followed by a login.
//!
//! Unlike the `chat` scenario this is open-loop: every user acts at random
//! moments, `rate` times a second on average (exponential gaps, so arrivals
//! are Poisson), whatever the server's speed. A chat goes to a random other
//! user (nearly every message then opens a conversation of its own, the
//! message log's worst case), or with `--pairs` always to the partner, as in
//! `chat`. Messages to a user who is
//! logged out become offline messages; they count as delivered when they
//! come back inside the login ack, but are not timed. Only user `i` changes
//! friendships with users above `i`, so no two users race on one friendship.
//! In `--legacy` mode friendships are only added, each at most once (the
//! original cannot delete them), and a connection never sends twice within
//! `gap`.

use super::acks::{take_ack, Acks, InFlight};
use super::delivery::{self, Roster, Tally, WallClock};
use super::{Outcome, Phase};
use crate::ledger::{StreamKey, Target};
use crate::proto;
use crate::rng::Rng;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Relative weights of the actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// One-to-one message to a random user (with `--pairs`, the partner).
    pub chat: u32,
    /// Message to the user's group.
    pub group: u32,
    /// Add or delete a friend.
    pub friend: u32,
    /// Log out, pause, log in again.
    pub relogin: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            chat: 85,
            group: 10,
            friend: 3,
            relogin: 2,
        }
    }
}

/// What all workers share in one mixed phase.
#[derive(Debug)]
pub(crate) struct MixedPlan {
    /// The users.
    pub roster: Arc<Roster>,
    /// Each user's group: (gid, recipients per message), if any.
    pub groups: Vec<Option<(i64, u64)>>,
    /// Actions per user per second.
    pub rate: f64,
    /// Action weights.
    pub mix: Mix,
    /// Chat with the partner (`2p` and `2p + 1`), not a random user.
    pub pairs: bool,
    /// Talking to the C++ original.
    pub legacy: bool,
    /// Least time between two requests on one connection in legacy mode.
    pub gap: Duration,
    /// How long a user stays logged out.
    pub offline_for: Duration,
    /// Send a cid with every chat and time its SEND_ACK (open loop: the
    /// send→ack latency at the offered rate).
    pub cid: bool,
    /// No new actions after this.
    pub send_until: Instant,
    /// How long to wait for stragglers after everyone stopped.
    pub drain: Duration,
    /// Hard end of the phase.
    pub deadline: Instant,
    /// Workers with users still acting or logging in.
    pub busy_workers: AtomicUsize,
    /// When the last worker became idle (µs on the run clock), or `u64::MAX`.
    pub all_idle_us: AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Online,
    LoggedOut,
    LoggingIn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Chat,
    Group,
    Friend,
    Relogin,
}

struct User {
    slot: usize,
    user: usize,
    state: State,
    friends: HashSet<usize>,
    last_send: Instant,
}

/// One worker's users in the mix.
pub(crate) struct MixedPhase {
    plan: Arc<MixedPlan>,
    users: Vec<User>,
    by_slot: HashMap<usize, usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    rng: Rng,
    clock: WallClock,
    tally: Tally,
    reported: bool,
    /// Cids and messages awaiting their SEND_ACK, with `--cid`.
    acks: Option<Acks>,
    outcome: Outcome,
}

impl MixedPhase {
    /// A worker's part; `seed` makes its random choices repeatable.
    pub fn new(plan: Arc<MixedPlan>, seed: u64) -> Self {
        MixedPhase {
            plan,
            users: Vec::new(),
            by_slot: HashMap::new(),
            timers: BinaryHeap::new(),
            rng: Rng::new(seed),
            clock: WallClock::default(),
            tally: Tally::default(),
            reported: false,
            acks: None,
            outcome: Outcome::default(),
        }
    }

    fn schedule(&mut self, i: usize, after: Duration) {
        let mut at = self.users[i].last_send.max(Instant::now()) + after;
        if self.plan.legacy {
            at = at.max(self.users[i].last_send + self.plan.gap);
        }
        self.timers.push(Reverse((at, i)));
    }

    fn next_gap(&mut self) -> Duration {
        Duration::from_secs_f64(self.rng.exponential(self.plan.rate).min(3600.0))
    }

    fn send(&mut self, io: &mut Io, i: usize, text: &str) {
        io.send(self.users[i].slot, text);
        self.users[i].last_send = Instant::now();
    }

    /// Draws the next action by the mix's weights.
    fn pick_action(&mut self) -> Action {
        let m = self.plan.mix;
        let total = u64::from(m.chat) + u64::from(m.group) + u64::from(m.friend);
        let pick = self.rng.below(total + u64::from(m.relogin));
        if pick < u64::from(m.chat) {
            Action::Chat
        } else if pick < u64::from(m.chat) + u64::from(m.group) {
            Action::Group
        } else if pick < total {
            Action::Friend
        } else {
            Action::Relogin
        }
    }

    fn count(&mut self, action: &'static str) {
        *self.outcome.actions.entry(action).or_insert(0) += 1;
    }

    /// Performs user `i`'s next action (or its login after a logout).
    fn act(&mut self, io: &mut Io, i: usize) {
        let plan = Arc::clone(&self.plan);
        let (user, uid) = (self.users[i].user, plan.roster.uids[self.users[i].user]);
        if self.users[i].state == State::LoggedOut {
            self.users[i].state = State::LoggingIn;
            self.send(io, i, &proto::login(uid, &plan.roster.password));
            return;
        }
        if self.users[i].state != State::Online || io.now >= plan.send_until {
            return;
        }
        // With several sessions per user, indices are sessions: account
        // `user / k`, whose first session alone changes friendships.
        let k = plan.roster.sessions.max(1) as usize;
        let (n, account) = (plan.roster.uids.len() / k, user / k);
        let group = plan.groups[user];
        let action = self.pick_action();
        // The friend to add or delete (an account above this one, named by
        // its first session); the original cannot delete, so in legacy
        // mode a user who is already a friend is not picked.
        let friend = (action == Action::Friend && account + 1 < n && user % k == 0)
            .then(|| (account + 1 + self.rng.below((n - account - 1) as u64) as usize) * k)
            .filter(|f| !(plan.legacy && self.users[i].friends.contains(f)));
        match action {
            Action::Group if group.is_some() => {
                let (gid, fanout) = group.unwrap_or_default();
                self.chat(io, i, Target::Group(gid), fanout);
                self.count("group chat");
            }
            Action::Friend if friend.is_some() => {
                let other = friend.unwrap_or_default();
                let add = self.users[i].friends.insert(other);
                if !add {
                    self.users[i].friends.remove(&other);
                }
                self.send(io, i, &proto::friend(uid, plan.roster.uids[other], add));
                self.count(if add { "friend add" } else { "friend delete" });
            }
            Action::Relogin => {
                self.send(io, i, &proto::logout(uid));
                self.users[i].state = State::LoggedOut;
                self.count("logout");
                self.schedule(i, plan.offline_for);
                return;
            }
            // Chat, and the fallback when the user has no group or no
            // friend to change.
            _ if n > 1 => {
                let peer = match account ^ 1 {
                    partner if plan.pairs && partner < n => partner,
                    _ => (account + 1 + self.rng.below(n as u64 - 1) as usize) % n,
                };
                // Every session of the peer, and the sender's other
                // sessions (self-copies).
                let fanout = 2 * k as u64 - 1;
                self.chat(io, i, Target::User(plan.roster.uids[peer * k]), fanout);
                self.count("chat");
            }
            _ => {}
        }
        let gap = self.next_gap();
        self.schedule(i, gap);
    }

    fn chat(&mut self, io: &mut Io, i: usize, target: Target, fanout: u64) {
        let roster = Arc::clone(&self.plan.roster);
        let user = self.users[i].user;
        let key = StreamKey {
            sender: roster.session_id(user),
            target,
        };
        let seq = self.outcome.ledger.next_seq(key);
        let text = roster.text(roster.wire_seq(user, seq));
        let uid = roster.uids[user];
        let name = &roster.names_json[user];
        let cid = self.acks.as_mut().map(|acks| {
            acks.cid(InFlight {
                user,
                sent_us: roster.micros(Instant::now()),
                tag: seq,
                key: Some(key),
                owed: fanout,
            })
        });
        let cid = cid.as_deref();
        let now = self.clock.now();
        let body = match target {
            Target::User(to) => proto::one_chat(uid, name, to, &text, now, cid),
            Target::Group(gid) => proto::group_chat(uid, name, gid, &text, now, cid),
        };
        self.send(io, i, &body);
        self.tally.sent += 1;
        self.tally.expected += fanout;
    }

    fn on_login_ack(&mut self, io: &mut Io, i: usize, ack: &Value) {
        let errno = proto::errno(ack);
        if errno != 0 {
            self.outcome
                .error(format!("login: errno {errno} ({})", proto::errmsg(ack)));
            self.users[i].state = State::LoggedOut;
            self.schedule(i, self.plan.offline_for);
            return;
        }
        self.users[i].state = State::Online;
        self.count("login");
        let roster = Arc::clone(&self.plan.roster);
        let user = self.users[i].user;
        for msg in delivery::offline_messages(ack) {
            let (outcome, tally) = (&mut self.outcome, &mut self.tally);
            delivery::receive(&roster, io, outcome, tally, user, &msg, true);
        }
        let gap = self.next_gap();
        self.schedule(i, gap);
    }

    fn is_idle(&self) -> bool {
        self.users.iter().all(|u| u.state == State::Online)
    }
}

impl Phase for MixedPhase {
    fn start(&mut self, io: &mut Io) {
        if self.plan.cid {
            self.acks = Some(Acks::new(self.plan.roster.run, io.id));
        }
        for slot in io.open_slots() {
            let user = io.user_of(slot);
            let i = self.users.len();
            self.by_slot.insert(slot, i);
            self.users.push(User {
                slot,
                user,
                state: State::Online,
                friends: HashSet::new(),
                last_send: io.now,
            });
            let first = Duration::from_secs_f64(self.rng.unit() / self.plan.rate.max(1e-9));
            self.schedule(i, first);
        }
    }

    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value) {
        let roster = Arc::clone(&self.plan.roster);
        let user = io.user_of(slot);
        let (outcome, tally) = (&mut self.outcome, &mut self.tally);
        let now_us = roster.micros(io.now);
        if take_ack(self.acks.as_mut(), &msg, now_us, outcome, tally).is_some() {
            return;
        }
        if delivery::receive(&roster, io, outcome, tally, user, &msg, false) {
            return;
        }
        let id = proto::msg_id(&msg);
        if id == Some(proto::LOGIN_MSG_ACK) {
            if let Some(&i) = self.by_slot.get(&slot) {
                if self.users[i].state == State::LoggingIn {
                    self.on_login_ack(io, i, &msg);
                }
            }
        } else if proto::errno(&msg) != 0 || id == Some(proto::ERROR_MSG) {
            let what = match id {
                Some(proto::ADD_FRIEND_ACK) => "add friend",
                Some(proto::DEL_FRIEND_ACK) => "delete friend",
                _ => "error reply",
            };
            let errno = proto::errno(&msg);
            outcome.error(format!("{what}: errno {errno} ({})", proto::errmsg(&msg)));
            Counters::add(&io.counters.errors, 1);
        }
    }

    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String) {
        Counters::add(&io.counters.errors, 1);
        self.outcome.closed += 1;
        self.outcome.error(reason);
        // A user whose connection is gone is no longer waited for.
        if let Some(&i) = self.by_slot.get(&slot) {
            self.users[i].state = State::Online;
        }
    }

    fn tick(&mut self, io: &mut Io) -> Option<Instant> {
        while let Some(&Reverse((at, i))) = self.timers.peek() {
            if at > io.now {
                break;
            }
            self.timers.pop();
            if at < self.plan.send_until {
                let lag = io.now.saturating_duration_since(at).as_micros();
                self.outcome.send_lag.record(lag as u64);
            }
            self.act(io, i);
        }
        if !self.reported && io.now >= self.plan.send_until && self.is_idle() {
            self.reported = true;
            if self.plan.busy_workers.fetch_sub(1, Ordering::AcqRel) == 1 {
                let now = self.plan.roster.micros(io.now);
                self.plan.all_idle_us.store(now, Ordering::Release);
            }
        }
        self.tally.publish(&io.counters);
        let next = self.timers.peek().map(|Reverse((at, _))| *at);
        Some(next.unwrap_or(self.plan.deadline).min(self.plan.deadline))
    }

    fn is_done(&self, io: &Io) -> bool {
        let plan = &self.plan;
        if io.now >= plan.deadline {
            return true;
        }
        let idle = plan.all_idle_us.load(Ordering::Acquire);
        if idle == u64::MAX {
            return false;
        }
        let expected = io.counters.expected.load(Ordering::Relaxed);
        let delivered = io.counters.delivered.load(Ordering::Relaxed);
        let draining_since = plan.roster.clock + Duration::from_micros(idle);
        // With cids the books also wait for this worker's SEND_ACKs.
        let acked = self.acks.as_ref().is_none_or(|a| a.in_flight() == 0);
        (delivered >= expected && acked) || io.now >= draining_since + plan.drain
    }

    fn finish(mut self: Box<Self>, io: &mut Io) -> Outcome {
        self.tally.publish(&io.counters);
        self.outcome.ok = self.outcome.ledger.sent_total();
        self.outcome
    }
}
