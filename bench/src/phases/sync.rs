//! The `sync` scenario's two phases: filling the message log, then reading
//! it back with SYNC as fast as the server pages it out.
//!
//! **Fill** ([`FillPhase`], setup): users are in pairs as in `chat`; user
//! `2p` sends its share of `--log-messages` to user `2p + 1`, each with a
//! cid, up to [`FILL_WINDOW`] awaiting their SEND_ACK. The window opens on
//! the SEND_ACK, not on delivery, so when the phase ends every message is
//! durable and a sync sees all of it.
//!
//! **Sync** ([`SyncPhase`], measured): every user at once asks CONVS, then
//! reads each conversation from `after: 0` in pages of 500 until `more` is
//! false, one request in flight per user. It counts pages and messages,
//! times each page (request to reply), and checks that seqs only grow
//! within a conversation (`reordered` otherwise).

use super::acks::{AckEvent, Acks, InFlight};
use super::delivery::{Roster, WallClock};
use super::{Outcome, Phase};
use crate::proto;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// Messages awaiting their SEND_ACK per sender while filling.
pub(crate) const FILL_WINDOW: u64 = 32;

/// What the fill needs to know.
#[derive(Debug)]
pub(crate) struct FillPlan {
    /// The users.
    pub roster: Arc<Roster>,
    /// Messages per sender.
    pub quota: u64,
    /// Hard end of the phase.
    pub deadline: Instant,
}

struct Filler {
    slot: usize,
    user: usize,
    to: i64,
    sent: u64,
    answered: u64,
}

/// One worker's senders of the fill.
pub(crate) struct FillPhase {
    plan: Arc<FillPlan>,
    fillers: Vec<Filler>,
    by_user: HashMap<usize, usize>,
    acks: Option<Acks>,
    clock: WallClock,
    outcome: Outcome,
}

impl FillPhase {
    /// A worker's part: its even users send.
    pub fn new(plan: Arc<FillPlan>) -> Self {
        FillPhase {
            plan,
            fillers: Vec::new(),
            by_user: HashMap::new(),
            acks: None,
            clock: WallClock::default(),
            outcome: Outcome::default(),
        }
    }

    fn pump(&mut self, io: &mut Io, i: usize) {
        let plan = Arc::clone(&self.plan);
        let roster = &plan.roster;
        let Some(acks) = self.acks.as_mut() else {
            return;
        };
        let f = &mut self.fillers[i];
        while f.sent < plan.quota && f.sent - f.answered < FILL_WINDOW && io.is_open(f.slot) {
            let cid = acks.cid(InFlight {
                user: f.user,
                sent_us: roster.micros(Instant::now()),
                tag: f.sent,
                key: None,
                owed: 0,
            });
            let text = roster.text(f.sent);
            let from = roster.uids[f.user];
            let name = &roster.names_json[f.user];
            let body = proto::one_chat(from, name, f.to, &text, self.clock.now(), Some(&cid));
            io.send(f.slot, &body);
            f.sent += 1;
        }
    }
}

impl Phase for FillPhase {
    fn start(&mut self, io: &mut Io) {
        self.acks = Some(Acks::new(self.plan.roster.run, io.id));
        for slot in io.open_slots() {
            let user = io.user_of(slot);
            let Some(&to) = self.plan.roster.uids.get(user ^ 1) else {
                continue;
            };
            if user % 2 == 1 {
                continue;
            }
            self.by_user.insert(user, self.fillers.len());
            self.fillers.push(Filler {
                slot,
                user,
                to,
                sent: 0,
                answered: 0,
            });
        }
        for i in 0..self.fillers.len() {
            self.pump(io, i);
        }
    }

    fn on_message(&mut self, io: &mut Io, _slot: usize, msg: Value) {
        let now = self.plan.roster.micros(io.now);
        let Some(acks) = self.acks.as_mut() else {
            return;
        };
        // Deliveries to the receiving half are not what this phase counts.
        let sender = match acks.on_message(&msg, now, &mut self.outcome) {
            Some(AckEvent::Stored { sent, .. } | AckEvent::Refused { sent, .. }) => sent,
            None => return,
        };
        Counters::add(&io.counters.ok, 1);
        if let Some(&i) = sender.and_then(|s| self.by_user.get(&s.user)) {
            self.fillers[i].answered += 1;
            self.pump(io, i);
        }
    }

    fn on_closed(&mut self, _io: &mut Io, _slot: usize, reason: String) {
        self.outcome.closed += 1;
        self.outcome.error(format!("fill: {reason}"));
    }

    fn tick(&mut self, _io: &mut Io) -> Option<Instant> {
        Some(self.plan.deadline)
    }

    fn is_done(&self, io: &Io) -> bool {
        io.now >= self.plan.deadline
            || self
                .fillers
                .iter()
                .all(|f| !io.is_open(f.slot) || (f.sent >= self.plan.quota && f.answered >= f.sent))
    }

    fn finish(mut self: Box<Self>, _io: &mut Io) -> Outcome {
        let sent: u64 = self.fillers.iter().map(|f| f.sent).sum();
        self.outcome.ok = self.outcome.acked;
        self.outcome.failed = sent - self.outcome.acked.min(sent);
        self.outcome
    }
}

/// Where one reader is.
#[derive(Debug)]
enum Step {
    /// CONVS sent.
    Convs,
    /// A SYNC of the front conversation sent at this time (µs).
    Page { asked_us: u64 },
    /// Finished (or failed).
    Done,
}

struct Reader {
    slot: usize,
    step: Step,
    /// Conversations still to read, the front one being read.
    todo: VecDeque<String>,
    /// The highest seq read of the front conversation.
    after: u64,
}

