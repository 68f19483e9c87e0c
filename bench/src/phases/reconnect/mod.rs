//! The `reconnect` scenario: pairs chat with cids while some users drop
//! their connection abruptly and come back, and every message acked for a
//! receiver must reach it by some way.
//!
//! Users are in pairs as in `chat` (both on one worker, so the books of a
//! pair never cross threads). Each sends to its partner with up to
//! `window` messages awaiting their SEND_ACK, and with `--msg-rate` at most
//! that many a second. A share of the users
//! (`--drop-fraction`) are droppers: every `--drop-every` seconds or so
//! (uniformly 0.5–1.5 times it) a dropper resets its socket (`SO_LINGER`
//! 0: whatever the server had written and the client not read yet is
//! discarded) without logging out, stays away `--offline-for`, connects again, logs in (retrying while
//! the server still counts the old connection online, errno 2), asks CONVS
//! and SYNCs every conversation after the seq it holds contiguously, page
//! by page. While away it neither sends nor receives; what its partner sent
//! meanwhile reaches it in the login ack or the catch-up.
//!
//! A message whose SEND_ACK was lost with the connection is neither acked
//! nor owed. At the end each receiver's [`Inbox`] is compared with the
//! partner's acked messages: `lost`, `duplicated` (pushed twice),
//! `reordered` (pushed out of seq order on one connection, or a page not
//! ascending).
//!
//! The `soak` scenario runs this phase with a [`SoakPlan`] (see [`soak`]):
//! groups besides the pairs, slow readers, flooders, wrong passwords, a
//! server that is killed and restarted under it, and at the end a final
//! catch-up of every user that checks each conversation is held gapless.

use super::acks::{AckEvent, Acks, InFlight};
use super::delivery::{Roster, WallClock};
use super::inbox::{Booked, Inbox, Via};
use super::{Outcome, Phase};
use crate::proto::{self, Payload};
use crate::rng::Rng;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod catch_up;
mod soak;

pub(crate) use soak::SoakPlan;

/// Login attempts after a reconnect before the user gives up.
const MAX_LOGIN_TRIES: u32 = 50;
/// Pause before a login is tried again.
const LOGIN_RETRY: Duration = Duration::from_millis(100);

/// What all workers share.
#[derive(Debug)]
pub(crate) struct ReconnectPlan {
    /// The users.
    pub roster: Arc<Roster>,
    /// Servers, round-robin by user as at connect.
    pub addrs: Vec<SocketAddr>,
    /// Messages awaiting their SEND_ACK per sender.
    pub window: u64,
    /// Least time between two messages of one sender (zero: as fast as
    /// the window allows).
    pub send_gap: Duration,
    /// Share of the users that drop.
    pub drop_fraction: f64,
    /// Mean time between a dropper's drops.
    pub drop_every: Duration,
    /// Time away.
    pub away_for: Duration,
    /// No new messages or drops after this.
    pub send_until: Instant,
    /// How long to wait for stragglers once everyone is back.
    pub drain: Duration,
    /// Hard end of the phase.
    pub deadline: Instant,
    /// The `soak` scenario's additions; `None` for `reconnect`.
    pub soak: Option<SoakPlan>,
}

/// Tags of messages to a group carry this bit, so that a SEND_ACK tells
/// which books the message goes to.
const GROUP_TAG: u64 = 1 << 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Connected and logged in.
    Online,
    /// Dropped; reconnects at the wake time.
    Away,
    /// Connecting.
    Connecting,
    /// Login sent (or to be retried at the wake time).
    LoggingIn,
    /// CONVS or a SYNC page in flight.
    CatchingUp,
    /// Could not come back.
    Failed,
    /// `soak`: the final catch-up is done; nothing more to do.
    Verified,
}

/// Where a user is in the final catch-up of `soak`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verify {
    /// Not started.
    No,
    /// CONVS answered, catching up to its `last_seq`s.
    Started,
}

