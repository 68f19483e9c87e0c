//! Delivery: how a committed message of the log reaches a connection, in
//! order, once.
//!
//! Every message has its place in the log, `(conv, seq)`, before anyone is
//! handed it. A connection's [`Cursors`] remember, per conversation, the
//! last seq it was handed (or sent itself), and [`push`] hands over only
//! the next one:
//!
//! | the message's seq | what [`push`] does |
//! |---|---|
//! | `≤ cursor` | nothing: handed already (a retry, a message the login ack carried) |
//! | `cursor + 1` | sends it, moves the cursor |
//! | `> cursor + 1` | a **gap**: holds it ([`super::early`]) and, if the gap is still open [`GAP_GRACE`] later, queues [`fill`] on the user's worker, which reads the missing ones (and the held ones) from the log and sends them in order |
//!
//! On a single node a conversation's messages are pushed by one log
//! thread in seq order, so gaps are rare (a login buffer that overflowed).
//! In cluster mode messages of one conversation committed on two nodes may
//! cross on their way here; the gap check puts them back in order, and
//! since seq is allocated under the conversation's row lock, every message
//! below one that has committed has committed too: the fill finds them.
//! Usually it is not needed: the missing message is a few milliseconds
//! behind, in Redis, and when it arrives it is sent and the held ones
//! after it, with no query. The fill is for what never arrives (a message
//! Redis dropped, a login buffer that overflowed).
//!
//! Sends happen under the user's online-map shard lock, so that two
//! threads pushing to one user (a log thread and a fill, or the subscriber)
//! cannot reorder what they both checked against the cursor. A live
//! send is timed for `/metrics` ([`super::latency`]).
//!
//! # Persistence
//!
//! Cursors live in the online map's entry. A message counts as delivered
//! once its bytes are in the kernel: [`Peer::send_counted`](super::Peer::send_counted)
//! says where a frame ends in the connection's output stream and
//! [`Peer::written`](super::Peer::written) how far the kernel has taken
//! it, so a message still queued when the connection dies (a slow reader
//! cut off at the high-water mark, a reset) stays pending. When the entry
//! goes (logout, disconnect), its confirmed cursors are written to the
//! store's `delivered_seq` on the user's worker, queued under the shard
//! lock so that the user's next login reads them (in cluster mode the
//! claim is released only after that write is in the store, so that a
//! login on another node reads them too); and every
//! [`CURSOR_FLUSH`] for users who stay online. After a crash a user may
//! therefore be handed again, as offline messages, what was pushed since
//! the last write: delivery is at least once, and (conv, seq) tells
//! duplicates apart.

use std::sync::Arc;
use std::time::Duration;

pub use super::backfill::{
    continue_when_drained, fill, fill_held, reconcile, schedule_backlog, schedule_fill,
    schedule_held_fill, schedule_reconcile, schedule_reconcile_all, BACKLOG_STEP_BYTES,
};
pub use super::cursors::{Cursors, Delivery};
use super::early::{GapCounts, Held, Holding, GAPS};
use super::latency;
use super::online::{session_mut, Presence, MAX_BUFFERED};
use super::{user_key, PeerRef, Service};
use crate::cluster::Cluster;
use crate::model::Conv;
use crate::storage::Store;

/// How often the cursors of users who stay online are written.
pub const CURSOR_FLUSH: Duration = Duration::from_secs(5);

/// How long a message past a gap is held before the gap is filled from
/// the log ([`super::early`]): long enough for a message still crossing
/// Redis under load (a few milliseconds), short enough that a message
/// that was lost is late by nothing a reader notices.
pub const GAP_GRACE: Duration = Duration::from_millis(50);

/// What one session made of a delivery.
enum Offered {
    /// Sent (or, for the session's own message, counted), buffered, or not
    /// needed: done.
    Done,
    /// A gap before it: fill this session from the log now.
    Gap,
    /// A gap before it, and the message held: fill after [`GAP_GRACE`]
    /// if the gap is still open.
    Held,
    /// The session is closing: given back.
    Closing(Delivery),
}

