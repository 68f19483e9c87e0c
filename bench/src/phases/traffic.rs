//! Chat and group chat with a window of messages in flight per sender.
//!
//! Each sender may have `window` messages sent but not yet delivered; a
//! delivery (reported by the recipient's worker) opens the window again. With
//! a window of 1 a sender waits for delivery before its next message, which
//! is how the C++ original was measured. For a group a message counts as
//! delivered once it reached all `fanout` recipients, so the window is kept
//! as `sent - deliveries / fanout`.
//!
//! With `--cid` every message carries a cid ([`Acks`]) and its SEND_ACK
//! is timed; the window still opens on delivery, so the load is the same
//! with and without cids.
//!
//! When the phase ends: senders stop at the message count or at
//! `send_until`; the run then drains until every owed delivery arrived, or
//! `drain` has passed since the last sender stopped, or no delivery arrived
//! anywhere for `drain` (a stalled run), or at the hard `deadline`. What
//! never arrived is lost.

use super::acks::{take_ack, Acks, InFlight};
use super::delivery::{self, Roster, Tally, WallClock};
use super::{Outcome, Phase};
use crate::ledger::{StreamKey, Target};
use crate::proto;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One sender and where it sends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SenderSpec {
    /// Global user index.
    pub user: usize,
    /// The peer's uid or the group's gid.
    pub target: Target,
    /// Recipients per message: 1, or the group's size minus the sender.
    pub fanout: u64,
}

/// What all workers share in one traffic phase.
#[derive(Debug)]
pub(crate) struct TrafficPlan {
    /// The users.
    pub roster: Arc<Roster>,
    /// Messages in flight per sender.
    pub window: u64,
    /// Messages per sender, when a count bounds the run.
    pub messages: Option<u64>,
    /// Send a cid with every message and time its SEND_ACK.
    pub cid: bool,
    /// Senders stop here at the latest.
    pub send_until: Instant,
    /// How long to wait for stragglers, and what counts as a stall.
    pub drain: Duration,
    /// Hard end of the phase.
    pub deadline: Instant,
    /// Workers that still have senders sending.
    pub sending_workers: AtomicUsize,
    /// When the last worker stopped sending (µs on the run clock), or `u64::MAX`.
    pub all_sent_us: AtomicU64,
}

struct Sender {
    slot: usize,
    key: StreamKey,
    name_json: usize,
    fanout: u64,
    sent: u64,
    acked: u64,
    done: bool,
}

/// One worker's senders and recipients.
pub(crate) struct TrafficPhase {
    plan: Arc<TrafficPlan>,
    specs: Vec<SenderSpec>,
    senders: Vec<Sender>,
    by_user: HashMap<usize, usize>,
    active: usize,
    /// Whether this worker has said it stopped sending.
    reported: bool,
    swept_at_end: bool,
    stalled_since: (u64, Instant),
    clock: WallClock,
    tally: Tally,
    /// Cids and messages awaiting their SEND_ACK, with `--cid`.
    acks: Option<Acks>,
    outcome: Outcome,
}

impl TrafficPhase {
    /// A worker's part: `specs` are its senders; every user it serves receives.
    pub fn new(plan: Arc<TrafficPlan>, specs: Vec<SenderSpec>) -> Self {
        let now = Instant::now();
        TrafficPhase {
            plan,
            specs,
            senders: Vec::new(),
            by_user: HashMap::new(),
            active: 0,
            reported: false,
            swept_at_end: false,
            stalled_since: (0, now),
            clock: WallClock::default(),
            tally: Tally::default(),
            acks: None,
            outcome: Outcome::default(),
        }
    }

    /// Sends what sender `i`'s window and quota allow.
    fn pump(&mut self, io: &mut Io, i: usize) {
        let plan = Arc::clone(&self.plan);
        let roster = &plan.roster;
        let s = &mut self.senders[i];
        while !s.done {
            let quota_reached = plan.messages.is_some_and(|k| s.sent >= k);
            if quota_reached || io.now >= plan.send_until || !io.is_open(s.slot) {
                s.done = true;
                self.active -= 1;
                break;
            }
            if s.sent - s.acked / s.fanout >= plan.window {
                break;
            }
            let seq = self.outcome.ledger.next_seq(s.key);
            let text = roster.text(seq);
            let name = &roster.names_json[s.name_json];
            let cid = self.acks.as_mut().map(|acks| {
                acks.cid(InFlight {
                    user: s.name_json,
                    sent_us: roster.micros(Instant::now()),
                    tag: seq,
                    key: Some(s.key),
                    owed: s.fanout,
                })
            });
            let cid = cid.as_deref();
            let body = match s.key.target {
                Target::User(to) => {
                    proto::one_chat(s.key.sender, name, to, &text, self.clock.now(), cid)
                }
                Target::Group(gid) => {
                    proto::group_chat(s.key.sender, name, gid, &text, self.clock.now(), cid)
                }
            };
            io.send(s.slot, &body);
            s.sent += 1;
            self.tally.sent += 1;
            self.tally.expected += s.fanout;
        }
    }

