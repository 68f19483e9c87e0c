//! The service: one handler per msgId, as the original's `ChatService`
//! handler map, plus the shared state those handlers use.
//!
//! The service knows nothing of sockets or event loops: a client is a
//! [`Peer`] (src/service/peer.rs), which the server implements for its
//! connections. The server hands every decoded JSON object to
//! [`Service::handle`] on the peer's own thread (its I/O thread). `handle`
//! parses it into a [`Request`], checks the session's identity, and calls
//! the handler of that msgId:
//!
//! | msgId | request | handler | runs on |
//! |---|---|---|---|
//! | 1 | login | [`account::login`] | hashing pool (argon2), the user's worker (claim, load), the I/O thread (ack) |
//! | 1 with `token` | token login | [`credentials::token_login`] | I/O thread (MAC), the user's worker (generation, claim, load), the I/O thread (ack) |
//! | 3 | logout | [`account::logout`] | I/O thread; a worker marks the account offline (and, with `revoke`, first revokes the tokens: [`credentials::logout`]) |
//! | 37 | change password | [`credentials::change_password`] | hashing pool (argon2 twice); the ack from the I/O thread |
//! | 5 | register | [`account::register`] | hashing pool (argon2, the new account); the ack from the I/O thread |
//! | 7 | refresh | [`account::refresh`] | worker |
//! | 9 | one-to-one chat | [`chat::one_chat`] | I/O thread, then a log writer (commit, hand on, ack) |
//! | 10, 14 | add / delete friend | [`friends::add`], [`friends::delete`] | worker |
//! | 11, 12, 19, 21, 23 | create / join / quit / dismiss group, members | [`groups`] | worker |
//! | 13 | group chat | [`chat::group_chat`] | I/O thread, then a log writer (members, commit, fan-out, ack) |
//! | 29, 31, 33 | sync, conversations, read | [`history`] | worker |
//! | 25 | ping | inline | I/O thread |
//!
//! # Threads
//!
//! Handlers start on the peer's own thread, which must never block:
//! anything that touches the [`Store`] goes to the [`WorkerPool`] with
//! [`Ctx::on_worker`], keyed by the user id (or the peer id before login)
//! so that jobs of one user run in order; password hashing goes to a pool
//! of its own with [`Ctx::on_hasher`]. Replies go out with [`Ctx::send`]
//! ([`Peer::send`], safe from any thread); work that must run in order with
//! the peer's requests comes back with [`Ctx::on_own_loop`].
//!
//! The state shared by all threads: the [`OnlineMap`] (who is connected
//! to which peer), the [`GroupCache`] (who is in which group), the
//! [`KnownUsers`] and the store.
//!
//! # Limits
//!
//! Every parsed request first takes a token from one of its session's rate
//! limits (chat, or everything else); a request that finds none is
//! answered with errno 12 and `retry_after`, and not handled. A request
//! that needs a worker goes there with [`Ctx::request_on_worker`], which
//! bounds the jobs in flight per connection and in total; the quotas
//! (friends, groups, members) are checked on that worker. [`limits`] has
//! the list, the defaults and the reasons.
//!
//! # Cluster mode
//!
//! With a [`Cluster`] attached ([`Service::attach_cluster`]) the handlers
//! look past this node: a message for a user not in the online map goes to
//! [`Cluster::send_to_user`] instead of the offline table, a login claims
//! the user cluster-wide, and friend and member lists ask which remote
//! users are online ([`Service::are_online`]). [`ClusterNode`] is the way
//! back in: the cluster's threads deliver through it.
//!
//! # Tests
//!
//! The unit tests (src/service/tests/) drive the service through fake
//! peers over an in-memory SQLite store; see that module's docs.

pub mod account;
pub mod backfill;
pub mod chat;
pub mod cluster_node;
pub mod credentials;
pub mod cursors;
pub mod delivery;
pub mod early;
pub mod friends;
pub mod group_cache;
pub mod groups;
pub mod history;
pub mod incoming;
pub mod known;
pub mod latency;
pub mod limits;
pub mod login_limits;
pub mod msglog;
pub mod online;
pub mod peer;
pub mod session;
pub mod sessions;
pub mod undeleted;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use serde_json::{Map, Value};

