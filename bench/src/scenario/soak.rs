//! The `soak` scenario: a long run against a server the bench starts
//! itself and kills with SIGKILL every `--restart-every`, and the checks at
//! its end.
//!
//! 1. [`run`] starts `--server` on a free port of 127.0.0.1 and on `--db`
//!    (a fresh SQLite file in a temporary directory by default), then the
//!    usual setup registers the users, logs them in and creates the groups
//!    (of users served by one worker: [`add_groups`]).
//! 2. The traffic is the reconnect phase with a
//!    [`SoakPlan`](crate::phases::reconnect::SoakPlan): pairs and groups
//!    chat with cids, droppers drop and catch up, slow readers pause,
//!    flooders flood, some logins first use a wrong password. Meanwhile a
//!    [`Supervisor`] samples the server's memory and, until sending stops,
//!    kills and restarts it; every user then sees its connection close and
//!    comes back the way a dropper does.
//! 3. Once sending stopped and every SEND_ACK is in, each user catches up
//!    one final time, and every connection is reset.
//! 4. After [`FINAL_GRACE`] every user logs in once more on a new
//!    connection: errno 2 there means the server still counts it online.
//!
//! The run fails (exit status 1) on any violation: an acked message lost,
//! pushed out of order, found at two seqs; a gap in a conversation; a user
//! that could not come back; a wrong password accepted; an account stuck
//! online; memory that grew; a restart that failed.

use super::Runner;
use crate::config::Config;
use crate::phases::reconnect::{ReconnectPhase, ReconnectPlan, SoakPlan};
use crate::phases::Phase;
use crate::report::{Report, SoakReport};
use crate::setup::{Group, Setup};
use crate::supervisor::{rss_verdict, Monitor, Schedule, ServerCommand, ServerProcess, Supervisor};
use crate::worker::worker_of;
use crate::BenchError;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// After every connection was reset, how long the server gets to see them
/// go before the final logins.
pub(crate) const FINAL_GRACE: Duration = Duration::from_secs(2);
/// The least time the final catch-up gets once sending stopped: after a
/// restart late in the run, hundreds of password logins queue for the
/// hashers, and a cool-down may ask a user to wait minutes; a user still
/// not through by then is reported `unverified`.
const FINAL_CATCH_UP: Duration = Duration::from_secs(600);
/// How long the server gets to stop after SIGTERM at the end.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The server a soak run started, handed to its runner.
pub(crate) struct SoakServer {
    process: ServerProcess,
    cmd: ServerCommand,
}

