//! Accounts: register (5), login (1), logout (3), refresh (7), and what a
//! closing connection leaves behind.
//!
//! # Login, in three steps
//!
//! Login must hand the user their offline messages *in order* and then
//! every message sent to them later, with nothing lost in between and
//! nothing overtaking. It runs in three steps:
//!
//! 1. **Verify**, on the hashing thread of the *peer* (the user is
//!    not known yet; register uses the same thread, so a peer's
//!    register and login keep their order): load the account, check the
//!    argon2 hash (an account imported by `chat-server migrate-legacy`
//!    has its plain text instead: compared, then hashed here,
//!    `legacy_rehash`, and the hash stored by the user's worker before the
//!    claim, `store_rehash`). Then, on the *user's* worker (the hashing thread is in
//!    the idle scheduling class and must hold no lock an I/O thread
//!    wants), under the user's online-map lock: if the user has
//!    `--sessions-per-user` sessions already (one, by default: online at
//!    all) → errno 2; otherwise add a `LoggingIn` session and submit
//!    phase 2 to the user's worker, still under the lock.
//! 2. **Load**, on the user's worker: offline messages, friends, groups.
//!    Every "store offline for this user" job was submitted to this same
//!    worker by someone who found the user absent under that lock, so all
//!    of them ran before this job: the offline table is complete. Messages
//!    that arrive from now on find `LoggingIn` and wait in its buffer.
//! 3. **Deliver**, on the peer's own thread: switch the entry to
//!    `Online`, send the ack (with the offline messages), then the buffered
//!    messages. Only then are the delivered offline rows deleted (exactly
//!    those ids, so a repeat is harmless) and the account marked online,
//!    on the user's worker. A delete that fails is repeated by the user's
//!    next login, which meanwhile leaves those rows out of its ack (see
//!    [`super::undeleted`]): no duplicates when the database comes back.
//!
//! # Takeover
//!
//! A client that vanished without a FIN leaves its connection in the map
//! until keepalive or the idle sweep closes it. So when step 1 finds the
//! user `Online` on a connection that has received nothing for longer
//! than `--login-takeover-grace` ([`Peer::idle_for`](super::Peer::idle_for)),
//! it does not refuse: under the same two locks it replaces the entry with
//! its own `LoggingIn` and goes on as if the user had been absent, and
//! after unlocking it closes the old connection with a last error message
//! (27, errno 2, "logged in elsewhere"; [`Peer::close_with`](super::Peer::close_with)),
//! which also makes it ignore its further input. A connection with
//! recent activity, or one whose login is still under way, wins: errno 2
//! as before. With several sessions per user a takeover happens only when
//! every session is taken, and replaces a silent one.
//!
//! The order holds across the swap: the entry is never absent, so no
//! message for the user is stored offline because of it; a message routed
//! before the swap went to the old connection (as to any connection that
//! dies); one routed after finds `LoggingIn` and follows the new ack. The
//! old connection's `disconnected` finds an entry that is not its own and
//! leaves it (and the account's online flag) alone.
//!
//! # Cluster mode
//!
//! Step 1 also asks Redis ([`Cluster::claim_then`](crate::cluster::Cluster::claim_then),
//! from the user's worker, holding no lock; the answer comes back to that
//! worker as a new job, so no worker waits for Redis; it comes once every
//! node has forgotten the user's cached route: "Route cache" in
//! ARCHITECTURE.md): a user held by another live node is refused with
//! errno 2, as a duplicate login on this node is. When Redis cannot answer (down, or hung past its I/O timeout)
//! the login is admitted *unconfirmed*: the node claims the user when the
//! link returns, and if another node holds them by then, the session that
//! node holds wins and this one gets errno 2 and is closed
//! ([`super::cluster_node`]). Every path
//! that removes the user's entry from the online map (logout, disconnect, a
//! failed phase 2) releases the claim once it removed the user's last
//! session here. There is no takeover in cluster
//! mode: any connection already holding the user wins. All of a user's
//! sessions are on the node that holds the claim: with
//! `--sessions-per-user` above 1, a login on that node is admitted while
//! there is room, one on another node gets errno 2 (see
//! [`super::sessions`]). The `state` column is information
//! only: a killed node leaves it `online`, and Redis's claims, which expire
//! with the node's liveness, are what decide.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::delivery::{self, Cursors, Unclaimed};
use super::login_limits::{self, AccountKey};
use super::session::{Held, Login};
use super::{
    chat, history, online, sessions, user_key, Ctx, Me, PeerRef, Presence, Service, Session,
};
use crate::cluster::Claim;
use crate::model::{GroupInfo, UserInfo};
use crate::protocol::{encode, errno, reply};
use crate::storage::{Entry, Store, StoreError, UserRecord};

