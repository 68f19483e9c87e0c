//! Groups: create (11 → 17), join (12 → 18), quit (19 → 20), dismiss
//! (21 → 22) and list members (23 → 24).
//!
//! Every handler is called on the peer's own thread (by `Service::handle`)
//! and moves at once to the requesting user's worker. Those that change
//! membership update the [`GroupCache`](super::GroupCache) right after the
//! database commit and before the ack, so a member's next post (after the
//! ack) is checked against the new list.
//!
//! # Quotas
//!
//! Creating and joining are bounded (errno 13 in the ack, 17 or 18):
//! groups one user created (`--max-groups-created`), groups one user is a
//! member of (`--max-groups-joined`; a created group counts too) and
//! members of one group (`--max-group-size`). The first two change only
//! through the user's own requests, which run one after the other on the
//! user's worker (and a user is logged in on one node at a time), so a
//! count before the write is exact. A group's size grows from every
//! joiner's worker, on every node: the join is written first and the
//! group counted after; a join that finds it over the maximum is taken
//! back and refused. Two joins racing for the last seat may then both be
//! refused; the group never stays over.

use crate::protocol::{errno, reply};
use crate::storage::{Count, JoinOutcome, Store, StoreError};

use super::limits::{self, is_full, Quota};
use super::{history, user_key, Ctx, Me};

/// The first of `quotas` that `uid`'s counts already fill, with its
/// maximum. A worker.
fn full(
    ctx: &Ctx,
    store: &dyn Store,
    quotas: &[(Quota, Count)],
) -> Result<Option<(Quota, u32)>, StoreError> {
    for &(quota, count) in quotas {
        let max = ctx.svc.limits().quota(quota);
        if max > 0 && is_full(store.count(count)?, max) {
            return Ok(Some((quota, max)));
        }
    }
    Ok(None)
}

