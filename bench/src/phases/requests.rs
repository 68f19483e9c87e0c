//! Scripts of requests, one in flight per connection: registering, logging
//! in, creating and joining groups.
//!
//! Each user gets a short script of [`Step`]s. A step either waits for its
//! reply (matched by `msgId`; an error message `27` also ends it) or, for a
//! request the C++ original never answers, waits a fixed pause instead. Only
//! then does the next step go out, so two requests never share a TCP read on
//! the server: the rule the original needs. A step that fails ends its
//! script. Reply latency is recorded for every answered step.
//!
//! A login step may be sent again: a login refused with errno 2 (the account
//! still online) right after the same user's earlier connection closed, as
//! when a `--reuse` run starts the instant its `--setup-only` run ended, only
//! means the server has not yet seen that close.

use super::{Outcome, Phase, ALREADY_ONLINE, LOGIN_MAX_TRIES, LOGIN_RETRY_AFTER};
use crate::proto;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What ends a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// A reply with this `msgId`.
    Reply(i64),
    /// Nothing comes back: wait this long, then go on.
    Pause(Duration),
}

/// One request of a script.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    /// What this step does, for error reports ("login", "join group", …).
    pub label: &'static str,
    /// The request, as JSON text.
    pub text: String,
    /// What ends it.
    pub expect: Expect,
    /// Keep the reply in [`Outcome::replies`].
    pub keep: bool,
    /// A reply with errno 2 (already online) sends the step again after a
    /// pause, a bounded number of times (logins only).
    pub retry_online: bool,
}

struct Script {
    user: usize,
    steps: VecDeque<Step>,
    /// Number of the step in flight (for `Outcome::replies`).
    index: usize,
    sent_at: Instant,
    /// Times the step in flight was sent.
    tries: u32,
}

/// Runs one script per user, all users at once.
pub(crate) struct RequestPhase {
    todo: Vec<(usize, Vec<Step>)>,
    scripts: HashMap<usize, Script>,
    pauses: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Steps to send again (slot) at the instant.
    resends: BinaryHeap<Reverse<(Instant, usize)>>,
    deadline: Instant,
    outcome: Outcome,
}

impl RequestPhase {
    /// Runs `scripts` (user, steps), giving up on what is unfinished at `deadline`.
    pub fn new(scripts: Vec<(usize, Vec<Step>)>, deadline: Instant) -> Self {
        RequestPhase {
            todo: scripts,
            scripts: HashMap::new(),
            pauses: BinaryHeap::new(),
            resends: BinaryHeap::new(),
            deadline,
            outcome: Outcome::default(),
        }
    }

    /// Sends the current step of the script on `slot`, or ends the script.
    fn send_step(&mut self, io: &mut Io, slot: usize) {
        let Some(script) = self.scripts.get_mut(&slot) else {
            return;
        };
        let Some(step) = script.steps.front() else {
            self.scripts.remove(&slot);
            return;
        };
        io.send(slot, &step.text);
        script.sent_at = io.now;
        script.tries += 1;
        if let Expect::Pause(gap) = step.expect {
            self.pauses.push(Reverse((io.now + gap, slot)));
        }
    }

    /// The current step on `slot` ended: succeeded when `error` is `None`.
    fn end_step(&mut self, io: &mut Io, slot: usize, error: Option<String>, reply: Option<Value>) {
        let Some(script) = self.scripts.get_mut(&slot) else {
            return;
        };
        let Some(step) = script.steps.pop_front() else {
            return;
        };
        match error {
            None => {
                self.outcome.ok += 1;
                Counters::add(&io.counters.ok, 1);
                if let (true, Some(reply)) = (step.keep, reply) {
                    self.outcome
                        .replies
                        .push((script.user, script.index, reply));
                }
                script.index += 1;
                script.tries = 0;
                self.send_step(io, slot);
            }
            Some(why) => {
                self.outcome.failed += 1;
                Counters::add(&io.counters.failed, 1);
                self.outcome.error(format!("{}: {why}", step.label));
                self.scripts.remove(&slot);
            }
        }
    }
}

impl Phase for RequestPhase {
    fn start(&mut self, io: &mut Io) {
        for (user, steps) in std::mem::take(&mut self.todo) {
            match io.slot_of(user).filter(|&s| io.is_open(s)) {
                Some(slot) => {
                    let script = Script {
                        user,
                        steps: steps.into(),
                        index: 0,
                        sent_at: io.now,
                        tries: 0,
                    };
                    self.scripts.insert(slot, script);
                    self.send_step(io, slot);
                }
                None => {
                    self.outcome.failed += 1;
                    self.outcome.error("not connected");
                }
            }
        }
    }

    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value) {
        let Some(script) = self.scripts.get(&slot) else {
            return;
        };
        let Some(step) = script.steps.front() else {
            return;
        };
        let Expect::Reply(want) = step.expect else {
            return;
        };
        let id = proto::msg_id(&msg);
        if id != Some(want) && id != Some(proto::ERROR_MSG) {
            return;
        }
        let again = step.retry_online && script.tries < LOGIN_MAX_TRIES;
        if again && id == Some(want) && proto::errno(&msg) == ALREADY_ONLINE {
            self.resends
                .push(Reverse((io.now + LOGIN_RETRY_AFTER, slot)));
            return;
        }
        let micros = io.now.saturating_duration_since(script.sent_at).as_micros();
        self.outcome.latency.record(micros as u64);
        io.counters.time(micros as u64);
        let errno = proto::errno(&msg);
        let error = (id == Some(proto::ERROR_MSG) || errno != 0)
            .then(|| format!("errno {errno} ({})", proto::errmsg(&msg)));
        self.end_step(io, slot, error, Some(msg));
    }

    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String) {
        self.outcome.closed += 1;
        if self.scripts.contains_key(&slot) {
            self.end_step(io, slot, Some(reason), None);
        } else {
            self.outcome.error(reason);
        }
    }

    fn tick(&mut self, io: &mut Io) -> Option<Instant> {
        while let Some(&Reverse((at, slot))) = self.resends.peek() {
            if at > io.now {
                break;
            }
            self.resends.pop();
            if io.is_open(slot) {
                self.send_step(io, slot);
            }
        }
        while let Some(&Reverse((at, slot))) = self.pauses.peek() {
            if at > io.now {
                break;
            }
            self.pauses.pop();
            self.end_step(io, slot, None, None);
        }
        let next = [self.resends.peek(), self.pauses.peek()]
            .into_iter()
            .flatten()
            .map(|Reverse((at, _))| *at)
            .min();
        Some(next.map_or(self.deadline, |at| at.min(self.deadline)))
    }

    fn is_done(&self, io: &Io) -> bool {
        self.scripts.is_empty() || io.now >= self.deadline
    }

    fn finish(mut self: Box<Self>, _io: &mut Io) -> Outcome {
        for script in self.scripts.values() {
            if let Some(step) = script.steps.front() {
                self.outcome.failed += 1;
                self.outcome
                    .error(format!("{}: no reply before the deadline", step.label));
            }
        }
        self.outcome
    }
}