struct Person {
    user: usize,
    slot: usize,
    partner: Option<usize>,
    state: State,
    wake: Option<Instant>,
    dropper: bool,
    login_tries: u32,
    in_flight: u64,
    /// Not before this may the next message go (with a `send_gap`).
    next_send: Instant,
    next_tag: u64,
    /// This user's messages its SEND_ACK said are stored.
    acked: HashSet<u64>,
    /// `soak`: the same for its messages to its group.
    acked_group: HashSet<u64>,
    /// `soak`: its group and the other members (person indices).
    group: Option<(i64, Vec<usize>)>,
    /// `soak`: stops reading now and then.
    slow: bool,
    /// `soak`: reading is stopped until `pause_at`.
    paused: bool,
    /// `soak`: when a slow reader next stops or resumes reading.
    pause_at: Option<Instant>,
    /// `soak`: sends with the flood window, without a gap.
    flooder: bool,
    /// `soak`: the login in flight carries a wrong password.
    wrong_pending: bool,
    verify: Verify,
    /// `soak`: each conversation's `last_seq` from the final CONVS.
    last_seqs: Vec<(String, u64)>,
    inbox: Inbox,
    /// Conversations still to catch up, the front one being synced.
    catch_up: VecDeque<String>,
    after: u64,
}

/// One worker's pairs.
pub(crate) struct ReconnectPhase {
    plan: Arc<ReconnectPlan>,
    people: Vec<Person>,
    by_user: HashMap<usize, usize>,
    by_slot: HashMap<usize, usize>,
    acks: Option<Acks>,
    rng: Rng,
    clock: WallClock,
    idle_since: Option<Instant>,
    /// `soak`: sending is over, every user does its final catch-up.
    verifying: bool,
    outcome: Outcome,
}

impl ReconnectPhase {
    /// A worker's part; `seed` makes its choices repeatable.
    pub fn new(plan: Arc<ReconnectPlan>, seed: u64) -> Self {
        ReconnectPhase {
            plan,
            people: Vec::new(),
            by_user: HashMap::new(),
            by_slot: HashMap::new(),
            acks: None,
            rng: Rng::new(seed),
            clock: WallClock::default(),
            idle_since: None,
            verifying: false,
            outcome: Outcome::default(),
        }
    }

    pub(super) fn count(&mut self, what: &'static str) {
        *self.outcome.actions.entry(what).or_insert(0) += 1;
    }

    pub(super) fn next_drop(&mut self, now: Instant) -> Instant {
        now + self.plan.drop_every.mul_f64(0.5 + self.rng.unit())
    }

    /// Sends what `i`'s window allows.
    pub(super) fn pump(&mut self, io: &mut Io, i: usize) {
        let plan = Arc::clone(&self.plan);
        let roster = &plan.roster;
        let Some(acks) = self.acks.as_mut() else {
            return;
        };
        let Some(partner) = self.people[i].partner else {
            return;
        };
        let to = roster.uids[self.people[partner].user];
        let group_share = plan.soak.as_ref().map_or(0.0, |s| s.group_share);
        let p = &mut self.people[i];
        // A flooder may catch up on a whole window of gaps at once.
        let (window, gap, burst) = match &plan.soak {
            Some(soak) if p.flooder => (soak.flood_window, soak.flood_gap, soak.flood_window),
            _ => (plan.window, plan.send_gap, 1),
        };
        while p.state == State::Online
            && p.in_flight < window
            && io.now < plan.send_until
            && io.now >= p.next_send
        {
            if !gap.is_zero() {
                // At most `burst` gaps' worth of catching up after a pause.
                let earliest = io.now.checked_sub(gap * burst as u32).unwrap_or(io.now);
                p.next_send = p.next_send.max(earliest) + gap;
            }
            let gid = p
                .group
                .as_ref()
                .map(|g| g.0)
                .filter(|_| group_share > 0.0 && self.rng.unit() < group_share);
            let tag = p.next_tag | if gid.is_some() { GROUP_TAG } else { 0 };
            p.next_tag += 1;
            let cid = acks.cid(InFlight {
                user: p.user,
                sent_us: roster.micros(Instant::now()),
                tag,
                key: None, // its books are the inbox's
                owed: 0,
            });
            let from = roster.uids[p.user];
            let text = roster.text(tag);
            let name = &roster.names_json[p.user];
            let body = match gid {
                Some(gid) => {
                    proto::group_chat(from, name, gid, &text, self.clock.now(), Some(&cid))
                }
                None => proto::one_chat(from, name, to, &text, self.clock.now(), Some(&cid)),
            };
            io.send(p.slot, &body);
            p.in_flight += 1;
            self.outcome.ok += 1;
            Counters::add(&io.counters.sent, 1);
            Counters::add(&io.counters.expected, 1);
        }
    }

