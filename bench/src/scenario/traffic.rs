//! The measured traffic of `chat`, `group` and `mixed`, and its report.
//!
//! `chat` pairs user `2p` with user `2p + 1` (the pair shares a worker, see
//! [`crate::worker::worker_of`]); `group` makes the first `--senders` members
//! of the one group send to it; `mixed` gives every user a paced mix. After
//! the phase the workers' ledgers are merged and closed: deliveries owed
//! against deliveries seen, stream by stream.

use super::{Runner, SystemTime, UNIX_EPOCH};
use crate::config::Scenario;
use crate::ledger::Target;
use crate::phases::delivery::Roster;
use crate::phases::mixed::{MixedPhase, MixedPlan};
use crate::phases::traffic::{SenderSpec, TrafficPhase, TrafficPlan};
use crate::phases::{Outcome, Phase};
use crate::{proto, BenchError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};

/// `mixed`: a p99 send lag above this means the generator did not start
/// actions when their moment came.
pub const MAX_SEND_LAG: std::time::Duration = std::time::Duration::from_millis(10);
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Runner<'_> {
    /// What every worker needs to know about the users.
    pub(super) fn roster(&self) -> Result<Roster, BenchError> {
        let uids = self
            .setup
            .uids()
            .map_err(|i| BenchError::Config(format!("user {i} has no uid")))?;
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 40);
        Ok(Roster {
            run: run >> 1,
            clock: Instant::now(),
            index_of: uids.iter().enumerate().map(|(i, &uid)| (uid, i)).collect(),
            uids,
            names_json: self
                .setup
                .accounts
                .iter()
                .map(|a| proto::quote(&a.name))
                .collect(),
            password: self.setup.password.clone(),
            size: self.config.size,
            sessions: self.config.sessions.max(1) as u64,
        })
    }

    /// Runs the measured traffic phase of `chat`, `group` or `mixed`.
    pub(super) fn traffic(&mut self) -> Result<Outcome, BenchError> {
        let config = self.config;
        let roster = Arc::new(self.roster()?);
        let send_until = Instant::now() + config.send_time();
        let deadline = send_until + config.drain * 2 + Duration::from_secs(1);
        let parts: Vec<Box<dyn Phase>> = if config.scenario == Scenario::Mixed {
            let mut groups = vec![None; roster.uids.len()];
            for g in &self.setup.groups {
                for &m in &g.members {
                    groups[m] = g.gid.map(|gid| (gid, g.members.len() as u64 - 1));
                }
            }
            let plan = Arc::new(MixedPlan {
                roster: Arc::clone(&roster),
                groups,
                rate: config.rate,
                mix: config.mix,
                pairs: config.pairs,
                legacy: config.legacy,
                gap: config.legacy_gap,
                offline_for: config.offline_for,
                cid: config.cid,
                send_until,
                drain: config.drain,
                deadline,
                busy_workers: AtomicUsize::new(self.threads),
                all_idle_us: AtomicU64::new(u64::MAX),
            });
            (0..self.threads)
                .map(|w| {
                    let seed = roster.run ^ (w as u64).wrapping_mul(0x9E37_79B9);
                    Box::new(MixedPhase::new(Arc::clone(&plan), seed)) as Box<dyn Phase>
                })
                .collect()
        } else {
            let plan = Arc::new(TrafficPlan {
                roster: Arc::clone(&roster),
                window: config.effective_window(),
                messages: config.messages,
                cid: config.cid,
                send_until,
                drain: config.drain,
                deadline,
                sending_workers: AtomicUsize::new(self.threads),
                all_sent_us: AtomicU64::new(u64::MAX),
            });
            self.by_worker(self.senders(&roster)?)
                .into_iter()
                .map(|mine| {
                    let specs = mine.into_iter().map(|(_, spec)| spec).collect();
                    Box::new(TrafficPhase::new(Arc::clone(&plan), specs)) as Box<dyn Phase>
                })
                .collect()
        };
        self.run_phase(config.scenario.name(), parts)
    }

    /// Who sends where: partners for `chat`, the first senders for `group`.
    fn senders(&self, roster: &Roster) -> Result<Vec<(usize, SenderSpec)>, BenchError> {
        if self.config.scenario == Scenario::Chat {
            return Ok((0..roster.uids.len())
                .map(|user| {
                    let target = Target::User(roster.uids[user ^ 1]);
                    (
                        user,
                        SenderSpec {
                            user,
                            target,
                            fanout: 1,
                        },
                    )
                })
                .collect());
        }
        let group = self
            .setup
            .groups
            .first()
            .ok_or_else(|| BenchError::Config("the setup has no group".into()))?;
        let gid = group
            .gid
            .ok_or_else(|| BenchError::Config("the group has no gid".into()))?;
        let fanout = group.members.len() as u64 - 1;
        let senders = self.config.senders.min(group.members.len());
        Ok(group.members[..senders]
            .iter()
            .map(|&user| {
                let target = Target::Group(gid);
                (
                    user,
                    SenderSpec {
                        user,
                        target,
                        fanout,
                    },
                )
            })
            .collect())
    }

    /// Closes the books of a traffic phase into the report.
    pub(super) fn report_traffic(&mut self, outcome: Outcome, started: Instant) {
        let members: HashMap<i64, Vec<i64>> = self
            .setup
            .groups
            .iter()
            .filter_map(|g| {
                let mut uids: Vec<i64> = (g.members.iter())
                    .filter_map(|&m| self.setup.accounts[m].uid)
                    .collect();
                uids.dedup(); // a member's sessions are listed together
                Some((g.gid?, uids))
            })
            .collect();
        let totals = (outcome.ledger).totals_for(&members, self.config.sessions.max(1) as i64);
        let r = &mut self.report;
        let sent = outcome.ledger.sent_total();
        r.sent = Some(sent);
        r.expected = Some(totals.expected);
        r.delivered = Some(totals.delivered);
        r.offline_delivered = Some(outcome.offline_delivered);
        r.lost = Some(totals.lost);
        r.duplicated = Some(totals.duplicated);
        r.reordered = Some(totals.reordered);
        r.unexpected = Some(totals.unexpected);
        r.stale = Some(outcome.stale);
        let end = outcome
            .last_arrival
            .unwrap_or_else(Instant::now)
            .max(started);
        r.elapsed_secs = (end - started).as_secs_f64();
        if self.config.scenario == Scenario::Group {
            r.latency_us = outcome.group_latency.summary();
        } else {
            r.latency_us = outcome.latency.summary();
            r.group_latency_us = outcome.group_latency.summary();
        }
        r.actions = outcome
            .actions
            .iter()
            .map(|(k, &n)| (k.to_string(), n))
            .collect();
        r.closed += outcome.closed;
        if self.config.cid {
            r.acked = Some(outcome.acked);
            r.ack_failed = Some(outcome.ack_failed);
            r.unacked = Some(sent.saturating_sub(outcome.acked + outcome.ack_failed));
            r.ack_latency_us = outcome.ack_latency.summary();
        }
        if sent == 0 {
            r.failed = Some("no message was sent".into());
        }
        if self.config.scenario == Scenario::Mixed {
            self.report_open_loop(&outcome);
        }
        self.merge_errors(&outcome);
    }

    /// `mixed`: the offered rate against the achieved one, the send lag,
    /// and a warning when the generator did not keep up: fewer actions
    /// than 95 % of those offered (beyond three standard deviations of
    /// Poisson arrivals, so a short run is not flagged by chance), or a
    /// p99 send lag above [`MAX_SEND_LAG`].
    fn report_open_loop(&mut self, outcome: &Outcome) {
        let secs = self.config.send_time().as_secs_f64().max(1e-9);
        let offered = self.report.users as f64 * self.config.rate;
        let acted: u64 = outcome
            .actions
            .iter()
            .filter(|(name, _)| **name != "login")
            .map(|(_, n)| n)
            .sum();
        let r = &mut self.report;
        r.offered_per_sec = Some(offered);
        r.achieved_per_sec = Some(acted as f64 / secs);
        r.send_lag_us = outcome.send_lag.summary();
        let lag_p99 = r.send_lag_us.map(|l| l.p99);
        // A logged-out user (a re-login) offers nothing meanwhile.
        let logouts = outcome.actions.get("logout").copied().unwrap_or(0);
        let away = logouts as f64 * self.config.offline_for.as_secs_f64();
        let online_secs = (self.report.users as f64 * secs - away).max(0.0);
        let expected = self.config.rate * online_secs;
        self.report
            .warnings
            .extend(open_loop_warnings(expected, acted, secs, lag_p99));
    }
}

