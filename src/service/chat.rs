//! Chat: one-to-one (9) and group (13) messages, and offline storage.
//!
//! # The hot path
//!
//! A one-to-one message is handled entirely on the sender's I/O thread:
//! stamp the sender's identity (id and name) into the object, encode it
//! once, look the recipient up in the [`OnlineMap`](super::OnlineMap) and
//! hand the bytes to their peer ([`Peer::send`](super::Peer::send): in the
//! server a direct write under that connection's output lock, whichever
//! loop it lives on).
//! No database, no global lock.
//! Only a recipient who is not online costs a worker job, which stores the
//! message on the *recipient's* worker shard (see `account` for why).
//!
//! # Cluster mode
//!
//! A recipient not in this node's online map may be on another node: the
//! bytes go to [`Cluster::send_to_user`](crate::cluster::Cluster::send_to_user),
//! which only queues (the publisher thread routes them through Redis, or
//! stores them offline when no node holds the user). A group post does this
//! for each absent member. One check moves off the I/O thread: whether a
//! one-to-one recipient exists at all. A recipient not yet in the
//! [`KnownUsers`](super::KnownUsers) set sends the message through the slow
//! lane, where the sender's worker reads the account once. And the group
//! cache is not used: a node sees only its own joins and quits, so each
//! group post reads its member list from the shared store in the slow lane.
//!
//! [`deliver_here`] and [`deliver_or_store_here`] are the cluster's way
//! in (see [`super::cluster_node`]).
//!
//! # Order
//!
//! All messages of one sender are handed on by the sender's I/O thread, one
//! after the other, so one recipient receives them in the order sent. The
//! one exception would be a group post that must wait for its member list
//! to be loaded: it takes the *slow lane* (the sender's worker, then back to
//! the sender's I/O thread), and while any message of the session is in the
//! slow lane, its later messages — group or one-to-one — take it too,
//! queuing behind.

use std::sync::Arc;

use parking_lot::MutexGuard;
use serde_json::{Map, Value};

use super::group_cache::{is_member, Members};
use super::online::Shard;
use super::{user_key, Ctx, Me, Presence, Service};
use crate::protocol::{encode, errno};
use crate::storage::{Store, StoreError};

/// Who to tell when an offline message cannot be stored.
enum ReportTo {
    /// The sender of a one-to-one message: also told when the recipient
    /// does not exist.
    Sender(Ctx),
    /// Nobody (group fan-out: members exist; failures are logged).
    Log,
}

/// ONE_CHAT_MSG (9): forward the object to `to`, or store it for them.
/// Failures come back as error messages (27) with `req: 9`. The sender's
/// own thread.
pub fn one_chat(ctx: Ctx, me: Me, to: i64, obj: Map<String, Value>) {
    let bytes = stamp(obj, "from", &me);
    let svc = &ctx.svc;
    let unknown = svc.cluster().is_some() && !svc.known.contains(to) && !svc.online.contains(to);
    if ctx.session.slow_lane() > 0 || unknown {
        // Behind a group post of this session that waits for its members,
        // or (cluster mode) the recipient's existence must be read first.
        ctx.session.enter_slow_lane();
        return ctx.on_worker(user_key(me.uid), move |ctx, store| {
            let exists = recipient_exists(&ctx.svc, store, to);
            ctx.on_own_loop(move |ctx| {
                ctx.session.leave_slow_lane();
                match exists {
                    Ok(true) => {
                        let svc = ctx.svc.clone();
                        deliver(&svc, to, bytes, ReportTo::Sender(ctx));
                    }
                    Ok(false) => ctx.fail(errno::NOT_FOUND, &format!("no user {to}")),
                    Err(e) => ctx.store_failed(&e),
                }
            });
        });
    }
    let svc = ctx.svc.clone();
    deliver(&svc, to, bytes, ReportTo::Sender(ctx));
}

