//! The steps a run is made of, each executed by every worker at once.
//!
//! A run is a sequence of phases: connect, register, log in, create groups,
//! then the measured traffic. The main thread hands each worker a [`Phase`]
//! for its share of the users, waits for all of them to [`Phase::finish`],
//! merges their [`Outcome`]s and starts the next phase. Connections persist
//! from one phase to the next, so the users who registered are the ones who
//! log in and then chat.
//!
//! | phase | module | what it does per user |
//! |---|---|---|
//! | connect | [`connect`] | opens the connection, at most so many in progress |
//! | requests | [`requests`] | runs a script of requests, one in flight |
//! | hold | [`hold`] | stays idle, noting connections the server closes |
//! | traffic | [`traffic`] | chat or group chat with a window of messages in flight |
//! | mixed | [`mixed`] | a paced mix of chat, group chat, friends and re-login |
//! | fill, sync | [`sync`] | writes the log with cids; reads it back with SYNC |
//! | reconnect | [`reconnect`] | chat with cids while users drop, come back and catch up ([`inbox`]) |
//! | storm | [`storm`] | drops, reconnects and logs in again (token or password) all at once, while chatters chat |
//! | soak | [`reconnect`] with its `soak` additions | the same with groups, slow readers, flooders, wrong passwords and a final catch-up, while the server is killed and restarted |

pub(crate) mod acks;
pub(crate) mod connect;
pub(crate) mod delivery;
pub(crate) mod hold;
pub(crate) mod inbox;
pub(crate) mod mixed;
pub(crate) mod reconnect;
pub(crate) mod requests;
pub(crate) mod storm;
pub(crate) mod sync;
pub(crate) mod traffic;

use crate::histogram::Histogram;
use crate::ledger::Ledger;
use crate::worker::Io;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// errno 2 in a login ack: the account is logged in already. Right after a
/// connection closed (a storm's drop, or the run before a `--reuse` run)
/// this usually means the server has not yet seen that close.
pub(crate) const ALREADY_ONLINE: i64 = 2;

/// Such a login is sent again after this pause, at most
/// [`LOGIN_MAX_TRIES`] times in all (two seconds), before it counts as
/// failed.
pub(crate) const LOGIN_RETRY_AFTER: Duration = Duration::from_millis(50);
pub(crate) const LOGIN_MAX_TRIES: u32 = 40;

/// One worker's part of one phase. Every method runs on the worker's thread.
pub(crate) trait Phase: Send {
    /// Called once when the worker receives the phase.
    fn start(&mut self, io: &mut Io);

    /// A connect begun with [`Io::connect`] has completed.
    fn on_connected(&mut self, _io: &mut Io, _slot: usize) {}

    /// A complete JSON value arrived on `slot`.
    fn on_message(&mut self, io: &mut Io, slot: usize, msg: Value);

    /// The connection on `slot` failed or was closed; it is gone already.
    fn on_closed(&mut self, io: &mut Io, slot: usize, reason: String);

    /// Recipients (on this worker or another) received messages from these
    /// local senders, one entry per delivery.
    fn on_feedback(&mut self, _io: &mut Io, _senders: &[usize]) {}

    /// Called after every batch of events. Returns when the phase next wants
    /// to be called even if nothing happens (the worker caps the wait).
    fn tick(&mut self, io: &mut Io) -> Option<Instant>;

    /// Whether this worker's part is over.
    fn is_done(&self, io: &Io) -> bool;

    /// Ends the phase and hands back what it counted.
    fn finish(self: Box<Self>, io: &mut Io) -> Outcome;
}