    /// Resets `i`'s connection, without a logout: what the server had
    /// written and the client not yet read is gone.
    fn drop_connection(&mut self, io: &mut Io, i: usize) {
        let p = &mut self.people[i];
        io.reset(p.slot);
        self.by_slot.remove(&p.slot);
        p.state = State::Away;
        p.in_flight = 0;
        p.paused = false;
        p.wake = Some(io.now + self.plan.away_for);
        self.count("drop");
    }

    fn reconnect(&mut self, io: &mut Io, i: usize) {
        let user = self.people[i].user;
        let addr = self.plan.addrs[user % self.plan.addrs.len().max(1)];
        match io.connect(user, addr, None) {
            Ok(slot) => {
                self.by_slot.insert(slot, i);
                let p = &mut self.people[i];
                p.slot = slot;
                p.state = State::Connecting;
                p.wake = None;
            }
            Err(e) => {
                self.outcome.error(format!("reconnect: {e}"));
                self.people[i].wake = Some(io.now + LOGIN_RETRY);
            }
        }
    }

    pub(super) fn login(&mut self, io: &mut Io, i: usize) {
        let roster = Arc::clone(&self.plan.roster);
        let uid = roster.uids[self.people[i].user];
        let wrong_share = self.plan.soak.as_ref().map_or(0.0, |s| s.wrong_password);
        let wrong =
            self.people[i].login_tries == 0 && wrong_share > 0.0 && self.rng.unit() < wrong_share;
        let p = &mut self.people[i];
        p.state = State::LoggingIn;
        p.wake = None;
        p.login_tries += 1;
        p.wrong_pending = wrong;
        let password = if wrong {
            format!("{}-wrong", roster.password)
        } else {
            roster.password.clone()
        };
        io.send(p.slot, &proto::login(uid, &password));
    }

    /// Books a chat message that reached `i`.
    pub(super) fn book(&mut self, io: &Io, i: usize, m: &Value, via: Via) {
        let from = match proto::msg_id(m) {
            Some(proto::ONE_CHAT_MSG) => m.get("from"),
            Some(proto::GROUP_CHAT_MSG) => m.get("uid"),
            _ => return,
        };
        let from = from.and_then(Value::as_i64);
        let roster = Arc::clone(&self.plan.roster);
        let me = roster.uids[self.people[i].user];
        let Some((conv, seq)) = proto::log_pos(m) else {
            self.outcome.error("a message without conv or seq");
            return;
        };
        if from == Some(me) {
            self.people[i].inbox.own(conv, seq);
            return;
        }
        let payload = m
            .get("msg")
            .and_then(Value::as_str)
            .and_then(Payload::decode);
        let Some(payload) = payload.filter(|p| p.run == roster.run) else {
            self.outcome.stale += 1;
            return;
        };
        let from = from.unwrap_or(-1);
        let booked = self.people[i]
            .inbox
            .receive(conv, seq, from, payload.seq, via);
        if matches!(booked, Booked::New | Booked::Reordered) {
            Counters::add(&io.counters.delivered, 1);
        }
        if via == Via::Live && booked != Booked::Duplicate {
            let latency = roster
                .micros(Instant::now())
                .saturating_sub(payload.sent_us);
            self.outcome.latency.record(latency);
        }
        self.outcome.last_arrival = Some(Instant::now());
    }

    fn on_ack(&mut self, io: &mut Io, event: AckEvent) {
        let (sent, stored) = match event {
            AckEvent::Stored { sent, conv, seq } => (sent, Some((conv, seq))),
            AckEvent::Refused { sent, .. } => (sent, None),
        };
        let Some(sent) = sent else {
            return;
        };
        let Some(&i) = self.by_user.get(&sent.user) else {
            return;
        };
        let p = &mut self.people[i];
        if let Some((conv, seq)) = stored {
            if sent.tag & GROUP_TAG != 0 {
                p.acked_group.insert(sent.tag);
            } else {
                p.acked.insert(sent.tag);
            }
            p.inbox.own(&conv, seq);
        }
        p.in_flight = p.in_flight.saturating_sub(1);
        self.pump(io, i);
    }