use crate::cluster::{Cluster, SharedThrottle};
use crate::protocol::{encode, errno, msg_id, reply, Request, SyncFrom};
use crate::runtime::throttle::retry_after_secs;
use crate::runtime::{
    BusyTime, Delay, HashGate, HashQueue, PasswordHasher, Priority, TokenKey, WorkerPool,
};
use crate::storage::{Page, Store, StoreError};
pub use cluster_node::ClusterNode;
pub use group_cache::GroupCache;
pub use incoming::Incoming;
pub use known::KnownUsers;
pub use limits::{LimitSettings, Limits};
pub use login_limits::{LoginLimits, LoginThrottles};
pub use msglog::LogWriter;
pub use online::{OnlineMap, Presence};
pub use peer::{Peer, PeerRef, Task};
pub use session::{Bucket, HoldBudget, Login, PendingHash, PendingRequest, Session};
pub use undeleted::Undeleted;

/// How much lower the database workers' priority is than the I/O threads'
/// (see [`WorkerPool`]).
const WORKER_PRIORITY: Priority = Priority::Nice(5);

/// The chat service: the store, the worker pool and the shared maps.
pub struct Service {
    store: Arc<dyn Store>,
    workers: WorkerPool,
    /// Runs a held gap's check a moment later ([`delivery::GAP_GRACE`]).
    delay: Delay,
    /// The message log's writers: every chat message goes through them.
    log: LogWriter,
    /// The background thread that writes cursors and prunes the log.
    chores: Mutex<Option<Chores>>,
    /// Password hashing (register, login phase 1), apart from the database
    /// workers so a login's later phases never queue behind other hashes,
    /// in a queue fair between addresses and connections.
    hashers: HashQueue,
    /// Holds each hash back while the I/O threads are busy.
    hash_gate: HashGate,
    online: OnlineMap,
    groups: GroupCache,
    hasher: PasswordHasher,
    /// Cluster mode's handle; empty on a single node. Set once, before the
    /// server accepts connections.
    cluster: OnceLock<Arc<Cluster>>,
    /// Users known to exist (cluster mode routes messages to them without
    /// asking the store).
    known: KnownUsers,
    /// Offline rows delivered in a login ack whose delete failed.
    undeleted: Undeleted,
    /// `--login-takeover-grace` in milliseconds; [`NO_TAKEOVER`]: never.
    takeover_grace_ms: AtomicU64,
    /// `--sessions-per-user`: connections one account may be logged in on
    /// at once ([`sessions`]).
    sessions_per_user: AtomicU32,
    /// The bytes of requests held behind logins, every session together.
    hold: Arc<HoldBudget>,
    /// `--max-pending-hashes`: hashing jobs one session may have queued or
    /// running.
    max_pending_hashes: AtomicU32,
    /// The limits per address and per account on registers and logins;
    /// set once, before the server accepts connections (the defaults if
    /// never).
    login_limits: OnceLock<LoginThrottles>,
    /// Cluster mode's failed-login counts, shared by every node.
    shared_throttle: OnceLock<SharedThrottle>,
    /// Rate limits, jobs in flight, quotas ([`limits`]).
    limits: Limits,
    /// Signs and checks resume tokens; set once, before the server accepts
    /// connections. Without it no login hands out a token and every token
    /// login fails.
    tokens: OnceLock<TokenKey>,
}

/// How the message log is written and kept (`--log-writers`,
/// `--log-batch`, `--log-queue`, `--history-retention`).
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Writer threads (each with its own transactions).
    pub writers: usize,
    /// The most posts one transaction commits.
    pub batch: usize,
    /// The most posts one writer may have queued.
    pub queue: usize,
    /// Entries older than this are pruned; `None` keeps everything.
    pub retention: Option<Duration>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            writers: 1,
            batch: msglog::DEFAULT_BATCH,
            queue: msglog::DEFAULT_QUEUE,
            retention: None,
        }
    }
}

/// The default of [`Service::set_max_pending_hashes`].
pub const DEFAULT_MAX_PENDING_HASHES: u32 = 4;

/// The value of `Service::takeover_grace_ms` that turns takeovers off.
const NO_TAKEOVER: u64 = u64::MAX;

/// The logged-in account a request acts as.
#[derive(Debug, Clone)]
pub struct Me {
    /// Its id.
    pub uid: i64,
    /// Its name (the session's, shared).
    pub name: Arc<str>,
}

