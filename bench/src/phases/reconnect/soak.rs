//! What the `soak` scenario adds to the reconnect phase.
//!
//! - **Groups.** Every user is in one group of users served by the same
//!   worker (so all books of a group stay on one thread) and sends
//!   `group_share` of its messages there; each member's inbox owes it the
//!   other members' acked group messages.
//! - **Slow readers** stop reading for `slow_pause`, read for as long, and
//!   so on: the server's queue towards them grows, and past its high-water
//!   mark the server closes them (what they missed stays in the log).
//! - **Flooders** send up to `1 / flood_gap` messages a second, with
//!   `flood_window` awaiting their SEND_ACK, and catch up on a whole window
//!   of gaps after a pause (a burst); refusals (errno 12) are expected and
//!   not failures.
//! - **Wrong passwords.** The first login after a drop is, with
//!   probability `wrong_password`, tried with a wrong password; it must be
//!   refused, then the right one follows.
//! - **The final catch-up.** Once sending has stopped and every SEND_ACK is
//!   in, every user asks CONVS once more and syncs each conversation up to
//!   its `last_seq`; a conversation not held contiguously up to there has
//!   gaps. A user whose connection breaks meanwhile comes back and starts
//!   over. At the end every connection is reset, without a logout, so that
//!   the runner can check that the server let everybody go.

use super::{ReconnectPhase, State, Verify};
use crate::proto;
use crate::worker::Io;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// The `soak` additions the runner hands the phase.
#[derive(Debug, Default)]
pub(crate) struct SoakPlan {
    /// Each user's group: its gid and all its members (user indices).
    pub groups: HashMap<usize, (i64, Vec<usize>)>,
    /// Share of messages that go to the group.
    pub group_share: f64,
    /// The users that read slowly.
    pub slow: HashSet<usize>,
    /// How long a slow reader stops reading, each time.
    pub slow_pause: Duration,
    /// The users that flood.
    pub flooders: HashSet<usize>,
    /// A flooder's window.
    pub flood_window: u64,
    /// Least time between two messages of a flooder.
    pub flood_gap: Duration,
    /// Share of first logins after a drop tried with a wrong password.
    pub wrong_password: f64,
}

impl ReconnectPhase {
    /// Gives each user its group, as person indices of the other members.
    pub(super) fn join_groups(&mut self, _io: &mut Io) {
        let plan = std::sync::Arc::clone(&self.plan);
        let Some(soak) = plan.soak.as_ref() else {
            return;
        };
        for i in 0..self.people.len() {
            let user = self.people[i].user;
            let Some((gid, members)) = soak.groups.get(&user) else {
                continue;
            };
            let others: Vec<usize> = members
                .iter()
                .filter(|&&m| m != user)
                .filter_map(|m| self.by_user.get(m).copied())
                .collect();
            if others.len() + 1 < members.len() {
                self.outcome
                    .error("soak: a group member is on another worker");
            }
            self.people[i].group = Some((*gid, others));
        }
    }

    /// Pauses and resumes the slow readers; returns when next to call.
    pub(super) fn soak_tick(&mut self, io: &mut Io) -> Instant {
        let pause = self
            .plan
            .soak
            .as_ref()
            .map_or(Duration::ZERO, |s| s.slow_pause);
        let sending = io.now < self.plan.send_until;
        let mut next = self.plan.deadline;
        for i in 0..self.people.len() {
            let p = &mut self.people[i];
            if !p.slow || pause.is_zero() {
                continue;
            }
            if p.state != State::Online && !p.paused {
                p.pause_at = None;
                continue;
            }
            if !sending {
                if p.paused {
                    p.paused = false;
                    io.resume_reading(p.slot);
                }
                continue;
            }
            let at = *p.pause_at.get_or_insert(io.now + pause);
            if at > io.now {
                next = next.min(at);
                continue;
            }
            p.paused = !p.paused;
            p.pause_at = Some(io.now + pause);
            next = next.min(io.now + pause);
            if p.paused {
                io.pause_reading(p.slot);
                self.count("pause reading");
            } else {
                io.resume_reading(p.slot);
            }
        }
        next
    }

    /// Sending is over and every SEND_ACK is in: the final catch-up of
    /// everyone online (the others start it when they are back).
    pub(super) fn start_verifying(&mut self, io: &mut Io) {
        self.verifying = true;
        for i in 0..self.people.len() {
            if self.people[i].state == State::Online {
                self.verify(io, i);
            }
        }
    }

    /// Starts `i`'s final catch-up: CONVS, whose answer records the
    /// `last_seq`s to reach.
    pub(super) fn verify(&mut self, io: &mut Io, i: usize) {
        let p = &mut self.people[i];
        if p.paused {
            p.paused = false;
            io.resume_reading(p.slot);
        }
        p.state = State::CatchingUp;
        io.send(p.slot, &proto::convs());
    }

    /// `i`'s final catch-up is done: counts the seqs it could not get.
    pub(super) fn verified(&mut self, i: usize) {
        let p = &mut self.people[i];
        p.state = State::Verified;
        p.verify = Verify::No;
        let mut gaps = 0;
        for (conv, last) in &p.last_seqs {
            gaps += last.saturating_sub(p.inbox.held(conv));
        }
        self.outcome.reconnect.gaps += gaps;
        self.count("verified");
    }

    /// Resets every open connection (no logout): the server must see each
    /// user go.
    pub(super) fn leave_all(&mut self, io: &mut Io) {
        for p in &self.people {
            if matches!(p.state, State::Verified | State::Online) {
                io.reset(p.slot);
            }
        }
    }
}
