//! Holding idle connections open for a while.
//!
//! The `connect` scenario measures what idle users cost the server, so this
//! phase sends nothing. It still reads (an edge-triggered socket must be
//! drained) and counts the connections the server closes, for example by
//! an idle timeout shorter than the hold.

use super::{Outcome, Phase};
use crate::worker::Io;
use serde_json::Value;
use std::time::Instant;

/// Idles until `until`, counting what the server closes.
pub(crate) struct HoldPhase {
    until: Instant,
    outcome: Outcome,
}

impl HoldPhase {
    /// Holds every connection of the worker open until `until`.
    pub fn new(until: Instant) -> Self {
        HoldPhase {
            until,
            outcome: Outcome::default(),
        }
    }
}

impl Phase for HoldPhase {
    fn start(&mut self, io: &mut Io) {
        self.outcome.ok = io.open_slots().len() as u64;
    }

    fn on_message(&mut self, _io: &mut Io, _slot: usize, _msg: Value) {}

    fn on_closed(&mut self, _io: &mut Io, _slot: usize, reason: String) {
        self.outcome.closed += 1;
        self.outcome.error(format!("during hold: {reason}"));
    }

    fn tick(&mut self, _io: &mut Io) -> Option<Instant> {
        Some(self.until)
    }

    fn is_done(&self, io: &Io) -> bool {
        io.now >= self.until
    }

    fn finish(mut self: Box<Self>, io: &mut Io) -> Outcome {
        self.outcome.ok = io.open_slots().len() as u64;
        self.outcome
    }
}
