//! Chat: one-to-one (9) and group (13) messages, and offline storage.
//!
//! # The hot path
//!
//! A one-to-one message is handled entirely on the sender's I/O thread:
//! stamp the sender's identity into the object, encode it once, look the
//! recipient up in the [`OnlineMap`](super::OnlineMap) and hand the bytes to
//! their connection (`send_vec`: a direct write if the recipient lives on
//! the same loop, otherwise one queued closure). No database, no global
//! lock. Only a recipient who is not online costs a worker job, which stores
//! the message on the *recipient's* worker shard (see `account` for why).
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

use serde_json::{Map, Value};

use super::group_cache::{is_member, Members};
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
/// Failures come back as error messages (27) with `req: 9`.
pub fn one_chat(ctx: Ctx, me: Me, to: i64, obj: Map<String, Value>) {
    let bytes = stamp(obj, "from", &me);
    if ctx.session.slow_lane() > 0 {
        // Behind a group post of this session that waits for its members.
        ctx.session.enter_slow_lane();
        return ctx.on_worker(user_key(me.uid), move |ctx, _| {
            let conn = ctx.conn.clone();
            conn.get_loop().queue_in_loop(move |_| {
                ctx.session.leave_slow_lane();
                let svc = ctx.svc.clone();
                deliver(&svc, to, bytes, ReportTo::Sender(ctx));
            });
        });
    }
    let svc = ctx.svc.clone();
    deliver(&svc, to, bytes, ReportTo::Sender(ctx));
}

/// GROUP_CHAT_MSG (13): forward the object to every other member of `gid`;
/// only members may post.
pub fn group_chat(ctx: Ctx, me: Me, gid: i64, obj: Map<String, Value>) {
    let bytes = stamp(obj, "uid", &me);
    if ctx.session.slow_lane() == 0 {
        if let Some(members) = ctx.svc.groups.get(gid) {
            return fan_out(&ctx, me.uid, gid, &members, bytes);
        }
    }
    // The slow lane: load the members on the sender's worker, then fan out
    // back on the sender's I/O thread.
    ctx.session.enter_slow_lane();
    ctx.on_worker(user_key(me.uid), move |ctx, store| {
        let members = match ctx.svc.groups.get(gid) {
            Some(m) => Ok(Some(m)),
            None => load_members(&ctx.svc, store, gid),
        };
        let conn = ctx.conn.clone();
        conn.get_loop().queue_in_loop(move |_| {
            ctx.session.leave_slow_lane();
            match members {
                Ok(Some(members)) => fan_out(&ctx, me.uid, gid, &members, bytes),
                Ok(None) => ctx.fail(errno::NOT_FOUND, "no such group"),
                Err(e) => ctx.store_failed(&e),
            }
        });
    });
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

/// Puts the sender's identity into a chat object (`from` or `uid`, and
/// `username` when the client left it out) and encodes it for the wire.
fn stamp(mut obj: Map<String, Value>, id_field: &str, me: &Me) -> Vec<u8> {
    obj.insert(id_field.to_owned(), me.uid.into());
    if !obj.contains_key("username") {
        obj.insert("username".to_owned(), me.name.clone().into());
    }
    encode(&Value::Object(obj))
}

/// The text stored in the offline table: the encoded object without its
/// trailing newline.
pub fn stored_text(bytes: &[u8]) -> String {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    String::from_utf8_lossy(text).into_owned()
}

/// Hands `bytes` to `to`'s connection, its login buffer, or the offline
/// table. The offline job is submitted while the recipient's map shard is
/// locked (the rule in [`super::online`]).
fn deliver(svc: &Arc<Service>, to: i64, bytes: Vec<u8>, report: ReportTo) {
    let mut shard = svc.online.lock(to);
    match shard.get_mut(&to) {
        Some(Presence::Online(conn)) if conn.connected() => {
            let conn = conn.clone();
            drop(shard);
            conn.send_vec(bytes);
        }
        Some(Presence::LoggingIn { buffered, .. }) => buffered.push(bytes),
        // Absent, or online on a connection that is closing.
        _ => {
            let store = svc.store.clone();
            svc.workers.submit(user_key(to), move || {
                store_offline(&*store, to, &bytes, &report)
            });
        }
    }
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