/// Everything a handler needs to answer: the service, the peer, its
/// session, and the msgId being handled (to pick the ack). Cheap to clone
/// (three `Arc`s), and `Send`, so it moves into worker jobs and back onto
/// the peer's own thread.
#[derive(Clone)]
pub struct Ctx {
    /// The service.
    pub svc: Arc<Service>,
    /// The peer the request came from.
    pub peer: PeerRef,
    /// Its session.
    pub session: Arc<Session>,
    /// The request's msgId.
    pub req: i64,
    /// When the request was read, if delivery latency is measured
    /// ([`latency`]).
    pub received: Option<Instant>,
}

impl Ctx {
    /// Sends `v` to the requesting peer; any thread.
    pub fn send(&self, v: &Value) {
        self.peer.send(encode(v));
    }

    /// Sends the failure reply of this request: its ack with `errno` and
    /// `errmsg`, or an error message (msgId 27) when it has no ack; any
    /// thread.
    pub fn fail(&self, errno: i64, errmsg: &str) {
        self.send(&reply::failure(Some(self.req), errno, errmsg));
    }

    /// Logs a storage failure and answers with [`errno::SERVER_ERROR`]; any
    /// thread. The client learns nothing about the database.
    pub fn store_failed(&self, e: &StoreError) {
        log::error!("{}: request {} failed: {e}", self.peer.name(), self.req);
        self.fail(
            errno::SERVER_ERROR,
            "the server could not complete the request",
        );
    }

    /// Runs `job` on the worker for `key` (see [`WorkerPool`]), giving it
    /// this context and the store; any thread. Never refused: for the
    /// service's own jobs, which must not be lost (a login's phases, what
    /// a delivery recorded). A job a client's request causes goes through
    /// [`Ctx::request_on_worker`] instead.
    pub fn on_worker<F>(self, key: u64, job: F)
    where
        F: FnOnce(Ctx, &dyn Store) + Send + 'static,
    {
        let svc = self.svc.clone();
        svc.workers.submit(key, move || {
            let store = self.svc.store.clone();
            job(self, &*store);
        });
    }

    /// Refuses (errno 12) a request when the connection already has
    /// `--max-pending-requests` jobs queued or running; true when it did.
    /// The peer's own thread.
    pub fn refuse_over_request_limit(&self) -> bool {
        let max = self.svc.limits.max_pending_requests();
        if max == 0 || self.session.pending_requests() < max {
            return false;
        }
        self.fail(
            errno::TOO_MANY,
            "too many requests in flight on this connection; wait for their answers",
        );
        true
    }

    /// Runs `job` on the worker for `key`, like [`Ctx::on_worker`], for a
    /// job that a client request causes (one job per request, which the
    /// client can repeat at will). Bounded twice: a connection may have at
    /// most `--max-pending-requests` such jobs queued or running, and the
    /// pool at most `--worker-queue`; beyond either the request is
    /// answered at once with errno 12 and nothing is done. The peer's own
    /// thread (the only one that adds the session's pending requests, so
    /// the check holds until the job is queued).
    ///
    /// Internal jobs that must not be lost (a login's phases, cursor
    /// writes, marking offline) use [`Ctx::on_worker`], which never
    /// refuses; see the [`WorkerPool`] docs.
    pub fn request_on_worker<F>(self, key: u64, job: F)
    where
        F: FnOnce(Ctx, &dyn Store) + Send + 'static,
    {
        if self.refuse_over_request_limit() {
            return;
        }
        let pending = PendingRequest::new(&self.session);
        let answer = self.clone();
        let svc = self.svc.clone();
        let refused = svc.workers.try_submit(key, move || {
            let _pending = pending;
            let store = self.svc.store.clone();
            job(self, &*store);
        });
        if let Err(job) = refused {
            drop(job); // gives the pending count back
            answer.fail(errno::TOO_MANY, "the server is busy; try again later");
        }
    }

    /// Runs `job` on the hashing threads, for the requests that hash a
    /// password, given the `pending` hash [`Ctx::reserve_hash`] counted. The
    /// queue is fair between source addresses and between connections, and
    /// runs a connection's jobs one at a time in order, so a connection's
    /// register and login keep their order ([`HashQueue`]). Any thread.
    ///
    /// A job whose peer is no longer connected when its turn comes is
    /// dropped unrun: no hash, no store call, no answer (nobody would read
    /// it). So a connection that writes a thousand registrations and closes
    /// costs the hashing threads almost nothing.
    ///
    /// The job counts against the session's and its address's pending
    /// hashes until it drops `pending`.
    pub fn on_hasher<F>(self, pending: PendingHash, job: F)
    where
        F: FnOnce(Ctx, &dyn Store, PendingHash) + Send + 'static,
    {
        let svc = self.svc.clone();
        // A session without an address takes turns with the others that
        // have none.
        let addr = self
            .session
            .address()
            .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        let conn = self.session.peer_id();
        svc.hashers.submit(addr, conn, move || {
            // Checked before and after the gate: the wait may be long.
            // (Returning drops `pending`.)
            if self.peer_gone() {
                return;
            }
            self.svc.hash_gate.wait();
            if self.peer_gone() {
                return;
            }
            let store = self.svc.store.clone();
            job(self, &*store, pending);
        });
    }

