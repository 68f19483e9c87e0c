//! The publisher thread: every Redis command of this node except the
//! subscription and the heartbeat, run in the order the node asked for them.
//!
//! ```text
//!  I/O threads ── send_to_user ──┐            ┌── PUBLISH node:X ⟨frame⟩ per node (cached routes)
//!  workers ── claim / is_online ─┼─► queue ──►│   EVALSHA route (misses) / claim / release / online
//!  I/O or workers ── release ────┘   (FIFO)   └── one write per tick of ≤ 512 calls
//! ```
//!
//! One thread and one FIFO queue (a crossbeam channel) give two orders for
//! free:
//!
//! * **per sender**: the messages one connection sends are queued by its one
//!   I/O thread in order, published in that order, and Redis delivers a
//!   channel's messages to its subscriber in publish order;
//! * **per user**: a `release` at logout is applied before the `claim` of
//!   the user's next login on this node, which was necessarily queued later.
//!
//! The thread drains whatever is queued (up to [`MAX_BATCH`]: one *tick*)
//! and sends it as one pipeline: one write, one round trip, however many
//! messages. Messages whose recipients the route cache knows become one
//! `PUBLISH` per destination node, the rest one `route` script each
//! (`publisher/tick.rs`). A caller of `is_online` waits for its own reply
//! only; a claim's answer is a callback ([`ClaimReply`]), run once every
//! node confirmed the claim's presence event, so a login waits on no
//! thread.
//!
//! # When Redis fails
//!
//! Without a connection every call is answered at once as if Redis said
//! nothing useful ([`Call::degrade`]): messages go to offline storage,
//! claims are `Unavailable`, nobody remote is online. Meanwhile the thread
//! reconnects with back-off; a new connection loads the scripts and
//! [syncs presence](super::presence) before anything else runs on it. When a
//! connection breaks in the middle of a batch, the calls whose replies never
//! came are degraded too: a message among them may have been published
//! *and* is stored offline — a possible duplicate, chosen over a possible
//! loss.
//!
//! # When the queue is full
//!
//! Messages are bounded in the queue (`ClusterConfig::max_queued_publishes`,
//! counted in `Shared::queued_publishes`): past it the handle degrades a
//! message at once instead of queueing it, and flags the overflow, which
//! this thread reports on the catch-up channel (at most once per
//! [`OVERFLOW_REPORT`]). The order per sender still holds for what
//! arrives: a later message that does get through finds a gap at the
//! recipient's cursor, which fills it from the log first.
//!
//! # When Redis returns
//!
//! Three things are settled on the new connection, before any queued call:
//!
//! * presence: the [sync](super::presence) claims the users who logged in
//!   meanwhile, releases those who left, and reports the users another
//!   live node holds; those are claimed again [`recheck_after`] later
//!   ([`Publisher::recheck`]), and a user still held elsewhere then loses
//!   their session here ([`LocalNode::lost_claim`](super::LocalNode::lost_claim));
//! * users claimed only now are caught up from the log
//!   ([`LocalNode::catch_up`](super::LocalNode::catch_up)): messages routed
//!   to them before found no holder;
//! * when messages could not be routed while the link was down, the
//!   publisher says so on the catch-up channel (`{prefix}:catchup`), and
//!   every other node catches its users up from the log. The recipients'
//!   nodes may not have noticed the outage at all (a Redis that hung
//!   without closing their connections), so they cannot be relied on to
//!   resubscribe.
//!
//! [`recheck_after`]: super::ClusterConfig

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use redis::{Cmd, Connection, RedisResult, Value};

use super::envelope::{self, Item};
use super::link::{self, Backoff, Health};
use super::presence;
use super::routes::{self, Nodes};
use super::scripts::Scripts;
use super::shared::{Counters, Shared};
use super::Claim;
pub(crate) use call::{Call, ClaimReply};
use tick::{Armed, Step, Tick};

mod call;
mod tick;