/// GROUP_CHAT_MSG (13): forward the object to every other member of `gid`;
/// only members may post. The sender's own thread.
pub fn group_chat(ctx: Ctx, me: Me, gid: i64, obj: Map<String, Value>) {
    let bytes = stamp(obj, "uid", &me);
    if ctx.session.slow_lane() == 0 {
        if let Some(members) = cached_members(&ctx.svc, gid) {
            return fan_out(&ctx, me.uid, gid, &members, bytes);
        }
    }
    // The slow lane: load the members on the sender's worker, then fan out
    // back on the sender's I/O thread.
    ctx.session.enter_slow_lane();
    ctx.on_worker(user_key(me.uid), move |ctx, store| {
        let members = match cached_members(&ctx.svc, gid) {
            Some(m) => Ok(Some(m)),
            None => load_members(&ctx.svc, store, gid),
        };
        ctx.on_own_loop(move |ctx| {
            ctx.session.leave_slow_lane();
            match members {
                Ok(Some(members)) => fan_out(&ctx, me.uid, gid, &members, bytes),
                Ok(None) => ctx.fail(errno::NOT_FOUND, "no such group"),
                Err(e) => ctx.store_failed(&e),
            }
        });
    });
}

/// Worker: whether a one-to-one recipient exists, as far as routing needs
/// to know. On a single node the offline store job checks it, so this is
/// `true`; in cluster mode it reads the account unless it is known.
fn recipient_exists(svc: &Service, store: &dyn Store, to: i64) -> Result<bool, StoreError> {
    if svc.cluster().is_none() || svc.known.contains(to) {
        return Ok(true);
    }
    let exists = store.user_by_id(to)?.is_some();
    if exists {
        svc.known.insert(to);
    }
    Ok(exists)
}

/// The cached member list of `gid`. Never in cluster mode: members join
/// and quit on every node, and each node's cache sees only its own changes,
/// so every post reads the list from the shared store (in the slow lane).
fn cached_members(svc: &Service, gid: i64) -> Option<Members> {
    if svc.cluster().is_some() {
        return None;
    }
    svc.groups.get(gid)
}

/// Reads a group's members into the cache. `None`: no such group.
fn load_members(svc: &Service, store: &dyn Store, gid: i64) -> Result<Option<Members>, StoreError> {
    let generation = svc.groups.generation(gid);
    let ids = store.group_member_ids(gid)?;
    if ids.is_empty() && store.group(gid)?.is_none() {
        return Ok(None);
    }
    svc.groups.insert_loaded(gid, generation, ids.clone());
    let mut ids = ids;
    ids.sort_unstable();
    Ok(Some(Arc::new(ids)))
}

fn fan_out(ctx: &Ctx, uid: i64, gid: i64, members: &[i64], bytes: Vec<u8>) {
    if !is_member(members, uid) {
        return ctx.fail(
            errno::FORBIDDEN,
            &format!("you are not a member of group {gid}"),
        );
    }
    for &member in members.iter().filter(|&&m| m != uid) {
        deliver(&ctx.svc, member, bytes.clone(), ReportTo::Log);
    }
}

/// Puts the sender's identity into a chat object and encodes it for the
/// wire: `from` (or `uid`) and `username` are the logged-in account's,
/// replacing whatever the client wrote, so that nobody can post under
/// another's name.
fn stamp(mut obj: Map<String, Value>, id_field: &str, me: &Me) -> Vec<u8> {
    obj.insert(id_field.to_owned(), me.uid.into());
    obj.insert("username".to_owned(), me.name.clone().into());
    encode(&Value::Object(obj))
}

/// The text stored in the offline table: the encoded object without its
/// trailing newline. Any thread.
pub fn stored_text(bytes: &[u8]) -> String {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    String::from_utf8_lossy(text).into_owned()
}

