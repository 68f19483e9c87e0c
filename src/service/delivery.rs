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
//! | `> cursor + 1` | a **gap**: queues [`fill`] on the user's worker, which reads the missing ones (and this one) from the log and sends them in order |
//!
//! On a single node a conversation's messages are pushed by one log
//! thread in seq order, so gaps are rare (a login buffer that overflowed).
//! In cluster mode messages of one conversation committed on two nodes may
//! cross on their way here; the gap check puts them back in order, and
//! since seq is allocated under the conversation's row lock, every message
//! below one that has committed has committed too: the fill finds them.
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
//! lock so that the user's next login reads them; and every
//! [`CURSOR_FLUSH`] for users who stay online. After a crash a user may
//! therefore be handed again, as offline messages, what was pushed since
//! the last write: delivery is at least once, and (conv, seq) tells
//! duplicates apart.

use std::sync::Arc;
use std::time::Duration;

pub use super::cursors::{Cursors, Delivery};
use super::latency;
use super::online::{Presence, MAX_BUFFERED};
use super::{user_key, PeerRef, Service};
use crate::model::Conv;
use crate::storage::{Page, Store, StoreError};

/// How often the cursors of users who stay online are written.
pub const CURSOR_FLUSH: Duration = Duration::from_secs(5);

/// Messages one fill reads per query.
const FILL_PAGE: usize = 500;

/// What [`offer`] made of a delivery.
enum Offered {
    /// Sent (or, for the user's own message, counted), buffered, or not
    /// needed: done.
    Done,
    /// Not on this node (no entry, or a closing one): given back.
    Absent(Delivery),
    /// A gap before it: fill from the log.
    Gap,
}

/// Hands `d` to `uid` on this node: see the [module docs](self). Gives
/// it back when `uid` is not here (the caller may route it elsewhere in
/// cluster mode; otherwise the log keeps it for the next login). Any
/// thread that holds no shard lock.
pub fn push(svc: &Arc<Service>, uid: i64, d: Delivery) -> Option<Delivery> {
    let conv = d.conv;
    let seq = d.seq;
    let offered = offer(&mut svc.online.lock(uid), uid, d);
    match offered {
        Offered::Done => None,
        Offered::Absent(d) => Some(d),
        Offered::Gap => {
            schedule_fill(svc, uid, conv, seq);
            None
        }
    }
}

/// The shard-locked part of [`push`]; also replays a login's buffer.
fn offer(shard: &mut super::online::Shard, uid: i64, d: Delivery) -> Offered {
    match shard.get_mut(&uid) {
        Some(Presence::Online { peer, cursors }) if peer.connected() => {
            offer_online(peer, cursors, d)
        }
        Some(Presence::LoggingIn { buffered, .. }) => {
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
        _ => Offered::Absent(d),
    }
}

/// The cursor check and the send, under the shard lock.
fn offer_online(peer: &PeerRef, cursors: &mut Cursors, d: Delivery) -> Offered {
    let last = cursors.get(d.conv);
    if d.seq <= last {
        return Offered::Done;
    }
    if d.seq > last + 1 {
        return Offered::Gap;
    }
    match d.bytes {
        Some(bytes) => {
            let end = peer.send_counted(bytes);
            if end.is_some() {
                latency::observe(d.received);
            }
            cursors.handed(d.conv, d.seq, end, peer.written());
        }
        None => cursors.own(d.conv, d.seq, peer.written()),
    }
    Offered::Done
}

/// The login's last step, under the user's shard lock, right after the
/// ack: offers what was buffered during the login to the new entry's
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
        if let Offered::Gap = offer_online(peer, cursors, d) {
            schedule_fill(svc, uid, conv, seq);
        }
    }
}

/// Queues a [`fill`] of `conv` up to `upto` for `uid` on the user's worker.
pub fn schedule_fill(svc: &Arc<Service>, uid: i64, conv: Conv, upto: i64) {
    let job_svc = svc.clone();
    svc.workers.submit(user_key(uid), move || {
        let store = job_svc.store.clone();
        if let Err(e) = fill(&job_svc, &*store, uid, conv, upto) {
            log::error!("filling a gap in {conv} for {uid}: {e}");
        }
    });
}