/// At most one log line per this interval about commands Redis refuses.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Most calls sent in one write.
pub(crate) const MAX_BATCH: usize = 512;

/// The shortest time between two reports of an overflowed queue.
const OVERFLOW_REPORT: Duration = Duration::from_secs(1);

/// A connection unused this long gets a `PING` before the next batch, so
/// that a Redis restarted meanwhile costs a reconnection, not a batch of
/// messages sent to offline storage.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// What the handle queues for the publisher thread.
pub(crate) enum Op {
    /// A Redis call.
    Call(Call),
    /// Re-sync presence (the heartbeat found this node's alive key gone).
    Resync,
    /// Leave: the last op ever queued. With `cleanup`, release this node's
    /// claims and delete its alive key first.
    Stop { cleanup: bool },
}

/// A working connection with the scripts loaded on it.
struct ScriptedConnection {
    con: Connection,
    scripts: Scripts,
    last_used: Instant,
}

/// The thread's state. See the [module docs](self).
pub(crate) struct Publisher {
    shared: Arc<Shared>,
    rx: Receiver<Op>,
    redis: Option<ScriptedConnection>,
    backoff: Backoff,
    /// When to try connecting again while there is no connection.
    next_attempt: Instant,
    health: Health,
    refused: Refusals,
    /// Messages were degraded (stored, not routed) because the link was
    /// down or broke: said on the catch-up channel once it works again.
    missed: bool,
    /// When an overflowed queue was last reported.
    overflow_reported: Option<Instant>,
    /// When an overflow not yet reported is due to be.
    overflow_at: Option<Instant>,
    /// Users here whom another live node held at the last sync: claimed
    /// again at `recheck_at`.
    contested: Vec<i64>,
    /// When to claim `contested` again; `None`: nothing to recheck.
    recheck_at: Option<Instant>,
    /// The earliest deadline of a group change's barrier.
    barrier_at: Option<Instant>,
}

/// Commands Redis refused (out of memory, read-only replica, ...): logged
/// at most once per [`REFUSAL_LOG_INTERVAL`] with a count, since under load
/// every batch would hit the same error.
#[derive(Default)]
struct Refusals {
    last_log: Option<Instant>,
    unlogged: u64,
}

impl Refusals {
    fn note(&mut self, node_id: &str, what: &str) {
        self.unlogged += 1;
        if self
            .last_log
            .is_some_and(|t| t.elapsed() < REFUSAL_LOG_INTERVAL)
        {
            return;
        }
        log::warn!(
            "cluster: node {node_id}: Redis refused commands in {} batch(es), e.g. {what}; \
             their messages went to offline storage",
            self.unlogged
        );
        self.last_log = Some(Instant::now());
        self.unlogged = 0;
    }
}

impl Publisher {
    /// A publisher that will connect when [`run`](Self::run) starts.
    pub(crate) fn new(shared: Arc<Shared>, rx: Receiver<Op>) -> Publisher {
        let backoff = Backoff::new(shared.cfg.reconnect_min, shared.cfg.reconnect_max);
        let health = Health::new(shared.keys.node_id(), "publisher");
        Publisher {
            shared,
            rx,
            redis: None,
            backoff,
            next_attempt: Instant::now(),
            health,
            refused: Refusals::default(),
            missed: false,
            overflow_reported: None,
            overflow_at: None,
            contested: Vec::new(),
            recheck_at: None,
            barrier_at: None,
        }
    }