/// Hands `d` to every session of `uid` on this node: see the
/// [module docs](self). Gives it back when no session of `uid` is here
/// (the caller may route it elsewhere in cluster mode; otherwise the log
/// keeps it for the next login). Any thread that holds no shard lock.
pub fn push(svc: &Arc<Service>, uid: i64, d: Delivery) -> Option<Delivery> {
    let conv = d.conv;
    let seq = d.seq;
    let mut gaps = Vec::new();
    let missed = offer(&mut svc.online.lock(uid), uid, d, &mut gaps);
    for (peer_id, now) in gaps {
        if now {
            schedule_fill(svc, uid, peer_id, conv, seq);
        } else {
            schedule_held_fill(svc, uid, peer_id, conv);
        }
    }
    missed
}

/// The shard-locked part of [`push`]: offers `d` to each session (a copy
/// to all but the last), noting in `gaps` the sessions to fill (now, or
/// after the grace). `Some` when no session took it.
fn offer(
    shard: &mut super::online::Shard,
    uid: i64,
    d: Delivery,
    gaps: &mut Vec<(u64, bool)>,
) -> Option<Delivery> {
    let Some(sessions) = shard.get_mut(&uid) else {
        return Some(d);
    };
    let n = sessions.len();
    let mut rest = Some(d);
    let mut taken = false;
    for (i, session) in sessions.iter_mut().enumerate() {
        let one = if i + 1 == n {
            rest.take()
        } else {
            rest.clone()
        };
        let Some(one) = one else { break };
        match offer_session(session, one) {
            Offered::Done => taken = true,
            Offered::Gap => {
                taken = true;
                gaps.push((session.peer_id(), true));
            }
            Offered::Held => {
                taken = true;
                gaps.push((session.peer_id(), false));
            }
            Offered::Closing(back) => rest = Some(back),
        }
    }
    if taken {
        None
    } else {
        rest
    }
}

/// One session's part of [`offer`].
fn offer_session(session: &mut Presence, d: Delivery) -> Offered {
    match session {
        Presence::Online { peer, cursors } if peer.connected() => offer_online(peer, cursors, d),
        Presence::LoggingIn { buffered, .. } => {
            // Beyond the bound the message is dropped here; after the login
            // the next one finds a gap and the fill reads it.
            // Handed over after the login: not a live delivery.
            if buffered.len() < MAX_BUFFERED {
                buffered.push(Delivery {
                    received: None,
                    ..d
                });
            }
            Offered::Done
        }
        Presence::Online { .. } => Offered::Closing(d),
    }
}

/// The cursor check and the send, under the shard lock. The session that
/// sent `d` only moves its cursor; any other gets the bytes (a self-copy,
/// for a message of its user's), or, should they be missing, fills them
/// from the log. Past a gap `d` is held; the next in order releases what
/// it unblocks.
fn offer_online(peer: &PeerRef, cursors: &mut Cursors, d: Delivery) -> Offered {
    let last = cursors.get(d.conv);
    if d.seq <= last {
        return Offered::Done;
    }
    let own = d.origin.is_some_and(|o| o == peer.id());
    // Another session's message without a self-copy: only the log has it.
    let unsendable = d.bytes.is_none() && !own && d.origin.is_some();
    if d.seq > last + 1 {
        if own {
            // A fill would read it from the log: not to be sent back here.
            cursors.own_ahead(d.conv, d.seq);
        }
        if unsendable {
            return Offered::Gap;
        }
        let held = Held {
            bytes: if own { None } else { d.bytes },
            own,
            received: d.received,
        };
        let holding = cursors.hold(d.conv, d.seq, held);
        if holding != Holding::Full {
            GapCounts::count(&GAPS.held);
        }
        return match holding {
            Holding::First => Offered::Held,
            Holding::More => Offered::Done,
            Holding::Full => Offered::Gap,
        };
    }
    if unsendable {
        return Offered::Gap;
    }
    let (conv, seq) = (d.conv, d.seq);
    let next = Held {
        bytes: d.bytes,
        own,
        received: d.received,
    };
    hand(peer, cursors, (conv, seq), next);
    release_held(peer, cursors, conv);
    Offered::Done
}