    /// One more pending hash for this request, to hand to
    /// [`Ctx::on_hasher`]; or `None`, and the request answered with errno
    /// 12, when the session has `--max-pending-hashes` hashing jobs queued
    /// or running already, or its address `--max-pending-hashes-per-address`:
    /// the register or login must not hash. The peer's own thread (I/O
    /// threads are the only ones that add pending hashes, so the counts
    /// hold).
    pub fn reserve_hash(&self) -> Option<PendingHash> {
        let max = self.svc.max_pending_hashes.load(Ordering::Relaxed);
        if self.session.pending_hashes() >= max {
            self.fail(
                errno::TOO_MANY,
                "too many password checks in flight on this connection; wait for their answers",
            );
            return None;
        }
        let address = match self.session.address() {
            None => None,
            Some(ip) => match self.svc.login_limits().pending.take(ip) {
                Ok(count) => count,
                Err(()) => {
                    self.fail(
                        errno::TOO_MANY,
                        "too many password checks in flight from your address; try again later",
                    );
                    return None;
                }
            },
        };
        Some(PendingHash::new(&self.session, address))
    }

    /// [`Ctx::fail`] with a `"retry_after"` of `wait`, in whole seconds
    /// (rounded up); any thread.
    pub fn fail_retry(&self, errno: i64, errmsg: &str, wait: Duration) {
        let mut v = reply::failure(Some(self.req), errno, errmsg);
        if let Some(fields) = v.as_object_mut() {
            fields.insert("retry_after".into(), retry_after_secs(wait).into());
        }
        self.send(&v);
    }

    /// `true` (and logged) when the peer has closed: its hashing job is
    /// dropped. Any thread.
    fn peer_gone(&self) -> bool {
        if self.peer.connected() {
            return false;
        }
        log::debug!(
            "{}: closed; request {} dropped before hashing",
            self.peer.name(),
            self.req
        );
        true
    }

    /// Runs `task` on the peer's own thread, after what is queued there
    /// already ([`Peer::run_on_own_loop`]); any thread. The way back from a
    /// worker for whatever must stay in order with the peer's requests.
    pub fn on_own_loop<F>(self, task: F)
    where
        F: FnOnce(Ctx) + Send + 'static,
    {
        let peer = self.peer.clone();
        peer.run_on_own_loop(Box::new(move || task(self)));
    }
}

/// The worker shard key of a user; the same on every thread, which is the
/// point: every job about one user runs on one worker, in order.
pub fn user_key(uid: i64) -> u64 {
    uid.unsigned_abs()
}

impl Service {
    /// A service over `store` with `workers` worker threads and
    /// `hash_threads` hashing threads at `hash_priority`, each hash waiting
    /// at most `hash_max_wait` for the I/O threads to calm down
    /// ([`HashGate`]).
    ///
    /// By default (`--hash-priority idle`) the hashing threads run in the
    /// idle class: a storm of logins (tens of milliseconds of argon2 each)
    /// takes only CPU that the I/O threads and database workers leave
    /// (docs/benchmarks.md, section 7). On a host that other programs keep busy
    /// the idle class gets almost no CPU; a nice increment still gets a
    /// share (section 10).
    ///
    /// Any thread.
    ///
    /// # Errors
    /// If the worker threads cannot be started.
    pub fn new(
        store: Arc<dyn Store>,
        workers: usize,
        hash_threads: usize,
        hasher: PasswordHasher,
        hash_max_wait: Duration,
        hash_priority: Priority,
        log_options: LogOptions,
    ) -> std::io::Result<Arc<Service>> {
        let svc = Arc::new(Service {
            store,
            workers: WorkerPool::new(workers, "chat-worker", WORKER_PRIORITY)?,
            delay: Delay::new("chat-delay")?,
            log: LogWriter::new(log_options.writers, log_options.batch, log_options.queue)?,
            chores: Mutex::new(None),
            hashers: HashQueue::new(hash_threads, "chat-hash", hash_priority)?,
            hash_gate: HashGate::new(hash_max_wait),
            online: OnlineMap::default(),
            groups: GroupCache::default(),
            hasher,
            cluster: OnceLock::new(),
            known: KnownUsers::default(),
            undeleted: Undeleted::default(),
            takeover_grace_ms: AtomicU64::new(NO_TAKEOVER),
            sessions_per_user: AtomicU32::new(1),
            hold: Arc::new(HoldBudget::default()),
            max_pending_hashes: AtomicU32::new(DEFAULT_MAX_PENDING_HASHES),
            login_limits: OnceLock::new(),
            shared_throttle: OnceLock::new(),
            limits: Limits::default(),
            tokens: OnceLock::new(),
        });
        *svc.chores.lock() = Some(Chores::start(&svc, log_options.retention)?);
        Ok(svc)
    }