    /// The thread's body: until `Stop` (or `abort`).
    pub(crate) fn run(mut self) {
        loop {
            if self.shared.aborted() {
                return;
            }
            if self.redis.is_none() && Instant::now() >= self.next_attempt {
                self.connect();
            }
            if self.recheck_at.is_some_and(|t| Instant::now() >= t) {
                self.recheck();
            }
            self.barrier_at = self.shared.barriers.expire(Instant::now());
            self.after_overflow();
            let first = match self.next_op() {
                Ok(op) => op,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    self.leave(); // the handle vanished without a Stop
                    return;
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let publishes = batch
                .iter()
                .filter(|op| matches!(op, Op::Call(c) if c.is_publish()))
                .count();
            self.shared
                .queued_publishes
                .fetch_sub(publishes, Ordering::AcqRel);
            if self.shared.aborted() || self.execute(batch).is_break() {
                return;
            }
            self.after_overflow();
        }
    }

    /// Reports missed routes once the queue overflowed (the handle refused
    /// publishes, see `Cluster::send_to_user`): the other nodes then catch
    /// their users up from the log. At most once per [`OVERFLOW_REPORT`],
    /// since under an overload that lasts every report costs each node a
    /// reconciliation of all its users.
    fn after_overflow(&mut self) {
        self.overflow_at = None;
        if !self.shared.overflowed.load(Ordering::Acquire) {
            return;
        }
        if let Some(t) = self.overflow_reported {
            if t.elapsed() < OVERFLOW_REPORT {
                // Not yet: `next_op` wakes for it.
                self.overflow_at = Some(t + OVERFLOW_REPORT);
                return;
            }
        }
        self.shared.overflowed.store(false, Ordering::Release);
        self.missed = true;
        if self.redis.is_some() {
            self.overflow_reported = Some(Instant::now());
            self.report_missed();
        }
    }

    /// Waits for the next op; only until the next connection attempt is
    /// due (without a connection) or the next recheck.
    fn next_op(&self) -> Result<Op, RecvTimeoutError> {
        let attempt = self.redis.is_none().then_some(self.next_attempt);
        let until = [attempt, self.recheck_at, self.barrier_at, self.overflow_at]
            .into_iter()
            .flatten()
            .min();
        match until {
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(t) => self
                .rx
                .recv_timeout(t.saturating_duration_since(Instant::now())),
        }
    }

    /// Runs a batch in order: calls go out as pipelines, split where a
    /// `Resync` or `Stop` has to run between them.
    fn execute(&mut self, batch: Vec<Op>) -> ControlFlow<()> {
        let mut calls = Vec::with_capacity(batch.len());
        for op in batch {
            match op {
                Op::Call(c) => calls.push(c),
                Op::Resync => {
                    self.flush(&mut calls);
                    self.resync();
                }
                Op::Stop { cleanup } => {
                    self.flush(&mut calls);
                    if cleanup {
                        self.leave();
                    }
                    return ControlFlow::Break(());
                }
            }
        }
        self.flush(&mut calls);
        ControlFlow::Continue(())
    }

    /// Sends `calls` as one pipeline (one tick: `tick.rs`) and answers each
    /// from its reply.
    fn flush(&mut self, calls: &mut Vec<Call>) {
        if calls.is_empty() {
            return;
        }
        let calls = std::mem::take(calls);
        let Some(mut s) = self.ready_redis() else {
            calls.into_iter().for_each(|c| self.degrade(c));
            return;
        };
        let steps = Tick::plan(&self.shared, calls).steps;
        if steps.is_empty() {
            self.redis = Some(s); // all answered from the cache
            return;
        }
        let mut pipe = redis::pipe();
        for step in &steps {
            pipe.add_command(self.command(&s.scripts, step));
        }
        let mut replies = Vec::with_capacity(steps.len());
        let sent = link::exec(
            &mut s.con,
            &pipe.get_packed_pipeline(),
            steps.len(),
            &mut replies,
        );
        let (refused, noscript) = server_errors(&replies);
        if let Some(what) = refused {
            self.refused.note(self.shared.keys.node_id(), &what);
        }
        let mut replies = replies.into_iter();
        for step in steps {
            match replies.next() {
                Some(reply) => self.answer(step, reply),
                None => self.degrade_step(step),
            }
        }
        match sent {
            Err(e) => self.lost(&e),
            // The scripts vanished (SCRIPT FLUSH): reconnect, which reloads them.
            Ok(()) if noscript => self.lost(&"Redis forgot the scripts"),
            Ok(()) => {
                s.last_used = Instant::now();
                self.redis = Some(s);
            }
        }
    }

    /// The command of one step.
    fn command(&self, scripts: &Scripts, step: &Step) -> Cmd {
        match step {
            Step::Call { call, armed, .. } => {
                let token = armed.as_ref().map_or(0, |a| a.token);
                call.command(
                    scripts,
                    &self.shared.keys,
                    self.shared.cfg.sessions_per_user,
                    token,
                )
            }
            Step::Frame { node, frame, .. } => {
                let mut c = redis::cmd("PUBLISH");
                c.arg(format!("{}{node}", self.shared.keys.channel_prefix()))
                    .arg(frame.as_slice());
                c
            }
        }
    }

    /// Degrades a step whose reply never came.
    fn degrade_step(&mut self, step: Step) {
        match step {
            Step::Call { call, armed, .. } => {
                if let Some(a) = armed {
                    self.shared.barriers.release(a.token); // answers Unavailable
                }
                self.degrade(call);
            }
            Step::Frame { frame, .. } => {
                self.missed = true;
                self.unsent(&frame);
            }
        }
    }

    /// Degrades a call the link could not carry; remembers a message among
    /// them for the catch-up report.
    fn degrade(&mut self, call: Call) {
        // A group change not announced is reported too: the catch-up
        // report makes every other node forget its whole group cache.
        self.missed |= call.is_publish() || matches!(call, Call::Group { .. });
        call.degrade(&self.shared);
    }

    /// A frame that reached no node: each of its messages is stored by
    /// the sender, as a script's `0` would have it (a copy for a user's
    /// other nodes is not: it was delivered here).
    fn unsent(&self, frame: &[u8]) {
        for item in envelope::items(frame) {
            match item {
                Ok(Item::User {
                    uid,
                    payload,
                    forward: true,
                }) => self.shared.store_by_sender(uid, payload.to_vec()),
                Ok(Item::User { .. }) | Err(()) => {}
                Ok(Item::Group { uids, payload }) => {
                    for uid in envelope::group_uids(uids) {
                        self.shared.store_by_sender(uid, payload.to_vec());
                    }
                }
            }
        }
    }

    /// Answers one step from its reply.
    fn answer(&mut self, step: Step, reply: Value) {
        match step {
            Step::Call { call, armed, fill } => self.answer_call(call, reply, armed, fill),
            Step::Frame {
                node,
                frame,
                recipients,
            } => match reply {
                Value::Int(n) if n > 0 => {
                    let c = &self.shared.counters;
                    Counters::add(&c.published, recipients);
                    Counters::bump(&c.batch_publishes);
                }
                other => {
                    // Not subscribed (dead, restarting): forget its routes.
                    if matches!(other, Value::Int(_)) {
                        self.shared.routes.forget_node(&node);
                    }
                    self.unsent(&frame);
                }
            },
        }
    }

    /// Answers one call from its reply.
    fn answer_call(&mut self, call: Call, reply: Value, armed: Option<Armed>, fill: Option<u64>) {
        match call {
            Call::Publish {
                uid,
                payload,
                others,
                forwarded,
            } => {
                let (code, nodes) = route_reply(&reply);
                if let (Some(generation), Some(nodes)) = (fill, nodes.filter(|_| code != 0)) {
                    self.shared.routes.fill(uid, generation, nodes);
                }
                let c = &self.shared.counters;
                match code {
                    n if n > 0 => {
                        Counters::bump(&c.published);
                        if forwarded {
                            Counters::bump(&c.forwarded);
                        }
                    }
                    // No other node holds the user: delivered here already.
                    _ if others => {}
                    _ => self.shared.store_unrouted(uid, payload, forwarded),
                }
            }
            call @ Call::PublishMany { .. } => call.degrade(&self.shared), // never sent
            Call::Claim { reply: tx, .. } => {
                let claim = presence::claim_reply(&reply).unwrap_or(Claim::Unavailable);
                match armed {
                    Some(a) => {
                        let claimed = claim == Claim::Claimed;
                        *a.answer.lock() = claim;
                        // Every node subscribed to the presence channel
                        // confirms, this one's own subscriber included.
                        if claimed {
                            let told = presence::claim_told(&reply);
                            self.shared.barriers.expect(a.token, told);
                        } else {
                            self.shared.barriers.release(a.token);
                        }
                    }
                    None => tx.send(claim),
                }
            }
            // Applied: whoever waits for it may go on.
            Call::Release { done, .. } => drop(done),
            // `n` subscribers got it, this node among them.
            Call::Group { token, .. } => match reply {
                Value::Int(n) => (self.shared.barriers).expect(token, n.saturating_sub(1) as u64),
                _ => self.shared.barriers.release(token),
            },
            Call::Seen { .. } => {}
            Call::Online { uids, reply: tx } => {
                let _ = tx.send(online_reply(&reply, uids.len()));
            }
        }
    }

    /// The connection, checked with a `PING` when it sat idle, or a new one when
    /// a connection attempt is due. `None`: degrade.
    fn ready_redis(&mut self) -> Option<ScriptedConnection> {
        if let Some(mut s) = self.redis.take() {
            if s.last_used.elapsed() < IDLE_CHECK {
                return Some(s);
            }
            match redis::cmd("PING").query::<String>(&mut s.con) {
                Ok(_) => return Some(s),
                Err(e) => self.lost(&e),
            }
        }
        if Instant::now() >= self.next_attempt {
            self.connect();
        }
        self.redis.take()
    }

    /// Tries to open a connection; schedules the next attempt on failure.
    fn connect(&mut self) {
        match self.open(true) {
            Ok((s, synced)) => {
                self.redis = Some(s);
                self.backoff.reset();
                if self.health.up() {
                    Counters::bump(&self.shared.counters.reconnects);
                }
                self.shared.connected.store(true, Ordering::Release);
                self.shared.routes.clear(); // filled before the sync: stale
                if let Some(synced) = synced {
                    self.after_sync(synced);
                }
                if self.missed {
                    self.report_missed();
                }
            }
            Err(e) => {
                self.health.down(&e);
                self.next_attempt = Instant::now() + self.backoff.next_delay();
            }
        }
    }

    /// Connects and loads the scripts; with `sync`, marks the node alive and
    /// syncs presence too (its result is the second value).
    fn open(&self, sync: bool) -> RedisResult<(ScriptedConnection, Option<presence::Synced>)> {
        let cfg = &self.shared.cfg;
        let mut con = link::connect(&self.shared.client, cfg.io_timeout, None)?;
        let scripts = Scripts::load(&mut con)?;
        let mut synced = None;
        if sync {
            self.shared.beat_command().query::<i64>(&mut con)?;
            synced = Some(self.sync(&mut con, &scripts)?);
        }
        let s = ScriptedConnection {
            con,
            scripts,
            last_used: Instant::now(),
        };
        Ok((s, synced))
    }

    /// Syncs presence with the node's list of users, and logs what changed.
    fn sync(&self, con: &mut Connection, scripts: &Scripts) -> RedisResult<presence::Synced> {
        let local: HashMap<i64, usize> = self.shared.node.local_users().into_iter().collect();
        let done = presence::sync(con, scripts, &self.shared, &local)?;
        if done != presence::Synced::default() {
            log::info!(
                "cluster: node {}: presence synced: {} users claimed ({} of them new), \
                 {} stale claims released, {} users held by another node",
                self.shared.keys.node_id(),
                done.claimed,
                done.newly_claimed.len(),
                done.released,
                done.held_elsewhere.len()
            );
        }
        Ok(done)
    }

    /// Acts on a sync: catches the newly claimed users up, and schedules
    /// the recheck of the users another node holds.
    fn after_sync(&mut self, synced: presence::Synced) {
        if !synced.newly_claimed.is_empty() {
            self.shared.node.catch_up(&synced.newly_claimed);
        }
        self.contested = synced.held_elsewhere;
        self.recheck_at =
            (!self.contested.is_empty()).then(|| Instant::now() + self.shared.cfg.recheck_after());
    }

    /// Says on the catch-up channel that this node could not route
    /// messages while its link was down, so that the other nodes catch
    /// their users up from the log.
    fn report_missed(&mut self) {
        let Some(mut s) = self.redis.take() else {
            return;
        };
        let sent = redis::cmd("PUBLISH")
            .arg(self.shared.keys.catch_up_channel())
            .arg(self.shared.keys.node_id())
            .query::<i64>(&mut s.con);
        match sent {
            Ok(_) => {
                self.missed = false;
                s.last_used = Instant::now();
                self.redis = Some(s);
            }
            Err(e) => self.lost(&e),
        }
    }

    /// Runs a presence sync on the current connection, if there is one (a new
    /// connection syncs anyway). The heartbeat asks for it when this node's
    /// alive key had expired: the other nodes took this node for dead and
    /// did not route to it, so every local user is caught up too.
    fn resync(&mut self) {
        if let Some(mut s) = self.redis.take() {
            match self.sync(&mut s.con, &s.scripts) {
                Ok(synced) => {
                    self.redis = Some(s);
                    self.shared.routes.clear();
                    self.after_sync(synced);
                    self.shared.node.subscribed();
                }
                Err(e) => self.lost(&e),
            }
        }
    }

    /// Claims the users another node held at the last sync once more (the
    /// other nodes have synced by now): a user this node gets is caught up
    /// from the log, a user still held elsewhere loses the session here.
    /// Users who left meanwhile are skipped.
    fn recheck(&mut self) {
        self.recheck_at = None;
        let Some(mut s) = self.ready_redis() else {
            return; // the next connection syncs, and reports them again
        };
        if self.recheck_at.is_some() {
            // `ready_redis` reconnected, and that sync set a new recheck.
            self.redis = Some(s);
            return;
        }
        let local: HashMap<i64, usize> = self.shared.node.local_users().into_iter().collect();
        let counts: Vec<(i64, usize)> = std::mem::take(&mut self.contested)
            .into_iter()
            .filter_map(|u| local.get(&u).map(|&n| (u, n)))
            .collect();
        match presence::set_all(&mut s.con, &s.scripts, &self.shared, &counts) {
            Ok(answers) => {
                s.last_used = Instant::now();
                self.redis = Some(s);
                let mut won = Vec::new();
                for (uid, claim) in answers {
                    match claim {
                        Some(Claim::Claimed) => won.push(uid),
                        Some(Claim::OnlineElsewhere(holder)) => {
                            log::info!(
                                "cluster: node {}: user {uid} is on node {holder}, which \
                                 held them first; ending the session here",
                                self.shared.keys.node_id()
                            );
                            self.shared.node.lost_claim(uid, &holder);
                        }
                        Some(Claim::Unavailable) | None => {}
                    }
                }
                if !won.is_empty() {
                    self.shared.node.catch_up(&won);
                }
            }
            Err(e) => self.lost(&e),
        }
    }

    /// The connection failed: degrade until a new one works. The first new
    /// attempt is immediate; the back-off applies from the second.
    fn lost(&mut self, e: &dyn Display) {
        self.redis = None;
        // Presence events may be missed until the link is back.
        self.shared.routes.clear();
        self.shared.connected.store(false, Ordering::Release);
        self.health.down(e);
        self.next_attempt = Instant::now();
    }

    /// Releases this node's claims and deletes its alive key.
    fn leave(&mut self) {
        self.shared.connected.store(false, Ordering::Release);
        let redis = match self.redis.take() {
            Some(s) => Ok(s),
            None => self.open(false).map(|(s, _)| s),
        };
        let left = redis.and_then(|mut s| presence::leave(&mut s.con, &s.scripts, &self.shared));
        match left {
            Ok(n) => log::info!(
                "cluster: node {} left the cluster, {n} user claims released",
                self.shared.keys.node_id()
            ),
            Err(e) => log::warn!(
                "cluster: node {} could not release its presence ({e}); the other nodes \
                 will treat its users as offline when its alive key expires",
                self.shared.keys.node_id()
            ),
        }
    }
}

/// The first command error among `replies` (as text), and whether any was
/// a missing script.
fn server_errors(replies: &[Value]) -> (Option<String>, bool) {
    let mut first = None;
    let mut noscript = false;
    for r in replies {
        if let Value::ServerError(e) = r {
            noscript |= e.code() == "NOSCRIPT";
            first.get_or_insert_with(|| format!("{} {}", e.code(), e.details().unwrap_or("")));
        }
    }
    (first, noscript)
}

/// Reads a `ROUTE` reply: the code (subscribers reached, `-1`, `-2`; 0
/// when malformed) and the live nodes holding the user (`None` when
/// malformed).
fn route_reply(v: &Value) -> (i64, Option<Nodes>) {
    let Value::Array(items) = v else {
        return (0, None);
    };
    let Some(Value::Int(code)) = items.first() else {
        return (0, None);
    };
    let mut names = Vec::with_capacity(items.len().saturating_sub(1));
    for item in items.iter().skip(1) {
        match item {
            Value::BulkString(b) => names.push(String::from_utf8_lossy(b).into_owned()),
            _ => return (*code, None),
        }
    }
    (*code, Some(routes::nodes(&names)))
}

/// Reads an `ONLINE` reply: `n` flags, all `false` when malformed.
fn online_reply(v: &Value, n: usize) -> Vec<bool> {
    match v {
        Value::Array(items) if items.len() == n => {
            items.iter().map(|i| matches!(i, Value::Int(1))).collect()
        }
        _ => vec![false; n],
    }
}

#[cfg(test)]
mod tests {
    use super::{online_reply, route_reply, ClaimReply};
    use crate::cluster::Claim;
    use parking_lot::Mutex;
    use redis::Value;
    use std::sync::Arc;

