//! Back-fills from the log: what [`super::delivery::push`] cannot hand a
//! session live (a gap before a message, a backlog the login ack did not
//! carry, messages routed to this node while its link was down) is read
//! from the log on the user's worker and sent to that session, in order.
//!
//! Every function here works on *one session* (`uid` on the peer
//! `peer_id`): each of a user's sessions has its own cursors
//! ([`super::sessions`]), so one may have a gap that another has not.
//! Sends happen under the user's online-map shard lock, checked against
//! the session's cursor there, so a fill and a live push never reorder.
//!
//! # Threads
//!
//! `fill`, `backlog_step` and `reconcile` read the store: the user's
//! worker only. The `schedule_*` functions queue them there from any
//! thread.

use std::sync::Arc;

use super::delivery::{cursor_of, release_held, GAP_GRACE};
use super::early::{GapCounts, GAPS};
use super::online::{session_mut, Presence};
use super::{user_key, Service};
use crate::model::Conv;
use crate::storage::{Page, Store, StoreError};

/// Bytes one backlog step sends: well under the high-water mark, so a
/// client that reads is never cut off by its own backlog.
pub const BACKLOG_STEP_BYTES: usize = 1 << 20;

/// Messages one fill reads per query.
const FILL_PAGE: usize = 500;

/// Queues a [`fill`] of `conv` up to `upto` for `uid`'s session on the
/// peer `peer_id`, on the user's worker.
pub fn schedule_fill(svc: &Arc<Service>, uid: i64, peer_id: u64, conv: Conv, upto: i64) {
    let job_svc = svc.clone();
    svc.workers.submit(user_key(uid), move || {
        let store = job_svc.store.clone();
        GapCounts::count(&GAPS.filled);
        if let Err(e) = fill(&job_svc, &*store, uid, peer_id, conv, upto) {
            log::error!("filling a gap in {conv} for {uid}: {e}");
        }
    });
}

/// Queues, [`GAP_GRACE`] from now, a [`fill_held`] of `conv` for `uid`'s
/// session on the peer `peer_id`, on the user's worker: the check of a
/// gap whose next message was held ([`super::early`]). Any thread.
pub fn schedule_held_fill(svc: &Arc<Service>, uid: i64, peer_id: u64, conv: Conv) {
    // Weak: a check still waiting does not keep a stopped service alive.
    let weak = Arc::downgrade(svc);
    svc.delay.after(GAP_GRACE, move || {
        let Some(svc) = weak.upgrade() else {
            return;
        };
        let job_svc = svc.clone();
        svc.workers.submit(user_key(uid), move || {
            let store = job_svc.store.clone();
            if let Err(e) = fill_held(&job_svc, &*store, uid, peer_id, conv) {
                log::error!("filling a gap in {conv} for {uid}: {e}");
            }
        });
    });
}

/// Worker: the check [`schedule_held_fill`] queues. When messages are
/// still held past a gap in `conv`, fills up to the highest of them from
/// the log (which sends the missing ones and the held ones after them, in
/// order); when the gap closed meanwhile, does nothing. Held messages
/// left past a newer gap get a check of their own.
///
/// # Errors
/// The store failed: the held messages are dropped (the log has them; the
/// next gap starts over).
pub fn fill_held(
    svc: &Arc<Service>,
    store: &dyn Store,
    uid: i64,
    peer_id: u64,
    conv: Conv,
) -> Result<(), StoreError> {
    let Some(upto) = held_top(svc, uid, peer_id, conv) else {
        GapCounts::count(&GAPS.closed);
        return Ok(()); // closed by itself: no query
    };
    GapCounts::count(&GAPS.filled);
    if let Err(e) = fill(svc, store, uid, peer_id, conv, upto) {
        if let Some(Presence::Online { cursors, .. }) =
            session_mut(&mut svc.online.lock(uid), uid, peer_id)
        {
            cursors.forget_held(conv);
        }
        return Err(e);
    }
    if held_top(svc, uid, peer_id, conv).is_some() {
        schedule_held_fill(svc, uid, peer_id, conv);
    }
    Ok(())
}

/// The highest seq held past a gap in `conv` by `uid`'s session on
/// `peer_id`, if any.
fn held_top(svc: &Service, uid: i64, peer_id: u64, conv: Conv) -> Option<i64> {
    match session_mut(&mut svc.online.lock(uid), uid, peer_id) {
        Some(Presence::Online { cursors, .. }) => cursors.highest_held(conv),
        _ => None,
    }
}

/// Worker: sends `uid`'s session on `peer_id` the messages of `conv` after
/// its cursor, up to at least `upto`, from the log, in order. Reads the
/// user's floor (a group member reads only what came after their join)
/// once a read is needed.
pub fn fill(
    svc: &Arc<Service>,
    store: &dyn Store,
    uid: i64,
    peer_id: u64,
    conv: Conv,
    upto: i64,
) -> Result<(), StoreError> {
    let mut unlimited = usize::MAX;
    fill_within(svc, store, (uid, peer_id), conv, upto, &mut unlimited)
}