    /// Lets a login replace the account's connection on this node when
    /// that connection has received nothing for longer than `grace`
    /// (`--login-takeover-grace`; see [`account`]'s "Takeover"); `None`
    /// (the default of a new service) never does, and the login gets
    /// errno 2. Ignored in cluster mode. Any thread; logins that are
    /// already past their claim keep the old setting.
    pub fn set_login_takeover_grace(&self, grace: Option<Duration>) {
        let ms = grace.map_or(NO_TAKEOVER, |g| {
            u64::try_from(g.as_millis()).unwrap_or(NO_TAKEOVER - 1)
        });
        self.takeover_grace_ms.store(ms, Ordering::Relaxed);
    }

    /// Lets one account be logged in on up to `n` connections at once
    /// (`--sessions-per-user`; at least 1, the default, which refuses a
    /// second login with errno 2). See [`sessions`]. Any thread; logins
    /// past their claim keep the old setting.
    pub fn set_sessions_per_user(&self, n: u32) {
        self.sessions_per_user.store(n.max(1), Ordering::Relaxed);
    }

    /// The limit set by [`Service::set_sessions_per_user`]; any thread.
    pub fn sessions_per_user(&self) -> usize {
        self.sessions_per_user.load(Ordering::Relaxed) as usize
    }

    /// The grace set by [`Service::set_login_takeover_grace`]; any thread.
    pub fn login_takeover_grace(&self) -> Option<Duration> {
        match self.takeover_grace_ms.load(Ordering::Relaxed) {
            NO_TAKEOVER => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Lets password hashing watch how busy the server's I/O loops are,
    /// given one busy-time source per loop (see [`HashGate`]). Call it
    /// once, after the server has started them.
    pub fn watch_io_loops(&self, loops: Vec<BusyTime>) {
        self.hash_gate.watch(loops);
    }

    /// Sets how many bytes of requests may wait behind a login: `per_session`
    /// for one connection, `total` for all of them (`--login-hold-bytes`,
    /// `--login-hold-total`; by default 64 KiB and 16 MiB). Any thread; call
    /// it before the server accepts connections.
    pub fn set_hold_limits(&self, per_session: usize, total: usize) {
        self.hold.set_limits(per_session, total);
    }

    /// The requests held behind logins now, every session together, in
    /// bytes ([`session::footprint`]); any thread.
    pub fn held_bytes(&self) -> usize {
        self.hold.held_bytes()
    }

    /// Sets how many hashing jobs (register, login phase 1) one connection
    /// may have queued or running (`--max-pending-hashes`, by default
    /// [`DEFAULT_MAX_PENDING_HASHES`]; at least 1). A register or login
    /// beyond it is answered at once with its ack and errno 12: one
    /// connection cannot fill the hashing queue ahead of everyone's logins.
    /// Any thread; call it before the server accepts connections.
    pub fn set_max_pending_hashes(&self, n: u32) {
        self.max_pending_hashes.store(n.max(1), Ordering::Relaxed);
    }

    /// Sets the limits per address and per account
    /// ([`login_limits`](self::login_limits)); any thread, once, before the server
    /// accepts connections. A second call, or one after the first register
    /// or login, is ignored (and logged).
    pub fn set_login_limits(&self, config: &LoginLimits) {
        if self.login_limits.set(LoginThrottles::new(config)).is_err() {
            log::error!("the login limits are set already; ignoring the second setting");
        }
    }

    /// Signs resume tokens with `key` ([`credentials`]); any thread, once,
    /// before the server accepts connections. A second call is ignored
    /// (and logged).
    pub fn set_token_key(&self, key: TokenKey) {
        if self.tokens.set(key).is_err() {
            log::error!("a token key is set already; ignoring the second");
        }
    }

    /// The key set by [`Service::set_token_key`]; any thread.
    pub fn token_key(&self) -> Option<&TokenKey> {
        self.tokens.get()
    }

    /// A resume token for `uid` at `generation`, when there is a key; any
    /// thread (one HMAC).
    pub fn issue_token(&self, uid: i64, generation: i64) -> Option<String> {
        Some(self.token_key()?.issue(uid, generation))
    }

    /// Counts failed logins cluster-wide in `throttle` as well as on this
    /// node (cluster mode); any thread, once, before the server accepts
    /// connections. A second call is ignored (and logged).
    pub fn share_login_failures(&self, throttle: SharedThrottle) {
        if self.shared_throttle.set(throttle).is_err() {
            log::error!("a shared login throttle is set already; ignoring the second");
        }
    }

    /// The cluster-wide failed-login counts, in cluster mode; any thread
    /// (its calls block: hashing threads or workers).
    pub fn shared_throttle(&self) -> Option<&SharedThrottle> {
        self.shared_throttle.get()
    }

    /// The login limits' state; any thread.
    pub fn login_limits(&self) -> &LoginThrottles {
        self.login_limits
            .get_or_init(|| LoginThrottles::new(&LoginLimits::default()))
    }

    /// Puts the rate limits, the bounds on worker jobs and the quotas in
    /// force ([`limits`]; a new service has [`LimitSettings::default`]).
    /// Any thread; call it before the server accepts connections.
    pub fn set_limits(&self, settings: &LimitSettings) {
        self.limits.set(settings);
        self.workers.set_max_requests(settings.worker_queue);
    }

    /// Worker jobs queued or running (`/metrics`); any thread, an atomic.
    pub fn worker_jobs(&self) -> usize {
        self.workers.in_flight()
    }

    /// Users logged in on this node (`/metrics`); any thread, but it
    /// visits every online-map shard: for a sampler, not a hot path.
    pub fn online_users(&self) -> usize {
        self.online.uids().len()
    }

    /// The limits in force; any thread.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Turns cluster mode on; any thread. Call it once, before any peer is
    /// handled; a second call is ignored (and logged).
    pub fn attach_cluster(&self, cluster: Arc<Cluster>) {
        if self.cluster.set(cluster).is_err() {
            log::error!("a cluster is attached already; ignoring the second");
        }
    }

    /// The cluster handle, in cluster mode; any thread.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get()
    }

    /// Handles one decoded object from `peer`, whose session is `session`.
    /// The peer's own thread only: requests of one peer must come in the
    /// order they were sent, from one thread.
    ///
    /// While a login of the session is under way the object is held and
    /// handled when the login ends, so requests keep their order; one that
    /// would go over the session's or the process's held bytes, or
    /// [`session::MAX_HELD`] requests, is refused with errno 4.
    pub fn handle(
        self: &Arc<Self>,
        peer: &PeerRef,
        session: &Arc<Session>,
        obj: Map<String, Value>,
    ) {
        self.handle_at(peer, session, obj, None);
    }

    /// [`handle`](Self::handle) a request read at `received`, to measure
    /// its delivery's latency ([`latency`]; `None`: not measured).
    pub fn handle_at(
        self: &Arc<Self>,
        peer: &PeerRef,
        session: &Arc<Session>,
        obj: Map<String, Value>,
        received: Option<Instant>,
    ) {
        self.handle_incoming(peer, session, Incoming::Object(obj), received);
    }

    /// [`handle_at`](Self::handle_at) a request in either form
    /// ([`Incoming`]): a chat the fast path read from its bytes is handled
    /// exactly as its object would be.
    pub fn handle_incoming(
        self: &Arc<Self>,
        peer: &PeerRef,
        session: &Arc<Session>,
        incoming: Incoming<'_>,
        received: Option<Instant>,
    ) {
        // Behind a login: hold it for the login's end to replay, within the
        // count and the bytes (the session's and the process's).
        {
            let mut state = session.state();
            if matches!(state.login, Login::Verifying | Login::Claimed { .. }) {
                let Some(obj) = incoming.into_object() else {
                    drop(state);
                    let v = reply::failure(None, errno::SERVER_ERROR, "cannot hold the request");
                    peer.send(encode(&v));
                    return;
                };
                if let Err(obj) = state.held.push(obj, &self.hold) {
                    drop(state);
                    let req = obj.get("msgId").and_then(Value::as_i64);
                    let v = reply::failure(
                        req,
                        errno::BAD_REQUEST,
                        "too many requests while logging in",
                    );
                    peer.send(encode(&v));
                }
                return;
            }
        }
        // Malformed: answered, and the peer stays open.
        let request = match incoming.request() {
            Ok(r) => r,
            Err(e) => {
                // Answering costs as much as a ping: the same rate limit.
                if let Some(wait) = limits::over_rate(self, session, Bucket::Request) {
                    let req = incoming.msg_id();
                    let v = limits::throttled(req, None, Bucket::Request, wait);
                    peer.send(encode(&v));
                    return;
                }
                log::debug!("{}: {e}", peer.name());
                peer.send(encode(&e.reply()));
                return;
            }
        };
        let ctx = Ctx {
            svc: self.clone(),
            peer: peer.clone(),
            session: session.clone(),
            req: request.msg_id(),
            received,
        };
        // Login and register have their own bounds (the hashing pool's);
        // everything else draws on a rate limit first.
        let bucket = match request {
            Request::Login { .. } | Request::TokenLogin { .. } | Request::Register { .. } => None,
            Request::OneChat { .. } | Request::GroupChat { .. } => Some(Bucket::Chat),
            _ => Some(Bucket::Request),
        };
        if let Some(bucket) = bucket {
            if limits::rate_limited(&ctx, bucket, request.cid()) {
                return;
            }
        }
        // The requests an anonymous session may make; the rest need a login.
        match request {
            Request::Login {
                uid,
                username,
                password,
            } => account::login(ctx, uid, username, password),
            Request::TokenLogin { token } => credentials::token_login(ctx, token),
            Request::Register { username, password } => account::register(ctx, username, password),
            Request::Ping => ctx.send(&reply::pong()),
            other => Self::handle_authenticated(ctx, other, incoming),
        }
    }

    /// The requests that need a logged-in connection: the identity check,
    /// then the handler map.
    fn handle_authenticated(ctx: Ctx, request: Request, body: Incoming<'_>) {
        // Errors about a chat message with a cid come as 28 with that cid.
        let fail = |errno, errmsg: &str| {
            ctx.send(&reply::failure_for(
                Some(ctx.req),
                request.cid(),
                errno,
                errmsg,
            ));
        };
        let Some((uid, name)) = ctx.session.user() else {
            return fail(errno::NOT_LOGGED_IN, "log in first");
        };
        if let Some(claimed) = request.claimed_uid() {
            if claimed != uid {
                let field = if ctx.req == msg_id::ONE_CHAT_MSG {
                    "from"
                } else {
                    "uid"
                };
                let why =
                    format!("`{field}` {claimed} is not the account logged in on this connection");
                return fail(errno::FORBIDDEN, &why);
            }
        }
        let me = Me { uid, name };
        match request {
            Request::Logout { revoke, .. } => credentials::logout(ctx, me, revoke),
            Request::ChangePassword { old, new } => credentials::change_password(ctx, me, old, new),
            Request::Refresh { .. } => account::refresh(ctx, me),
            Request::OneChat { to, cid, .. } => chat::one_chat(ctx, me, to, cid, body),
            Request::AddFriend { fid, .. } => friends::add(ctx, me, fid),
            Request::DelFriend { fid, .. } => friends::delete(ctx, me, fid),
            Request::CreateGroup { name, desc, .. } => groups::create(ctx, me, name, desc),
            Request::JoinGroup { gid, .. } => groups::join(ctx, me, gid),
            Request::QuitGroup { gid, .. } => groups::quit(ctx, me, gid),
            Request::DismissGroup { gid, .. } => groups::dismiss(ctx, me, gid),
            Request::GroupMembers { gid, .. } => groups::members(ctx, me, gid),
            Request::GroupChat { gid, cid, .. } => chat::group_chat(ctx, me, gid, cid, body),
            Request::Sync { conv, page, limit } => {
                let page = match page {
                    SyncFrom::After(n) => Page::After(n),
                    SyncFrom::Before(n) => Page::Before(n),
                };
                history::sync(ctx, me, conv, page, limit)
            }
            Request::Convs => history::convs(ctx, me),
            Request::Read { conv, seq } => history::read(ctx, me, conv, seq),
            Request::Typing { conv } => sessions::typing(ctx, me, conv),
            // Handled before the identity check.
            Request::Login { .. }
            | Request::TokenLogin { .. }
            | Request::Register { .. }
            | Request::Ping => {}
        }
    }

    /// `peer` went down: forget its login, storing what was buffered for
    /// it. The peer's own thread, once, after its last
    /// [`handle`](Self::handle).
    pub fn disconnected(self: &Arc<Self>, peer: &PeerRef, session: &Arc<Session>) {
        account::disconnected(self, peer, session);
    }

    /// Cluster mode, at a graceful stop, after every connection closed and
    /// before the node leaves the cluster: waits (at most `timeout`) until
    /// the workers have run every job queued so far, which includes each
    /// closed session's cursor write and the claim release behind it
    /// ([`delivery`]'s `release_after_cursors`). Leaving releases every
    /// claim of the node at once; without this wait a user whom a
    /// rolling restart moves to another node could log in there before
    /// their cursors are stored, and be handed their last messages again.
    pub fn settle_sessions(&self, timeout: Duration) {
        if !self.workers.wait_idle(timeout) {
            log::warn!(
                "shutdown: {} jobs still queued when leaving the cluster \
                 (users who move to another node now may get their last messages again)",
                self.workers.in_flight()
            );
        }
    }

    /// Graceful stop, after the I/O threads have stopped (and, in cluster
    /// mode, after [`Cluster::shutdown`], whose last messages may still
    /// reach connections here): commits and hands on every chat message
    /// the log writers accepted, runs every queued login and database
    /// write, writes the online users' cursors, then marks them offline.
    /// Any thread but a worker's, a hasher's or a log writer's (it joins
    /// them); blocks for up to about three times `timeout`.
    ///
    /// Returns `false` when something accepted was left undone within the
    /// timeouts (each logged with its count): the server then exits with
    /// a failure status, so that an operator or a supervisor knows.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let mut finished = true;
        let abandoned = self.log.shutdown(timeout);
        if abandoned > 0 {
            log::error!("shutdown: {abandoned} chat messages were not stored in {timeout:?}");
            finished = false;
        }
        if let Some(chores) = self.chores.lock().take() {
            chores.stop();
        }
        if !self.hashers.shutdown(timeout) {
            log::error!("shutdown: some logins did not finish in {timeout:?}");
            finished = false;
        }
        if !self.workers.shutdown(timeout) {
            log::error!("shutdown: some database writes did not finish in {timeout:?}");
            finished = false;
        }
        delivery::flush_all(self, true);
        let uids = self.online.uids();
        match self.store.set_offline_many(&uids) {
            Ok(n) => log::info!("shutdown: {n} users marked offline"),
            Err(e) => log::error!("shutdown: marking {} users offline failed: {e}", uids.len()),
        }
        finished
    }
}