/// Hands message `seq` of `conv` to the session: sends its bytes, or, for
/// its own message (or one with nothing to send), only moves the cursor.
fn hand(peer: &PeerRef, cursors: &mut Cursors, (conv, seq): (Conv, i64), m: Held) {
    match m.bytes {
        Some(bytes) if !m.own => {
            let end = peer.send_counted(&bytes);
            if end.is_some() {
                latency::observe(m.received);
            }
            cursors.handed(conv, seq, end, peer.written());
        }
        _ => cursors.own(conv, seq, peer.written()),
    }
}

/// Hands on the held messages of `conv` that now follow the cursor, in
/// order (the gap before them closed), under the shard lock.
pub(super) fn release_held(peer: &PeerRef, cursors: &mut Cursors, conv: Conv) {
    while let Some((seq, held)) = cursors.next_held(conv) {
        hand(peer, cursors, (conv, seq), held);
    }
}

/// The login's last step, under the user's shard lock, right after the
/// ack: offers what was buffered during the login to the new session's
/// cursors (which already count what the ack carried). Gaps are filled
/// after the caller unlocks.
pub fn replay_buffered(
    svc: &Arc<Service>,
    uid: i64,
    peer: &PeerRef,
    cursors: &mut Cursors,
    buffered: Vec<Delivery>,
) {
    for d in buffered {
        let (conv, seq) = (d.conv, d.seq);
        match offer_online(peer, cursors, d) {
            Offered::Gap => schedule_fill(svc, uid, peer.id(), conv, seq),
            Offered::Held => schedule_held_fill(svc, uid, peer.id(), conv),
            Offered::Done | Offered::Closing(_) => {}
        }
    }
}

/// The cursor of `conv` of `uid`'s session on the peer `peer_id`, if that
/// session is logged in here.
pub(super) fn cursor_of(svc: &Service, uid: i64, peer_id: u64, conv: Conv) -> Option<i64> {
    match session_mut(&mut svc.online.lock(uid), uid, peer_id) {
        Some(Presence::Online { cursors, .. }) => Some(cursors.get(conv)),
        _ => None,
    }
}

/// Queues the write of `positions` as `uid`'s delivered cursors on the
/// user's worker. Called under the user's shard lock when the positions
/// must be stored before their next login reads them. The store only
/// moves a position forward, so of several sessions the furthest wins.
pub fn submit_delivered(svc: &Service, uid: i64, positions: Vec<(Conv, i64)>) {
    if positions.is_empty() {
        return;
    }
    let store = svc.store.clone();
    svc.workers.submit(user_key(uid), move || {
        store_positions(&*store, uid, &positions)
    });
}

/// `uid`'s delivery positions into the store (none: nothing to do); a
/// failure is logged. A worker.
fn store_positions(store: &dyn Store, uid: i64, positions: &[(Conv, i64)]) {
    if positions.is_empty() {
        return;
    }
    if let Err(e) = store.set_delivered(uid, positions) {
        log::error!(
            "storing {} delivery positions of {uid} (they may be handed again): {e}",
            positions.len()
        );
    }
}

/// Cluster mode: queues, on the user's worker, the write of `positions`,
/// then a wait until everything this node queued for the store is in it
/// ([`Store::flush`](crate::storage::Store::flush): a journal's applier
/// may still hold this write, or an earlier flush's), and only then the
/// release of the claim. Another node admits the user only once the claim
/// is gone, and its login reads the cursors from the shared store: were
/// the claim released first, that read could come before this node's
/// write and hand again what this session was handed (a user who logs
/// out here and in there would get the last messages twice). A later
/// login *here* claims from the same worker, so after this job. The
/// worker waits for the store, as a login's reads do. `then` runs once
/// Redis has applied the release ([`Cluster::release_then`]).
fn release_after_cursors(
    svc: &Service,
    uid: i64,
    positions: Vec<(Conv, i64)>,
    cluster: Arc<Cluster>,
    then: Option<Then>,
) {
    let store = svc.store.clone();
    svc.workers.submit(user_key(uid), move || {
        store_positions(&*store, uid, &positions);
        if let Err(e) = store.flush() {
            log::error!("waiting for the store before releasing {uid}'s claim: {e}");
        }
        match then {
            Some(then) => cluster.release_then(uid, then),
            None => cluster.release(uid),
        }
    });
}

