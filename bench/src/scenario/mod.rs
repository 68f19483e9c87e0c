//! Running a scenario: setup phases, the measured phase, the report.
//!
//! Every scenario follows the same path, skipping what it does not need:
//!
//! 1. **connect** every user (measured for `connect`);
//! 2. **register** the accounts, unless `--reuse` (measured for `register`);
//! 3. **log in** (measured for `login`);
//! 4. **groups**: the first member creates each group, the others join;
//! 5. `--setup-only` saves the setup here and stops;
//! 6. the measured phase: hold (`connect`), traffic (`chat`, `group`), the
//!    mix (`mixed`) or fill-then-sync (`sync`), with the server's CPU time
//!    and memory read around it; or drops and catch-ups (`reconnect`), or
//!    all of that under a server that is killed and restarted (`soak`,
//!    which starts the server before step 1: see [`soak`]); or everyone
//!    dropping and logging in again at once (`storm`: see [`storm`]).
//!
//! A setup step that fails ends the run with a report that says why
//! (`connect` only fails when no connection at all succeeded).

mod log;
mod soak;
mod storm;
mod traffic;

use crate::config::{Config, Scenario};
use crate::conn::Framing;
use crate::phases::connect::{ConnectPhase, ConnectSpec};
use crate::phases::hold::HoldPhase;
use crate::phases::requests::{RequestPhase, Step};
use crate::phases::{Outcome, Phase};
use crate::pool::Pool;
use crate::report::Report;
use crate::setup::{self, Setup};
use crate::worker::worker_of;
use crate::{sys, BenchError};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Runs `config` and reports; see [`crate::run`].
pub(crate) fn run(config: &Config) -> Result<Report, BenchError> {
    config.validate().map_err(BenchError::Config)?;
    if config.scenario == Scenario::Soak {
        return soak::run(config);
    }
    run_with(config, None)
}

/// The TLS settings of a `--tls` run (reads `--ca`).
fn tls(config: &Config) -> Result<Option<crate::tls::Tls>, BenchError> {
    if !config.tls {
        return Ok(None);
    }
    let Some(&addr) = config.addrs.first() else {
        return Err(BenchError::Config("--tls needs an address".into()));
    };
    crate::tls::Tls::new(config.ca.as_deref(), config.server_name.as_deref(), addr)
        .map(Some)
        .map_err(|e| BenchError::Config(format!("--tls: {e}")))
}

/// Runs `config`; `soak` is the server a `soak` run started.
fn run_with(config: &Config, soak: Option<soak::SoakServer>) -> Result<Report, BenchError> {
    let n = config.user_count();
    sys::raise_nofile_limit((n * config.sessions.max(1)) as u64 + 256);
    let (setup, reused) = initial_setup(config, n)?;
    let setup = sessions_of(setup, config.sessions);
    let framing = match (config.legacy, config.websocket) {
        (true, _) => Framing::Bare,
        (false, true) => Framing::WebSocket,
        (false, false) => Framing::Lines,
    };
    let pool = Pool::new(
        config.threads,
        framing,
        config.progress,
        tls(config)?,
        config.timeline.as_deref(),
    )?;
    let mut runner = Runner {
        config,
        threads: pool.size(),
        pool,
        report: Report {
            scenario: config.scenario.name().to_string(),
            users: n,
            legacy: config.legacy,
            prefix: setup.prefix.clone(),
            ..Report::default()
        },
        setup,
        started: Instant::now(),
        soak,
        tokens: HashMap::new(),
    };
    runner.report.threads = runner.threads;
    runner.run_all(reused)?;
    Ok(runner.report)
}

/// The accounts and groups to use: loaded with `--reuse`, else new.
fn initial_setup(config: &Config, n: usize) -> Result<(Setup, bool), BenchError> {
    if let Some(path) = &config.reuse {
        if config.scenario == Scenario::Register {
            return Err(BenchError::Config(
                "--reuse does not apply to register".into(),
            ));
        }
        let mut setup = Setup::load(path).map_err(BenchError::Config)?;
        if setup.accounts.len() < n || setup.uids().is_err() {
            return Err(BenchError::Config(format!(
                "{} holds {} registered users, the run needs {n}",
                path.display(),
                setup.accounts.len()
            )));
        }
        setup.accounts.truncate(n);
        for group in &mut setup.groups {
            group.members.retain(|&m| m < n);
        }
        setup
            .groups
            .retain(|g| g.members.len() >= 2 && g.gid.is_some());
        return Ok((setup, true));
    }
    let prefix = config.prefix.clone().unwrap_or_else(setup::fresh_prefix);
    let mut setup = Setup::new(&prefix, &config.password, n);
    match config.scenario {
        Scenario::Group => setup.add_groups(n, n),
        Scenario::Mixed => setup.add_groups(n, config.members),
        Scenario::Soak => soak::add_groups(&mut setup, n, config.members, config.threads.max(1)),
        _ => {}
    }
    Ok((setup, false))
}

