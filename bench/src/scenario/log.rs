//! The `sync` scenario's fill and measured sync, and their report; see
//! [`crate::phases::sync`].

use super::Runner;
use crate::phases::sync::{FillPhase, FillPlan, SyncPhase, SyncPlan};
use crate::phases::Phase;
use crate::BenchError;
use std::sync::Arc;
use std::time::Instant;

impl Runner<'_> {
    /// Writes `--log-messages` into the pairs' conversations, every one
    /// acked; false (and the run failed) when some were not.
    pub(super) fn fill(&mut self) -> Result<bool, BenchError> {
        let roster = Arc::new(self.roster()?);
        let pairs = (roster.uids.len() / 2).max(1) as u64;
        let plan = Arc::new(FillPlan {
            roster,
            quota: self.config.log_messages.div_ceil(pairs),
            deadline: self.deadline(),
        });
        let parts = (0..self.threads)
            .map(|_| Box::new(FillPhase::new(Arc::clone(&plan))) as Box<dyn Phase>)
            .collect();
        let started = Instant::now();
        let filled = self.run_phase("fill", parts)?;
        self.report.sent = Some(filled.ok + filled.failed);
        self.report.acked = Some(filled.acked);
        self.report.ack_failed = Some(filled.ack_failed);
        self.report.ack_latency_us = filled.ack_latency.summary();
        self.report.setup_secs += started.elapsed().as_secs_f64();
        Ok(self.check("fill", &filled, false))
    }

    /// Every user reads all its conversations back; the measured phase.
    pub(super) fn sync(&mut self) -> Result<(), BenchError> {
        let plan = Arc::new(SyncPlan {
            roster: Arc::new(self.roster()?),
            deadline: self.deadline(),
        });
        let parts = (0..self.threads)
            .map(|_| Box::new(SyncPhase::new(Arc::clone(&plan))) as Box<dyn Phase>)
            .collect();
        let started = Instant::now();
        let outcome = self.run_phase("sync", parts)?;
        let end = outcome
            .last_arrival
            .unwrap_or_else(Instant::now)
            .max(started);
        let r = &mut self.report;
        r.elapsed_secs = (end - started).as_secs_f64();
        r.pages = Some(outcome.pages);
        r.fetched = Some(outcome.fetched);
        r.reordered = Some(outcome.seq_reordered);
        r.latency_us = outcome.latency.summary();
        r.ops = Some(outcome.ok);
        r.op_failures = Some(outcome.failed);
        // Each message is in one conversation of two readers.
        let written = r.acked.unwrap_or(0);
        if outcome.fetched < written * 2 {
            r.failed = Some(format!(
                "sync: fetched {} messages, the fill stored {written} (read by both of a pair: {})",
                outcome.fetched,
                written * 2
            ));
        }
        if outcome.seq_reordered > 0 {
            r.failed = Some(format!("sync: {} seqs out of order", outcome.seq_reordered));
        }
        self.check("sync", &outcome, false);
        Ok(())
    }
}
