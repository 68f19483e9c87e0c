//! The message log's scenarios, `sync` (fill, then the measured sync) and
//! `reconnect`, and their reports; see [`crate::phases::sync`] and
//! [`crate::phases::reconnect`].

use super::Runner;
use crate::phases::reconnect::{ReconnectPhase, ReconnectPlan};
use crate::phases::sync::{FillPhase, FillPlan, SyncPhase, SyncPlan};
use crate::phases::{Outcome, Phase};
use crate::BenchError;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        // Readers that could not finish; `ops` (readers per second) would
        // say nothing.
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

    /// The `reconnect` scenario's measured phase and its books.
    pub(super) fn reconnect(&mut self) -> Result<(), BenchError> {
        let config = self.config;
        let roster = Arc::new(self.roster()?);
        let send_until = Instant::now() + config.send_time();
        let plan = Arc::new(ReconnectPlan {
            addrs: config.addrs.clone(),
            window: config.window,
            send_gap: if config.msg_rate > 0.0 {
                Duration::from_secs_f64(1.0 / config.msg_rate)
            } else {
                Duration::ZERO
            },
            drop_fraction: config.drop_fraction,
            drop_every: config.drop_every,
            away_for: config.offline_for,
            send_until,
            drain: config.drain,
            deadline: send_until + config.drain * 4 + Duration::from_secs(5),
            roster: Arc::clone(&roster),
            soak: None,
        });
        let parts = (0..self.threads)
            .map(|w| {
                let seed = roster.run ^ (w as u64).wrapping_mul(0x9E37_79B9);
                Box::new(ReconnectPhase::new(Arc::clone(&plan), seed)) as Box<dyn Phase>
            })
            .collect();
        let started = Instant::now();
        let outcome = self.run_phase("reconnect", parts)?;
        self.report_reconnect(outcome, started);
        Ok(())
    }

    /// Closes the books of a `reconnect` (or `soak`) phase into the report.
    pub(super) fn report_reconnect(&mut self, outcome: Outcome, started: Instant) {
        let books = outcome.reconnect;
        let r = &mut self.report;
        let end = outcome
            .last_arrival
            .unwrap_or_else(Instant::now)
            .max(started);
        r.elapsed_secs = (end - started).as_secs_f64();
        r.sent = Some(outcome.ok);
        r.acked = Some(outcome.acked);
        r.ack_failed = Some(outcome.ack_failed);
        r.unacked = Some(
            outcome
                .ok
                .saturating_sub(outcome.acked + outcome.ack_failed),
        );
        r.ack_latency_us = outcome.ack_latency.summary();
        r.latency_us = outcome.latency.summary();
        r.expected = Some(books.owed);
        r.delivered = Some(books.delivered);
        r.offline_delivered = Some(outcome.offline_delivered);
        r.synced = Some(books.synced);
        r.refetched = Some(books.refetched);
        r.lost = Some(books.lost);
        r.duplicated = Some(books.duplicated);
        r.reordered = Some(outcome.seq_reordered);
        r.stale = Some(outcome.stale);
        r.pages = Some(outcome.pages);
        r.fetched = Some(outcome.fetched);
        r.closed += outcome.closed;
        r.actions = outcome
            .actions
            .iter()
            .map(|(k, &n)| (k.to_string(), n))
            .collect();
        self.merge_errors(&outcome);
        let r = &mut self.report;
        if books.lost > 0 || outcome.seq_reordered > 0 {
            r.failed = Some(format!(
                "MESSAGES LOST OR REORDERED: {} acked messages lost, {} out of order",
                books.lost, outcome.seq_reordered
            ));
        } else if outcome.failed > 0 {
            r.failed = Some(format!("{} users could not come back", outcome.failed));
        } else if outcome.ok == 0 {
            r.failed = Some("no message was sent".into());
        }
    }
}