/// The service's background thread: every [`delivery::CURSOR_FLUSH`] it
/// queues the write of online users' cursors, and with a retention it
/// queues the pruning of old log entries; both run on a database worker,
/// never here.
struct Chores {
    stop: crossbeam_channel::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Chores {
    fn start(svc: &Arc<Service>, retention: Option<Duration>) -> std::io::Result<Chores> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let weak = Arc::downgrade(svc);
        // Prune a few times per retention period, at most once a minute.
        let tick = retention
            .map_or(delivery::CURSOR_FLUSH, |r| {
                (r / 4).min(delivery::CURSOR_FLUSH)
            })
            .max(Duration::from_millis(100));
        let thread = std::thread::Builder::new()
            .name("chat-chores".into())
            .spawn(move || {
                let mut last_flush = std::time::Instant::now();
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(tick)
                {
                    let Some(svc) = weak.upgrade() else {
                        return;
                    };
                    if last_flush.elapsed() >= delivery::CURSOR_FLUSH {
                        last_flush = std::time::Instant::now();
                        delivery::flush_all(&svc, false);
                    }
                    if let Some(retention) = retention {
                        history::schedule_prune(&svc, retention);
                    }
                }
            })?;
        Ok(Chores { stop, thread })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            log::error!("the chores thread panicked");
        }
    }
}