/// Worker: sends `uid` the messages of `conv` after their cursor, up to at
/// least `upto`, from the log, in order. Reads the user's floor (a group
/// member reads only what came after their join) first.
pub fn fill(
    svc: &Arc<Service>,
    store: &dyn Store,
    uid: i64,
    conv: Conv,
    upto: i64,
) -> Result<(), StoreError> {
    let mut unlimited = usize::MAX;
    fill_within(svc, store, uid, conv, upto, &mut unlimited)
}

/// [`fill`], stopping once `budget` bytes have been sent (it is lowered by
/// what was sent).
fn fill_within(
    svc: &Arc<Service>,
    store: &dyn Store,
    uid: i64,
    conv: Conv,
    upto: i64,
    budget: &mut usize,
) -> Result<(), StoreError> {
    let floor = match store.conv_state(uid, conv)? {
        Some(state) => state.joined_seq,
        None if conv.has_participant(uid) => 0,
        None => return Ok(()), // no longer a member
    };
    while *budget > 0 {
        let Some(from) = cursor_of(svc, uid, conv) else {
            break; // gone
        };
        if from >= upto {
            break;
        }
        let (entries, more) =
            store.log_page(conv, Page::After(from.max(floor)), floor, FILL_PAGE)?;
        let last = entries.last().map(|e| e.seq);
        {
            let mut shard = svc.online.lock(uid);
            let Some(Presence::Online { peer, cursors }) = shard.get_mut(&uid) else {
                break;
            };
            for e in &entries {
                if e.seq <= cursors.get(conv) {
                    continue;
                }
                if *budget == 0 {
                    break;
                }
                // The log is the authority: a seq missing from it was pruned.
                if e.sender != uid || conv.other(uid) == Some(uid) {
                    let bytes = e.delivered();
                    *budget = budget.saturating_sub(bytes.len());
                    let end = peer.send_counted(bytes);
                    cursors.handed(conv, e.seq, end, peer.written());
                } else {
                    cursors.own(conv, e.seq, peer.written());
                }
            }
        }
        if !more || last.is_none_or(|l| l >= upto) {
            break;
        }
    }
    Ok(())
}

/// Bytes one backlog step sends: well under the high-water mark, so a
/// client that reads is never cut off by its own backlog.
pub const BACKLOG_STEP_BYTES: usize = 1 << 20;

/// Worker: the next part of a backlog that did not fit the login ack:
/// up to [`BACKLOG_STEP_BYTES`] of what `uid`'s conversations hold beyond
/// their cursors, in order per conversation. When more is left, the next
/// step is queued for when this one's bytes have drained into the kernel
/// ([`Peer::when_drained`](super::Peer::when_drained)), so the output
/// buffer never holds more than about one step.
pub fn backlog_step(svc: &Arc<Service>, store: &dyn Store, uid: i64) -> Result<(), StoreError> {
    let mut budget = BACKLOG_STEP_BYTES;
    for state in store.conversations(uid)? {
        let Some(cursor) = cursor_of(svc, uid, state.conv) else {
            return Ok(()); // gone
        };
        if state.last_seq <= cursor.max(state.joined_seq) {
            continue;
        }
        fill_within(svc, store, uid, state.conv, state.last_seq, &mut budget)?;
        if budget == 0 {
            continue_when_drained(svc, uid);
            return Ok(());
        }
    }
    Ok(())
}

/// Queues the next [`backlog_step`] of `uid` for when their connection's
/// output has drained.
pub fn continue_when_drained(svc: &Arc<Service>, uid: i64) {
    let peer = match svc.online.lock(uid).get(&uid) {
        Some(Presence::Online { peer, .. }) => peer.clone(),
        _ => return,
    };
    let svc = svc.clone();
    peer.when_drained(Box::new(move || schedule_backlog(&svc, uid)));
}

/// Queues a [`backlog_step`] on `uid`'s worker.
pub fn schedule_backlog(svc: &Arc<Service>, uid: i64) {
    let job_svc = svc.clone();
    svc.workers.submit(user_key(uid), move || {
        let store = job_svc.store.clone();
        if let Err(e) = backlog_step(&job_svc, &*store, uid) {
            log::error!("sending the backlog of {uid}: {e}");
        }
    });
}