    /// A recording reply and what it received.
    fn recorder() -> (ClaimReply, Arc<Mutex<Vec<Claim>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        (ClaimReply::new(move |c| g.lock().push(c)), got)
    }

    #[test]
    fn a_claim_reply_is_answered_exactly_once() {
        let (reply, got) = recorder();
        reply.send(Claim::Claimed);
        assert_eq!(*got.lock(), [Claim::Claimed]);
        // Dropped unanswered (a crash, a dropped queue): Unavailable, so a
        // login never waits forever.
        let (reply, got) = recorder();
        drop(reply);
        assert_eq!(*got.lock(), [Claim::Unavailable]);
    }

    #[test]
    fn route_replies() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let v = Value::Array(vec![Value::Int(2), bulk("a"), bulk("b")]);
        let (code, nodes) = route_reply(&v);
        assert_eq!(code, 2);
        assert_eq!(
            nodes.as_deref(),
            Some(&["a".to_owned(), "b".to_owned()][..])
        );
        let (code, nodes) = route_reply(&Value::Array(vec![Value::Int(-1)]));
        assert_eq!(
            (code, nodes.map(|n| n.len())),
            (-1, Some(0)),
            "a negative entry"
        );
        assert_eq!(route_reply(&Value::Int(1)).0, 0, "not this script's answer");
        let bad = Value::Array(vec![Value::Int(1), Value::Int(3)]);
        assert_eq!(route_reply(&bad), (1, None));
    }

    #[test]
    fn online_replies() {
        let v = Value::Array(vec![Value::Int(1), Value::Int(0), Value::Int(1)]);
        assert_eq!(online_reply(&v, 3), [true, false, true]);
        assert_eq!(online_reply(&v, 2), [false, false]);
        assert_eq!(online_reply(&Value::Nil, 1), [false]);
    }
}