/// [`fill`], stopping once `budget` bytes have been sent (it is lowered by
/// what was sent).
fn fill_within(
    svc: &Arc<Service>,
    store: &dyn Store,
    (uid, peer_id): (i64, u64),
    conv: Conv,
    upto: i64,
    budget: &mut usize,
) -> Result<(), StoreError> {
    if cursor_of(svc, uid, peer_id, conv).is_none_or(|at| at >= upto) {
        return Ok(()); // gone, or the gap closed by itself
    }
    let floor = match store.conv_state(uid, conv)? {
        Some(state) => state.joined_seq,
        None if conv.has_participant(uid) => 0,
        None => return Ok(()), // no longer a member
    };
    // With several sessions the user's own messages are sent too (the
    // other sessions' self-copies), but not to the session that sent one:
    // its cursor is usually past it already, as it moved when it sent,
    // and when that message came past a gap the session remembered it
    // (`Cursors::own_ahead`).
    let self_copies = svc.sessions_per_user() > 1;
    while *budget > 0 {
        let Some(from) = cursor_of(svc, uid, peer_id, conv) else {
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
            let Some(Presence::Online { peer, cursors }) = session_mut(&mut shard, uid, peer_id)
            else {
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
                let sent_here = e.sender == uid
                    && (cursors.take_own_ahead(conv, e.seq) || cursors.held_own(conv, e.seq));
                if !sent_here && (e.sender != uid || conv.other(uid) == Some(uid) || self_copies) {
                    let bytes = e.delivered();
                    *budget = budget.saturating_sub(bytes.len());
                    let end = peer.send_counted(&bytes);
                    cursors.handed(conv, e.seq, end, peer.written());
                } else {
                    cursors.own(conv, e.seq, peer.written());
                }
            }
            // Held copies the log just sent are dropped; held ones past
            // what it read (they arrived meanwhile) follow in order.
            release_held(peer, cursors, conv);
        }
        if !more || last.is_none_or(|l| l >= upto) {
            break;
        }
    }
    Ok(())
}

/// Worker: the next part of a backlog that did not fit the login ack of
/// `uid`'s session on `peer_id`: up to [`BACKLOG_STEP_BYTES`] of what the
/// user's conversations hold beyond its cursors, in order per
/// conversation. When more is left, the next step is queued for when this
/// one's bytes have drained into the kernel
/// ([`Peer::when_drained`](super::Peer::when_drained)), so the output
/// buffer never holds more than about one step.
pub fn backlog_step(
    svc: &Arc<Service>,
    store: &dyn Store,
    uid: i64,
    peer_id: u64,
) -> Result<(), StoreError> {
    let mut budget = BACKLOG_STEP_BYTES;
    for state in store.conversations(uid)? {
        let Some(cursor) = cursor_of(svc, uid, peer_id, state.conv) else {
            return Ok(()); // gone
        };
        if state.last_seq <= cursor.max(state.joined_seq) {
            continue;
        }
        let session = (uid, peer_id);
        fill_within(svc, store, session, state.conv, state.last_seq, &mut budget)?;
        if budget == 0 {
            continue_when_drained(svc, uid, peer_id);
            return Ok(());
        }
    }
    Ok(())
}

/// Queues the next [`backlog_step`] of `uid`'s session on `peer_id` for
/// when that connection's output has drained.
pub fn continue_when_drained(svc: &Arc<Service>, uid: i64, peer_id: u64) {
    let peer = match session_mut(&mut svc.online.lock(uid), uid, peer_id) {
        Some(Presence::Online { peer, .. }) => peer.clone(),
        _ => return,
    };
    let svc = svc.clone();
    peer.when_drained(Box::new(move || schedule_backlog(&svc, uid, peer_id)));
}

/// Queues a [`backlog_step`] on `uid`'s worker.
pub fn schedule_backlog(svc: &Arc<Service>, uid: i64, peer_id: u64) {
    let job_svc = svc.clone();
    svc.workers.submit(user_key(uid), move || {
        let store = job_svc.store.clone();
        if let Err(e) = backlog_step(&job_svc, &*store, uid, peer_id) {
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

/// Worker: sends each of `uid`'s sessions here whatever their
/// conversations hold beyond its cursors (messages routed to this node
/// while its link was down).
pub fn reconcile(svc: &Arc<Service>, store: &dyn Store, uid: i64) -> Result<(), StoreError> {
    let sessions = svc.online.session_ids(uid);
    if sessions.is_empty() {
        return Ok(());
    }
    let convs = store.conversations(uid)?;
    for peer_id in sessions {
        for state in &convs {
            let Some(cursor) = cursor_of(svc, uid, peer_id, state.conv) else {
                break; // gone
            };
            if state.last_seq > cursor.max(state.joined_seq) {
                fill(svc, store, uid, peer_id, state.conv, state.last_seq)?;
            }
        }
    }
    Ok(())
}
