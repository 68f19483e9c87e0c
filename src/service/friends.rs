//! Friends: add (10, answered by 16) and delete (14, answered by 15).
//!
//! A friendship goes both ways and exists at most once (the original
//! inserted duplicates and only one direction per request). Both handlers
//! are called on the peer's own thread (by `Service::handle`) and move at
//! once to the requesting user's worker.

use super::{user_key, Ctx, Me};
use crate::protocol::{errno, reply};

/// ADD_FRIEND_MSG (10): befriend `fid`.
pub fn add(ctx: Ctx, me: Me, fid: i64) {
    if fid == me.uid {
        return ctx.fail(errno::BAD_REQUEST, "you cannot befriend yourself");
    }
    ctx.on_worker(user_key(me.uid), move |ctx, store| {
        let result = store
            .user_by_id(fid)
            .and_then(|f| f.map(|_| store.add_friend(me.uid, fid)).transpose());
        match result {
            Ok(Some(true)) => ctx.send(&reply::add_friend_ok(fid)),
            Ok(Some(false)) => ctx.fail(errno::CONFLICT, &format!("{fid} is your friend already")),
            Ok(None) => ctx.fail(errno::NOT_FOUND, &format!("no user {fid}")),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// DEL_FRIEND_MSG (14): end the friendship with `fid`.
pub fn delete(ctx: Ctx, me: Me, fid: i64) {
    ctx.on_worker(user_key(me.uid), move |ctx, store| {
        match store.delete_friend(me.uid, fid) {
            Ok(true) => ctx.send(&reply::del_friend_ok(fid)),
            Ok(false) => ctx.fail(errno::NOT_FOUND, &format!("{fid} is not your friend")),
            Err(e) => ctx.store_failed(&e),
        }
    });
}