    fn all_settled(&self) -> bool {
        self.people
            .iter()
            .all(|p| matches!(p.state, State::Online | State::Failed | State::Verified))
    }
}

impl Phase for ReconnectPhase {
    fn start(&mut self, io: &mut Io) {
        self.acks = Some(Acks::new(self.plan.roster.run, io.id));
        for slot in io.open_slots() {
            let user = io.user_of(slot);
            let i = self.people.len();
            self.by_user.insert(user, i);
            self.by_slot.insert(slot, i);
            let (slow, flooder) = self.plan.soak.as_ref().map_or((false, false), |s| {
                (s.slow.contains(&user), s.flooders.contains(&user))
            });
            let dropper = !slow && !flooder && self.rng.unit() < self.plan.drop_fraction;
            let wake = dropper.then(|| self.next_drop(io.now));
            self.people.push(Person {
                user,
                slot,
                partner: None,
                state: State::Online,
                wake,
                dropper,
                login_tries: 0,
                in_flight: 0,
                next_send: io.now,
                next_tag: 0,
                acked: HashSet::new(),
                acked_group: HashSet::new(),
                group: None,
                slow,
                paused: false,
                pause_at: None,
                flooder,
                wrong_pending: false,
                verify: Verify::No,
                last_seqs: Vec::new(),
                inbox: Inbox::default(),
                catch_up: VecDeque::new(),
                after: 0,
            });
        }
        for i in 0..self.people.len() {
            let partner = self.by_user.get(&(self.people[i].user ^ 1)).copied();
            self.people[i].partner = partner;
        }
        self.join_groups(io);
        for i in 0..self.people.len() {
            self.pump(io, i);
        }
    }