/// The warnings of an open-loop run that offered `expected` actions over
/// `secs` (the users' online time times the rate) and carried out
/// `acted`, its p99 send lag `lag_p99` µs (see `report_open_loop`).
fn open_loop_warnings(expected: f64, acted: u64, secs: f64, lag_p99: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if (acted as f64) < 0.95 * expected - 3.0 * expected.sqrt() {
        out.push(format!(
            "the generator fell behind: {:.0} actions/s achieved of {:.0} offered \
             (add --threads, or lower --rate)",
            acted as f64 / secs,
            expected / secs
        ));
    }
    if let Some(p99) = lag_p99.filter(|&l| l > MAX_SEND_LAG.as_micros() as u64) {
        out.push(format!(
            "the generator fell behind: p99 send lag {:.1} ms (actions started late; \
             the offered rate was not held)",
            p99 as f64 / 1000.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::open_loop_warnings;

    #[test]
    fn falling_behind_is_warned_about_and_chance_is_not() {
        // 1,000 users at 1/s for 10 s: 10,000 offered.
        assert!(open_loop_warnings(10_000.0, 9_800, 10.0, Some(2_000)).is_empty());
        let w = open_loop_warnings(10_000.0, 8_000, 10.0, None);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("800 actions/s achieved of 1000 offered"),
            "{w:?}"
        );
        let w = open_loop_warnings(10_000.0, 10_000, 10.0, Some(25_000));
        assert!(w[0].contains("p99 send lag 25.0 ms"), "{w:?}");
        // 12 users at 1/s for 2 s: 24 offered; 18 is within chance.
        assert!(open_loop_warnings(24.0, 18, 2.0, None).is_empty());
        assert_eq!(open_loop_warnings(24.0, 0, 2.0, None).len(), 1);
    }
}
