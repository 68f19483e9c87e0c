//! Friends: add (10, answered by 16) and delete (14, answered by 15).
//!
//! A friendship goes both ways and exists at most once (the original
//! inserted duplicates and only one direction per request). Both handlers
//! are called on the peer's own thread (by `Service::handle`) and move at
//! once to the requesting user's worker.
//!
//! # The quota
//!
//! Neither side may have more than `--max-friends` friends (errno 13 in
//! the ack). Both counts can grow from other users' workers (anyone may
//! befriend either side), so a check before the insert could be passed by
//! two adds at once. The check comes after it instead: the friendship is
//! added, both sides are counted, and when either is over the maximum it
//! is deleted again and refused. Two adds racing for the last place may
//! then both be refused; none goes over.

use super::limits::{self, Quota};
use super::{user_key, Ctx, Me};
use crate::protocol::{errno, reply};
use crate::storage::{Count, Store, StoreError};

/// ADD_FRIEND_MSG (10): befriend `fid`.
pub fn add(ctx: Ctx, me: Me, fid: i64) {
    if fid == me.uid {
        return ctx.fail(errno::BAD_REQUEST, "you cannot befriend yourself");
    }
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        let result = store
            .user_by_id(fid)
            .and_then(|f| f.map(|_| store.add_friend(me.uid, fid)).transpose());
        match result {
            Ok(Some(true)) => match over_quota(&ctx, store, me.uid, fid) {
                Ok(None) => ctx.send(&reply::add_friend_ok(fid)),
                Ok(Some(who)) => undo(&ctx, store, me.uid, fid, who),
                Err(e) => ctx.store_failed(&e),
            },
            Ok(Some(false)) => ctx.fail(errno::CONFLICT, &format!("{fid} is your friend already")),
            Ok(None) => ctx.fail(errno::NOT_FOUND, &format!("no user {fid}")),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// DEL_FRIEND_MSG (14): end the friendship with `fid`.
pub fn delete(ctx: Ctx, me: Me, fid: i64) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        match store.delete_friend(me.uid, fid) {
            Ok(true) => ctx.send(&reply::del_friend_ok(fid)),
            Ok(false) => ctx.fail(errno::NOT_FOUND, &format!("{fid} is not your friend")),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// Which side of a new friendship has more friends than allowed, if any.
/// A worker.
fn over_quota(ctx: &Ctx, store: &dyn Store, me: i64, fid: i64) -> Result<Option<i64>, StoreError> {
    let max = ctx.svc.limits().quota(Quota::Friends);
    if max == 0 {
        return Ok(None);
    }
    for who in [me, fid] {
        if store.count(Count::Friends(who))? > u64::from(max) {
            return Ok(Some(who));
        }
    }
    Ok(None)
}

/// Takes back a friendship that put `who` over the quota, and refuses it.
/// A worker.
fn undo(ctx: &Ctx, store: &dyn Store, me: i64, fid: i64, who: i64) {
    if let Err(e) = store.delete_friend(me, fid) {
        return ctx.store_failed(&e);
    }
    let max = ctx.svc.limits().quota(Quota::Friends);
    if who == me {
        limits::refuse_quota(ctx, Quota::Friends, max);
    } else {
        ctx.fail(
            errno::QUOTA,
            &format!("{fid} has {max} friends, the most allowed"),
        );
    }
}
