//! History: SYNC (29), CONVS (31) and READ (33), the log's readers, and
//! the pruning of old entries (`--history-retention`).
//!
//! # Who may read what
//!
//! | conversation | reader | reads |
//! |---|---|---|
//! | one-to-one | either participant | all of it |
//! | group | a member | what was posted after they joined (their `joined_seq`) |
//! | either | anyone else | nothing: errno 6, or 7 when the group does not exist |
//!
//! Every handler runs on the user's worker, in order with the user's other
//! jobs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::delivery::Cursors;
use super::online::Presence;
use super::{sessions, user_key, Ctx, Me, Service};
use crate::model::{Conv, ConvState};
use crate::protocol::{errno, reply};
use crate::storage::{Entry, Page, Store, StoreError};

/// Entries one prune job deletes; a job that deletes this many queues the
/// next.
const PRUNE_BATCH: usize = 10_000;

/// SYNC (29): one page of `conv`'s log; answers 30. The peer's own thread.
pub fn sync(ctx: Ctx, me: Me, conv: Conv, page: Page, limit: usize) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        let answer = floor_of(store, me.uid, conv).and_then(|floor| match floor {
            Ok(floor) => store.log_page(conv, page, floor, limit).map(Ok),
            Err(refusal) => Ok(Err(refusal)),
        });
        match answer {
            Ok(Ok((entries, more))) => {
                let msgs: Vec<Vec<u8>> = entries.iter().map(|e| e.delivered()).collect();
                ctx.peer.send(reply::sync_ok(conv, &msgs, more));
            }
            Ok(Err((errno, errmsg))) => ctx.fail(errno, &errmsg),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// CONVS (31): every conversation of the user; answers 32. The peer's own
/// thread.
pub fn convs(ctx: Ctx, me: Me) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        match store.conversations(me.uid) {
            Ok(list) => ctx.send(&reply::convs_ok(me.uid, &list)),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// READ (33): moves the user's read position of `conv` forward; answers
/// 34 with the new position. The peer's own thread.
pub fn read(ctx: Ctx, me: Me, conv: Conv, seq: i64) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        match store.set_read(me.uid, conv, seq) {
            Ok(Some(read)) => {
                ctx.send(&reply::read_ok(conv, read));
                if ctx.svc.sessions_per_user() > 1 {
                    sessions::receipt(&ctx.svc, store, me.uid, ctx.peer.id(), conv, read);
                }
            }
            // A one-to-one conversation with no message yet has no cursor
            // rows: nothing to read, position 0.
            Ok(None) if conv.has_participant(me.uid) => ctx.send(&reply::read_ok(conv, 0)),
            Ok(None) => match refusal(store, conv) {
                Ok((errno, errmsg)) => ctx.fail(errno, &errmsg),
                Err(e) => ctx.store_failed(&e),
            },
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// The seq after which `uid` may read `conv`, or why they may not.
fn floor_of(
    store: &dyn Store,
    uid: i64,
    conv: Conv,
) -> Result<Result<i64, (i64, String)>, StoreError> {
    if conv.has_participant(uid) {
        return Ok(Ok(0));
    }
    if let Conv::Group(_) = conv {
        if let Some(state) = store.conv_state(uid, conv)? {
            return Ok(Ok(state.joined_seq));
        }
    }
    refusal(store, conv).map(Err)
}

/// Why a user with no place in `conv` may not read it: errno 7 for a
/// group that does not exist, 6 otherwise.
fn refusal(store: &dyn Store, conv: Conv) -> Result<(i64, String), StoreError> {
    if let Conv::Group(gid) = conv {
        if store.group(gid)?.is_none() {
            return Ok((errno::NOT_FOUND, format!("no conversation {conv}")));
        }
    }
    Ok((
        errno::FORBIDDEN,
        format!("you are not in conversation {conv}"),
    ))
}

/// A group joined: the new member's cursor of the group starts at the
/// position the store gave them, so that the first post they are pushed
/// is the one after it. The user's worker, right after the join.
pub fn joined(svc: &Service, store: &dyn Store, uid: i64, gid: i64) {
    let Some(conv) = Conv::group(gid) else {
        return;
    };
    let state = match store.conv_state(uid, conv) {
        Ok(Some(state)) => state,
        Ok(None) => return,
        Err(e) => {
            log::error!("reading the new membership of {uid} in {gid}: {e}");
            return;
        }
    };
    if let Some(sessions) = svc.online.lock(uid).get_mut(&uid) {
        for session in sessions {
            if let Presence::Online { cursors, .. } = session {
                cursors.start_at(conv, state.joined_seq);
            }
        }
    }
}

/// The cursors a login starts from, given the user's conversations as
/// read *before* `pending`, and `pending` itself (`complete` when it holds
/// every pending entry). Per conversation: handed once the ack is out, its
/// `last_seq` (every message of others up to it is in `pending`) or the
/// last seq the ack carries, whichever is higher (without `complete`,
/// only the ack's); confirmed, the stored position.
pub fn login_cursors(convs: &[ConvState], pending: &[Entry], complete: bool) -> Cursors {
    let mut start: HashMap<Conv, (i64, i64)> = convs
        .iter()
        .map(|c| {
            let stored = c.delivered_seq.max(c.joined_seq);
            let handed = if complete { c.last_seq } else { stored };
            (c.conv, (handed.max(stored), stored))
        })
        .collect();
    for e in pending {
        let p = start.entry(e.conv).or_insert((0, 0));
        p.0 = p.0.max(e.seq);
    }
    Cursors::at_login(start.into_iter().map(|(c, (h, s))| (c, h, s)))
}

/// Queues one prune of entries older than `retention` on a worker. The
/// chores thread.
pub fn schedule_prune(svc: &Arc<Service>, retention: Duration) {
    let store = svc.store.clone();
    let workers_svc = svc.clone();
    svc.workers.submit(0, move || {
        let Some(cutoff) =
            now_ms().checked_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX))
        else {
            return;
        };
        match store.prune_log(cutoff, PRUNE_BATCH) {
            Ok(n) if n as usize >= PRUNE_BATCH => {
                log::debug!("history: pruned {n} entries, more to go");
                schedule_prune(&workers_svc, retention);
            }
            Ok(0) => {}
            Ok(n) => log::debug!("history: pruned {n} entries"),
            Err(e) => log::error!("history: pruning: {e}"),
        }
    });
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
