//! The `storm` scenario: `--users` log in, then all drop and reconnect at
//! once and log in again, by resume token (`--tokens`) or by password,
//! while `--chatters` other users chat; see [`crate::phases::storm`].
//!
//! Users `0..users` storm; users `users..` are the chatters, in pairs
//! (each sends to its partner). The report: `elapsed_secs` from the drop
//! until the last storm user was logged in again, `ops`/`op_failures` the
//! logins again, `latency_us` each one's reconnect-to-ack time, and
//! `sent`/`acked`/`ack_failed`/`ack_latency_us` the chatters' messages.

use super::{source_address, Runner};
use crate::phases::storm::{Chatter, StormPhase, StormUser};
use crate::phases::Phase;
use crate::worker::worker_of;
use crate::{proto, BenchError};
use std::time::Instant;

impl Runner<'_> {
    /// Keeps the resume token of each login ack of the setup's login.
    pub(super) fn keep_tokens(&mut self, replies: &[(usize, usize, serde_json::Value)]) {
        for (user, _, reply) in replies {
            if let Some(token) = reply.get("token").and_then(serde_json::Value::as_str) {
                self.tokens.insert(*user, token.to_owned());
            }
        }
    }

    /// The measured phase: the storm, and its report.
    pub(super) fn storm(&mut self) -> Result<(), BenchError> {
        let config = self.config;
        let storm_users = config.users.min(self.setup.accounts.len());
        let mut users: Vec<Vec<StormUser>> = (0..self.threads).map(|_| Vec::new()).collect();
        let mut chatters: Vec<Vec<Chatter>> = (0..self.threads).map(|_| Vec::new()).collect();
        let per_source = config.per_source.max(1);
        for user in 0..storm_users {
            let account = &self.setup.accounts[user];
            let uid = account
                .uid
                .ok_or_else(|| BenchError::Config(format!("user {user} has no uid")))?;
            let login = match (config.tokens, self.tokens.get(&user)) {
                (true, Some(token)) => proto::login_token(token),
                (true, None) => {
                    return Err(BenchError::Config(format!(
                        "--tokens: the login ack of user {user} carried no token \
                         (a server without resume tokens?)"
                    )))
                }
                (false, _) => proto::login(uid, &self.setup.password),
            };
            let addr = config.addrs[user % config.addrs.len()];
            users[worker_of(user, self.threads)].push(StormUser {
                user,
                addr,
                source: source_address(addr, user / per_source),
                login,
            });
        }
        let accounts = &self.setup.accounts;
        for pair in (storm_users..accounts.len())
            .collect::<Vec<_>>()
            .chunks_exact(2)
        {
            for (me, other) in [(pair[0], pair[1]), (pair[1], pair[0])] {
                let (Some(uid), Some(to)) = (accounts[me].uid, accounts[other].uid) else {
                    continue;
                };
                chatters[worker_of(me, self.threads)].push(Chatter {
                    user: me,
                    uid,
                    name_json: proto::quote(&accounts[me].name),
                    to,
                });
            }
        }
        let deadline = self.deadline();
        let parts = users
            .into_iter()
            .zip(chatters)
            .map(|(u, c)| Box::new(StormPhase::new(u, c, deadline)) as Box<dyn Phase>)
            .collect();
        let started = Instant::now();
        let outcome = self.run_phase("storm", parts)?;
        let end = outcome
            .last_arrival
            .unwrap_or_else(Instant::now)
            .max(started);
        let r = &mut self.report;
        r.elapsed_secs = (end - started).as_secs_f64();
        r.ops = Some(outcome.ok);
        r.op_failures = Some(outcome.failed);
        r.latency_us = outcome.latency.summary();
        if config.chatters > 0 {
            r.sent = Some(outcome.acked + outcome.ack_failed);
            r.acked = Some(outcome.acked);
            r.ack_failed = Some(outcome.ack_failed);
            r.ack_latency_us = outcome.ack_latency.summary();
        }
        self.check("storm", &outcome, false);
        Ok(())
    }
}
