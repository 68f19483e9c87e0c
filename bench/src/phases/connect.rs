//! Opening the users' connections.
//!
//! Connects are non-blocking and limited to a number in progress per worker:
//! firing 100,000 SYNs at once would overflow the server's listen backlog,
//! and the kernel's SYN retries (1 s, 3 s, …) would then measure the retry
//! timer rather than the server. Each connect's time is recorded.

use super::{Outcome, Phase};
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Where one user connects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectSpec {
    /// Global user index.
    pub user: usize,
    /// Server address.
    pub addr: SocketAddr,
    /// Local address to bind first, to spread over several source addresses.
    pub source: Option<IpAddr>,
}

/// Connects a worker's users, at most `max_in_progress` at a time.
pub(crate) struct ConnectPhase {
    todo: VecDeque<ConnectSpec>,
    started: HashMap<usize, Instant>,
    max_in_progress: usize,
    deadline: Instant,
    outcome: Outcome,
}

impl ConnectPhase {
    /// Connects `specs`, giving up on what is unfinished at `deadline`.
    pub fn new(specs: Vec<ConnectSpec>, max_in_progress: usize, deadline: Instant) -> Self {
        ConnectPhase {
            todo: specs.into(),
            started: HashMap::new(),
            max_in_progress: max_in_progress.max(1),
            deadline,
            outcome: Outcome::default(),
        }
    }

    fn launch(&mut self, io: &mut Io) {
        while self.started.len() < self.max_in_progress {
            let Some(spec) = self.todo.pop_front() else {
                return;
            };
            match io.connect(spec.user, spec.addr, spec.source) {
                Ok(slot) => {
                    self.started.insert(slot, io.now);
                }
                Err(e) => {
                    self.outcome.failed += 1;
                    self.outcome.error(format!("connect: {e}"));
                    Counters::add(&io.counters.failed, 1);
                }
            }
        }
    }
}

impl Phase for ConnectPhase {
    fn start(&mut self, io: &mut Io) {
        self.launch(io);
    }

    fn on_connected(&mut self, io: &mut Io, slot: usize) {
        if let Some(at) = self.started.remove(&slot) {
            self.outcome.ok += 1;
            let micros = io.now.saturating_duration_since(at).as_micros();
            self.outcome.latency.record(micros as u64);
            Counters::add(&io.counters.ok, 1);
        }
    }

    fn on_message(&mut self, _io: &mut Io, _slot: usize, _msg: Value) {}

    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String) {
        if self.started.remove(&slot).is_some() {
            self.outcome.failed += 1;
            Counters::add(&io.counters.failed, 1);
        } else {
            self.outcome.closed += 1;
        }
        self.outcome.error(reason);
    }

    fn tick(&mut self, io: &mut Io) -> Option<Instant> {
        self.launch(io);
        Some(self.deadline)
    }

    fn is_done(&self, io: &Io) -> bool {
        (self.todo.is_empty() && self.started.is_empty()) || io.now >= self.deadline
    }

    fn finish(mut self: Box<Self>, io: &mut Io) -> Outcome {
        let unfinished = self.todo.len() + self.started.len();
        for (&slot, _) in self.started.iter() {
            io.close(slot);
        }
        if unfinished > 0 {
            self.outcome.failed += unfinished as u64;
            *self
                .outcome
                .errors
                .entry("connect: timed out".into())
                .or_insert(0) += unfinished as u64;
        }
        self.outcome
    }
}