/// Queues, for every user online here, a [`reconcile`] on their worker.
/// Any thread; cluster mode calls it when its Redis link is back.
pub fn schedule_reconcile_all(svc: &Arc<Service>) {
    schedule_reconcile(svc, &svc.online.uids());
}

/// Queues a [`reconcile`] of each of `uids` on their worker (users who
/// are not online here by then are skipped there). Any thread.
pub fn schedule_reconcile(svc: &Arc<Service>, uids: &[i64]) {
    if !uids.is_empty() {
        log::info!("catching {} connected users up from the log", uids.len());
    }
    for &uid in uids {
        let job_svc = svc.clone();
        svc.workers.submit(user_key(uid), move || {
            let store = job_svc.store.clone();
            if let Err(e) = reconcile(&job_svc, &*store, uid) {
                log::error!("catching {uid} up from the log: {e}");
            }
        });
    }
}

/// Worker: sends `uid` whatever their conversations hold beyond their
/// cursors here (messages routed to this node while its link was down).
pub fn reconcile(svc: &Arc<Service>, store: &dyn Store, uid: i64) -> Result<(), StoreError> {
    for state in store.conversations(uid)? {
        let Some(cursor) = cursor_of(svc, uid, state.conv) else {
            return Ok(()); // gone
        };
        if state.last_seq > cursor.max(state.joined_seq) {
            fill(svc, store, uid, state.conv, state.last_seq)?;
        }
    }
    Ok(())
}

/// `uid`'s cursor of `conv` on this node, if they are online here.
fn cursor_of(svc: &Service, uid: i64, conv: Conv) -> Option<i64> {
    match svc.online.lock(uid).get(&uid) {
        Some(Presence::Online { cursors, .. }) => Some(cursors.get(conv)),
        _ => None,
    }
}

/// Queues the write of `positions` as `uid`'s delivered cursors on the
/// user's worker. Called under the user's shard lock when the positions
/// must be stored before their next login reads them.
pub fn submit_delivered(svc: &Service, uid: i64, positions: Vec<(Conv, i64)>) {
    if positions.is_empty() {
        return;
    }
    let store = svc.store.clone();
    svc.workers.submit(user_key(uid), move || {
        if let Err(e) = store.set_delivered(uid, &positions) {
            log::error!(
                "storing {} delivery positions of {uid} (they may be handed again): {e}",
                positions.len()
            );
        }
    });
}

/// Writes the changed cursors of every user online here; any thread. Run
/// every [`CURSOR_FLUSH`] and at shutdown (then `now` is `true`: written
/// on this thread, as the workers have stopped).
pub fn flush_all(svc: &Service, now: bool) {
    for uid in svc.online.uids() {
        let mut shard = svc.online.lock(uid);
        let Some(Presence::Online { peer, cursors }) = shard.get_mut(&uid) else {
            continue;
        };
        let changed = cursors.take_changed(peer.written());
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

/// Removes `uid`'s entry if it belongs to the peer `peer_id`, and returns
/// whether it did. An `Online` entry's changed cursors are written by a
/// job on the user's worker queued under the lock, so the user's next
/// login reads them. (A `LoggingIn` entry's buffered messages need
/// nothing: the log has them, and no cursor moved past them.)
pub(super) fn unclaim(svc: &Arc<Service>, uid: i64, peer_id: u64) -> bool {
    let mut shard = svc.online.lock(uid);
    let removed = match shard.get(&uid) {
        Some(p) if p.peer_id() == peer_id => shard.remove(&uid),
        _ => None,
    };
    if let (Some(cluster), Some(_)) = (svc.cluster(), &removed) {
        // Queued under the lock: a later login here claims after it.
        cluster.release(uid);
    }
    match removed {
        Some(Presence::Online { peer, mut cursors }) => {
            submit_delivered(svc, uid, cursors.take_changed(peer.written()));
            drop(shard);
            true
        }
        Some(Presence::LoggingIn { .. }) => true,
        None => false,
    }
}