/// A failed request: errno and errmsg.
pub(super) type Failure = (i64, &'static str);

pub(super) const BAD_LOGIN: Failure = (errno::FAILED, "no such account or wrong password");
pub(super) const STORE_FAILED: Failure = (
    errno::SERVER_ERROR,
    "the server could not complete the request",
);

/// REG_MSG (5): hash the password and create the account; answers 6.
///
/// A register (or login) from a connection that has
/// `--max-pending-hashes` registers and logins queued or running already,
/// or from an address with `--max-pending-hashes-per-address`, is answered
/// at once with errno 12 ([`Ctx::reserve_hash`]). So is one beyond the
/// address's registrations per window (with `retry_after`); one from an
/// address that has created its accounts per window gets errno 13
/// (`QUOTA`, with `retry_after`). See [`super::login_limits`].
///
/// The account is created on the hashing thread, so a login pipelined
/// behind the register on the same peer finds it. The answer goes out
/// from the peer's own thread: the hashing thread, in the idle scheduling
/// class, takes no lock (here: the socket's) that an I/O thread may be
/// waiting for.
///
/// Called on the peer's own thread (by `Service::handle`), like every
/// handler here.
pub fn register(ctx: Ctx, username: String, password: String) {
    let address = ctx.session.address();
    if let Some(ip) = address {
        let limits = ctx.svc.login_limits();
        if let Err(wait) = limits.accounts.lock().check(&ip, Instant::now()) {
            return ctx.fail_retry(
                errno::QUOTA,
                "your address has created as many accounts as it may for now",
                wait,
            );
        }
    }
    let Some(pending) = ctx.reserve_hash() else {
        return;
    };
    if let Some(ip) = address {
        let limits = ctx.svc.login_limits();
        if let Err(wait) = limits.registrations.lock().hit(ip, Instant::now()) {
            return ctx.fail_retry(
                errno::TOO_MANY,
                "too many registrations from your address; try again later",
                wait,
            );
        }
    }
    ctx.on_hasher(pending, move |ctx, store, pending| {
        let answer = match ctx.svc.hasher.hash(&password) {
            Err(e) => {
                log::error!("password hashing failed: {e}");
                Err(STORE_FAILED)
            }
            // Closed while hashing: the account is not created either.
            Ok(_) if !ctx.peer.connected() => return,
            Ok(hash) => match store.create_user(&username, &hash) {
                Ok(Some(uid)) => {
                    ctx.svc.known.insert(uid);
                    Ok(reply::register_ok(uid, &username))
                }
                Ok(None) => Err((errno::FAILED, "that username is taken")),
                Err(e) => {
                    log::error!("{}: register: {e}", ctx.peer.name());
                    Err(STORE_FAILED)
                }
            },
        };
        // The hash is done: no longer pending, before the client can know.
        drop(pending);
        ctx.on_own_loop(move |ctx| match answer {
            Ok(v) => {
                // Counted here, on the I/O thread, as the limits' threads
                // rule asks; checked when the next register arrives.
                if let Some(ip) = address {
                    let _ = ctx
                        .svc
                        .login_limits()
                        .accounts
                        .lock()
                        .hit(ip, Instant::now());
                }
                ctx.send(&v)
            }
            Err((errno, errmsg)) => ctx.fail(errno, errmsg),
        });
    });
}

/// LOGIN_MSG (1), by `uid` or by `username`; answers 2. See the module docs.
/// The peer's own thread.
///
/// Failed logins are throttled ([`super::login_limits`]): an address with too
/// many of late is answered at once, an account with too many is answered
/// when its turn on the hashing threads comes (where the account is looked
/// up), both with errno 12 and `retry_after`, and neither hashes.
pub fn login(ctx: Ctx, uid: Option<i64>, username: Option<String>, password: String) {
    // Before the session lock: the answer is sent without holding it.
    if refuse_blocked_address(&ctx) {
        return;
    }
    let Some(pending) = ctx.reserve_hash() else {
        return;
    };
    if !begin_verifying(&ctx) {
        return;
    }
    ctx.on_hasher(pending, move |ctx, store, pending| {
        let account = match (uid, &username) {
            (Some(uid), _) => store.user_by_id(uid),
            (None, Some(name)) => store.user_by_name(name),
            (None, None) => Ok(None),
        };
        let key = match (&account, uid, username) {
            (Ok(Some(user)), _, _) => Some(AccountKey::Id(user.id)),
            (_, Some(uid), _) => Some(AccountKey::Id(uid)),
            (_, None, Some(name)) => Some(AccountKey::Name(name)),
            (_, None, None) => None,
        };
        let ip = ctx.session.address();
        if let Some((wait, why)) = login_blocked(&ctx.svc, key.as_ref(), ip) {
            drop(pending);
            return finish_throttled_login(ctx, wait, why);
        }
        let failure = match account {
            Err(e) => {
                log::error!("{}: login: {e}", ctx.peer.name());
                STORE_FAILED
            }
            Ok(Some(user)) if ctx.svc.hasher.verify(&password, &user.password_hash) => {
                let rehash = legacy_rehash(&ctx, &user, &password);
                drop(pending);
                count_login(&ctx.svc, key, ip, false);
                // The claim takes the session and online-map locks, which
                // I/O threads take too: it runs on the user's worker, not
                // on this idle-class thread, which could be preempted while
                // holding them for as long as the machine stays busy. So
                // does the write of an imported account's new hash.
                let uid = user.id;
                return ctx.clone().on_worker(user_key(uid), move |ctx, store| {
                    let user = store_rehash(store, user, rehash);
                    claim_cluster_wide(ctx, user)
                });
            }
            Ok(Some(_)) => BAD_LOGIN,
            Ok(None) => {
                ctx.svc.hasher.verify_nothing(&password);
                BAD_LOGIN
            }
        };
        drop(pending);
        if failure == BAD_LOGIN {
            count_login(&ctx.svc, key, ip, true);
        }
        finish_failed_login(ctx, failure);
    });
}

/// The first login of an account imported from the C++ original
/// (`chat-server migrate-legacy`), its password verified against the
/// plain text: the argon2 hash to store in its place, made here on the
/// hashing thread. `None` for any other account, or when hashing failed
/// (logged; the next login tries again).
fn legacy_rehash(ctx: &Ctx, user: &UserRecord, password: &str) -> Option<String> {
    if !crate::runtime::password::is_legacy(&user.password_hash) {
        return None;
    }
    match ctx.svc.hasher.hash(password) {
        Ok(hash) => Some(hash),
        Err(e) => {
            log::error!("user {}: hashing the imported password: {e}", user.id);
            None
        }
    }
}

/// On the user's worker: stores the hash [`legacy_rehash`] made and
/// returns the account as stored now (the new hash moved its token
/// generation). Without a hash, or when the store fails (logged, the
/// plain text stays for the next login), the account as it was.
fn store_rehash(store: &dyn Store, user: UserRecord, hash: Option<String>) -> UserRecord {
    let Some(hash) = hash else {
        return user;
    };
    let stored = store
        .set_password(user.id, &hash)
        .and_then(|_| store.user_by_id(user.id));
    match stored {
        Ok(Some(now)) => {
            log::info!("user {}: the imported password is hashed now", user.id);
            now
        }
        Ok(None) => user,
        Err(e) => {
            log::error!(
                "user {}: storing the imported password's hash: {e}",
                user.id
            );
            user
        }
    }
}

/// On arrival, on the peer's own thread: refuses (errno 12, with
/// `retry_after`) a password or token check from an address this node has
/// blocked for its failed logins; true when it did.
pub(super) fn refuse_blocked_address(ctx: &Ctx) -> bool {
    let Some(ip) = ctx.session.address() else {
        return false;
    };
    let failures = ctx
        .svc
        .login_limits()
        .address_failures
        .lock()
        .check(&ip, Instant::now());
    match failures {
        Ok(()) => false,
        Err(wait) => {
            ctx.fail_retry(errno::TOO_MANY, ADDRESS_BLOCKED, wait);
            true
        }
    }
}

/// Marks the session `Verifying` for a login (by password or token);
/// false, with errno 8 sent, when the connection is logged in already.
/// The answer is sent after the session lock is released.
pub(super) fn begin_verifying(ctx: &Ctx) -> bool {
    let mut state = ctx.session.state();
    if let Login::Active { .. } = state.login {
        drop(state);
        ctx.fail(
            errno::CONFLICT,
            "this connection is logged in already; log out first",
        );
        return false;
    }
    state.login = Login::Verifying;
    true
}

const ACCOUNT_BLOCKED: &str = "too many failed logins for this account; try again later";
pub(super) const ADDRESS_BLOCKED: &str =
    "too many failed logins from your address; try again later";

/// The hashing thread, before the password check: how long still, and
/// why, when the login is blocked by this node's failures of the account
/// or, in cluster mode, by the cluster's of the account or the address
/// (this node's of the address were checked on arrival). The per-account
/// map is the hashing threads' own lock; the cluster's counts block on
/// Redis (bounded).
pub(super) fn login_blocked(
    svc: &Service,
    key: Option<&AccountKey>,
    ip: Option<IpAddr>,
) -> Option<(Duration, &'static str)> {
    let key = key?;
    let limits = svc.login_limits();
    if let Err(wait) = limits.account_failures.lock().check(key, Instant::now()) {
        return Some((wait, ACCOUNT_BLOCKED));
    }
    let shared = svc.shared_throttle()?;
    // A limit of 0 is off: no round trip for it.
    let (account_rule, address_rule) = limits.failure_rules;
    if account_rule.limit > 0 {
        if let Some(Err(wait)) = shared.check(&key.shared_name()) {
            return Some((wait, ACCOUNT_BLOCKED));
        }
    }
    let ip = ip.filter(|_| address_rule.limit > 0)?;
    match shared.check(&login_limits::shared_address(ip)) {
        Some(Err(wait)) => Some((wait, ADDRESS_BLOCKED)),
        _ => None,
    }
}

/// The hashing thread, after a password check of the account `key` from
/// `ip`: a failure counts against the account, in cluster mode
/// cluster-wide (with the address too), or on this node when Redis cannot
/// be asked or on a single node (this node's count of the address is kept
/// on the I/O thread, by `finish_failed_login`); a success clears the
/// account's counts.
pub(super) fn count_login(
    svc: &Service,
    key: Option<AccountKey>,
    ip: Option<IpAddr>,
    failed: bool,
) {
    let Some(key) = key else {
        return;
    };
    let limits = svc.login_limits();
    let shared = svc.shared_throttle();
    let (account_rule, address_rule) = limits.failure_rules;
    if !failed {
        limits.account_failures.lock().clear_hits(&key);
        if let Some(shared) = shared {
            shared.clear(&key.shared_name());
        }
        return;
    }
    let counted = shared.is_some_and(|shared| {
        if let Some(ip) = ip {
            let _ = shared.fail(&login_limits::shared_address(ip), address_rule);
        }
        shared.fail(&key.shared_name(), account_rule).is_some()
    });
    if !counted {
        let _ = limits.account_failures.lock().hit(key, Instant::now());
    }
}

/// A login refused by a failed-login throttle, on the hashing thread:
/// answered on the peer's own thread with errno 12 and `retry_after`.
pub(super) fn finish_throttled_login(ctx: Ctx, wait: Duration, why: &'static str) {
    ctx.on_own_loop(move |ctx| {
        let Some(held) = end_login(&ctx) else {
            return;
        };
        ctx.fail_retry(errno::TOO_MANY, why, wait);
        replay(&ctx, held);
    });
}

/// The peer's own thread, when a login failed: back to anonymous, and what
/// was held meanwhile; `None` when the connection has closed.
fn end_login(ctx: &Ctx) -> Option<Held> {
    let mut state = ctx.session.state();
    if state.closed {
        return None;
    }
    state.login = Login::Anonymous;
    Some(std::mem::take(&mut state.held))
}

const ALREADY_ONLINE: Failure = (errno::ALREADY_ONLINE, "this account is logged in already");

/// [`claim`]'s answer when the connection closed during the login: nobody
/// reads it ([`finish_failed_login`] finds the session closed).
const GONE: Failure = (
    errno::ALREADY_ONLINE,
    "the connection closed during the login",
);

/// What a connection replaced by a takeover reads last.
pub const LOGGED_IN_ELSEWHERE: &str =
    "logged in elsewhere: a new login replaced this silent connection";

/// Phase 1's end, on the user's worker. In cluster mode, first the local
/// duplicate check and the claim in Redis, whose answer comes back to this
/// worker as a new job: no thread waits for Redis, so a hung Redis holds
/// no worker (the login waits, the worker serves others). A claim Redis
/// cannot answer admits the user *unconfirmed* (see "Cluster mode" in the
/// module docs). Then [`claim`].
pub(super) fn claim_cluster_wide(ctx: Ctx, user: UserRecord) {
    ctx.svc.known.insert(user.id);
    let Some(cluster) = ctx.svc.cluster().cloned() else {
        return admit(ctx, user);
    };
    // No room here means no room anywhere: the limit is cluster-wide.
    // Otherwise Redis counts the user's sessions on every live node.
    if ctx.svc.online.session_count(user.id) >= ctx.svc.sessions_per_user() {
        return finish_failed_login(ctx, ALREADY_ONLINE);
    }
    let uid = user.id;
    // Runs on a cluster thread (or here): it only queues.
    cluster.claim_then(uid, move |answer| {
        ctx.on_worker(user_key(uid), move |ctx, _| match answer {
            Claim::OnlineElsewhere(node) => {
                log::debug!("{}: {uid} is online on {node}", ctx.peer.name());
                finish_failed_login(ctx, ALREADY_ONLINE);
            }
            Claim::Claimed => admit_counted(ctx, user, true),
            Claim::Unavailable => admit_counted(ctx, user, false),
        });
    });
}

/// [`claim`], answering its failure; the user's worker.
fn admit(ctx: Ctx, user: UserRecord) {
    admit_counted(ctx, user, false);
}

/// [`admit`] after a claim Redis answered (`counted`: with several
/// sessions per user, Redis counted this session, so a login that ends
/// here gives it back).
fn admit_counted(ctx: Ctx, user: UserRecord, counted: bool) {
    let uid = user.id;
    if let Err(failure) = claim(&ctx, user) {
        if counted {
            give_back(&ctx, uid);
        }
        finish_failed_login(ctx, failure);
    }
}

/// With several sessions per user in cluster mode: a session Redis
/// counted never made it into the online map, so Redis's count of this
/// node's sessions of `uid` goes down again. (With one session, the claim
/// is this node's whichever of its logins made it, and it is released with
/// the last session.)
fn give_back(ctx: &Ctx, uid: i64) {
    if let Some(cluster) = ctx
        .svc
        .cluster()
        .filter(|_| ctx.svc.sessions_per_user() > 1)
    {
        cluster.release(uid);
    }
}

/// Inserts `LoggingIn` and queues phase 2, both under the user's
/// online-map lock; the user's worker, after the cluster-wide claim.
fn claim(ctx: &Ctx, user: UserRecord) -> Result<(), Failure> {
    // Session, then shard: `disconnected` marks the session closed under
    // the same lock before it looks at the map, so either it sees our
    // entry and removes it, or we see `closed` and insert none.
    let mut state = ctx.session.state();
    let mut shard = ctx.svc.online.lock(user.id);
    if state.closed {
        // The connection is gone; nothing to answer. Give the claim back
        // unless another connection here holds the user (with several
        // sessions per user, `admit_counted` gives this one back).
        let sole = ctx.svc.sessions_per_user() == 1;
        if let (Some(cluster), false, true) =
            (ctx.svc.cluster(), shard.contains_key(&user.id), sole)
        {
            cluster.release(user.id);
        }
        return Err(GONE);
    }
    // The duplicate check and the insert under one lock: of two logins
    // racing for the last free session of a user, exactly one finds it
    // (or takes over a silent connection; see "Takeover" in the module
    // docs).
    let sessions = shard.entry(user.id).or_default();
    let replaced = if sessions.len() >= ctx.svc.sessions_per_user() {
        let at = sessions
            .iter()
            .position(|entry| replaceable(ctx, entry).is_some());
        let Some(at) = at else {
            if sessions.is_empty() {
                shard.remove(&user.id);
            }
            return Err(ALREADY_ONLINE);
        };
        // Its cursors are dropped with it, as its disconnect will find no
        // session to write them from: what it was handed and not yet
        // stored is handed again (delivery is at least once).
        match sessions.swap_remove(at) {
            Presence::Online { peer, .. } => Some(peer),
            Presence::LoggingIn { .. } => None,
        }
    } else {
        None
    };
    sessions.push(Presence::LoggingIn {
        peer_id: ctx.peer.id(),
        buffered: Vec::new(),
    });
    state.login = Login::Claimed {
        uid: user.id,
        name: user.name.clone(),
    };
    // Queued before the lock is released: every offline write that found
    // the user absent was queued on this worker earlier, so phase 2 reads
    // them all.
    let uid = user.id;
    let phase2 = ctx.clone();
    ctx.clone().on_worker(user_key(uid), move |_, store| {
        load_account(phase2, store, user)
    });
    drop(shard);
    drop(state);
    if let Some(old) = replaced {
        // The map points at the new login already: nothing more is routed
        // to `old`, and its own disconnect will leave our entry alone.
        log::info!(
            "{}: {uid} logs in again; closing {}, silent for {:?}",
            ctx.peer.name(),
            old.name(),
            old.idle_for()
        );
        let last = reply::error_msg(errno::ALREADY_ONLINE, LOGGED_IN_ELSEWHERE, None);
        old.close_with(encode(&last));
    }
    Ok(())
}

/// The peer of `entry` when a login of `ctx`'s peer may replace it: the
/// entry is `Online` on another peer that has been silent longer than the
/// takeover grace, and this is a single node. `None`: the login gets errno 2.
fn replaceable(ctx: &Ctx, entry: &Presence) -> Option<PeerRef> {
    let grace = ctx.svc.login_takeover_grace()?;
    if ctx.svc.cluster().is_some() {
        return None;
    }
    match entry {
        Presence::Online { peer: old, .. }
            if old.id() != ctx.peer.id() && old.idle_for() > grace =>
        {
            Some(old.clone())
        }
        // Recent activity, or a login under way (which just sent bytes).
        _ => None,
    }
}

/// The most log entries one login ack carries; more follow it in steps
/// ([`delivery::backlog_step`]).
pub const MAX_ACK_MESSAGES: usize = 1000;

/// About the most bytes of messages one login ack carries (one message may
/// take it over): an ack must stay well under the high-water mark.
pub const MAX_ACK_BYTES: usize = 1 << 20;

/// What phase 2 found for the ack.
struct Loaded {
    /// Rows of the legacy offline table, `(id, text)`.
    legacy: Vec<(i64, String)>,
    /// The log entries the user has not been handed, oldest first.
    pending: Vec<Entry>,
    /// The user's cursors once the ack is handed over.
    cursors: Cursors,
    /// More is pending than the ack carries.
    backlog: bool,
    friends: Vec<UserInfo>,
    groups: Vec<GroupInfo>,
}

/// Phase 2's reads. The conversations (with their `last_seq`) are read
/// *before* the pending entries: every message of another sender up to
/// those `last_seq`s is then in `pending`, so the cursors may start there.
fn load(ctx: &Ctx, store: &dyn Store, uid: i64) -> Result<Loaded, StoreError> {
    // Rows an earlier ack delivered but could not delete: delete them now,
    // or at least do not deliver them again.
    let undeleted = retry_delete(ctx, store, uid);
    let mut legacy = store.offline_messages(uid)?;
    legacy.retain(|(id, _)| undeleted.binary_search(id).is_err());
    let convs = store.conversations(uid)?;
    let (mut pending, mut backlog) = if ctx.svc.sessions_per_user() > 1 {
        // The user's own messages too: another session may have sent them.
        sessions::pending_with_own(store, &convs, MAX_ACK_MESSAGES)?
    } else {
        let pending = store.pending(uid, MAX_ACK_MESSAGES)?;
        let full = pending.len() >= MAX_ACK_MESSAGES;
        (pending, full)
    };
    let mut bytes = 0;
    if let Some(cut) = pending.iter().position(|e| {
        bytes += e.body.len();
        bytes > MAX_ACK_BYTES
    }) {
        // Keep at least one message, so that a backlog always moves.
        pending.truncate(cut.max(1));
        backlog = true;
    }
    let cursors = history::login_cursors(&convs, &pending, !backlog);
    Ok(Loaded {
        legacy,
        pending,
        cursors,
        backlog,
        friends: store.friends(uid)?,
        groups: store.user_groups(uid)?,
    })
}

/// Phase 2, on the user's worker: everything the login ack carries.
fn load_account(ctx: Ctx, store: &dyn Store, user: UserRecord) {
    let loaded = load(&ctx, store, user.id);
    let Loaded {
        legacy,
        pending,
        cursors,
        backlog,
        mut friends,
        mut groups,
    } = match loaded {
        Ok(l) => l,
        Err(e) => {
            log::error!("{}: login of {}: {e}", ctx.peer.name(), user.id);
            delivery::unclaim(&ctx.svc, user.id, ctx.peer.id());
            return finish_failed_login(ctx, STORE_FAILED);
        }
    };
    mark_online(&ctx.svc, &mut friends, &mut groups);
    // The legacy rows are older than anything in the log.
    let (ids, mut texts): (Vec<i64>, Vec<String>) = legacy.into_iter().unzip();
    texts.extend(pending.iter().map(|e| chat::stored_text(&e.delivered())));
    // Every successful login hands out a fresh resume token (src/service/credentials.rs).
    let token = ctx.svc.issue_token(user.id, user.token_gen);
    let ack = encode(&reply::with_token(
        reply::login_ok(user.id, &user.name, texts, &friends, &groups),
        token,
    ));
    ctx.on_own_loop(move |ctx| {
        let uid = user.id;
        let svc = ctx.svc.clone();
        let peer_id = ctx.peer.id();
        if deliver_login(ctx, user, ack, ids, cursors) && backlog {
            // The rest follows the ack in steps, each once the last drained.
            delivery::continue_when_drained(&svc, uid, peer_id);
        }
    });
}

/// The user's worker: repeats the delete of the rows of `uid` that an
/// earlier login delivered and could not delete (see [`super::undeleted`]),
/// and returns those still not deleted, ascending.
fn retry_delete(ctx: &Ctx, store: &dyn Store, uid: i64) -> Vec<i64> {
    let pending = ctx.svc.undeleted.take(uid);
    if pending.is_empty() {
        return pending;
    }
    match store.delete_offline(uid, &pending) {
        Ok(_) => Vec::new(),
        Err(e) => {
            log::error!(
                "{}: deleting offline messages of {uid} delivered before: {e}",
                ctx.peer.name()
            );
            ctx.svc.undeleted.remember(uid, &pending);
            pending
        }
    }
}

/// Phase 3, on the peer's own thread: go `Online`, send the ack and the
/// buffered messages, then record what was delivered. `false` when the
/// login was abandoned (the connection is closing).
fn deliver_login(
    ctx: Ctx,
    user: UserRecord,
    ack: Vec<u8>,
    delivered: Vec<i64>,
    cursors: Cursors,
) -> bool {
    let (held, positions) = {
        let mut state = ctx.session.state();
        let claimed = matches!(&state.login, Login::Claimed { uid, .. } if *uid == user.id);
        if state.closed || !claimed || !ctx.peer.connected() {
            return false; // closing: `disconnected` cleans up and keeps the rows
        }
        let positions = {
            let mut shard = ctx.svc.online.lock(user.id);
            match online::session_mut(&mut shard, user.id, ctx.peer.id()) {
                Some(entry @ Presence::LoggingIn { .. }) if entry.peer_id() == ctx.peer.id() => {
                    let online = Presence::online(ctx.peer.clone(), cursors);
                    let Presence::LoggingIn { buffered, .. } = std::mem::replace(entry, online)
                    else {
                        return false;
                    };
                    let Presence::Online { cursors, .. } = entry else {
                        return false;
                    };
                    // Still under the shard lock: a sender on any thread
                    // must take it to find `Online`, so whatever it sends
                    // is written after the ack and the buffered messages
                    // (less those the ack carried already).
                    let end = ctx.peer.send_counted(&ack);
                    cursors.login_ack_sent(end, ctx.peer.written());
                    delivery::replay_buffered(&ctx.svc, user.id, &ctx.peer, cursors, buffered);
                    // What has reached the kernel is written below (a big
                    // ack may not have, yet: then the next flush or the
                    // close writes it, if it got there); should the write
                    // fail, the flush repeats it.
                    cursors.changed(ctx.peer.written())
                }
                _ => return false,
            }
        };
        state.login = Login::Active {
            uid: user.id,
            name: user.name.into(),
        };
        (std::mem::take(&mut state.held), positions)
    };
    // The ack is handed over: only now may what it carried count as
    // delivered.
    let uid = user.id;
    ctx.clone().on_worker(user_key(uid), move |ctx, store| {
        if let Err(e) = store.set_delivered(uid, &positions) {
            log::error!(
                "{}: storing what the login ack of {uid} delivered \
                 (the next login may hand it again): {e}",
                ctx.peer.name()
            );
        }
        if !delivered.is_empty() {
            if let Err(e) = store.delete_offline(uid, &delivered) {
                log::error!(
                    "{}: deleting delivered offline messages of {uid} \
                     (the next login retries): {e}",
                    ctx.peer.name()
                );
                ctx.svc.undeleted.remember(uid, &delivered);
            }
        }
        if let Err(e) = store.set_online(uid, true) {
            log::error!("{}: marking {uid} online: {e}", ctx.peer.name());
        }
    });
    replay(&ctx, held);
    true
}

/// A login failed: answer on the peer's own thread, then replay what was
/// held meanwhile. A wrong password (or no such account) counts against
/// the address's failed logins there.
pub(super) fn finish_failed_login(ctx: Ctx, (errno, errmsg): Failure) {
    ctx.on_own_loop(move |ctx| {
        if (errno, errmsg) == BAD_LOGIN {
            if let Some(ip) = ctx.session.address() {
                let failures = &ctx.svc.login_limits().address_failures;
                let _ = failures.lock().hit(ip, Instant::now());
            }
        }
        let Some(held) = end_login(&ctx) else {
            return;
        };
        ctx.fail(errno, errmsg);
        replay(&ctx, held);
    });
}

/// The peer's own thread, after a login ended: handles what was held
/// during it, in order.
fn replay(ctx: &Ctx, held: Held) {
    for obj in held {
        ctx.svc.handle(&ctx.peer, &ctx.session, obj);
    }
}

/// Fills in the `online` flags from the online map and, in cluster mode,
/// Redis (the database's `state` lags behind them, and a killed node leaves
/// it wrong). Worker only: it may wait for Redis.
fn mark_online(svc: &Service, friends: &mut [UserInfo], groups: &mut [GroupInfo]) {
    let mut uids: Vec<i64> = friends.iter().map(|f| f.id).collect();
    for g in groups.iter() {
        uids.extend(g.members.iter().map(|m| m.id));
    }
    uids.sort_unstable();
    uids.dedup();
    let flags = svc.are_online(&uids);
    let online = |id: i64| uids.binary_search(&id).is_ok_and(|i| flags[i]);
    for f in friends {
        f.online = online(f.id);
    }
    for g in groups {
        for m in &mut g.members {
            m.online = online(m.id);
        }
    }
}

/// LOGOUT_MSG (3): the connection stays open, anonymous; answers 4. The
/// peer's own thread. In cluster mode the answer waits until the user's
/// cursors are stored and Redis has released the session, so that a
/// client told "logged out" can log in on any node at once.
pub fn logout(ctx: Ctx, me: Me) {
    ctx.session.state().login = Login::Anonymous;
    // This session only: the user stays online while another one is.
    let answer = ctx.clone();
    let answered = move || answer.send(&reply::logout_ok());
    if delivery::unclaim_then(&ctx.svc, me.uid, ctx.peer.id(), answered) == Unclaimed::Last {
        set_offline(&ctx.svc, me.uid);
    }
}

/// ACOUNT_FRESH_MSG (7): the current friends and groups; answers 8. The
/// peer's own thread; the lists are read on the user's worker.
pub fn refresh(ctx: Ctx, me: Me) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        let loaded = store
            .friends(me.uid)
            .and_then(|f| Ok((f, store.user_groups(me.uid)?)));
        match loaded {
            Ok((mut friends, mut groups)) => {
                mark_online(&ctx.svc, &mut friends, &mut groups);
                ctx.send(&reply::refresh_ok(me.uid, &me.name, &friends, &groups));
            }
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// The peer closed: drop its online entry (storing any messages buffered
/// during a login) and mark the account offline. The peer's own thread.
pub fn disconnected(svc: &Arc<Service>, peer: &PeerRef, session: &Arc<Session>) {
    let mut state = session.state();
    state.closed = true;
    state.held.clear();
    let login = std::mem::replace(&mut state.login, Login::Anonymous);
    if let Login::Claimed { uid, .. } | Login::Active { uid, .. } = login {
        // Still under the session lock: a login's phase 1 cannot slip in.
        if delivery::unclaim(svc, uid, peer.id()) == Unclaimed::Last {
            set_offline(svc, uid);
        }
    }
}

fn set_offline(svc: &Arc<Service>, uid: i64) {
    let store = svc.store.clone();
    svc.workers.submit(user_key(uid), move || {
        if let Err(e) = store.set_online(uid, false) {
            log::error!("marking {uid} offline: {e}");
        }
    });
}