/// Hands `bytes` to `to`'s peer, its login buffer, another node (in
/// cluster mode, when `to` is not here), or the offline table. The offline
/// job is submitted while the recipient's map shard is locked (the rule in
/// [`super::online`]).
fn deliver(svc: &Arc<Service>, to: i64, bytes: Vec<u8>, report: ReportTo) {
    let Err(missed) = hand_over(svc.online.lock(to), to, bytes) else {
        return;
    };
    match svc.cluster() {
        // Not on this node at all: perhaps on another.
        Some(cluster) if !missed.closing => {
            drop(missed.shard);
            cluster.send_to_user(to, missed.bytes);
        }
        // Still under the shard lock.
        _ => submit_store(svc, to, missed.bytes, report),
    }
}

/// Cluster → here (subscriber thread): hands `bytes` to `to`'s peer or
/// login buffer. `false` when `to` is not (or no longer) on this node.
pub fn deliver_here(svc: &Service, to: i64, bytes: &[u8]) -> bool {
    hand_over(svc.online.lock(to), to, bytes.to_vec()).is_ok()
}

/// Cluster → here (publisher or subscriber thread): no node took `bytes`
/// for `to`. Delivers them if `to` arrived here meanwhile, otherwise stores
/// them on `to`'s worker, under the shard lock like every offline write.
pub fn deliver_or_store_here(svc: &Arc<Service>, to: i64, bytes: Vec<u8>) {
    if let Err(missed) = hand_over(svc.online.lock(to), to, bytes) {
        submit_store(svc, to, missed.bytes, ReportTo::Log);
    }
}

/// A delivery [`hand_over`] could not make: the bytes, and the recipient's
/// shard, still locked, for the caller's fallback.
struct Missed<'a> {
    shard: MutexGuard<'a, Shard>,
    bytes: Vec<u8>,
    /// `to` is in the map, on a peer that is closing.
    closing: bool,
}

/// The one place a message meets the online map: sends `bytes` to `to`'s
/// live peer (after releasing the shard lock) or appends them to its
/// login buffer. Otherwise returns them with the lock still held.
fn hand_over(mut shard: MutexGuard<'_, Shard>, to: i64, bytes: Vec<u8>) -> Result<(), Missed<'_>> {
    match shard.get_mut(&to) {
        Some(Presence::Online(peer)) if peer.connected() => {
            let peer = peer.clone();
            drop(shard);
            peer.send(bytes);
            Ok(())
        }
        Some(Presence::LoggingIn { buffered, .. }) => {
            buffered.push(bytes);
            Ok(())
        }
        entry => {
            let closing = entry.is_some();
            Err(Missed {
                shard,
                bytes,
                closing,
            })
        }
    }
}

/// Queues the offline write of `bytes` for `to` on `to`'s worker. The
/// caller holds `to`'s shard lock.
fn submit_store(svc: &Service, to: i64, bytes: Vec<u8>, report: ReportTo) {
    let store = svc.store.clone();
    svc.workers.submit(user_key(to), move || {
        store_offline(&*store, to, &bytes, &report)
    });
}

/// The worker job that stores a message for an offline user.
fn store_offline(store: &dyn Store, to: i64, bytes: &[u8], report: &ReportTo) {
    let result = match report {
        ReportTo::Sender(_) => store.user_by_id(to).map(|u| u.is_some()),
        ReportTo::Log => Ok(true),
    };
    let result = result.and_then(|exists| {
        if exists {
            store.push_offline(to, &stored_text(bytes)).map(|()| true)
        } else {
            Ok(false)
        }
    });
    match (result, report) {
        (Ok(true), _) => {}
        (Ok(false), ReportTo::Sender(ctx)) => ctx.fail(errno::NOT_FOUND, &format!("no user {to}")),
        (Err(e), ReportTo::Sender(ctx)) => ctx.store_failed(&e),
        (Err(e), ReportTo::Log) => log::error!("storing a group message for {to}: {e}"),
        (Ok(false), ReportTo::Log) => {}
    }
}