/// With `k` sessions per user, every account `a` becomes the connections
/// (bench "users") `a·k .. a·k + k`, all logging in as `a`, and each group
/// lists every session of its members (in order, so that a member's
/// first session comes first). Only first sessions register, create and
/// join ([`Runner::is_first_session`]). `k = 1` changes nothing.
fn sessions_of(mut setup: Setup, k: usize) -> Setup {
    if k <= 1 {
        return setup;
    }
    setup.accounts = (setup.accounts.iter())
        .flat_map(|a| std::iter::repeat_n(a.clone(), k))
        .collect();
    for g in &mut setup.groups {
        g.members = g.members.iter().flat_map(|&m| m * k..m * k + k).collect();
    }
    setup
}

struct Runner<'a> {
    config: &'a Config,
    pool: Pool,
    threads: usize,
    setup: Setup,
    report: Report,
    started: Instant,
    /// `soak`: the server the run started, until its phase takes it.
    soak: Option<soak::SoakServer>,
    /// `storm`: the resume token of each user's login ack, by user.
    tokens: HashMap<usize, String>,
}

impl Runner<'_> {
    fn run_all(&mut self, reused: bool) -> Result<(), BenchError> {
        let scenario = self.config.scenario;
        let accounts = scenario != Scenario::Connect || self.config.login;
        let pid = self.config.server_pid;
        self.report.server_rss_kib_before = pid.and_then(sys::rss_kib);
        let connected = self.connect()?;
        if !self.check("connect", &connected, scenario == Scenario::Connect) {
            return Ok(());
        }
        if accounts && !reused {
            let registered = self.register()?;
            if !self.check("register", &registered, scenario == Scenario::Connect) {
                return Ok(());
            }
        }
        if accounts && scenario != Scenario::Register {
            let logged_in = self.login()?;
            if !self.check("login", &logged_in, scenario == Scenario::Connect) {
                return Ok(());
            }
        }
        if !reused && !self.setup.groups.is_empty() && !self.groups()? {
            return Ok(());
        }
        if self.config.setup_only {
            return self.save_setup();
        }
        if scenario == Scenario::Soak {
            self.report.setup_secs = self.started.elapsed().as_secs_f64();
            self.soak()?;
        } else if scenario == Scenario::Storm {
            self.report.setup_secs = self.started.elapsed().as_secs_f64();
            let cpu_before = pid.and_then(sys::cpu_seconds);
            self.storm()?;
            let cpu_after = pid.and_then(sys::cpu_seconds);
            self.report.server_cpu_secs = cpu_after.zip(cpu_before).map(|(a, b)| a - b);
        } else if scenario == Scenario::Reconnect {
            self.report.setup_secs = self.started.elapsed().as_secs_f64();
            let cpu_before = pid.and_then(sys::cpu_seconds);
            self.reconnect()?;
            let cpu_after = pid.and_then(sys::cpu_seconds);
            self.report.server_cpu_secs = cpu_after.zip(cpu_before).map(|(a, b)| a - b);
        } else if scenario == Scenario::Sync {
            self.report.setup_secs = self.started.elapsed().as_secs_f64();
            if !self.fill()? {
                return Ok(());
            }
            let cpu_before = pid.and_then(sys::cpu_seconds);
            self.sync()?;
            let cpu_after = pid.and_then(sys::cpu_seconds);
            self.report.server_cpu_secs = cpu_after.zip(cpu_before).map(|(a, b)| a - b);
        } else if matches!(scenario, Scenario::Chat | Scenario::Group | Scenario::Mixed) {
            self.report.setup_secs = self.started.elapsed().as_secs_f64();
            let cpu_before = pid.and_then(sys::cpu_seconds);
            let started = Instant::now();
            let outcome = self.traffic()?;
            self.report_traffic(outcome, started);
            let cpu_after = pid.and_then(sys::cpu_seconds);
            self.report.server_cpu_secs = cpu_after.zip(cpu_before).map(|(a, b)| a - b);
        } else if scenario == Scenario::Connect {
            let until = Instant::now() + self.config.hold;
            let parts = (0..self.threads)
                .map(|_| Box::new(HoldPhase::new(until)) as Box<dyn Phase>)
                .collect();
            let held = self.run_phase("hold", parts)?;
            self.report.connected = Some(held.ok);
            self.report.closed += held.closed;
            self.merge_errors(&held);
            // Lenient about some failures, but a run that ends holding no
            // connection at all (the server died) has failed.
            if held.ok == 0 && self.config.users > 0 {
                self.report.failed = Some(format!(
                    "hold: no connection left open ({} closed by the server)",
                    held.closed
                ));
            }
        }
        self.report.server_rss_kib_after = pid.and_then(sys::rss_kib);
        Ok(())
    }

    /// Runs `parts[w]` on worker `w` and merges the outcomes.
    fn run_phase(&self, label: &str, parts: Vec<Box<dyn Phase>>) -> Result<Outcome, BenchError> {
        Ok(self.pool.run(label, parts)?)
    }

    /// Splits per-user items among the workers that serve those users.
    fn by_worker<T>(&self, items: impl IntoIterator<Item = (usize, T)>) -> Vec<Vec<(usize, T)>> {
        let mut parts: Vec<Vec<(usize, T)>> = (0..self.threads).map(|_| Vec::new()).collect();
        for (user, item) in items {
            parts[worker_of(user, self.threads)].push((user, item));
        }
        parts
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.config.timeout
    }

    /// Measured for the scenario's own phase, otherwise only checked.
    fn measured(&mut self, name: &str, outcome: &Outcome, started: Instant) {
        if self.config.scenario.name() == name {
            self.report.elapsed_secs = started.elapsed().as_secs_f64();
            self.report.ops = Some(outcome.ok);
            self.report.op_failures = Some(outcome.failed);
            self.report.latency_us = outcome.latency.summary();
            self.report.setup_secs = (started - self.started).as_secs_f64();
        }
    }

    /// Records a setup phase's errors; false (and the run failed) when it
    /// failed, or, with `lenient`, when nothing at all succeeded.
    fn check(&mut self, what: &str, outcome: &Outcome, lenient: bool) -> bool {
        self.merge_errors(outcome);
        self.report.closed += outcome.closed;
        let failed = if lenient {
            outcome.ok == 0 && outcome.failed > 0
        } else {
            outcome.failed > 0
        };
        if failed {
            self.report.failed = Some(format!(
                "{what}: {} failed, {} succeeded",
                outcome.failed, outcome.ok
            ));
        }
        !failed
    }

    fn merge_errors(&mut self, outcome: &Outcome) {
        for (kind, n) in &outcome.errors {
            *self.report.errors.entry(kind.clone()).or_insert(0) += n;
        }
    }

    fn connect(&mut self) -> Result<Outcome, BenchError> {
        let addrs = &self.config.addrs;
        let per_source = self.config.per_source.max(1);
        let specs = (0..self.setup.accounts.len()).map(|user| {
            let addr = addrs[user % addrs.len()];
            let spec = ConnectSpec {
                user,
                addr,
                source: source_address(addr, user / per_source),
            };
            (user, spec)
        });
        let per_worker = self
            .config
            .connect_concurrency
            .div_ceil(self.threads)
            .max(1);
        let deadline = self.deadline();
        let parts = self
            .by_worker(specs)
            .into_iter()
            .map(|mine| {
                let specs = mine.into_iter().map(|(_, spec)| spec).collect();
                Box::new(ConnectPhase::new(specs, per_worker, deadline)) as Box<dyn Phase>
            })
            .collect();
        let started = Instant::now();
        let outcome = self.run_phase("connect", parts)?;
        self.report.connected = Some(outcome.ok);
        self.measured("connect", &outcome, started);
        Ok(outcome)
    }

    /// Runs one script per user and returns the outcome.
    fn scripts(
        &mut self,
        label: &str,
        scripts: Vec<(usize, Vec<Step>)>,
    ) -> Result<Outcome, BenchError> {
        let deadline = self.deadline();
        let parts = self
            .by_worker(scripts)
            .into_iter()
            .map(|mine| Box::new(RequestPhase::new(mine, deadline)) as Box<dyn Phase>)
            .collect();
        let started = Instant::now();
        let outcome = self.run_phase(label, parts)?;
        self.measured(label, &outcome, started);
        Ok(outcome)
    }

    fn register(&mut self) -> Result<Outcome, BenchError> {
        let password = self.setup.password.clone();
        let scripts = self
            .setup
            .accounts
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_first_session(*i))
            .map(|(i, a)| (i, vec![setup::register_step(&a.name, &password)]))
            .collect();
        let outcome = self.scripts("register", scripts)?;
        let k = self.config.sessions.max(1);
        for (user, _, reply) in &outcome.replies {
            let uid = reply.get("uid").and_then(serde_json::Value::as_i64);
            for session in *user..(*user + k).min(self.setup.accounts.len()) {
                self.setup.accounts[session].uid = uid;
            }
        }
        Ok(outcome)
    }

    /// Whether connection `user` is its account's first session (every
    /// connection is, with one session per user).
    fn is_first_session(&self, user: usize) -> bool {
        user.is_multiple_of(self.config.sessions.max(1))
    }

    fn login(&mut self) -> Result<Outcome, BenchError> {
        let password = self.setup.password.clone();
        // `storm` keeps the acks for their resume tokens.
        let keep = self.config.scenario == Scenario::Storm;
        let scripts = self
            .setup
            .accounts
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((i, vec![setup::login_step(a.uid?, &password, keep)])))
            .collect();
        let mut outcome = self.scripts("login", scripts)?;
        self.keep_tokens(&outcome.replies);
        outcome.replies.clear();
        Ok(outcome)
    }

    /// Creates the groups, then joins every other member; false on failure.
    fn groups(&mut self) -> Result<bool, BenchError> {
        let legacy = self.config.legacy.then_some(self.config.legacy_gap);
        let uid = |s: &Setup, user: usize| s.accounts[user].uid.unwrap_or_default();
        let creators: HashMap<usize, usize> = self
            .setup
            .groups
            .iter()
            .enumerate()
            .map(|(k, g)| (g.members[0], k))
            .collect();
        let scripts = creators
            .iter()
            .map(|(&user, &k)| {
                let name = &self.setup.groups[k].name;
                (
                    user,
                    setup::create_group_steps(uid(&self.setup, user), name, legacy),
                )
            })
            .collect();
        let created = self.scripts("create groups", scripts)?;
        for (user, _, reply) in &created.replies {
            if let Some(&k) = creators.get(user) {
                let gid = setup::gid_in_reply(reply, &self.setup.groups[k].name);
                self.setup.groups[k].gid = gid;
            }
        }
        if !self.check("create groups", &created, false) {
            return Ok(false);
        }
        if let Some(g) = self.setup.groups.iter().find(|g| g.gid.is_none()) {
            self.report.failed = Some(format!("create groups: no gid for {}", g.name));
            return Ok(false);
        }
        let mut joins: HashMap<usize, Vec<Step>> = HashMap::new();
        for g in &self.setup.groups {
            let gid = g.gid.unwrap_or_default();
            for &user in g.members[1..].iter().filter(|&&u| self.is_first_session(u)) {
                let steps = setup::join_group_steps(uid(&self.setup, user), gid, legacy);
                joins.entry(user).or_default().extend(steps);
            }
        }
        let joined = self.scripts("join groups", joins.into_iter().collect())?;
        Ok(self.check("join groups", &joined, false))
    }

    fn save_setup(&mut self) -> Result<(), BenchError> {
        self.setup.save(&self.config.state_file)?;
        self.report.scenario = "setup".into();
        self.report.state_file = Some(self.config.state_file.display().to_string());
        self.report.setup_secs = self.started.elapsed().as_secs_f64();
        Ok(())
    }
}

/// The local address for the `block`-th group of connections to `addr`:
/// the default for the first, then 127.0.0.2, 127.0.0.3, … when the server
/// is on loopback (each source address has its own ephemeral ports).
fn source_address(addr: SocketAddr, block: usize) -> Option<IpAddr> {
    let loopback = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    (loopback && block > 0 && block < 254)
        .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + block as u8)))
}