/// CREATE_GROUP_MSG (11): a new group with the sender as its creator.
pub fn create(ctx: Ctx, me: Me, name: String, desc: String) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        let quotas = [
            (Quota::GroupsCreated, Count::GroupsCreated(me.uid)),
            (Quota::GroupsJoined, Count::GroupsJoined(me.uid)),
        ];
        match full(&ctx, store, &quotas) {
            Ok(None) => {}
            Ok(Some((quota, max))) => return limits::refuse_quota(&ctx, quota, max),
            Err(e) => return ctx.store_failed(&e),
        }
        match store.create_group(me.uid, &name, &desc) {
            Ok(Some(gid)) => {
                ctx.svc.groups.created(gid, me.uid);
                ctx.send(&reply::create_group_ok(gid, &name));
            }
            Ok(None) => ctx.fail(errno::CONFLICT, "that group name is taken"),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// Sends `ack` for a change of `gid`'s members, which this node's cache
/// has already; in cluster mode only once every other node has been told
/// to forget the group ([`Cluster::group_changed_then`](crate::cluster::Cluster::group_changed_then)),
/// so that a post sent anywhere after the ack sees the change. Any thread.
fn ack_when_announced(ctx: Ctx, gid: i64, ack: serde_json::Value) {
    match ctx.svc.cluster().cloned() {
        Some(cluster) => cluster.group_changed_then(gid, move || ctx.send(&ack)),
        None => ctx.send(&ack),
    }
}

/// ADD_GROUP_MSG (12): join `gid` as a normal member.
pub fn join(ctx: Ctx, me: Me, gid: i64) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        let quotas = [
            (Quota::GroupsJoined, Count::GroupsJoined(me.uid)),
            (Quota::GroupSize, Count::GroupSize(gid)),
        ];
        match full(&ctx, store, &quotas) {
            Ok(None) => {}
            Ok(Some((quota, max))) => return limits::refuse_quota(&ctx, quota, max),
            Err(e) => return ctx.store_failed(&e),
        }
        match store.join_group(gid, me.uid) {
            Ok(JoinOutcome::Joined) => {
                if !seat_kept(&ctx, store, gid, me.uid) {
                    return;
                }
                // The cursor first, then the cache that routes posts here.
                history::joined(&ctx.svc, store, me.uid, gid);
                ctx.svc.groups.joined(gid, me.uid);
                ack_when_announced(ctx, gid, reply::join_group_ok(gid));
            }
            Ok(JoinOutcome::AlreadyMember) => {
                ctx.fail(
                    errno::CONFLICT,
                    &format!("you are a member of group {gid} already"),
                );
            }
            Ok(JoinOutcome::NoSuchGroup) => ctx.fail(errno::NOT_FOUND, &format!("no group {gid}")),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// QUIT_GROUP_MSG (19): leave `gid`. The creator must dismiss it instead.
pub fn quit(ctx: Ctx, me: Me, gid: i64) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        let creator = match store.group(gid) {
            Ok(Some((_, creator))) => creator,
            Ok(None) => return ctx.fail(errno::NOT_FOUND, &format!("no group {gid}")),
            Err(e) => return ctx.store_failed(&e),
        };
        if creator == Some(me.uid) {
            return ctx.fail(
                errno::FORBIDDEN,
                "the creator cannot quit a group; dismiss it instead",
            );
        }
        match store.quit_group(gid, me.uid) {
            Ok(true) => {
                ctx.svc.groups.left(gid, me.uid);
                ack_when_announced(ctx, gid, reply::quit_group_ok(gid));
            }
            Ok(false) => ctx.fail(
                errno::NOT_FOUND,
                &format!("you are not a member of group {gid}"),
            ),
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// DISMISS_GROUP_MSG (21): delete `gid` and its memberships; creator only.
pub fn dismiss(ctx: Ctx, me: Me, gid: i64) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        match store.group(gid) {
            Ok(Some((_, creator))) if creator == Some(me.uid) => {}
            Ok(Some(_)) => {
                return ctx.fail(errno::FORBIDDEN, "only the group's creator may dismiss it");
            }
            Ok(None) => return ctx.fail(errno::NOT_FOUND, &format!("no group {gid}")),
            Err(e) => return ctx.store_failed(&e),
        }
        match store.dismiss_group(gid) {
            Ok(_) => {
                ctx.svc.groups.dismissed(gid);
                ack_when_announced(ctx, gid, reply::dismiss_group_ok(gid));
            }
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// GROUP_MEMBERS_MSG (23): the members of `gid`, with their online state
/// (cluster-wide in cluster mode); members only.
pub fn members(ctx: Ctx, me: Me, gid: i64) {
    ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
        match store.group(gid) {
            Ok(Some(_)) => {}
            Ok(None) => return ctx.fail(errno::NOT_FOUND, &format!("no group {gid}")),
            Err(e) => return ctx.store_failed(&e),
        }
        match store.group_members(gid) {
            Ok(mut members) => {
                if !members.iter().any(|m| m.id == me.uid) {
                    return ctx.fail(
                        errno::FORBIDDEN,
                        &format!("you are not a member of group {gid}"),
                    );
                }
                let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
                let online = ctx.svc.are_online(&ids);
                for (m, on) in members.iter_mut().zip(online) {
                    m.online = on;
                }
                ctx.send(&reply::group_members_ok(gid, &members));
            }
            Err(e) => ctx.store_failed(&e),
        }
    });
}

/// After a join: `true` when group `gid` is within `--max-group-size`;
/// otherwise the join is taken back, the request refused with errno 13
/// (errno 5 when the count fails), and `false`. A worker.
fn seat_kept(ctx: &Ctx, store: &dyn Store, gid: i64, uid: i64) -> bool {
    let max = ctx.svc.limits().quota(Quota::GroupSize);
    if max == 0 {
        return true;
    }
    let counted = store.count(Count::GroupSize(gid));
    if matches!(counted, Ok(n) if n <= u64::from(max)) {
        return true;
    }
    if let Err(e) = store.quit_group(gid, uid) {
        log::error!("taking back the join of {uid} to {gid}: {e}");
    }
    match counted {
        Err(e) => ctx.store_failed(&e),
        Ok(_) => limits::refuse_quota(ctx, Quota::GroupSize, max),
    }
    false
}