/// What one worker counted in one phase; the run merges them.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Operations that succeeded: connects, answered requests.
    pub ok: u64,
    /// Operations that failed or never completed.
    pub failed: u64,
    /// Failures and error replies by kind, e.g. `"login: errno 1 (…)"`.
    pub errors: BTreeMap<String, u64>,
    /// Request latency, or one-to-one delivery latency, in microseconds.
    pub latency: Histogram,
    /// Group fan-out latency in microseconds.
    pub group_latency: Histogram,
    /// Replies a script asked to keep: (user, step, reply).
    pub replies: Vec<(usize, usize, Value)>,
    /// Sent counts and arrival trackers.
    pub ledger: Ledger,
    /// Messages that arrived inside a login ack's `offlinemsgs`.
    pub offline_delivered: u64,
    /// Chat messages from another run (left over as offline messages).
    pub stale: u64,
    /// Connections the server closed.
    pub closed: u64,
    /// When the last counted arrival happened.
    pub last_arrival: Option<Instant>,
    /// Actions of the mixed scenario by name.
    pub actions: BTreeMap<&'static str, u64>,
    /// `--cid`: SEND_ACKs that said stored.
    pub acked: u64,
    /// `--cid`: SEND_ACKs that said refused.
    pub ack_failed: u64,
    /// `--cid`: send→SEND_ACK latency in microseconds.
    pub ack_latency: Histogram,
    /// `sync`: pages fetched.
    pub pages: u64,
    /// `sync`: messages fetched.
    pub fetched: u64,
    /// Log seqs that did not grow within a conversation (sync pages, or
    /// pushes on one connection in `reconnect`).
    pub seq_reordered: u64,
    /// `reconnect`: the receivers' books against the senders' acks.
    pub reconnect: ReconnectBooks,
    /// `mixed` (open loop): how late each action started after its
    /// scheduled moment, microseconds: the generator falling behind.
    pub send_lag: Histogram,
}

/// What the `reconnect` scenario's receivers found, summed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReconnectBooks {
    /// Messages acked to their senders: owed to the receivers.
    pub owed: u64,
    /// Distinct messages that arrived (live, offline or synced).
    pub delivered: u64,
    /// Acked and never arrived.
    pub lost: u64,
    /// Pushed (live or offline) although already received.
    pub duplicated: u64,
    /// Of the delivered, how many came by a catch-up SYNC.
    pub synced: u64,
    /// Fetched by a catch-up although already received (expected overlap).
    pub refetched: u64,
    /// `soak`: messages found at two seqs (stored twice).
    pub doubled: u64,
    /// `soak`: seqs below a conversation's `last_seq` that no final
    /// catch-up could fetch.
    pub gaps: u64,
    /// `soak`: logins with a wrong password that succeeded.
    pub wrong_password_accepted: u64,
    /// `soak`: users that never finished the final catch-up.
    pub unverified: u64,
    /// `soak`: acked messages owed to those users and not received before
    /// the end; neither lost nor delivered as far as the bench can tell.
    pub unchecked: u64,
}

impl ReconnectBooks {
    fn merge(&mut self, o: ReconnectBooks) {
        self.owed += o.owed;
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.synced += o.synced;
        self.refetched += o.refetched;
        self.doubled += o.doubled;
        self.gaps += o.gaps;
        self.wrong_password_accepted += o.wrong_password_accepted;
        self.unverified += o.unverified;
        self.unchecked += o.unchecked;
    }
}

impl Outcome {
    /// Counts one error of kind `kind`.
    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
    }

    /// Adds `other` into this outcome.
    pub fn merge(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.failed += other.failed;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
        self.latency.merge(&other.latency);
        self.group_latency.merge(&other.group_latency);
        self.replies.extend(other.replies);
        self.ledger.merge(other.ledger);
        self.offline_delivered += other.offline_delivered;
        self.stale += other.stale;
        self.closed += other.closed;
        self.last_arrival = self.last_arrival.max(other.last_arrival);
        for (name, n) in other.actions {
            *self.actions.entry(name).or_insert(0) += n;
        }
        self.acked += other.acked;
        self.ack_failed += other.ack_failed;
        self.ack_latency.merge(&other.ack_latency);
        self.pages += other.pages;
        self.fetched += other.fetched;
        self.seq_reordered += other.seq_reordered;
        self.reconnect.merge(other.reconnect);
        self.send_lag.merge(&other.send_lag);
    }
}