/// What every worker shares in the sync phase.
#[derive(Debug)]
pub(crate) struct SyncPlan {
    /// The users.
    pub roster: Arc<Roster>,
    /// Hard end of the phase.
    pub deadline: Instant,
}

/// One worker's readers.
pub(crate) struct SyncPhase {
    plan: Arc<SyncPlan>,
    readers: Vec<Reader>,
    by_slot: HashMap<usize, usize>,
    outcome: Outcome,
}

impl SyncPhase {
    /// A worker's part: every user it serves reads.
    pub fn new(plan: Arc<SyncPlan>) -> Self {
        SyncPhase {
            plan,
            readers: Vec::new(),
            by_slot: HashMap::new(),
            outcome: Outcome::default(),
        }
    }

    /// Asks for the next page, or the next conversation's first page, or
    /// finishes the reader.
    fn next(&mut self, io: &mut Io, i: usize) {
        let now = self.plan.roster.micros(Instant::now());
        let r = &mut self.readers[i];
        match r.todo.front() {
            Some(conv) => {
                io.send(
                    r.slot,
                    &proto::sync_after(conv, r.after, proto::SYNC_PAGE_MAX),
                );
                r.step = Step::Page { asked_us: now };
            }
            None => {
                r.step = Step::Done;
                self.outcome.ok += 1;
            }
        }
    }

    fn fail(&mut self, i: usize, why: String) {
        self.readers[i].step = Step::Done;
        self.outcome.failed += 1;
        self.outcome.error(why);
    }

    fn on_convs(&mut self, io: &mut Io, i: usize, msg: &Value) {
        let convs = msg.get("convs").and_then(Value::as_array);
        let r = &mut self.readers[i];
        r.todo = convs
            .into_iter()
            .flatten()
            .filter(|c| c.get("last_seq").and_then(Value::as_u64).unwrap_or(0) > 0)
            .filter_map(|c| Some(c.get("conv")?.as_str()?.to_owned()))
            .collect();
        r.after = 0;
        self.next(io, i);
    }

    fn on_page(&mut self, io: &mut Io, i: usize, msg: &Value, asked_us: u64) {
        let now = self.plan.roster.micros(io.now);
        self.outcome.latency.record(now.saturating_sub(asked_us));
        self.outcome.pages += 1;
        self.outcome.last_arrival = Some(io.now);
        let msgs = msg.get("msgs").and_then(Value::as_array);
        Counters::add(&io.counters.ok, msgs.map_or(0, |m| m.len() as u64));
        let r = &mut self.readers[i];
        for m in msgs.into_iter().flatten() {
            self.outcome.fetched += 1;
            match m.get("seq").and_then(Value::as_u64) {
                Some(seq) if seq > r.after => r.after = seq,
                Some(_) => self.outcome.seq_reordered += 1,
                None => self.outcome.error("sync: a message without seq"),
            }
        }
        let more = msg.get("more").and_then(Value::as_bool).unwrap_or(false);
        let empty = msgs.is_none_or(Vec::is_empty);
        if !more || empty {
            r.todo.pop_front();
            r.after = 0;
        }
        self.next(io, i);
    }
}

impl Phase for SyncPhase {
    fn start(&mut self, io: &mut Io) {
        for slot in io.open_slots() {
            self.by_slot.insert(slot, self.readers.len());
            self.readers.push(Reader {
                slot,
                step: Step::Convs,
                todo: VecDeque::new(),
                after: 0,
            });
            io.send(slot, &proto::convs());
        }
    }

    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value) {
        let Some(&i) = self.by_slot.get(&slot) else {
            return;
        };
        let id = proto::msg_id(&msg);
        let errno = proto::errno(&msg);
        let step = &self.readers[i].step;
        match (id, step) {
            (Some(proto::CONVS_ACK | proto::SYNC_ACK), _) if errno != 0 => {
                let what = if id == Some(proto::CONVS_ACK) {
                    "convs"
                } else {
                    "sync"
                };
                self.fail(
                    i,
                    format!("{what}: errno {errno} ({})", proto::errmsg(&msg)),
                );
            }
            (Some(proto::CONVS_ACK), Step::Convs) => self.on_convs(io, i, &msg),
            (Some(proto::SYNC_ACK), &Step::Page { asked_us }) => {
                self.on_page(io, i, &msg, asked_us);
            }
            (Some(proto::ERROR_MSG), Step::Convs | Step::Page { .. }) => {
                self.fail(
                    i,
                    format!("error reply: errno {errno} ({})", proto::errmsg(&msg)),
                );
            }
            // Late deliveries and acks of the fill.
            _ => {}
        }
    }

    fn on_closed(&mut self, _io: &mut Io, slot: usize, reason: String) {
        self.outcome.closed += 1;
        if let Some(&i) = self.by_slot.get(&slot) {
            if !matches!(self.readers[i].step, Step::Done) {
                self.fail(i, format!("sync: {reason}"));
            }
        }
    }

    fn tick(&mut self, _io: &mut Io) -> Option<Instant> {
        Some(self.plan.deadline)
    }

    fn is_done(&self, io: &Io) -> bool {
        io.now >= self.plan.deadline || self.readers.iter().all(|r| matches!(r.step, Step::Done))
    }

    fn finish(mut self: Box<Self>, _io: &mut Io) -> Outcome {
        let unfinished = self
            .readers
            .iter()
            .filter(|r| !matches!(r.step, Step::Done))
            .count() as u64;
        if unfinished > 0 {
            self.outcome.failed += unfinished;
            *self
                .outcome
                .errors
                .entry("sync: not finished before the timeout".into())
                .or_insert(0) += unfinished;
        }
        self.outcome
    }
}