    fn sweep(&mut self, io: &mut Io) {
        for i in 0..self.senders.len() {
            self.pump(io, i);
        }
    }
}

impl Phase for TrafficPhase {
    fn start(&mut self, io: &mut Io) {
        if self.plan.cid {
            self.acks = Some(Acks::new(self.plan.roster.run, io.id));
        }
        for spec in std::mem::take(&mut self.specs) {
            let Some(slot) = io.slot_of(spec.user).filter(|&s| io.is_open(s)) else {
                self.outcome.error("sender not connected");
                continue;
            };
            self.by_user.insert(spec.user, self.senders.len());
            self.senders.push(Sender {
                slot,
                key: StreamKey {
                    sender: self.plan.roster.uids[spec.user],
                    target: spec.target,
                },
                name_json: spec.user,
                fanout: spec.fanout.max(1),
                sent: 0,
                acked: 0,
                done: false,
            });
        }
        self.active = self.senders.len();
        self.stalled_since = (0, io.now);
        self.sweep(io);
    }

    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value) {
        let recipient = io.user_of(slot);
        let roster = Arc::clone(&self.plan.roster);
        let (outcome, tally) = (&mut self.outcome, &mut self.tally);
        let now_us = roster.micros(io.now);
        if let Some(refused) = take_ack(self.acks.as_mut(), &msg, now_us, outcome, tally) {
            // Refused: never delivered, so its window slot is free.
            if let Some(&i) = refused.and_then(|sent| self.by_user.get(&sent.user)) {
                self.senders[i].acked += self.senders[i].fanout;
                self.pump(io, i);
            }
            return;
        }
        if !delivery::receive(&roster, io, outcome, tally, recipient, &msg, false)
            && proto::msg_id(&msg) == Some(proto::ERROR_MSG)
        {
            let errno = proto::errno(&msg);
            outcome.error(format!(
                "error reply: errno {errno} ({})",
                proto::errmsg(&msg)
            ));
            Counters::add(&io.counters.errors, 1);
        }
    }

    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String) {
        Counters::add(&io.counters.errors, 1);
        self.outcome.closed += 1;
        self.outcome.error(reason);
        let user = io.user_of(slot);
        if let Some(&i) = self.by_user.get(&user) {
            self.pump(io, i);
        }
    }

    fn on_feedback(&mut self, io: &mut Io, senders: &[usize]) {
        for user in senders {
            if let Some(&i) = self.by_user.get(user) {
                self.senders[i].acked += 1;
                self.pump(io, i);
            }
        }
    }

    fn tick(&mut self, io: &mut Io) -> Option<Instant> {
        if !self.swept_at_end && io.now >= self.plan.send_until {
            self.swept_at_end = true;
            self.sweep(io);
        }
        if self.active == 0 && !self.reported {
            self.reported = true;
            if self.plan.sending_workers.fetch_sub(1, Ordering::AcqRel) == 1 {
                let now = self.plan.roster.micros(io.now);
                self.plan.all_sent_us.store(now, Ordering::Release);
            }
        }
        self.tally.publish(&io.counters);
        let delivered = io.counters.delivered.load(Ordering::Relaxed);
        if delivered != self.stalled_since.0 {
            self.stalled_since = (delivered, io.now);
        }
        // Wake at the end of sending; after it the worker's own cap on
        // waiting paces the checks of the drain conditions.
        Some(if io.now < self.plan.send_until {
            self.plan.send_until.min(self.plan.deadline)
        } else {
            self.plan.deadline
        })
    }

    fn is_done(&self, io: &Io) -> bool {
        let plan = &self.plan;
        if io.now >= plan.deadline {
            return true;
        }
        let all_sent = plan.all_sent_us.load(Ordering::Acquire);
        let expected = io.counters.expected.load(Ordering::Relaxed);
        let delivered = io.counters.delivered.load(Ordering::Relaxed);
        let stalled = delivered < expected && io.now >= self.stalled_since.1 + plan.drain;
        if all_sent == u64::MAX {
            return stalled;
        }
        let draining_since = plan.roster.clock + Duration::from_micros(all_sent);
        // With cids the books also wait for this worker's SEND_ACKs.
        let acked = self.acks.as_ref().is_none_or(|a| a.in_flight() == 0);
        (delivered >= expected && acked) || stalled || io.now >= draining_since + plan.drain
    }

    fn finish(mut self: Box<Self>, io: &mut Io) -> Outcome {
        self.tally.publish(&io.counters);
        self.outcome.ok = self.senders.iter().map(|s| s.sent).sum();
        self.outcome
    }
}