/// Starts the server, runs the scenario against it, removes a temporary
/// database.
pub(super) fn run(config: &Config) -> Result<Report, BenchError> {
    let program = config
        .soak
        .server
        .clone()
        .ok_or_else(|| BenchError::Config("soak needs --server".into()))?;
    let (db, temp_dir) = match &config.soak.db {
        Some(db) => (db.clone(), None),
        None => {
            let dir = temp_dir();
            std::fs::create_dir_all(&dir)?;
            (
                format!("sqlite:{}", dir.join("chat.db").display()),
                Some(dir),
            )
        }
    };
    let mut args = vec!["--max-anonymous-per-address".to_string(), "0".to_string()];
    args.extend(config.soak.server_args.iter().cloned());
    let cmd = ServerCommand { program, args, db };
    let result = ServerProcess::start(&cmd, SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(BenchError::Config)
        .and_then(|process| {
            let mut config = config.clone();
            config.addrs = vec![process.addr];
            config.server_pid = None;
            super::run_with(&config, Some(SoakServer { process, cmd }))
        });
    if let Some(dir) = temp_dir {
        // The server is dead by now; a leftover directory is only litter.
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// A directory no other run uses.
fn temp_dir() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("chat-soak-{}-{nanos}", std::process::id()))
}

/// Groups of `size` among the users each worker serves, so that a group's
/// books stay on one thread. A user left alone has no group.
pub(super) fn add_groups(setup: &mut Setup, users: usize, size: usize, threads: usize) {
    let size = size.max(2);
    for w in 0..threads {
        let mine: Vec<usize> = (0..users).filter(|&u| worker_of(u, threads) == w).collect();
        for chunk in mine.chunks(size).filter(|c| c.len() >= 2) {
            let k = setup.groups.len();
            setup.groups.push(Group {
                name: format!("{}g{k}", setup.prefix),
                gid: None,
                members: chunk.to_vec(),
            });
        }
    }
}

impl Runner<'_> {
    /// The soak traffic under the supervisor, then the final checks.
    pub(super) fn soak(&mut self) -> Result<(), BenchError> {
        let SoakServer { process, cmd } = self
            .soak
            .take()
            .ok_or_else(|| BenchError::Config("soak: no server".into()))?;
        let config = self.config;
        let roster = Arc::new(self.roster()?);
        let send_until = Instant::now() + config.send_time();
        let plan = Arc::new(ReconnectPlan {
            addrs: config.addrs.clone(),
            window: config.window,
            send_gap: Duration::from_secs_f64(1.0 / config.msg_rate),
            drop_fraction: config.drop_fraction,
            drop_every: config.drop_every,
            away_for: config.offline_for,
            send_until,
            drain: config.drain,
            deadline: send_until + config.timeout.max(FINAL_CATCH_UP),
            roster: Arc::clone(&roster),
            soak: Some(self.soak_plan()),
        });
        let schedule = Schedule {
            restart_every: config.soak.restart_every,
            sample_every: config.soak.sample_every,
            send_until,
        };
        let supervisor = Supervisor::spawn(process, cmd, schedule)?;
        let parts = (0..self.threads)
            .map(|w| {
                let seed = roster.run ^ (w as u64).wrapping_mul(0x9E37_79B9);
                Box::new(ReconnectPhase::new(Arc::clone(&plan), seed)) as Box<dyn Phase>
            })
            .collect();
        let started = Instant::now();
        let outcome = self.run_phase("soak", parts);
        let (process, monitor) = supervisor.finish();
        let outcome = outcome?;
        let books = outcome.reconnect;
        self.report_reconnect(outcome, started);
        let mut soak = SoakReport {
            doubled: books.doubled,
            gaps: books.gaps,
            wrong_password_accepted: books.wrong_password_accepted,
            unverified: books.unverified,
            unchecked: books.unchecked,
            ..SoakReport::default()
        };
        let mut violations: Vec<String> = self.report.failed.take().into_iter().collect();
        match process {
            Some(mut process) => {
                std::thread::sleep(FINAL_GRACE);
                self.final_logins(&mut soak, &mut violations)?;
                soak.server_exit = process.stop(STOP_TIMEOUT);
            }
            None => violations.push("the server was down at the end: no final logins".into()),
        }
        self.judge_memory(&monitor, &mut soak, &mut violations);
        self.judge_restarts(&monitor, &mut soak, &mut violations);
        for (n, what) in [
            (soak.doubled, "acked messages found at two seqs"),
            (soak.gaps, "seqs missing from conversations (gaps)"),
            (
                soak.wrong_password_accepted,
                "logins with a wrong password accepted",
            ),
            (
                soak.stuck_online,
                "accounts stuck online (final login errno 2)",
            ),
            (
                soak.unverified,
                "users never finished the final catch-up before the deadline \
                 (what they were owed is counted unchecked, not lost)",
            ),
        ] {
            if n > 0 {
                violations.push(format!("{n} {what}"));
            }
        }
        if !violations.is_empty() {
            self.report.failed = Some(format!("SOAK FAILED: {}", violations.join("; ")));
        }
        soak.violations = violations;
        self.report.soak = Some(soak);
        Ok(())
    }

    /// Who is in which group, who reads slowly, who floods: flooders are
    /// the first users of the first pairs, slow readers the second users of
    /// the first pairs, so the flooders' partners read slowly first.
    fn soak_plan(&self) -> SoakPlan {
        let s = &self.config.soak;
        let mut groups = HashMap::new();
        for g in &self.setup.groups {
            let Some(gid) = g.gid else { continue };
            for &m in &g.members {
                groups.insert(m, (gid, g.members.clone()));
            }
        }
        let flooders: HashSet<usize> = (0..s.flooders).map(|k| 2 * k).collect();
        let slow: HashSet<usize> = (0..s.slow_readers).map(|k| 2 * k + 1).collect();
        SoakPlan {
            groups,
            group_share: s.group_share,
            slow,
            slow_pause: s.slow_pause,
            flooders,
            flood_window: s.flood_window,
            flood_gap: Duration::from_secs_f64(1.0 / s.flood_rate),
            wrong_password: s.wrong_password,
        }
    }

    /// Every user logs in once more on a new connection; errno 2, still
    /// after two seconds of retries, means the server counts the account
    /// online.
    fn final_logins(
        &mut self,
        soak: &mut SoakReport,
        violations: &mut Vec<String>,
    ) -> Result<(), BenchError> {
        let connected = self.connect()?;
        let logged_in = self.login()?;
        soak.final_logins = logged_in.ok;
        for (kind, n) in connected.errors.iter().chain(&logged_in.errors) {
            if kind.contains("errno 2 (") {
                soak.stuck_online += n;
            }
            *self
                .report
                .errors
                .entry(format!("final {kind}"))
                .or_insert(0) += n;
        }
        let users = self.setup.accounts.len() as u64;
        let refused = users.saturating_sub(logged_in.ok + soak.stuck_online);
        if refused > 0 {
            violations.push(format!("{refused} final logins failed (not errno 2)"));
        }
        Ok(())
    }

    fn judge_memory(&self, monitor: &Monitor, soak: &mut SoakReport, violations: &mut Vec<String>) {
        let s = &self.config.soak;
        soak.rss_kib = monitor.samples.iter().map(|m| (m.at, m.kib)).collect();
        let verdict = rss_verdict(&monitor.samples, s.warmup.as_secs_f64(), s.rss_tolerance);
        soak.rss_flat = verdict.flat;
        soak.rss_details = verdict.details;
        if verdict.flat == Some(false) {
            violations.push(format!(
                "server memory grew more than {}% (see rss)",
                s.rss_tolerance
            ));
        }
    }

    fn judge_restarts(
        &self,
        monitor: &Monitor,
        soak: &mut SoakReport,
        violations: &mut Vec<String>,
    ) {
        soak.restarts = monitor.restarts.len() as u64;
        soak.restart_down_ms_max = monitor
            .restarts
            .iter()
            .map(|r| r.down_ms)
            .max()
            .unwrap_or(0);
        if let Some(why) = &monitor.failure {
            violations.push(why.clone());
        }
        let every = self.config.soak.restart_every;
        if !every.is_zero() && self.config.send_time() > every && soak.restarts == 0 {
            violations.push("no restart happened".into());
        }
    }
}