/// Writes the changed cursors of every session online here; any thread.
/// Run every [`CURSOR_FLUSH`] and at shutdown (then `now` is `true`:
/// written on this thread, as the workers have stopped).
pub fn flush_all(svc: &Service, now: bool) {
    for uid in svc.online.uids() {
        let mut shard = svc.online.lock(uid);
        let Some(sessions) = shard.get_mut(&uid) else {
            continue;
        };
        let mut changed = Vec::new();
        for session in sessions.iter_mut() {
            if let Presence::Online { peer, cursors } = session {
                changed.extend(cursors.take_changed(peer.written()));
            }
        }
        if changed.is_empty() {
            continue;
        }
        if now {
            drop(shard);
            if let Err(e) = svc.store.set_delivered(uid, &changed) {
                log::error!("shutdown: storing the delivery positions of {uid}: {e}");
            }
        } else {
            submit_delivered(svc, uid, changed);
        }
    }
}

/// What [`unclaim`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unclaimed {
    /// No session of that peer (it was replaced, or never got this far).
    NotHere,
    /// The session; the user has others here.
    Session,
    /// The user's last session here: they are gone from this node.
    Last,
}

/// Removes `uid`'s session on the peer `peer_id`. An `Online` session's
/// changed cursors are written by a job on the user's worker queued under
/// the lock, so the user's next login here reads them. (A `LoggingIn`
/// one's buffered messages need nothing: the log has them, and no cursor
/// moved past them.) In cluster mode the user's claim is released with
/// their last session here; with several sessions per user, Redis's count
/// of this node's sessions of the user goes down by one. The release
/// waits for the cursors: see [`release_after_cursors`].
pub(super) fn unclaim(svc: &Arc<Service>, uid: i64, peer_id: u64) -> Unclaimed {
    remove_session(svc, uid, peer_id, None)
}

/// [`unclaim`], then `then`: in cluster mode once Redis has applied the
/// release (so that a login on another node is not refused because of
/// this session), otherwise at once. A logout answers from it.
pub(super) fn unclaim_then(
    svc: &Arc<Service>,
    uid: i64,
    peer_id: u64,
    then: impl FnOnce() + Send + 'static,
) -> Unclaimed {
    remove_session(svc, uid, peer_id, Some(Box::new(then)))
}

/// What runs after a release: see [`unclaim_then`].
type Then = Box<dyn FnOnce() + Send>;

fn remove_session(svc: &Arc<Service>, uid: i64, peer_id: u64, then: Option<Then>) -> Unclaimed {
    let mut shard = svc.online.lock(uid);
    let found = (shard.get_mut(&uid)).and_then(|sessions| {
        Some((
            sessions.iter().position(|p| p.peer_id() == peer_id)?,
            sessions,
        ))
    });
    let Some((at, sessions)) = found else {
        drop(shard);
        if let Some(f) = then {
            f();
        }
        return Unclaimed::NotHere;
    };
    let removed = sessions.swap_remove(at);
    let last = sessions.is_empty();
    if last {
        shard.remove(&uid);
    }
    let positions = match removed {
        Presence::Online { peer, mut cursors } => cursors.take_changed(peer.written()),
        Presence::LoggingIn { .. } => Vec::new(),
    };
    // With one session per user the claim goes with the last (the only)
    // session; with several, Redis counts each session of the user here.
    // Queued under the lock either way: a later login here claims after it.
    let now = match svc
        .cluster()
        .filter(|_| last || svc.sessions_per_user() > 1)
    {
        Some(cluster) => {
            release_after_cursors(svc, uid, positions, cluster.clone(), then);
            None
        }
        None => {
            submit_delivered(svc, uid, positions);
            then
        }
    };
    drop(shard);
    if let Some(f) = now {
        f();
    }
    if last {
        Unclaimed::Last
    } else {
        Unclaimed::Session
    }
}