    fn on_connected(&mut self, io: &mut Io, slot: usize) {
        if let Some(&i) = self.by_slot.get(&slot) {
            self.login(io, i);
        }
    }

    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value) {
        let Some(&i) = self.by_slot.get(&slot) else {
            return;
        };
        let now = self.plan.roster.micros(io.now);
        if let Some(acks) = self.acks.as_mut() {
            if let Some(event) = acks.on_message(&msg, now, &mut self.outcome) {
                return self.on_ack(io, event);
            }
        }
        let id = proto::msg_id(&msg);
        let state = self.people[i].state;
        match id {
            Some(proto::ONE_CHAT_MSG) => self.book(io, i, &msg, Via::Live),
            Some(proto::LOGIN_MSG_ACK) if state == State::LoggingIn => {
                self.on_login_ack(io, i, &msg);
            }
            Some(proto::CONVS_ACK | proto::SYNC_ACK) if proto::errno(&msg) != 0 => {
                self.outcome.error(format!(
                    "catch-up: errno {} ({})",
                    proto::errno(&msg),
                    proto::errmsg(&msg)
                ));
                self.people[i].catch_up.clear();
                self.next_page(io, i);
            }
            Some(proto::CONVS_ACK) if state == State::CatchingUp => self.on_convs(io, i, &msg),
            Some(proto::SYNC_ACK) if state == State::CatchingUp => self.on_page(io, i, &msg),
            _ if proto::errno(&msg) != 0 => {
                let errno = proto::errno(&msg);
                self.outcome.error(format!(
                    "error reply: errno {errno} ({})",
                    proto::errmsg(&msg)
                ));
            }
            _ => {}
        }
    }

    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String) {
        self.outcome.closed += 1;
        self.outcome
            .error(format!("closed by the server: {reason}"));
        if let Some(i) = self.by_slot.remove(&slot) {
            // Come back as after a drop.
            let p = &mut self.people[i];
            p.state = State::Away;
            p.in_flight = 0;
            p.paused = false;
            p.wake = Some(io.now + self.plan.away_for);
        }
    }

    fn tick(&mut self, io: &mut Io) -> Option<Instant> {
        let mut next = self.plan.deadline;
        if self.plan.soak.is_some() {
            next = next.min(self.soak_tick(io));
        }
        for i in 0..self.people.len() {
            if !self.plan.send_gap.is_zero() && io.now < self.plan.send_until {
                self.pump(io, i);
                let p = &self.people[i];
                if p.state == State::Online && p.in_flight < self.plan.window {
                    next = next.min(p.next_send);
                }
            }
            let Some(at) = self.people[i].wake else {
                continue;
            };
            if at > io.now {
                next = next.min(at);
                continue;
            }
            match self.people[i].state {
                State::Online if io.now < self.plan.send_until => self.drop_connection(io, i),
                State::Online => self.people[i].wake = None,
                State::Away => self.reconnect(io, i),
                State::LoggingIn => self.login(io, i),
                _ => self.people[i].wake = None,
            }
            if let Some(at) = self.people[i].wake {
                next = next.min(at);
            }
        }
        if io.now >= self.plan.send_until {
            let settled = self.all_settled() && self.people.iter().all(|p| p.in_flight == 0);
            if settled && self.plan.soak.is_some() && !self.verifying {
                self.start_verifying(io);
            }
            match (settled, self.idle_since) {
                (true, None) => self.idle_since = Some(io.now),
                (false, _) => self.idle_since = None,
                _ => {}
            }
        }
        Some(next)
    }

    fn is_done(&self, io: &Io) -> bool {
        if io.now >= self.plan.deadline {
            return true;
        }
        if self.plan.soak.is_some() {
            return self.verifying
                && self
                    .people
                    .iter()
                    .all(|p| matches!(p.state, State::Verified | State::Failed));
        }
        // Once everyone is back and every ack is in, deliveries still in
        // flight get `drain` to arrive; then the books close.
        self.idle_since
            .is_some_and(|since| io.now >= since + self.plan.drain || self.nothing_owed())
    }

    fn finish(mut self: Box<Self>, io: &mut Io) -> Outcome {
        let mut lost = 0;
        let mut acked = 0;
        let soak = self.plan.soak.is_some();
        for (i, p) in self.people.iter().enumerate() {
            let (owed, missing) = self.owed_to(i);
            acked += owed;
            if soak && p.state != State::Verified {
                // Never caught up at the end: what it lacks is not known
                // to be lost, only not checked.
                self.outcome.reconnect.unverified += 1;
                self.outcome.reconnect.unchecked += missing;
            } else {
                lost += missing;
            }
            let o = &mut self.outcome;
            o.reconnect.doubled += p.inbox.doubled;
            o.offline_delivered += p.inbox.offline;
            o.seq_reordered += p.inbox.reordered;
            let r = &mut o.reconnect;
            r.synced += p.inbox.synced;
            r.refetched += p.inbox.refetched;
            r.duplicated += p.inbox.duplicated;
            r.delivered += p.inbox.delivered;
        }
        self.outcome.reconnect.owed += acked;
        self.outcome.reconnect.lost += lost;
        self.outcome.failed = self
            .people
            .iter()
            .filter(|p| !matches!(p.state, State::Online | State::Verified))
            .count() as u64;
        if self.plan.soak.is_some() {
            self.leave_all(io);
        }
        self.outcome
    }
}

impl ReconnectPhase {
    /// Whether every receiver has every message owed to it.
    fn nothing_owed(&self) -> bool {
        (0..self.people.len()).all(|i| self.owed_to(i).1 == 0)
    }

    /// Messages acked to their senders that `i` should have received (from
    /// its partner, and from the other members of its group), and how many
    /// of them it has not.
    fn owed_to(&self, i: usize) -> (u64, u64) {
        let p = &self.people[i];
        let uids = &self.plan.roster.uids;
        let mut owed = 0;
        let mut lost = 0;
        if let Some(q) = p.partner.map(|q| &self.people[q]) {
            owed += q.acked.len() as u64;
            lost += p.inbox.lost(uids[q.user], &q.acked);
        }
        for &m in p.group.iter().flat_map(|(_, members)| members) {
            let q = &self.people[m];
            owed += q.acked_group.len() as u64;
            lost += p.inbox.lost(uids[q.user], &q.acked_group);
        }
        (owed, lost)
    }
}
